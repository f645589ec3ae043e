"""Training-recipe options that ``emovox train`` and ``emovox evaluate`` share, defined once so
that the two commands cannot drift apart (evaluate measures the recipe that train ships)."""

from __future__ import annotations

import typer

from emovox.audio.augment import RECIPE_NOISE

LAYERS = typer.Option("all", help="Encoder hidden states the heads read: all (every state, learned weights; "
                      "best on corpora and languages the model never heard), auto (two thirds up: 4 of "
                      "Whisper-base's 0-6), or a list such as 2,3,4.")
DROPOUT = typer.Option(0.3, min=0.0, max=0.9, help="Dropout of each head's MLP (input and hidden).")
LABEL_SMOOTHING = typer.Option(0.0, min=0.0, max=0.5, help="Label smoothing of the heads' loss (0: none, "
                               "which generalised best to held-out corpora).")
POOLING = typer.Option("mean_std", help="How each encoder state is pooled over time: mean_std (every frame alike) or "
                       "level_mean_std (frames weighted by speech level, so quieter background talk counts less; "
                       "emovox.audio.speech_level).")
SILENCE_CONTEXT = typer.Option(False, "--silence-context", help="Each clip's frames also attend to a 30 s window of "
                               "silence after the clip, as Whisper saw speech (padded to 30 s), at the cost of the "
                               "clip's own length (emovox.encoder.whisper; better on unheard corpora).")
SILENCE_STRIDE = typer.Option(1, min=1, max=64, help="With --silence-context: attend to every s-th position of it, "
                              "each counted s times (8: as close to a padded window as the whole context, at an eighth "
                              "of its attention's cost).")
LEVEL_BAND = typer.Option("", help="LOW:HIGH dBFS, e.g. -26:-14: each clip's speech level (its loud frames) is "
                          "brought into this band before the encoder, one outside it moved to the nearer edge, one inside "
                          "left as it is ('': none; emovox.audio.level_band). Corpora recorded 15 dB apart then differ "
                          "less in what is not emotion.")
REVERB = typer.Option(0.0, min=0.0, max=1.0, help="With --augment: probability that a copy is heard in a simulated "
                     "room (RT60 0.2-0.8 s, microphone 0.3-2.5 m away; emovox.audio.augment.reverberate).")
NOISE = typer.Option(RECIPE_NOISE, min=0.0, max=1.0, help="With --augment: probability that a copy has white or babble noise "
                    "at 0-20 dB SNR (0 with --reverb 1: copies heard in rooms only).")
MASK = typer.Option(0.0, min=0.0, max=1.0, help="With --augment: probability that a copy has a stretch of time "
                   "silenced and a band of frequencies stopped (SpecAugment-like masking of the waveform).")
COPY_WEIGHT = typer.Option(1.0, min=0.0, max=1.0, help="With --augment: weight of each augmented copy in the heads' "
                          "loss against a clean clip's 1 (lower: the copies teach noise and rooms while the clean "
                          "speech shapes the heads most).")
MIXUP = typer.Option(0.0, min=0.0, help="Mixup of the heads' training rows: each batch mixed with a shuffled copy of "
                    "itself, the weight drawn from Beta(a, a), the loss mixed likewise (0: none; 0.2-0.4 usual).")
ADVERSARY = typer.Option(0.0, min=0.0, help="Weight of a corpus adversary on each head's hidden layer (gradient "
                        "reversal): the head learns features that do not tell the training corpora apart (0: none).")
VOICE_SWAP = typer.Option(0.0, min=0.0, max=1.0, help="Probability that a training row, in each batch, is moved from "
                          "its speaker's class-balanced mean to another training speaker's (feature-space voice "
                          "swapping; speakers with 10+ clips of 3+ labels; 0: none).")
VOICE_SPREAD = typer.Option(0.0, min=0.0, help="With --voice-swap: move rows into new voices drawn from a Gaussian with "
                            "the training speakers' mean voice and this times their spread, instead of into another "
                            "training speaker's (0: another speaker's; 1: as spread as they are).")
NUISANCE_DIMS = typer.Option(0, min=0, help="Project the K directions of largest spread between the training speakers' "
                             "class-balanced means (speaker, corpus and language offsets) out of each head's input; "
                             "folded into the head's first layer, so the model runs as any other (speakers with 10+ "
                             "clips of 3+ labels; 0: none). On the default's recipe K 32 traded corpora and lost 0.5 "
                             "UA on unseen ones (docs/training.md).")
