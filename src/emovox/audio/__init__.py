"""Audio in: decode any input (:mod:`.decode`), mono 16 kHz with checks (:mod:`.load`),
speech level (:mod:`.speech_level`), voice activity (:mod:`.vad`) and training augmentation
(:mod:`.augment`)."""
