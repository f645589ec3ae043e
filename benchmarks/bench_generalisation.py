"""Accuracy on speech a model never heard: leave-one-corpus-out over every corpus we have, with
and without a domain profile, plus RAVDESS 6-fold and its noise drops as the in-domain reference.

For each design (a training recipe, :data:`DESIGNS`) and each held-out corpus, heads train on
*all other* corpora (every label they have, as the shipped model does) and are tested on the
held-out one the way a user runs ``emovox predict --labels angry,happy,sad,neutral``: the
decision is restricted to those four (calm counts as neutral, :func:`emovox.prediction.decision.restrict`)
and unweighted accuracy (UA, mean recall) is taken over the classes the corpus has. Corpora
with fewer than two of the four classes (BAVED's neutral level, the BanglaSER extension's
disgust/fear) only train.

Domain profiles (:mod:`emovox.training.profiles`) are built from a random half of each held-out
corpus's clips, every emotion it has (an archive holds fear and disgust too), and tested on the
clips of the four classes in the other half (``profile``); and from a skewed subset of that half in
which 70 % of the clips are one emotion (neutral where the corpus has it, as a call-centre archive
is mostly neutral) (``skewed``), or angry, happy or sad (``skewedangry`` ..., since 2026-12-06: an
estimator must not merely suit mostly-neutral archives); ``half`` is the single-clip UA on the same
test half, for a paired view. (Until 2026-12-06 the profile half held only the four classes' clips, which flattered
profiles on corpora with other emotions: RAVDESS, nEMO, TESS.) One random half moves a corpus's profile row by 0.8 to
1.6 points (std over five halves, v7.3), the mean over six corpora by about 0.5: ``--profile-seeds 0,1,2,3,4`` averages
every profile row (and ``half``) over five draws of the halves, each draw's rows kept under ``per_seed``.

The in-domain reference is RAVDESS speaker-independent 6-fold UA over all its labels, clean
and with 10 dB white and babble noise on the held-out clips (benchmarks/bench_accuracy.py's
conditions; ``--room`` adds its simulated room, which needs pyroomacoustics).

Features come from the cache (:class:`emovox.features.extractor.FeatureCache`); the first run encodes
every corpus once (about 10 minutes on 2 cores for ~17,000 clips). Prints a table per design,
writes JSON and one PNG.

    python benchmarks/bench_generalisation.py --designs shipped,state4,all --out runs/generalisation.json
    python benchmarks/bench_generalisation.py --designs all --extra ~/.cache/emovox-corpora
    python benchmarks/bench_generalisation.py --designs all-mixed-level-d0.5-ph-e10 --keep-models runs/folds
        # also writes each fold's model (runs/folds/<design>/<held-out corpus>/), e.g. for the int8 gate:
        # emovox export runs/folds/all-mixed-level-d0.5-ph-e10/turev X --int8 --eval turev:../shared/corpora/turev
        # (with fold.json: --keep-models runs/fold_models fills the experiments' fold cache, fold_models.py)
    # one design on both cores (head fitting is single-threaded): half the corpora each, then merged
    python benchmarks/bench_generalisation.py --designs D --skip-ravdess --held-out ravdess,nemo,turev --out runs/a.json &
    python benchmarks/bench_generalisation.py --designs D --skip-ravdess --held-out tess,koetts,emospeech --out runs/b.json
    python benchmarks/bench_generalisation.py --merge runs/a.json runs/b.json --out runs/bench_generalisation.json
    # profile rows averaged over five draws of the random halves (about five times the profile part's time)
    python benchmarks/bench_generalisation.py --designs D --skip-ravdess --reuse-models R --profile-seeds 0,1,2,3,4
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.metrics import balanced_accuracy_score

from emovox.conversation.dimensions import CIRCUMPLEX, arousal_valence, level
from emovox.corpora import parse_spec, scan_corpus
from emovox.corpora.labels import FOUR_CLASS, collapse
from emovox.corpora.manifest import Utterance
from emovox.evaluation.metrics import classification_metrics
from emovox.evaluation.splits import speaker_folds
from emovox.features.extractor import FeatureExtractor
from emovox.features.prosody import cached_prosody_features, domain_statistics, standardise
from emovox.prediction.decision import restrict, top_label
from emovox.training.checkpoint import load_model_files, save_ensemble
from emovox.training.finetune import FinetuneConfig, FinetuneResult, tuned_features
from emovox.training.fit import FitConfig
from emovox.training.head import Ensemble
from emovox.training.level_jitter import jittered_features
from emovox.training.linear_head import fit_linear_head
from emovox.training.profile_spread import ProfileSpread
from emovox.training.profiles import DomainProfile, domain_mean, neutral_columns, profile_scale
from emovox.training.prosody import ProsodyHead, fit_prosody_head
from emovox.training.train import (
    TrainConfig,
    kfold_groups,
    load_augmented,
    load_features,
    load_frames,
    profile_linear_head,
    room_copies,
    train_ensemble,
    tune_encoder,
)

SHARED = ("ravdess", "nemo", "turev")
EXTRA = ("tess", "koetts", "emospeech", "baved", "banglaser")
# corpora a design may add to its training only (never held out: no 4-class test labels), by adapter name, with
# the folder under --extra they read: BAVED with every arousal level (the high one a candidate set of emotions)
TRAINING_ONLY = {"baved-arousal": "baved"}
SKEW = 0.7  # share of the skewed profile half taken by one emotion
SKEWED_EMOTIONS = ("angry", "happy", "sad")  # rows skewed<emotion>_*: archives 70 % of that emotion (skewed_*: neutral)
BALANCES = (0.0, 0.5, 1.0)  # the "balanced" estimator's class balancing tried (emovox.training.profiles.domain_mean)
SHIPPED = "neutral"  # the estimator `emovox profile` uses: rows profile_neutral, skewed_neutral


@functools.cache
def _extractor(encoder: str, pooling: str, window: float, silence_context: bool, silence_stride: int = 1,
               level_band: tuple[float, float] | None = None) -> FeatureExtractor:
    """One extractor per encoder and way of encoding: loading the encoder (and computing its silence
    context) once per run, not once per design or view."""
    return FeatureExtractor(encoder, pooling=pooling, window=window, silence_context=silence_context,
                            silence_stride=silence_stride, level_band=level_band)


@dataclasses.dataclass(frozen=True)
class Design:
    """A training recipe (what ``emovox train`` options set) and a note on it."""

    config: TrainConfig
    note: str = ""
    pooling: str = "mean_std"  # the features' pooling over time (emovox.features.pooling.POOLINGS)
    # what of each state's pooled vector the heads read: "mean_std" (all of it) or "mean" (its first half,
    # the mean over frames, without the std: a channel's and a speaker's texture may live in the std)
    inputs: str = "mean_std"
    # TRAINING_ONLY corpora (adapter names) this design also trains on, in every fold
    extra_training: tuple[str, ...] = ()
    # a prosody head (`emovox train --prosody-weight`, emovox.training.prosody) fitted on each fold's training clips
    # and mixed in with this weight wherever a profile is applied (the profile rows); 0: none
    prosody_weight: float = 0.0
    # profiles also bring a domain's spread of each feature this far toward the training corpora's
    # (`emovox train --profile-spread-power`, emovox.training.profile_spread); 0: profiles only centre
    spread_power: float = 0.0
    # the encoder's window (`emovox train --window`): 0 encodes each clip at its own length, 30 zero-pads it
    # to Whisper's 30 s window (only its real frames pooled; experiments/exp_padded_windows.py)
    window: float = 0.0
    # each clip's frames also attend to a 30 s window of silence after the clip (`emovox train --silence-context`,
    # WhisperEncoder.silence_context): the padded window's context at the clip's own length's cost
    silence_context: bool = False
    # >1: only every s-th position of that context, each counted s times (`emovox train --silence-stride`)
    silence_stride: int = 1
    # >0: the held-out corpus (its test clips and profile archives) is encoded with the context at this stride,
    # the training clips at ``silence_stride``: heads trained on one context, served on a thinner one
    serve_silence_stride: int = 0
    # (low, high) dBFS: every clip's speech level brought into this band before the encoder (`emovox train
    # --level-band`, emovox.audio.level_band), training and held-out clips alike
    level_band: tuple[float, float] | None = None
    # the held-out corpus's clips brought into this band, the training clips at ``level_band``: heads trained on
    # clips as recorded, served with a level band in front
    serve_level_band: tuple[float, float] | None = None
    # every training clip also trains as a copy brought into this band (an augmented copy, as --augment's are):
    # heads that hear banded clips and keep the loudness cue of clips as recorded
    level_copy: tuple[float, float] | None = None
    # every training clip also trains as a copy whose speech level is set to a random point of this band
    # (uniform in dBFS, seeded by the clip's content; emovox.training.level_jitter, `emovox train --level-jitter`):
    # heads that cannot read a recording's absolute level inside the band, only the clip's own contrasts
    level_jitter: tuple[float, float] | None = None
    # a linear head (`emovox train --linear-weight`, emovox.training.linear_head) fitted on each fold's training
    # clips after its heads and mixed into their answer with this weight; 0: none
    linear_weight: float = 0.0
    linear_strength: float = 3e-4  # its C (`--linear-strength`)
    # copies of every training clip heard in a simulated room the linear head is also fitted on (`emovox train
    # --linear-room-copies`, emovox.training.train.room_copies); the MLP heads never hear them
    linear_room_copies: int = 0
    # a linear head beside the profile heads (`emovox train --profile-linear-weight`), fitted on each fold's
    # training clips (each state's mean, every corpus moved to the mean of all) and mixed into the profile heads'
    # answer with this weight; 0: none
    profile_linear_weight: float = 0.0

    def extractor(self) -> FeatureExtractor:
        """The feature extractor (and so the feature cache) this design's heads are trained on; designs that
        encode alike share one (:func:`_extractor`)."""
        return _extractor(self.config.encoder, self.pooling, self.window, self.silence_context, self.silence_stride,
                          self.level_band)

    def serving_extractor(self) -> FeatureExtractor | None:
        """The extractor of the held-out corpus where it differs from training's (``serve_silence_stride``,
        ``serve_level_band``)."""
        if not self.serve_silence_stride and not self.serve_level_band:
            return None
        return _extractor(self.config.encoder, self.pooling, self.window, self.silence_context,
                          self.serve_silence_stride or self.silence_stride, self.serve_level_band or self.level_band)

    @property
    def served(self) -> dict:
        """How the held-out corpus is encoded where it differs from training (results record it)."""
        return {**({"served_silence_stride": self.serve_silence_stride} if self.serve_silence_stride else {}),
                **({"served_level_band": list(self.serve_level_band)} if self.serve_level_band else {})}

    @property
    def encoding(self) -> dict:
        """How training clips are encoded where it is not at their own length alone (fold keys and results
        record it)."""
        return {**({"window": self.window} if self.window else {}),
                **({"silence_context": True} if self.silence_context else {}),
                **({"silence_stride": self.silence_stride} if self.silence_stride > 1 else {}),
                **({"level_band": list(self.level_band)} if self.level_band else {}),
                **({"level_copy": list(self.level_copy)} if self.level_copy else {}),
                **({"level_jitter": list(self.level_jitter)} if self.level_jitter else {})}

    def __post_init__(self):
        if self.inputs not in ("mean_std", "mean"):
            raise ValueError(f"unknown inputs {self.inputs!r}")
        if set(self.extra_training) - set(TRAINING_ONLY):
            raise ValueError(f"extra_training {self.extra_training}: known {', '.join(TRAINING_ONLY)}")
        if self.inputs != "mean_std" and self.config.finetune.blocks:
            raise ValueError("a fine-tuned encoder's features are read whole (inputs mean_std)")
        if (self.silence_stride > 1 or self.serve_silence_stride) and not self.silence_context:
            raise ValueError("a silence stride needs the silence context")
        if (self.serve_silence_stride or self.serve_level_band) and self.config.finetune.blocks:
            raise ValueError("a fine-tuned encoder's features are served as tuned")


def with_linear(design: Design, ensemble: Ensemble, X_train: np.ndarray, train_utts: Sequence[Utterance]) -> Ensemble:
    """``ensemble`` with ``design``'s linear heads fitted on its training rows ``X_train`` (as ``emovox train
    --linear-weight`` and ``--profile-linear-weight`` fit them: after the heads, on the clips as the heads read
    them, and for a ``linear_room_copies`` design on their copies in rooms too), or as it is for a design without
    them."""
    if design.linear_weight:
        copies = (design_inputs(design, room_copies(train_utts, design.extractor(), design.linear_room_copies))
                  if design.linear_room_copies else None)
        ensemble.linear = fit_linear_head(X_train, [u.label for u in train_utts], [u.corpus for u in train_utts],
                                          ensemble.labels, weight=design.linear_weight, strength=design.linear_strength,
                                          copies=copies)
    if design.profile_linear_weight:
        if ensemble.profile_heads is None:
            raise ValueError("a profile linear head needs profile heads")
        ensemble.profile_heads.linear = profile_linear_head(X_train, train_utts, ensemble.labels,
                                                            weight=design.profile_linear_weight,
                                                            strength=design.linear_strength)
    return ensemble


def training_copies_of(design: Design, utts: Sequence[Utterance], augmented: np.ndarray | None) -> np.ndarray | None:
    """The copies every training clip adds to the heads' rows (``(copies, n, ...)`` as the heads read them):
    ``--augment``'s and, for a ``level_copy`` design, the clip brought into that band, for a ``level_jitter`` design
    the clip at a level drawn inside that band (each encoded as the design's training clips otherwise are)."""
    extra = []
    if design.level_copy:
        extra.append(load_features(utts, dataclasses.replace(design, level_band=design.level_copy).extractor()))
    if design.level_jitter:
        extra.append(jittered_features(utts, design.extractor(), design.level_jitter))
    if extra:
        augmented = np.stack(extra) if augmented is None else np.concatenate([augmented, np.stack(extra)])
    return design_inputs(design, augmented)


def design_inputs(design: Design, X: np.ndarray | None) -> np.ndarray | None:
    """``X`` (``(..., n_states, 2 d)`` mean-and-std features, or copies of them) as ``design``'s heads read it.

    Examples:
        >>> design_inputs(Design(TrainConfig(), inputs="mean"), np.arange(4.0).reshape(1, 1, 4)).tolist()
        [[[0.0, 1.0]]]
    """
    if X is None or design.inputs == "mean_std":
        return X
    return X[..., : X.shape[-1] // 2]  # "mean": the first half of each state's vector


FT_CAP = 2000  # clips the blocks are tuned on per held-out corpus (each corpus keeps its share); heads use all
FT = {"max_train_clips": FT_CAP, "max_val_clips": 800, "epochs": 3, "patience": 1}  # what fits 2 cores


def _config(layers, hidden=256, ensemble=5, **kw) -> TrainConfig:
    fit_kw = {k: kw.pop(k) for k in list(kw) if k in {f.name for f in dataclasses.fields(FitConfig)}}
    return TrainConfig(ensemble=ensemble, fit=FitConfig(layers=layers, hidden=hidden, **fit_kw), **kw)


DESIGNS: dict[str, Design] = {
    "state4": Design(_config((4,)), "v3 recipe: encoder state 4 only, 5 heads of 256"),
    "all": Design(_config(None), "every encoder state, learned weights, 5 heads of 256"),
    "all-balanced": Design(_config(None, balance_corpora=True), "all states; every training corpus weighs the same"),
    "all-centred": Design(_config(None, centre_corpora="centred"),
                          "all states; each training corpus centred on the mean of all (what a profile does at test time)"),
    "all-centred-cb": Design(_config(None, centre_corpora="balanced"),
                             "all states; each training corpus centred on its class-balanced mean (profiles: balance 1)"),
    "all-mixed": Design(_config(None, centre_corpora="both"),
                        "all states; every clip twice, raw and centred with its corpus (for single clips and profiles)"),
    "all-mixed-dims": Design(_config(None, centre_corpora="both", dimensions_weight=0.5),
                             "all-mixed with the dimensional output: arousal and valence trained with the emotions "
                             "(weight 0.5, targets the circumplex points of the labels)"),
    "all-mixed-dims-w0.1": Design(_config(None, centre_corpora="both", dimensions_weight=0.1),
                                  "all-mixed-dims with weight 0.1"),
    "all-mixed-dims-probe": Design(_config(None, centre_corpora="both", dimensions_weight=0.5, dimensions_shared=False),
                                   "all-mixed with the dimensional output trained on the hidden layer as the emotion "
                                   "loss shapes it (no gradient into the shared layers: emotions exactly all-mixed's)"),
    "all-mixed-balanced": Design(_config(None, centre_corpora="both", balance_corpora=True),
                                 "all-mixed with every training corpus weighing the same (EmoSpeech is 39 % of the clips)"),
    "all-mixed-aug1": Design(_config(None, centre_corpora="both", augment=1),
                             "all-mixed with one augmented copy of every clip (gain, pitch, tempo, white or babble "
                             "noise at 0-20 dB), raw and centred with its corpus"),
    "all-mixed-level": Design(_config(None, centre_corpora="both"),
                              "all-mixed over level-weighted pooling (each frame counted by its level against the "
                              "clip's loud frames: the main talker, as noise-robust pools)", pooling="level_mean_std"),
    "all-mixed-level-room": Design(_config(None, centre_corpora="both", augment=1, reverb=0.5),
                                   "all-mixed-level with one augmented copy of every clip (gain, pitch, tempo, a "
                                   "simulated room with probability 0.5, white or babble noise at 0-20 dB), raw and "
                                   "centred with its corpus", pooling="level_mean_std"),
    **{f"all-mixed-level-room-w{w:g}": Design(_config(None, centre_corpora="both", augment=1, reverb=0.5, copy_weight=w),
                                              f"all-mixed-level-room with the copies weighing {w:g} of a clean clip in "
                                              "the heads' loss", pooling="level_mean_std") for w in (0.1, 0.2, 0.3, 0.5)},
    **{f"all-mixed-level-d{p:g}": Design(_config(None, centre_corpora="both", dropout=p),
                                         f"all-mixed-level with dropout {p:g} in each head (0.3 in v5): stronger "
                                         "regularisation against learning the training corpora's voices",
                                         pooling="level_mean_std") for p in (0.5, 0.6, 0.7)},
    # v6 with copies heard in rooms and nothing else (no noise): the room recipe above fixed rooms but
    # its noise and rooms together cost held-out corpora (TESS, clean studio speech, most)
    "all-mixed-level-d0.5-rooms": Design(_config(None, centre_corpora="both", dropout=0.5, augment=1, reverb=1.0,
                                                 noise=0.0),
                                         "v6 (all-mixed-level-d0.5) with one copy of every clip heard in a simulated "
                                         "room (RT60 0.2-0.8 s, 0.3-2.5 m; level, pitch and tempo as the recipe, no "
                                         "noise), raw and centred with its corpus", pooling="level_mean_std"),
    # rooms-only copies with voice swapping: the two levers that fixed rooms in-domain and that raised the
    # single-clip mean with every seed set, together (heads seeded 0-4 and 5-9)
    **{f"all-mixed-level-d0.5-rooms-vs1{'' if seed == 0 else f'-s{seed}'}": Design(
        dataclasses.replace(_config(None, centre_corpora="both", dropout=0.5, augment=1, reverb=1.0, noise=0.0,
                                    voice_swap=1.0), seed=seed),
        f"all-mixed-level-d0.5-rooms with voice swapping at P 1 (all-mixed-level-d0.5-vs1), heads seeded "
        f"{seed}-{seed + 4}", pooling="level_mean_std") for seed in (0, 5)},
    # regularisers aimed at speech never heard, on v6's recipe
    "all-mixed-level-d0.5-mix0.4": Design(_config(None, centre_corpora="both", dropout=0.5, mixup=0.4),
                                          "v6 with mixup (Beta(0.4, 0.4)): each batch mixed with a shuffled copy of "
                                          "itself, mostly clips of two corpora", pooling="level_mean_std"),
    **{f"all-mixed-level-d0.5-adv{w:g}": Design(_config(None, centre_corpora="both", dropout=0.5, adversary=w),
                                                f"v6 with a corpus adversary (weight {w:g}) on the hidden layer through "
                                                "a gradient reversal: the layer learns to hide the clip's corpus",
                                                pooling="level_mean_std") for w in (0.3, 1.0)},
    # head shape and weight decay on v6's recipe (v6: 256 hidden units, AdamW weight decay 0.01)
    "all-mixed-level-d0.5-h64": Design(_config(None, hidden=64, centre_corpora="both", dropout=0.5),
                                       "v6 with 64 hidden units in each head instead of 256: less room to learn the "
                                       "training corpora's voices", pooling="level_mean_std"),
    "all-mixed-level-d0.5-h64-s5": Design(dataclasses.replace(_config(None, hidden=64, centre_corpora="both",
                                                                    dropout=0.5), seed=5),
                                          "all-mixed-level-d0.5-h64 with heads seeded 5-9", pooling="level_mean_std"),
    "all-mixed-level-d0.5-wd0.1": Design(_config(None, centre_corpora="both", dropout=0.5, weight_decay=0.1),
                                         "v6 with AdamW weight decay 0.1 instead of 0.01", pooling="level_mean_std"),
    "all-mixed-level-d0.5-wd0.1-s5": Design(dataclasses.replace(_config(None, centre_corpora="both", dropout=0.5,
                                                                      weight_decay=0.1), seed=5),
                                            "all-mixed-level-d0.5-wd0.1 with heads seeded 5-9", pooling="level_mean_std"),
    # voice swapping (emovox.training.voices): rows moved into other training speakers' voices while
    # heads train, so that a new speaker's (and language's) offset matters less to a single clip
    **{f"all-mixed-level-d0.5-vs{p:g}": Design(_config(None, centre_corpora="both", dropout=0.5, voice_swap=p),
                                               f"v6 with each training row moved, with probability {p:g} in each "
                                               "batch, from its speaker's class-balanced mean to another training "
                                               "speaker's", pooling="level_mean_std") for p in (0.5, 1.0)},
    **{f"all-mixed-level-d0.5-vs{p:g}-s{seed}": Design(dataclasses.replace(_config(None, centre_corpora="both",
                                                                                 dropout=0.5, voice_swap=p), seed=seed),
                                                       f"all-mixed-level-d0.5-vs{p:g} with heads seeded {seed}-{seed + 4}",
                                                       pooling="level_mean_std")
       for p, seed in ((0.5, 5), (1.0, 5), (1.0, 10))},
    # drawn voices: rows moved into new voices from a Gaussian of the training speakers' voices (their
    # spread times s) instead of into another training speaker's: a user's voice is never among them
    **{f"all-mixed-level-d0.5-vs1-spread{s:g}{'' if seed == 0 else f'-s{seed}'}": Design(
        dataclasses.replace(_config(None, centre_corpora="both", dropout=0.5, voice_swap=1.0, voice_spread=s),
                            seed=seed),
        f"all-mixed-level-d0.5-vs1 with each row moved into a new voice drawn from a Gaussian with the training "
        f"voices' mean and {s:g} times their spread, heads seeded {seed}-{seed + 4}", pooling="level_mean_std")
       for s, seed in ((1.0, 0), (1.5, 0), (1.0, 5), (1.5, 5), (2.0, 0))},
    # the heads read each state's mean over frames only (no std): v6's recipe otherwise
    **{f"all-mixed-level-d0.5-mean{'' if seed == 0 else f'-s{seed}'}": Design(
        dataclasses.replace(_config(None, centre_corpora="both", dropout=0.5), seed=seed),
        "v6 (all-mixed-level-d0.5) reading each state's level-weighted mean over frames only, not its std"
        + ("" if seed == 0 else f", heads seeded {seed}-{seed + 4}"), pooling="level_mean_std", inputs="mean")
       for seed in (0, 5)},
    # v6.1 with profile heads: single clips as v6.1, a profile's audio read by means-only heads
    # (all-mixed-level-d0.5-mean) trained beside it; one model, the --profile-heads recipe
    **{f"all-mixed-level-d0.5-ph{'' if seed == 0 else f'-s{seed}'}": Design(
        dataclasses.replace(_config(None, centre_corpora="both", dropout=0.5), seed=seed, profile_heads=True),
        "v6.1 (all-mixed-level-d0.5) with profile heads (--profile-heads): single clips by the whole-vector heads, "
        "profile-centred audio by heads reading each state's mean only" + ("" if seed == 0 else
                                                                           f", heads seeded {seed}-{seed + 4}"),
        pooling="level_mean_std") for seed in (0, 5)},
    # ten heads (seeds 0-9: the two seed sets above, one ensemble with its logits averaged)
    "all-mixed-level-d0.5-ph-e10": Design(
        dataclasses.replace(_config(None, ensemble=10, centre_corpora="both", dropout=0.5), profile_heads=True),
        "all-mixed-level-d0.5-ph with ten heads (--ensemble 10, seeds 0-9) instead of five", pooling="level_mean_std"),
    "all-mixed-level-d0.5-ph-e10-pr0.1": Design(
        dataclasses.replace(_config(None, ensemble=10, centre_corpora="both", dropout=0.5), profile_heads=True),
        "v6.3 (all-mixed-level-d0.5-ph-e10) with a prosody head (--prosody-weight 0.1: eGeMAPS, each corpus "
        "standardised by its own statistics) mixed in under a profile; single clips unchanged",
        pooling="level_mean_std", prosody_weight=0.1),
    "all-mixed-level-d0.5-ph-e10-sp0.5": Design(
        dataclasses.replace(_config(None, ensemble=10, centre_corpora="both", dropout=0.5), profile_heads=True),
        "v6.3's heads; profiles also move the domain's spread of each feature half way (power 0.5) toward the "
        "training corpora's within-corpus spread (v6.5's profiles)", pooling="level_mean_std", spread_power=0.5),
    "all-mixed-level-d0.5-ph-e10-sp0.5-w30": Design(
        dataclasses.replace(_config(None, ensemble=10, centre_corpora="both", dropout=0.5), profile_heads=True),
        "v6.5's recipe on clips zero-padded to Whisper's 30 s window (--window 30; experiments/exp_padded_windows.py: "
        "+3.5 and +3.9 on single clips of six held-out corpora, two subsamples), ~25x the encoder time of a 1 s clip",
        pooling="level_mean_std", spread_power=0.5, window=30.0),
    "all-mixed-level-d0.5-ph-e10-sp0.5-sc": Design(
        dataclasses.replace(_config(None, ensemble=10, centre_corpora="both", dropout=0.5), profile_heads=True),
        "v6.5's recipe, each clip's frames also attending to a 30 s window of silence after the clip "
        "(--silence-context; experiments/exp_padded_windows.py): Whisper's padded context at the clip's own length's cost",
        pooling="level_mean_std", spread_power=0.5, silence_context=True),
    **{f"all-mixed-level-d0.5-ph-e10-sp0.5-sc-serve{stride}": Design(
        dataclasses.replace(_config(None, ensemble=10, centre_corpora="both", dropout=0.5), profile_heads=True),
        f"v7's heads (trained on the whole silence context) served with the context thinned to every {stride}th "
        f"position, each counted {stride} times (as v7's int8 graph does at 8): the held-out corpus encoded so, the "
        "training clips as v7's were", pooling="level_mean_std", spread_power=0.5, silence_context=True,
        serve_silence_stride=stride) for stride in (8, 16)},
    "all-mixed-level-d0.5-ph-e10-sp0.5-sc-serve8-band": Design(
        dataclasses.replace(_config(None, ensemble=10, centre_corpora="both", dropout=0.5), profile_heads=True),
        "v7.1 (v7's heads served at stride 8) with the level band -26 .. -14 dBFS in front: the held-out corpus's "
        "clips brought into it and encoded at stride 8, the training clips as v7's were", pooling="level_mean_std",
        spread_power=0.5, silence_context=True, serve_silence_stride=8, serve_level_band=(-26.0, -14.0)),
    **{f"all-mixed-level-d0.5-ph-e10-sp0.5-sc-serve8-band{-low}": Design(
        dataclasses.replace(_config(None, ensemble=10, centre_corpora="both", dropout=0.5), profile_heads=True),
        f"v7.1 with a wide level band {low} .. -10 dBFS in front: only clips quieter (or louder) than the training "
        "corpora mostly are move (experiments/exp_level_gain.py), the held-out corpus encoded so at stride 8, the "
        "training clips as v7's were", pooling="level_mean_std", spread_power=0.5, silence_context=True,
        serve_silence_stride=8, serve_level_band=(float(low), -10.0)) for low in (-32, -38)},
    "all-mixed-level-d0.5-ph-e10-sp0.5-sc8": Design(
        dataclasses.replace(_config(None, ensemble=10, centre_corpora="both", dropout=0.5), profile_heads=True),
        "v7's recipe trained and served on the silence context thinned to every 8th position (--silence-stride 8)",
        pooling="level_mean_std", spread_power=0.5, silence_context=True, silence_stride=8),
    "all-mixed-level-d0.5-ph-e10-sp0.5-sc8-band": Design(
        dataclasses.replace(_config(None, ensemble=10, centre_corpora="both", dropout=0.5), profile_heads=True),
        "v7.1's recipe trained at stride 8 (as -sc8) on clips whose speech level is brought into -26 .. -14 dBFS "
        "(--level-band -26:-14; experiments/exp_loudness.py: +0.7 and +1.8 on two subsamples), held-out clips alike",
        pooling="level_mean_std", spread_power=0.5, silence_context=True, silence_stride=8, level_band=(-26.0, -14.0)),
    "all-mixed-level-d0.5-ph-e10-sp0.5-sc8-serveband": Design(
        dataclasses.replace(_config(None, ensemble=10, centre_corpora="both", dropout=0.5), profile_heads=True),
        "-sc8's heads (trained on clips as recorded) served with the level band -26 .. -14 dBFS in front: the held-out "
        "corpus's clips brought into it, the training clips as -sc8's were", pooling="level_mean_std", spread_power=0.5,
        silence_context=True, silence_stride=8, serve_level_band=(-26.0, -14.0)),
    "all-mixed-level-d0.5-ph-e10-sp0.5-sc8-serveband32": Design(
        dataclasses.replace(_config(None, ensemble=10, centre_corpora="both", dropout=0.5), profile_heads=True),
        "-sc8's heads (trained at stride 8 on clips as recorded) served with v7.2's wide band -32 .. -10 dBFS: "
        "whether heads retrained on what serves would gain beside the band", pooling="level_mean_std",
        spread_power=0.5, silence_context=True, silence_stride=8, serve_level_band=(-32.0, -10.0)),
    "all-mixed-level-d0.5-ph-e10-sp0.5-sc8-levelcopy": Design(
        dataclasses.replace(_config(None, ensemble=10, centre_corpora="both", dropout=0.5), profile_heads=True),
        "-sc8's recipe with every training clip also trained as a copy brought into -26 .. -14 dBFS, served with "
        "that band: heads that hear what is served (the band alone lost RAVDESS in-domain, trained on banded clips "
        "alone it lost the loudness cue)", pooling="level_mean_std", spread_power=0.5, silence_context=True,
        silence_stride=8, level_copy=(-26.0, -14.0), serve_level_band=(-26.0, -14.0)),
    "all-mixed-level-d0.5-ph-e10-sp0.5-sc8-jitter32": Design(
        dataclasses.replace(_config(None, ensemble=10, centre_corpora="both", dropout=0.5), profile_heads=True),
        "-sc8-serveband32 (heads at stride 8, served with v7.2's band -32 .. -10 dBFS) with every training clip also "
        "trained as a copy at a random speech level inside that band: heads that hear a corpus at any level the "
        "band serves (v7.2 lost 3.3 points to clips turned down 10 dB, inside the band)", pooling="level_mean_std",
        spread_power=0.5, silence_context=True, silence_stride=8, level_jitter=(-32.0, -10.0),
        serve_level_band=(-32.0, -10.0)),
    "all-mixed-level-d0.5-ph-e10-sp0.5-sc-serve8-band32-lin0.3": Design(
        dataclasses.replace(_config(None, ensemble=10, centre_corpora="both", dropout=0.5), profile_heads=True),
        "v7.2 (v7's heads served at stride 8 behind the band -32 .. -10 dBFS) with a linear head (every state side by "
        "side, C 3e-4, fitted on each fold's training clips as v7's heads read them) mixed in with weight 0.3 "
        "(experiments/exp_linear_heads.py)", pooling="level_mean_std", spread_power=0.5, silence_context=True,
        serve_silence_stride=8, serve_level_band=(-32.0, -10.0), linear_weight=0.3),
    "all-mixed-level-d0.5-ph-e10-sp0.5-sc-serve8-band32-lin0.3-plin0.3": Design(
        dataclasses.replace(_config(None, ensemble=10, centre_corpora="both", dropout=0.5), profile_heads=True),
        "v7.3 with a second linear head beside the profile heads (each state's mean, C 3e-4, fitted on each fold's "
        "training corpora moved to the mean of all) mixed into their answer with weight 0.3 where a profile is "
        "applied (experiments/exp_profile_linear.py); single clips as v7.3", pooling="level_mean_std",
        spread_power=0.5, silence_context=True, serve_silence_stride=8, serve_level_band=(-32.0, -10.0),
        linear_weight=0.3, profile_linear_weight=0.3),
    "all-mixed-level-d0.5-ph-e10-sp0.5-sc-serve8-band32-lin0.5rooms-plin0.3": Design(
        dataclasses.replace(_config(None, ensemble=10, centre_corpora="both", dropout=0.5), profile_heads=True),
        "v7.5: v7.4 whose single-clip linear head is also fitted on one copy of every training clip heard in a "
        "simulated room (the MLP heads never hear them) and mixed in with weight 0.5 "
        "(experiments/exp_room_linear.py)", pooling="level_mean_std", spread_power=0.5, silence_context=True,
        serve_silence_stride=8, serve_level_band=(-32.0, -10.0), linear_weight=0.5, linear_room_copies=1,
        profile_linear_weight=0.3),
    "tiny.en-all-mixed-level-d0.5-e10-sp0.5-sc8-serveband32-lin0.3": Design(
        dataclasses.replace(_config(None, ensemble=10, centre_corpora="both", dropout=0.5), encoder="whisper-tiny.en"),
        "v7.4's single-clip recipe on the English-only Whisper tiny.en encoder (4 blocks of 384; trained and served at "
        "stride 8, the band -32 .. -10 dBFS in front when served; no profile heads: profiles centre what its heads "
        "read): a second encoder whose errors may differ from whisper-base's (experiments/exp_encoder_ensemble.py)",
        pooling="level_mean_std", spread_power=0.5, silence_context=True, silence_stride=8,
        serve_level_band=(-32.0, -10.0), linear_weight=0.3),
    "all-mixed-level-d0.5-ph-e10-sp0.5-pr0.1": Design(
        dataclasses.replace(_config(None, ensemble=10, centre_corpora="both", dropout=0.5), profile_heads=True),
        "v6.5 with its prosody head read (`emovox profile --prosody`): spread power 0.5, prosody weight 0.1",
        pooling="level_mean_std", prosody_weight=0.1, spread_power=0.5),
    "all-mixed-level-d0.5-ph-e10-baved": Design(
        dataclasses.replace(_config(None, ensemble=10, centre_corpora="both", dropout=0.5), profile_heads=True),
        "v6.3 (all-mixed-level-d0.5-ph-e10) also trained on BAVED (Arabic, 60 speakers) with every arousal level: "
        "level 0 as sad, 1 neutral, 2 the candidate set happy|angry|fear|surprise", pooling="level_mean_std",
        extra_training=("baved-arousal",)),
    "all-mixed-level-d0.5-ph-e10-lbc": Design(
        dataclasses.replace(_config(None, ensemble=10, centre_corpora="both", dropout=0.5), profile_heads=True,
                            balance_labels_per_corpus=True),
        "v6.3 (all-mixed-level-d0.5-ph-e10) with every label of a corpus weighing the same within it "
        "(--balance-labels-per-corpus)", pooling="level_mean_std"),
    # nuisance attribute projection (FitConfig.nuisance_dims): the k directions of largest spread between the
    # training speakers' class-balanced means projected out of each head's input, on v6.3's recipe
    **{f"all-mixed-level-d0.5-ph-e{n}-nap{k}": Design(
        dataclasses.replace(_config(None, ensemble=n, centre_corpora="both", dropout=0.5, nuisance_dims=k),
                            profile_heads=True),
        f"all-mixed-level-d0.5-ph{'-e10' if n == 10 else ''} with the {k} directions of largest spread between the "
        "training speakers' class-balanced means projected out of every head's input", pooling="level_mean_std")
       for n in (5, 10) for k in (4, 8, 16, 32, 64)},
    # v6.2's recipe (five heads) without the top encoder state(s): the upper states carry the training
    # corpora's languages (their learned weights favour them), so a head may generalise better without them
    **{f"all-mixed-level-d0.5-ph-l0-{top}": Design(
        dataclasses.replace(_config(tuple(range(top + 1)), centre_corpora="both", dropout=0.5), profile_heads=True),
        f"all-mixed-level-d0.5-ph reading encoder states 0-{top} only (--layers {','.join(map(str, range(top + 1)))})",
        pooling="level_mean_std") for top in (4, 5)},
    # v6.3 with its profile heads reading states 0-5 (all-mixed-level-d0.5-ph-l0-5's profile rows were higher on
    # all six held-out corpora than v6.2's) while its single-clip heads keep all seven (their rows were lower)
    "all-mixed-level-d0.5-ph-e10-pl0-5": Design(
        dataclasses.replace(_config(None, ensemble=10, centre_corpora="both", dropout=0.5), profile_heads=True,
                            profile_layers=tuple(range(6))),
        "v6.3 (all-mixed-level-d0.5-ph-e10) with profile heads reading encoder states 0-5 only (--profile-layers "
        "0,1,2,3,4,5); the single-clip heads read all seven as v6.3's", pooling="level_mean_std"),
    # v6.2's recipe with each training speaker's weight tempered (--balance-speakers 0.5: a speaker's total grows as
    # the square root of its clips): TESS's two voices and one EmoSpeech recorder hold a third of the clips
    **{f"all-mixed-level-d0.5-ph-sb0.5{'' if seed == 0 else f'-s{seed}'}": Design(
        dataclasses.replace(_config(None, centre_corpora="both", dropout=0.5), seed=seed, profile_heads=True,
                            balance_speakers=0.5),
        "v6.2 (all-mixed-level-d0.5-ph) with each speaker's clips weighted so that its total grows as the square root "
        "of its clip count (--balance-speakers 0.5)" + ("" if seed == 0 else f", heads seeded {seed}-{seed + 4}"),
        pooling="level_mean_std") for seed in (0, 5)},
    "all-mixed-level-d0.5-valcorpus": Design(_config(None, centre_corpora="both", dropout=0.5, validation="corpus"),
                                             "v6 with each head validated on one whole training corpus (head k: the "
                                             "k-th, cycling) instead of held-out speakers of every corpus: the epoch "
                                             "that does best on a corpus never heard", pooling="level_mean_std"),
    # ten heads (seeds 0-9: v6's five and the second seed set's five): the two five-head sets differed
    # by up to 4.8 points on a held-out corpus; measured: each corpus within 0.7 of the two sets' mean
    "all-mixed-level-d0.5-e10": Design(_config(None, ensemble=10, centre_corpora="both", dropout=0.5),
                                       "v6 (all-mixed-level-d0.5) with 10 heads instead of 5 (seeds 0-9)",
                                       pooling="level_mean_std"),
    # a second seed set (heads seeded 5-9 instead of 0-4): how much of a design's margin is the seeds'
    "all-mixed-level-s5": Design(dataclasses.replace(_config(None, centre_corpora="both"), seed=5),
                                 "v5 (all-mixed-level) with heads seeded 5-9", pooling="level_mean_std"),
    **{f"all-mixed-level-d0.5-s{seed}": Design(dataclasses.replace(_config(None, centre_corpora="both", dropout=0.5),
                                                                  seed=seed),
                                               f"v6 (all-mixed-level-d0.5) with heads seeded {seed}-{seed + 4}",
                                               pooling="level_mean_std") for seed in (5, 10)},
    "all-mixed-level-d0.5-adv1-s5": Design(dataclasses.replace(_config(None, centre_corpora="both", dropout=0.5,
                                                                     adversary=1.0), seed=5),
                                           "all-mixed-level-d0.5-adv1 with heads seeded 5-9", pooling="level_mean_std"),
    "all-mixed-level-dims-probe": Design(_config(None, centre_corpora="both", dimensions_weight=0.5,
                                                 dimensions_shared=False),
                                         "all-mixed-level with the dimensional output trained on the hidden layer "
                                         "(no gradient into the shared layers)", pooling="level_mean_std"),
    "all-mixed-level-dims-w0.1": Design(_config(None, centre_corpora="both", dimensions_weight=0.1),
                                        "all-mixed-level with the dimensional output shared at weight 0.1",
                                        pooling="level_mean_std"),
    "all-mixed-ft1": Design(_config(None, centre_corpora="both",
                                    finetune=FinetuneConfig(blocks=1, rank=8, **FT)),
                            "all-mixed on an encoder whose top block is tuned (low-rank adapters, rank 8, on 2000 "
                            "training clips, 3 epochs) with a head, before the heads train on the tuned features"),
    "all-mixed-ft1-full": Design(_config(None, centre_corpora="both",
                                         finetune=FinetuneConfig(blocks=1, rank=0, lr=2e-5, **FT)),
                                 "all-mixed on an encoder whose top block is fully tuned (lr 2e-5, 2000 clips, 3 epochs)"),
    "all-mixed-ft2": Design(_config(None, centre_corpora="both",
                                    finetune=FinetuneConfig(blocks=2, rank=8, **FT)),
                            "all-mixed on an encoder whose top two blocks are tuned (adapters, rank 8, 2000 clips, 3 epochs)"),
    "all-mixed-level-d0.5-ft1": Design(_config(None, centre_corpora="both", dropout=0.5,
                                               finetune=FinetuneConfig(blocks=1, rank=8, **FT)),
                                       "v6 (all-mixed-level-d0.5) on an encoder whose top block is tuned (low-rank "
                                       "adapters, rank 8, on 2000 training clips, 3 epochs) with a head, before the "
                                       "heads train on the tuned features", pooling="level_mean_std"),
    "all-mixed-level-d0.5-ft1-full": Design(_config(None, centre_corpora="both", dropout=0.5,
                                                    finetune=FinetuneConfig(blocks=1, rank=0, lr=2e-5, **FT)),
                                            "v6 on an encoder whose top block is fully tuned (every weight, lr 2e-5, "
                                            "2000 clips, 3 epochs)", pooling="level_mean_std"),
    "all-mixed-level-d0.5-ft1-s5": Design(dataclasses.replace(_config(None, centre_corpora="both", dropout=0.5,
                                                                      finetune=FinetuneConfig(blocks=1, rank=8, **FT)),
                                                              seed=5),
                                          "all-mixed-level-d0.5-ft1 with heads, tuning subset and adapters seeded 5",
                                          pooling="level_mean_std"),
    "all-mixed-level-d0.5-ft1-all": Design(_config(None, centre_corpora="both", dropout=0.5,
                                                   finetune=FinetuneConfig(blocks=1, rank=8,
                                                                           **{**FT, "max_train_clips": 0})),
                                           "all-mixed-level-d0.5-ft1 tuned on every training clip (11-13k) instead "
                                           "of 2000", pooling="level_mean_std"),
    "all-mixed-level-d0.5-ft2": Design(_config(None, centre_corpora="both", dropout=0.5,
                                               finetune=FinetuneConfig(blocks=2, rank=8, **FT)),
                                       "v6 on an encoder whose top two blocks are tuned (adapters, rank 8, 2000 clips, "
                                       "3 epochs)", pooling="level_mean_std"),
    # the shipped noise-robust recipe (RAVDESS 6-fold only, to compare with the default and a profile)
    "noise-robust": Design(_config(None, hidden=128, ensemble=3, augment=2, reverb=0.5),
                           "the noise-robust v2 recipe: all states, 3 heads of 128, two noisy copies of every clip "
                           "(a room in half of them)", pooling="level_mean_std"),
    "all-h128x3": Design(_config(None, hidden=128, ensemble=3, label_smoothing=0.1),
                         "the old default-adaptive recipe: all states, 3 heads of 128, smoothing 0.1"),
}


def four_class_count(utts: Sequence[Utterance], corpus: str) -> int:
    """How many of angry/happy/sad/neutral (calm counting as neutral) ``corpus`` has."""
    return len({collapse(u.label, "4class") for u in utts if u.corpus == corpus} - {None})


def load_corpora(shared: Path, extra: Path | None, names: Sequence[str] | None, *,
                 min_classes: int = 2, training_only: Sequence[str] = ()) -> list[Utterance]:
    """Every corpus found, less those with fewer than ``min_classes`` of the four classes: a corpus
    of one emotion (BAVED's neutral level) or of none of them (the BanglaSER extension's disgust
    and fear) teaches its language and channel as an emotion (with BAVED in training, TurEV-DB's
    single words all came out neutral: UA 0.447 -> 0.269). ``training_only``: :data:`TRAINING_ONLY`
    adapters to load as well (whole, for designs that train on them)."""
    utts = []
    for name in (*SHARED, *EXTRA):
        root = (shared if name in SHARED else extra) / name if (extra or name in SHARED) else None
        if (names and name not in names) or root is None or not root.is_dir():
            continue
        found = scan_corpus(*parse_spec(f"{name}:{root}"))
        if four_class_count(found, name) >= min_classes:
            utts += found
        else:
            print(f"{name}: left out (fewer than {min_classes} of angry/happy/sad/neutral)", flush=True)
    for name in training_only:
        if extra is None or not (extra / TRAINING_ONLY[name]).is_dir():
            raise SystemExit(f"{name}: needs {TRAINING_ONLY[name]}/ under --extra (extract-more.sh)")
        found = scan_corpus(name, extra / TRAINING_ONLY[name])
        if {u.corpus for u in found} & {u.corpus for u in utts}:
            raise SystemExit(f"{name}: its corpus is loaded already (leave it out of --only)")
        utts += found
    return utts


def four_class_decision(ensemble: Ensemble, probs: np.ndarray) -> list[str]:
    """The label ``--labels angry,happy,sad,neutral`` gives each row (the shipped decision,
    :func:`emovox.prediction.decision.restrict`: calm merged into neutral)."""
    return [top_label(restrict(dict(zip(ensemble.labels, map(float, p), strict=True)), FOUR_CLASS)) for p in probs]


def ua(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """Unweighted accuracy over the classes ``truth`` has (emovox.evaluation.metrics' UA)."""
    return classification_metrics(truth, predicted, labels=FOUR_CLASS)["ua"]


def held_out_splits(utts: list[Utterance], held_out: Sequence[str] = ()):
    """Leave-one-corpus-out splits for the experiments: for each corpus in turn (or only ``held_out``,
    in that order), ``(corpus, test mask, training utterances, indices of its test clips of the four
    classes, their 4-class labels)``.

    Examples:
        >>> rows = (("a", 1, "sad"), ("b", 1, "fear"), ("b", 2, "calm"))
        >>> u = [Utterance(f"{c}{i}.wav", label, label, "s", c) for c, i, label in rows]
        >>> [(str(held), idx.tolist(), [str(t) for t in truth]) for held, _, _, idx, truth in held_out_splits(u)]
        [('a', [0], ['sad']), ('b', [2], ['neutral'])]
    """
    corpora = np.array([u.corpus for u in utts])
    four = np.array([collapse(u.label, "4class") or "" for u in utts])
    for held in held_out or dict.fromkeys(corpora):
        test = corpora == held
        idx = np.flatnonzero(test & (four != ""))
        yield held, test, [u for u, t in zip(utts, test, strict=True) if not t], idx, list(four[idx])


def halves(truth: Sequence[str | None], seed: int = 0, major: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices into a held-out corpus's clips ``truth`` (each clip's 4-class label, ``None`` for its
    other emotions): a random half of every clip (the profile: an archive holds every emotion), the
    clips of the four classes in the other half (the test half), and a skewed subset of the profile
    half (:data:`SKEW` of it one emotion: ``major``, else neutral where the corpus has it; the rest
    any other clips).

    Examples:
        >>> profile, test, skewed = halves(["sad", None, "neutral", "angry", None, "neutral"] * 10)
        >>> len(profile), len(test) <= 30, set(skewed) <= set(profile)
        (30, True, True)
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(truth))
    profile, rest = np.sort(order[: len(order) // 2]), np.sort(order[len(order) // 2 :])
    labels = np.array([t or "" for t in truth])
    test = rest[labels[rest] != ""]
    present = [label for label in FOUR_CLASS if label in set(labels[profile])]
    if major is None:
        major = "neutral" if "neutral" in present else max(present, key=lambda label: (labels[profile] == label).sum())
    elif major not in present:
        raise ValueError(f"the profile half has no {major!r} clips")
    major_rows = profile[labels[profile] == major]
    minor_rows = profile[labels[profile] != major]
    n_minor = min(len(minor_rows), int(len(major_rows) * (1 - SKEW) / SKEW))
    skewed = np.sort(np.concatenate([major_rows, rng.choice(minor_rows, n_minor, replace=False)]))
    return profile, test, skewed


def tuned_split(design: Design, X: np.ndarray, train_utts: list[Utterance], test: np.ndarray,
                extractor: FeatureExtractor | None, frames: list) -> tuple[np.ndarray, FinetuneResult]:
    """Every clip's features from an encoder whose top blocks ``design`` tuned on the training
    clips only (``~test``; ``train_utts`` are they), and the tuning's result. ``frames``: every
    clip's frames below the tuned blocks."""
    X_train, result = tune_encoder(train_utts, X[~test], extractor, design.config,
                                   frames=[frames[i] for i in np.flatnonzero(~test)])
    X_split = np.array(X, copy=True)
    X_split[~test] = X_train
    X_split[test] = tuned_features(result.top, [frames[i] for i in np.flatnonzero(test)], X[test])
    return X_split, result


def fold_key(design_name: str, config: TrainConfig, train_utts: Sequence[Utterance],
             encoding: dict | None = None) -> dict:
    """What a kept fold model records in ``fold.json`` (and the experiments' fold cache,
    ``experiments/fold_models.py``, checks): the design, its config and its training clips (their count
    and a hash of their paths), and how clips were encoded where it is not at their own length alone
    (:attr:`Design.encoding`)."""
    paths = hashlib.sha256("\n".join(str(u.path) for u in train_utts).encode()).hexdigest()
    return {"design": design_name, "config": json.loads(json.dumps(dataclasses.asdict(config), default=str)),
            "n_train": len(train_utts), "train_paths_sha256": paths, **(encoding or {})}


def loco(design: Design, X: np.ndarray, utts: list[Utterance], copies: np.ndarray | None = None,
         held_out: Sequence[str] = (), *, extractor: FeatureExtractor | None = None, frames=None,
         keep: Path | None = None, reuse: Path | None = None, prosody: np.ndarray | None = None,
         X_serve: np.ndarray | None = None, profile_seeds: Sequence[int] = (0,)) -> dict:
    """Leave-one-corpus-out rows; ``copies``: the design's augmented copies of every clip
    (babble from the clip's own corpus, so the held-out corpus is never heard, not even as noise);
    ``held_out``: hold out only these corpora (default: each in turn); training still uses all others.
    A design that fine-tunes the encoder tunes it on the training corpora only (``frames``: every
    clip's frames below the tuned blocks), then both sides use the tuned encoder's features.
    ``keep``: write each fold's model to ``keep/<held-out corpus>/`` (an emovox model directory, e.g.
    for ``emovox export DIR X --int8 --eval CORPUS``) with its :func:`fold_key` in ``fold.json``, the
    design's name taken from ``keep``'s (``DIR/<design>``): ``--keep-models runs/fold_models`` fills the
    experiments' fold cache. ``reuse``: a folder of such fold models (``DIR/<held-out corpus>/``), each loaded
    instead of trained when its ``fold.json`` records this design's config and training clips (under whatever
    design name it was written). ``prosody``: every clip's raw eGeMAPS features, for a design with a prosody head.
    ``X_serve``: every clip's features as served (:meth:`Design.serving_extractor`): the held-out corpus's rows
    (test clips and profile archives) come from it, the training rows from ``X``. ``profile_seeds``: the draws of
    random halves the profile rows average over (:func:`profile_rows`; one half moves a corpus's row by 0.8 to 1.6
    points), each seed's rows kept under ``per_seed`` when there are several."""
    if design.prosody_weight and prosody is None:
        raise ValueError("a design with a prosody head needs every clip's prosody features")
    if keep is not None and (design.config.finetune.blocks or extractor is None):
        raise ValueError("keep: only designs on the frozen encoder's features, with their extractor, can be saved")
    truth_all = [collapse(u.label, "4class") for u in utts]
    corpora = np.array([u.corpus for u in utts])
    only = list(TRAINING_ONLY.values())  # the corpora their utterances name; never held out
    unused = np.isin(corpora, [corpus for name, corpus in TRAINING_ONLY.items() if name not in design.extra_training])
    rows = {}
    for held, test, train_utts, idx, truth in held_out_splits(utts, held_out):
        if len(set(truth)) < 2 or held in only:
            continue
        train = ~test & ~unused  # a training-only corpus that this design does not name stays out
        train_utts = [u for u, t in zip(utts, train, strict=True) if t]
        t0 = time.time()
        X_fold, tuning = X, None
        if X_serve is not None:
            X_fold = np.array(X, copy=True)
            X_fold[test] = X_serve[test]
        if design.config.finetune.blocks:
            X_fold, result = tuned_split(design, X, train_utts, test, extractor, frames)
            tuning = {"best_epoch": result.best_epoch, "history": result.history, "seconds": result.seconds}
        ensemble = reused_fold(reuse, held, design, train_utts)
        if ensemble is None:
            ensemble = train_ensemble(X_fold[train], train_utts, config=design.config,
                                      augmented=None if copies is None else copies[:, train])
        ensemble = with_linear(design, ensemble, X_fold[train], train_utts)
        spread = fold_spread(design, X_fold[train], train_utts)
        head = None if not design.prosody_weight else fit_prosody_head(
            prosody[train], [u.label for u in train_utts], [u.corpus for u in train_utts], ensemble.labels,
            weight=design.prosody_weight)
        if keep is not None:
            save_ensemble(keep / held, ensemble, extractor.settings,
                          training={"trained_on": sorted({u.corpus for u in train_utts}), "held_out": held,
                                    "n_utterances": len(train_utts), "config": dataclasses.asdict(design.config)})
            key = fold_key(keep.name, design.config, train_utts, design.encoding)
            (keep / held / "fold.json").write_text(json.dumps(key, indent=1) + "\n")  # last: a crash leaves no key
        probs = ensemble.probabilities
        row = {"n": len(idx), "classes": sorted(map(str, set(truth))),
               "single": ua(truth, four_class_decision(ensemble, probs(X_fold[idx])))}
        corpus_rows = np.flatnonzero(test)  # every clip of the held-out corpus, other emotions too
        labels = [truth_all[i] for i in corpus_rows]
        corpus_prosody = None if head is None else prosody[corpus_rows]
        per_seed = [profile_rows(ensemble, X_fold[corpus_rows], labels, spread, seed, head, corpus_prosody)
                    for seed in profile_seeds]
        row.update(mean_rows(per_seed))
        if len(per_seed) > 1:
            row["per_seed"] = {"seeds": list(profile_seeds), "rows": per_seed}
        row.update(dimension_levels(ensemble, X_fold[corpus_rows], [utts[i] for i in corpus_rows]))
        if tuning:
            row["finetuning"] = tuning
        row["skewed_share"] = SKEW
        row["seconds"] = round(time.time() - t0, 1)
        rows[held] = row
        print(f"  held out {held:10s} n={len(idx):5d} single {row['single']:.3f}  half {row['half']:.3f}  "
              + "  ".join(f"{k} {v:.3f}" for k, v in row.items() if k.startswith(("profile_", "skewed_"))
                            and isinstance(v, float)), flush=True)
    return rows


def profile_rows(ensemble: Ensemble, Xc: np.ndarray, labels: Sequence[str | None], spread: ProfileSpread | None,
                 seed: int = 0, head: ProsodyHead | None = None, prosody: np.ndarray | None = None) -> dict:
    """One held-out corpus's profile rows from the halves ``seed`` draws (:func:`halves`): its clips ``Xc`` (every
    clip, ``labels`` their 4-class labels or None), the test half's single-clip UA (``half``), and for every kind of
    archive (the random half, 70 % neutral, angry, happy or sad) and estimator the test half's UA with a profile of
    that archive (``<archive>_<estimator>``); ``head``: a prosody head read under the profile (``prosody``: the
    clips' eGeMAPS features)."""
    profile, half, skewed = halves(labels, seed=seed)
    truth_half = [labels[i] for i in half]
    row: dict = {"half": ua(truth_half, four_class_decision(ensemble, ensemble.probabilities(Xc[half])))}
    # archives mostly of one emotion: neutral (``skewed``, as a call centre's), or angry, happy, sad
    archives = {"profile": profile, "skewed": skewed,
                **{f"skewed{major}": halves(labels, seed=seed, major=major)[2] for major in SKEWED_EMOTIONS
                   if major in {labels[i] for i in profile}}}
    for estimate in (SHIPPED, *(f"b{balance:g}" for balance in BALANCES)):
        for name, rows_ in archives.items():
            probs = profiled_probabilities(ensemble, Xc[rows_], Xc[half], estimate, spread)
            if head is not None:
                probs = with_prosody(head, prosody, rows_, half, probs)
            row[f"{name}_{estimate}"] = ua(truth_half, four_class_decision(ensemble, probs))
    row["profile_clips"] = {**{name: len(rows_) for name, rows_ in archives.items()}, "test": len(half)}
    return row


def mean_rows(rows: Sequence[dict]) -> dict:
    """:func:`profile_rows` of several seeds as one: every UA averaged, the first seed's clip counts.

    Examples:
        >>> mean_rows([{"half": 0.5, "profile_neutral": 0.6, "profile_clips": {"test": 3}},
        ...            {"half": 0.7, "profile_neutral": 0.8, "profile_clips": {"test": 4}}])
        {'half': 0.6, 'profile_neutral': 0.7000000000000001, 'profile_clips': {'test': 3}}
    """
    return {k: (float(np.mean([r[k] for r in rows if k in r])) if isinstance(v, float) else v)
            for k, v in rows[0].items()}


def fold_spread(design: Design, X_train: np.ndarray, train_utts: Sequence[Utterance]) -> ProfileSpread | None:
    """The profile spread a model trained on ``X_train`` stores under ``design`` (as ``emovox train`` computes
    it: within each training corpus, pooled), or None for a design whose profiles only centre."""
    if not design.spread_power:
        return None
    return ProfileSpread.of_training(X_train, [u.corpus for u in train_utts], design.spread_power)


def with_prosody(head: ProsodyHead, P: np.ndarray, archive: np.ndarray, rows: np.ndarray,
                 probs: np.ndarray) -> np.ndarray:
    """``probs`` of clips ``rows`` mixed with the prosody head's on their features ``P[rows]``, standardised by
    the statistics of ``P[archive]``: what `emovox profile` stores and --profile then does."""
    return head.fuse(probs, standardise(P[rows], *domain_statistics(P[archive])))


def reused_fold(reuse: Path | None, held: str, design: Design, train_utts: Sequence[Utterance]) -> Ensemble | None:
    """The fold model kept under ``reuse/<held>/`` when its ``fold.json`` matches ``design``'s config and
    ``train_utts`` (:func:`fold_key`, the design's name aside), else None."""
    if reuse is None:
        return None
    if not (reuse / held / "fold.json").is_file():
        print(f"  {reuse / held}: no fold.json; trained anew", flush=True)
        return None
    kept = json.loads((reuse / held / "fold.json").read_text())
    want = fold_key(kept.get("design", ""), design.config, train_utts, design.encoding)
    # a config field added since the fold was kept (e.g. level_jitter) matches when this design leaves it at its
    # default: the fold was trained without it
    defaults = json.loads(json.dumps(dataclasses.asdict(TrainConfig()), default=str))
    kept["config"] = {**{k: v for k, v in want["config"].items() if k not in kept.get("config", {})
                         and v == defaults.get(k)}, **kept.get("config", {})}
    if kept != want:
        print(f"  {reuse / held}: another config or other training clips; trained anew", flush=True)
        return None
    print(f"  {held}: fold model reused from {reuse / held}", flush=True)
    return load_model_files(reuse / held).ensemble()


VALENCE_LEVELS = ("negative", "neutral", "positive")


def dimension_levels(ensemble: Ensemble, X: np.ndarray, utts: Sequence[Utterance]) -> dict:
    """3-level UA of the arousal and valence every prediction carries, against the levels of each
    clip's true label on :data:`emovox.conversation.dimensions.CIRCUMPLEX`; every clip whose label
    has a point counts (fear, disgust, surprise, calm too), so this is not limited to the four
    classes. ``arousal3``/``valence3``: what predictions carry (the heads' values when the
    ensemble has the dimensional output, else read off the full probabilities through the table);
    with the dimensional output, ``arousal3_table``/``valence3_table`` are the table's as well."""
    keep = [i for i, u in enumerate(utts) if u.label in CIRCUMPLEX]
    if not keep:
        return {}
    probs = ensemble.probabilities(X[keep])
    table = [arousal_valence(dict(zip(ensemble.labels, map(float, p), strict=True))) for p in probs]
    sources = {"": table}
    if ensemble.has_dimensions:
        sources = {"": [tuple(d) for d in ensemble.dimensions(X[keep])], "_table": table}
    out = {}
    for suffix, found in sources.items():
        for k, (name, names) in enumerate((("arousal3", ("low", "mid", "high")), ("valence3", VALENCE_LEVELS))):
            truth = [level(CIRCUMPLEX[utts[i].label][k], names) for i in keep]
            predicted = [level(f[k], names) for f in found]
            if len(set(truth)) >= 2:
                out[name + suffix] = classification_metrics(truth, predicted, labels=list(names))["ua"]
    return out


def summary(rows: dict) -> dict:
    keys = [k for k in dict.fromkeys(k for r in rows.values() for k in r)
            if k not in {"n", "classes", "skewed_share", "seconds", "finetuning", "profile_clips", "per_seed"}]
    out = {}
    for k in keys:
        values = {c: r[k] for c, r in rows.items() if k in r}
        worst = min(values, key=values.get)
        out[k] = {"mean": float(np.mean(list(values.values()))), "worst": values[worst], "worst_corpus": worst}
    return out


def ravdess_reference(design: Design, shared: Path, extractor: FeatureExtractor, room: bool,
                      dereverb: bool = False, estimators: Sequence[str] = (SHIPPED,)) -> dict:
    """RAVDESS speaker-independent 6-fold UA over all its labels: heads train on the clean clips of
    five folds and are tested on the sixth, clean and with noise (or a room) on its clips only;
    ``dereverb`` adds each condition with WPE dereverberation of the test clips (``+ WPE``).
    Each condition is also answered with a domain profile of its own audio (``+ profile``, the
    shipped estimator; ``+ profile <name>`` for any other of ``estimators``, see :func:`estimator_kwargs`).

    A design that fine-tunes the encoder tunes it per fold on the five training folds' clips and
    is tested clean only (the noisy conditions would need every noisy clip re-encoded by each
    fold's tuned blocks); the result says so under ``"not_measured"``. A design served on another encoding
    (:meth:`Design.serving_extractor`) trains on ``extractor``'s clean features and is tested on the serving
    encoding's, in every condition."""
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_accuracy import noisy_features

    utts = scan_corpus("ravdess", shared / "ravdess")
    tuned = design.config.finetune.blocks > 0
    serving = design.serving_extractor() or extractor
    tests = {"clean": load_features(utts, serving)}
    if not tuned:
        # each test condition: its name and its noisy_features recipe (kind, SNR in dB)
        recipes = {"white 10 dB": ("white", 10.0), "babble 10 dB": ("babble", 10.0),
                   **({"room": ("room", 10.0)} if room else {})}
        tests.update({name: noisy_features(utts, serving, *recipe) for name, recipe in recipes.items()})
        if dereverb:  # every condition again, each test clip dereverberated before the encoder
            tests.update({f"{name} + WPE": noisy_features(utts, serving, *recipe, dereverb=True)
                          for name, recipe in {"clean": ("clean", 0.0), **recipes}.items()})
    frames = load_frames(utts, extractor, design.config.finetune.blocks) if tuned else None
    speakers = np.array([u.speaker_key for u in utts])
    suffixes = {estimator: " + profile" + ("" if estimator == SHIPPED else f" {estimator}") for estimator in estimators}
    conditions = [*tests, *(name + suffix for name in tests for suffix in suffixes.values())] if frames is None else list(tests)
    predicted = {name: np.empty(len(utts), dtype=object) for name in conditions}
    # a copy's babble comes from its own fold: no test speaker is heard, not even as noise
    copies = training_copies_of(design, utts, load_augmented(utts, extractor, design.config.augment,
                                                             groups=kfold_groups(utts, 6),
                                                             recipe=design.config.augment_recipe()))
    tests = {name: design_inputs(design, X) for name, X in tests.items()}
    train_clean = tests["clean"] if serving is extractor else design_inputs(design, load_features(utts, extractor))
    for test in speaker_folds(speakers, 6):
        train_utts = [u for u, t in zip(utts, test, strict=True) if not t]
        fold, X_train = dict(tests), train_clean
        if frames is not None:  # this fold's own tuned encoder: its test speakers never tuned it
            fold["clean"], _ = tuned_split(design, tests["clean"], train_utts, test, extractor, frames)
            X_train = fold["clean"]
        ensemble = train_ensemble(X_train[~test], train_utts, config=design.config,
                                  augmented=None if copies is None else copies[:, ~test])
        ensemble = with_linear(design, ensemble, X_train[~test], train_utts)
        spread = fold_spread(design, X_train[~test], train_utts)
        for name, X in fold.items():
            predicted[name][test] = [ensemble.labels[i] for i in ensemble.probabilities(X[test]).argmax(1)]
            if frames is None:  # the same condition with a domain profile of its own audio
                for estimator, suffix in suffixes.items():
                    predicted[name + suffix][test] = profiled_predictions(ensemble, X[test], estimator=estimator,
                                                                          spread=spread)
    truth = [u.label for u in utts]
    out: dict = {name: float(balanced_accuracy_score(truth, list(p))) for name, p in predicted.items()}
    out["drops_points"] = {k: round(100 * (out["clean"] - v), 2) for k, v in out.items()
                           if k != "clean" and " + profile" not in k}
    if frames is None and SHIPPED in estimators:
        out["drops_points_with_profile"] = {k: round(100 * (out["clean + profile"] - out[f"{k} + profile"]), 2)
                                            for k in tests if k != "clean"}
        out["profile_protocol"] = ("each test fold's clips split in two random halves; each half is predicted with "
                                   f"a domain profile (estimator {SHIPPED!r}) of the other half in the same "
                                   "condition: unlabelled audio of the same held-out speakers and room or noise")
    if tuned:
        out["not_measured"] = "noise and room: each fold's tuned encoder would have to re-encode every noisy clip"
    return out


PROFILE_BALANCE = 0.5  # the "balanced" estimator's default (`emovox profile --estimator balanced`)


def profile_keys(entry: dict) -> tuple[str, str]:
    """The profile and skewed-profile rows of what ships in a design's ``entry`` (entries measured
    before the "neutral" estimator have only the balanced estimator's)."""
    key = SHIPPED if f"profile_{SHIPPED}" in entry["summary"] else f"b{PROFILE_BALANCE:g}"
    return f"profile_{key}", f"skewed_{key}"


def estimator_kwargs(ensemble: Ensemble, estimator: str) -> dict:
    """:func:`domain_mean`'s keyword arguments for an estimator named as the benchmark's rows name
    them: ``"neutral"`` (what `emovox profile` does), ``"neutral0.4"`` (that estimator at another
    neutral share), ``"b0.5"`` (the balanced one at that balance).

    Examples:
        >>> class Model: labels = ("angry", "neutral", "sad")
        >>> estimator_kwargs(Model(), "neutral0.4"), estimator_kwargs(Model(), "b1")
        ({'neutral': [1], 'neutral_share': 0.4}, {'balance': 1.0})
    """
    if estimator.startswith("neutral"):
        share = estimator.removeprefix("neutral")
        return {"neutral": neutral_columns(ensemble.labels), **({"neutral_share": float(share)} if share else {})}
    if estimator.startswith("b"):
        return {"balance": float(estimator[1:])}
    raise ValueError(f"unknown profile estimator {estimator!r}: neutral, neutral<share> or b<balance>")


def profiled_predictions(ensemble: Ensemble, X: np.ndarray, seed: int = 0, estimator: str = SHIPPED,
                         spread: ProfileSpread | None = None, decide=None) -> list[str]:
    """Each clip's label predicted with a domain profile built from the other random half of ``X``
    (two-way: every clip is predicted once, never with itself in its profile); ``estimator``: as
    :func:`estimator_kwargs` names it; ``decide(ensemble, probabilities)``: the labels (default: the most
    probable of all the model's labels; :func:`four_class_decision` for the 4-class protocol)."""
    order = np.random.default_rng(seed).permutation(len(X))
    halves_ = (order[: len(X) // 2], order[len(X) // 2 :])
    out = np.empty(len(X), dtype=object)
    for source, target in (halves_, halves_[::-1]):
        probs = profiled_probabilities(ensemble, X[source], X[target], estimator, spread)
        out[target] = decide(ensemble, probs) if decide else [ensemble.labels[i] for i in probs.argmax(1)]
    return list(out)


def profiled_probabilities(ensemble: Ensemble, archive: np.ndarray, X: np.ndarray,
                           estimator: str = SHIPPED, spread: ProfileSpread | None = None) -> np.ndarray:
    """Probabilities of ``X`` centred by the domain profile ``estimator`` (as :func:`estimator_kwargs` names
    it) estimates from the unlabelled ``archive``, answered by the profile heads if the model has them:
    what ``emovox profile`` and ``--profile`` do; with the model's profile ``spread``, the profile scales too."""
    return ensemble.probabilities(profiled_features(ensemble, archive, X, estimator, spread), profiled=True)


def profiled_features(ensemble: Ensemble, archive: np.ndarray, X: np.ndarray,
                      estimator: str = SHIPPED, spread: ProfileSpread | None = None) -> np.ndarray:
    """``X`` as the domain profile :func:`profiled_probabilities` builds from ``archive`` presents it to the
    model (centred, and scaled with ``spread``)."""
    reference = ensemble.reference_mean()
    profiled = functools.partial(ensemble.probabilities, profiled=True)
    mean = domain_mean(archive, reference, probabilities=profiled, **estimator_kwargs(ensemble, estimator))
    scale = None if spread is None else profile_scale(archive, mean, spread)
    return DomainProfile(mean, len(archive), "", "", "", scale=scale).apply(X, reference)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = {name: entry for name, entry in results.items() if "summary" in entry}  # not stopped runs
    designs = list(results)
    corpora = list(next(iter(results.values()))["loco"])
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), sharey=True)
    width = 0.8 / len(designs)
    colours = plt.get_cmap("tab20").colors  # one colour per design up to 20 (tab10 repeated after 10)
    for ax, key, title in ((axes[0], "single", "single clips (no profile)"),
                           (axes[1], "profile", "with a profile from the other half")):
        for j, d in enumerate(designs):
            k = key if key == "single" else profile_keys(results[d])[0]
            values = [results[d]["loco"][c][k] for c in corpora] + [results[d]["summary"][k]["mean"]]
            ax.bar(np.arange(len(corpora) + 1) + j * width, values, width, label=d, color=colours[j % len(colours)])
        ax.set_xticks(np.arange(len(corpora) + 1) + width * (len(designs) - 1) / 2, [*corpora, "mean"], rotation=20)
        ax.axhline(0.25, color="grey", lw=0.8, ls=":")
        ax.set_title(f"held-out corpus, 4-class UA: {title}")
    axes[0].set_ylabel("UA")
    # below the axes, not over the bars
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05 + 0.035 * ((len(designs) + 2) // 3), 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(results: dict) -> str:
    """The designs in ``results`` as one markdown table (UA in %, 4 classes; profiles: the
    shipped estimator, or the balanced one for entries measured before it)."""
    results = {name: entry for name, entry in results.items() if "summary" in entry}  # not stopped runs
    corpora = list(next(iter(results.values()))["loco"])
    head = ["design", *corpora, "mean", "worst", "profile mean (half)", "skewed-profile mean", "RAVDESS 6-fold",
            "white / babble 10 dB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, entry in results.items():
        s, rav = entry["summary"], entry.get("ravdess_6fold", {})
        profile_key, skewed_key = profile_keys(entry)
        cells = [name, *(f"{100 * entry['loco'][c]['single']:.1f}" for c in corpora),
                 f"**{100 * s['single']['mean']:.1f}**", f"{100 * s['single']['worst']:.1f} ({s['single']['worst_corpus']})",
                 f"{100 * s[profile_key]['mean']:.1f} (vs {100 * s['half']['mean']:.1f})", f"{100 * s[skewed_key]['mean']:.1f}",
                 f"{rav['clean']:.3f}" if rav else "-",
                 f"{rav['white 10 dB']:.3f} / {rav['babble 10 dB']:.3f}" if "white 10 dB" in rav else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def merge_runs(results: dict, parts: Sequence[dict]) -> dict:
    """``results`` (a ``--out`` file's designs) with the held-out rows of ``parts`` (other ``--out``
    files, e.g. of ``--held-out`` runs on separate cores) merged into each design's entry, its summary
    recomputed and its seconds summed (processor time, not wall time). A design new to ``results``
    comes in whole; a part's row for a corpus replaces the one there.

    Examples:
        >>> a = {"d": {"loco": {"x": {"single": 0.5}}, "seconds": 10.0}}
        >>> b = {"d": {"loco": {"y": {"single": 0.7}}, "seconds": 20.0}}
        >>> merged = merge_runs(a, [b])["d"]
        >>> sorted(merged["loco"]), round(merged["summary"]["single"]["mean"], 3), merged["seconds"]
        (['x', 'y'], 0.6, 30.0)
    """
    merged = json.loads(json.dumps(results))
    for part in parts:
        for name, entry in part.items():
            if name not in merged:
                merged[name] = json.loads(json.dumps(entry))
                continue
            target = merged[name]
            target["loco"] = {**target.get("loco", {}), **entry.get("loco", {})}
            target["seconds"] = round(float(target.get("seconds", 0.0)) + float(entry.get("seconds", 0.0)), 1)
            if "ravdess_6fold" in entry and "ravdess_6fold" not in target:
                target["ravdess_6fold"] = entry["ravdess_6fold"]
    for entry in merged.values():
        if entry.get("loco"):
            entry["summary"] = summary(entry["loco"])
    return merged


def add_corpus_options(parser: argparse.ArgumentParser) -> None:
    """``--corpora`` and ``--extra``: where the benchmark and the experiments find the corpora."""
    parser.add_argument("--corpora", type=Path, default=Path("../shared/corpora"), help="the shared corpora")
    parser.add_argument("--extra", type=Path, default=Path("~/.cache/emovox-corpora").expanduser(),
                        help="corpora fetched with extract-more.sh")


def corpora_features(args: argparse.Namespace, pooling: str = "level_mean_std") -> tuple[list[Utterance], np.ndarray]:
    """Every corpus found under ``args.corpora`` and ``args.extra`` (:func:`load_corpora`) and its
    clips' features pooled as ``pooling`` (from the cache): the experiments' common start."""
    utts = load_corpora(args.corpora, args.extra, None)
    return utts, load_features(utts, _extractor("whisper-base", pooling, 0.0, False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_corpus_options(parser)
    parser.add_argument("--only", default="", help="comma-separated corpus names (default: every one found)")
    parser.add_argument("--min-classes", type=int, default=2,
                        help="corpora with fewer of angry/happy/sad/neutral neither train nor test")
    parser.add_argument("--held-out", default="",
                        help="comma-separated: hold out only these corpora (the rows merge into --out's entry)")
    parser.add_argument("--designs", default="all", help=f"comma-separated, from {', '.join(DESIGNS)}")
    parser.add_argument("--profile-seeds", default="0",
                        help="comma-separated seeds of the random halves the profile rows average over (0: one half, "
                        "as every row before 2026-12-07; e.g. 0,1,2,3,4 for five)")
    parser.add_argument("--skip-ravdess", action="store_true", help="skip the RAVDESS 6-fold / noise reference")
    parser.add_argument("--ravdess-only", action="store_true",
                        help="only add the RAVDESS 6-fold / noise reference to designs already in --out")
    parser.add_argument("--room", action="store_true", help="add the simulated room (needs pyroomacoustics)")
    parser.add_argument("--dereverb", action="store_true",
                        help="add every RAVDESS condition with WPE dereverberation of the test clips (needs nara_wpe)")
    parser.add_argument("--estimators", default=SHIPPED,
                        help="comma-separated profile estimators for the RAVDESS reference's '+ profile' rows "
                             "(neutral, neutral<share>, b<balance>; default: what ships)")
    parser.add_argument("--keep-models", type=Path, default=None,
                        help="write each design's fold models to DIR/<design>/<held-out corpus>/ (model directories)")
    parser.add_argument("--reuse-models", type=Path, default=None,
                        help="a folder of fold models written by --keep-models (DIR/<held-out corpus>/): each is loaded "
                             "instead of trained when it records the same config and training clips")
    parser.add_argument("--markdown", action="store_true", help="print the designs already in --out as a table and stop")
    parser.add_argument("--plot", type=Path, default=None, metavar="PNG",
                        help="plot the entries of --out named in --entries (|-separated, in that order) to PNG and stop")
    parser.add_argument("--entries", default="", help="with --plot: entry names of --out, |-separated")
    parser.add_argument("--merge", type=Path, nargs="+", default=None,
                        help="--out files of --held-out runs (e.g. one per core, each with its own --out): merge their "
                             "rows into --out's designs, recompute the summaries, plot, and stop")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_generalisation.json"))
    args = parser.parse_args()
    profile_seeds = [int(x) for x in args.profile_seeds.split(",") if x]
    if args.markdown:
        print(markdown(json.loads(args.out.read_text())))
        return
    if args.plot:
        results = json.loads(args.out.read_text())
        names = [n for n in args.entries.split("|") if n] or list(results)
        if missing := [n for n in names if n not in results]:
            parser.error(f"not in {args.out}: {missing}")
        plot({n: results[n] for n in names}, args.plot)
        print(f"wrote {args.plot}")
        return
    if args.merge:
        results = merge_runs(json.loads(args.out.read_text()) if args.out.exists() else {},
                             [json.loads(path.read_text()) for path in args.merge])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        plot(results, args.out.with_suffix(".png"))
        print(markdown(results))
        return
    unknown = [d for d in args.designs.split(",") if d not in DESIGNS]
    if unknown:
        parser.error(f"unknown design(s) {unknown}; known: {', '.join(DESIGNS)}")
    if args.ravdess_only:
        for name in args.designs.split(","):
            design = DESIGNS[name]
            reference = ravdess_reference(design, args.corpora, design.extractor(), args.room,
                                          args.dereverb, args.estimators.split(","))
            # merged late (other runs may have written meanwhile); a design not run yet gets an entry
            results = json.loads(args.out.read_text()) if args.out.exists() else {}
            results.setdefault(name, {"note": design.note, "config": dataclasses.asdict(design.config),
                                      "pooling": design.pooling})["ravdess_6fold"] = reference
            args.out.write_text(json.dumps(results, indent=2) + "\n")
            print(f"| {name} | RAVDESS 6-fold " + " | ".join(f"{k} {v}" for k, v in reference.items()) + " |", flush=True)
        return
    training_only = sorted({n for d in args.designs.split(",") for n in DESIGNS[d].extra_training})
    utts = load_corpora(args.corpora, args.extra, [n for n in args.only.split(",") if n], min_classes=args.min_classes,
                        training_only=training_only)
    features = {}  # extractor settings -> features of every clip, encoded (or read from the cache) once
    counts = {c: sum(u.corpus == c for u in utts) for c in dict.fromkeys(u.corpus for u in utts)}
    print("corpora:", counts, flush=True)
    for name in args.designs.split(","):
        design = DESIGNS[name]
        print(f"## {name}: {design.note}", flush=True)
        start = time.time()
        extractor = design.extractor()
        if extractor.settings not in features:
            features[extractor.settings] = load_features(utts, extractor)
        X = design_inputs(design, features[extractor.settings])
        X_serve = None
        if (serving := design.serving_extractor()) is not None:
            if serving.settings not in features:
                features[serving.settings] = load_features(utts, serving)
            X_serve = design_inputs(design, features[serving.settings])
        copies = training_copies_of(design, utts, load_augmented(utts, extractor, design.config.augment,
                                                                 recipe=design.config.augment_recipe()))
        held_out = [n for n in args.held_out.split(",") if n]
        frames = load_frames(utts, extractor, design.config.finetune.blocks) if design.config.finetune.blocks else None
        prosody = cached_prosody_features([u.path for u in utts]) if design.prosody_weight else None
        rows = loco(design, X, utts, copies, held_out, extractor=extractor, frames=frames,
                    keep=None if args.keep_models is None else args.keep_models / name, reuse=args.reuse_models,
                    prosody=prosody, X_serve=X_serve, profile_seeds=profile_seeds)
        if held_out and args.out.exists() and name in (previous := json.loads(args.out.read_text())):
            rows = {**previous[name]["loco"], **rows}  # complete an earlier, partial run
        entry = {"note": design.note, "config": dataclasses.asdict(design.config), "pooling": design.pooling,
                 **design.encoding, **design.served,
                 "corpora": counts, "loco": rows,
                 "summary": summary(rows),
                 "split": "leave-one-corpus-out: train on every other corpus, test on all of the held-out one (4 classes "
                          "as --labels angry,happy,sad,neutral); profiles from a random half (or a 70 %-one-emotion "
                          "subset of it), every emotion the corpus has, tested on the 4-class clips of the other half"}
        if not args.skip_ravdess:
            entry["ravdess_6fold"] = ravdess_reference(design, args.corpora, extractor, args.room, args.dereverb,
                                                       args.estimators.split(","))
        elif args.out.exists() and "ravdess_6fold" in (kept := json.loads(args.out.read_text()).get(name, {})):
            entry["ravdess_6fold"] = kept["ravdess_6fold"]  # measured before (--ravdess-only): kept
        entry["seconds"] = round(time.time() - start, 1)
        s = entry["summary"]
        single = s["single"]
        print(f"| {name} | single mean {single['mean']:.3f} worst {single['worst']:.3f} ({single['worst_corpus']}) "
              f"| profile {s[profile_keys(entry)[0]]['mean']:.3f} | skewed {s[profile_keys(entry)[1]]['mean']:.3f} "
              f"| RAVDESS {entry.get('ravdess_6fold', {}).get('clean', float('nan')):.3f} |", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        # after every design, merged with the designs already in the file: nothing lost on a crash
        results = json.loads(args.out.read_text()) if args.out.exists() else {}
        results[name] = entry
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    plot(json.loads(args.out.read_text()), args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