VALIDATION = typer.Option("speakers", help="What each head validates on (its UA picks the epoch): speakers (held-out "
                          "speakers of every corpus) or corpus (one whole training corpus per head, in turn).")
BALANCE_CORPORA = typer.Option(False, help="Weight clips so that every corpus counts the same "
                               "(lost slightly on held-out corpora with the shared ones; for very uneven corpora).")
BALANCE_SPEAKERS = typer.Option(0.0, "--balance-speakers", min=0.0, max=1.0,
                                help="Weight clips so that a speaker's total weight grows as its clip count to the "
                                "power 1 - P: 0 (every clip counts 1), 0.5 (as the square root), 1 (every speaker "
                                "the same). For corpora where a few voices hold most clips.")
CENTRE_CORPORA = typer.Option("", "--centre-corpora", help="Centre each training corpus on the mean of all: '' "
                              "(no), centred, or both (every clip as it is and centred, so that the heads serve single "
                              "clips and domain profiles alike; emovox.training.profiles), or balanced (centred on each corpus's "
                              "class-balanced mean).")
FINETUNE_BLOCKS = typer.Option(
    0, min=0, help="Fine-tune the encoder's top K blocks with the heads (0: frozen encoder). The frozen part below "
    "them runs once per clip and is cached (float16 frames); the model folder then carries only what changed "
    "(encoder_tuned.safetensors), exported and served like any model.")
FINETUNE_RANK = typer.Option(8, min=0, help="With --finetune-blocks: low-rank adapters of this rank on every linear map "
                             "of the tuned blocks (kilobytes); 0 tunes every weight (~6 MB a block).")
FINETUNE_EPOCHS = typer.Option(6, min=1, help="With --finetune-blocks: at most this many epochs (the one with the best "
                               "UA on held-out speakers is kept).")
FINETUNE_LR = typer.Option(3e-4, min=0.0, help="With --finetune-blocks: learning rate of the tuned blocks (adapters; "
                           "~2e-5 for --finetune-rank 0).")
FINETUNE_MAX_CLIPS = typer.Option(0, min=0, help="With --finetune-blocks: tune on at most this many clips (each corpus "
                                  "keeps its share; 0: all); the heads still train on all.")
BALANCE_LABELS_PER_CORPUS = typer.Option(
    False, "--balance-labels-per-corpus",
    help="Weight clips so that every corpus trains with the same mix of the labels it has (each label the same "
         "total over all corpora): a corpus recorded mostly in one emotion does not teach its channel as that emotion. "
         "On the default's recipe it lost 0.5 UA on unseen corpora (docs/training.md).")


def finetune_config(blocks: int, rank: int, epochs: int, lr: float, max_clips: int):
    """The :class:`emovox.training.finetune.FinetuneConfig` of the options above."""
    from emovox.training.finetune import FinetuneConfig

    return FinetuneConfig(blocks=blocks, rank=rank, epochs=epochs, lr=lr, max_train_clips=max_clips)
DIMENSIONS = typer.Option(False, "--dimensions", help="Also train arousal and valence on every head (multi-task: a "
                          "tanh output beside the emotion logits, targets the circumplex points of the labels; "
                          "emovox.training.fit). Predictions then take their arousal and valence from the heads.")
DIMENSIONS_WEIGHT = typer.Option(0.5, min=0.0, help="With --dimensions: weight of the arousal/valence squared error "
                                 "against the emotion cross-entropy.")

DIMENSIONS_SHARED = typer.Option(True, "--dimensions-shared/--dimensions-unshared",
                                 help="With --dimensions: shared (multi-task: the arousal/valence loss trains the "
                                 "shared layers too; better valence, cost 2.5 points of emotion UA on unseen corpora) or "
                                 "unshared (only the dimensional output learns, so the emotion predictions are exactly "
                                 "those of a model without it).")


def dimensions_weight(dimensions: bool, weight: float) -> float:
    """``FitConfig.dimensions_weight`` for the ``--dimensions`` flag and its weight (0: off)."""
    return weight if dimensions else 0.0
