"""The pretrained speech encoder: CTranslate2 weight files (:mod:`.ct2_format`), the packaged
Whisper weights and their cache (:mod:`.weights`), the log-mel front end (:mod:`.mel`, numpy
only) and the Whisper encoder in PyTorch (:mod:`.whisper`)."""
