"""Train emotion heads on cached features: the head and its ensemble (:mod:`.head`), fitting
with validation (:mod:`.fit`), calibration (:mod:`.calibration`), the recipe
(:mod:`.train`), model folders (:mod:`.checkpoint`), centring on a speaker or corpus
(:mod:`.adaptation`), domain profiles (:mod:`.profiles`), the training spread they scale
toward (:mod:`.profile_spread`), the prosody head they read (:mod:`.prosody`) and voice swapping while heads train
(:mod:`.voices`)."""
