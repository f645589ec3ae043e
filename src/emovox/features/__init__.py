"""Encoder hidden states pooled per layer (:mod:`.pooling`), computed in batches and cached on
disk (:mod:`.extractor`); prosodic features from openSMILE (:mod:`.prosody`)."""
