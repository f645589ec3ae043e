"""Audio in: decode any input (:mod:`.decode`), mono 16 kHz with checks (:mod:`.load`),
speech level (:mod:`.speech_level`), the level band before the encoder (:mod:`.level_band`),
voice activity (:mod:`.vad`) and training augmentation
(:mod:`.augment`)."""
