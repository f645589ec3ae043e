"""Train an emotion model from utterance manifests: features (cached), an ensemble of heads
each validated on held-out speakers, a calibration temperature, a self-describing directory.

Examples:
    >>> from emovox.training.train import TrainConfig
    >>> TrainConfig().ensemble
    5
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import time
from collections import Counter
from collections.abc import Sequence

import numpy as np

from emovox.audio.augment import RECIPE_NOISE, AugmentRecipe
from emovox.corpora.labels import EMOTIONS, candidates
from emovox.corpora.manifest import Utterance
from emovox.encoder.weights import DEFAULT_ENCODER
from emovox.errors import EmovoxError, ModelError
from emovox.evaluation.splits import speaker_folds, speaker_holdout
from emovox.features.extractor import FeatureCache, FeatureExtractor, extract_files
from emovox.training.adaptation import adapt_groups, centre, class_balanced_mean
from emovox.training.calibration import fit_temperature
from emovox.training.checkpoint import load_model_files, save_ensemble
from emovox.training.finetune import FinetuneConfig, FinetuneResult, finetune, tuned_features
from emovox.training.fit import FitConfig, class_points, corpus_label_weights, fit_head, group_balance_weights
from emovox.training.head import Ensemble, means_only, predict_logits
from emovox.training.level_jitter import jittered_features
from emovox.training.linear_head import PROFILE_FILE as LINEAR_PROFILE_FILE
from emovox.training.linear_head import STRENGTH as LINEAR_STRENGTH
from emovox.training.linear_head import WEIGHT as LINEAR_WEIGHT
from emovox.training.linear_head import LinearHead, fit_linear_head
from emovox.training.model_config import update_config
from emovox.training.profile_spread import POWER as SPREAD_POWER
from emovox.training.profile_spread import ProfileSpread
from emovox.training.voices import VoiceTable

log = logging.getLogger(__name__)


CENTRE_MODES = ("", "centred", "both", "balanced")
VALIDATIONS = ("speakers", "corpus")


def corpus_centred(X: np.ndarray, utterances: Sequence[Utterance], *, balanced: bool = False,
                   target: np.ndarray | None = None) -> np.ndarray:
    """``X`` with each corpus's rows shifted so that the corpus mean is ``target`` (default: the
    mean of all rows; ``balanced``: the corpus's class-balanced mean, the mean of its per-label
    means, so that a corpus of mostly one emotion is not moved as if that emotion were its voice).

    Examples:
        >>> from emovox.corpora.manifest import Utterance
        >>> u = [Utterance(f"{c}{i}.wav", "sad", "sad", "s", c) for c, i in ("a1", "a2", "b1")]
        >>> corpus_centred(np.array([[[0.0]], [[2.0]], [[7.0]]]), u)[:, 0, 0].tolist()
        [2.0, 4.0, 3.0]
    """
    corpora = np.array([u.corpus for u in utterances])
    labels = np.array([u.label for u in utterances])
    target = X.mean(0) if target is None else target
    out = np.array(X, dtype=np.float32, copy=True)
    for corpus in np.unique(corpora):
        rows = corpora == corpus
        if balanced:
            mean = class_balanced_mean(X[rows], labels[rows])
        else:
            mean = X[rows].mean(0)
        out[rows] = centre(X[rows], mean, target)
    return out


def training_rows(X: np.ndarray, utterances: Sequence[Utterance], mode: str) -> tuple[np.ndarray, list[Utterance]]:
    """The rows heads train on under ``TrainConfig.centre_corpora`` ``mode``."""
    if mode in ("centred", "balanced"):
        return corpus_centred(X, utterances, balanced=mode == "balanced"), list(utterances)
    if mode == "both":
        return np.concatenate([X, corpus_centred(X, utterances)]), [*utterances, *utterances]
    return X, list(utterances)


def training_copies(augmented: np.ndarray | None, X: np.ndarray, utterances: Sequence[Utterance],
                    mode: str) -> np.ndarray | None:
    """Augmented copies ``(copies, n, ...)`` aligned with :func:`training_rows` under ``mode``: each
    copy's corpus is centred on its own mean (what a profile built from noisy audio does), moved to
    the clean rows' mean; under "both" the copies come raw and centred, like the clean rows.

    Examples:
        >>> from emovox.corpora.manifest import Utterance
        >>> u = [Utterance(f"{c}{i}.wav", "sad", "sad", "s", c) for c, i in ("a1", "a2", "b1")]
        >>> X = np.array([[[0.0]], [[2.0]], [[7.0]]])
        >>> copies = training_copies(X[None] + 10, X, u, "both")
        >>> copies.shape, copies[0, 3:, 0, 0].tolist()
        ((1, 6, 1, 1), [2.0, 4.0, 3.0])
    """
    if augmented is None or not len(augmented) or not mode:
        return augmented
    target = X.mean(0)
    centred = np.stack([corpus_centred(copy, utterances, balanced=mode == "balanced", target=target)
                        for copy in augmented])
    return np.concatenate([augmented, centred], axis=1) if mode == "both" else centred


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """What to train: encoder, ensemble size, validation share, head optimisation."""

    encoder: str = DEFAULT_ENCODER
    ensemble: int = 5
    val_fraction: float = 0.15
    seed: int = 0
    fit: FitConfig = FitConfig()
    augment: int = 0  # augmented copies of each training clip (emovox.audio.augment), 0 = none
    balance_corpora: bool = False  # weight rows so that every training corpus counts the same
    # weight rows so that a training speaker's total weight grows as its clip count to the 1 - p (0: every
    # clip 1, as before; 0.5: as the square root; 1: every speaker the same). Three voices (TESS's two, one
    # EmoSpeech recorder) hold a third of the default's clips
    balance_speakers: float = 0.0
    # weight rows so that every training corpus has the same mix of the labels it has, and every label the same
    # total over all corpora (fit.corpus_label_weights): a corpus of mostly one emotion no longer teaches its
    # channel as that emotion. On v6.3's recipe: -0.5 UA on single clips, -1.6 with a profile: not the default
    balance_labels_per_corpus: bool = False
    reverb: float = 0.0  # probability of a simulated room in each copy (emovox.audio.augment.AugmentRecipe)
    mask: float = 0.0  # probability of time and band masking in each copy
    noise: float = RECIPE_NOISE  # probability of white or babble noise in each copy (0 with reverb 1: rooms only)
    # weight of each augmented copy's rows in the loss against a clean clip's 1 (the copies shape the
    # heads less than the clean speech they must above all serve, while still teaching rooms and noise)
    copy_weight: float = 1.0
    # "": train on the features as they are; "centred": each training corpus shifted so that its
    # mean is the mean of all rows (what a domain profile does to a deployment's audio); "both":
    # every clip twice, as it is and centred, so that heads serve single clips and profiles alike;
    # "balanced": like "centred", on each corpus's class-balanced mean (its per-label means averaged)
    centre_corpora: str = ""
    finetune: FinetuneConfig = FinetuneConfig()  # tune the encoder's top blocks first (blocks > 0)
    # what each head validates on (its UA picks the epoch, its logits the temperature): "speakers", a
    # held-out val_fraction of every corpus's speakers; "corpus", one whole training corpus (head k:
    # the k-th in name order, cycling), so the epoch is the one that does best on a corpus it never heard
    validation: str = "speakers"
    # also train profile heads: a second ensemble (same recipe and seeds) that reads each state's mean
    # over frames only, not its std, and answers when a domain profile centres the audio. Measured by
    # leave-one-corpus-out over six corpora: with a profile +1.6 and +1.2 UA over the whole-vector
    # heads (two seed sets), on single clips 1.9 below them, so single clips keep the whole-vector heads
    profile_heads: bool = False
    # encoder states the profile heads read (None: the heads' own, fit.layers). Profile heads on states 0-5
    # gave +1.1 UA with a profile on v6.2's five heads, +0.1 (worst corpus -0.7) on v6.3's ten: not the default
    profile_layers: tuple[int, ...] | None = None
    # (low, high) dBFS: every training clip also trains as a copy whose speech level is set to a point of this
    # band drawn from its content (emovox.training.level_jitter), as the augmented copies do; for a model served
    # with that level band in front (features.level_band), so that its heads do not read a corpus's level
    level_jitter: tuple[float, float] | None = None

    def __post_init__(self):
        if self.finetune.blocks and self.augment:
            raise ValueError("fine-tuning (--finetune-blocks) does not take augmented copies (--augment) yet")
        if (self.augment_recipe() != AugmentRecipe() or self.copy_weight != 1.0) and not self.augment:
            raise ValueError("reverb, mask, noise and copy_weight shape the augmented copies: ask for copies too "
                             "(--augment N)")
        if not 0.0 < self.copy_weight <= 1.0:
            raise ValueError(f"copy_weight is a weight in (0, 1], got {self.copy_weight}")
        if self.copy_weight != 1.0 and self.fit.consistency:
            raise ValueError("copy_weight weighs copies as extra rows; the consistency loss pairs them with their clips")
        if not 0.0 <= self.balance_speakers <= 1.0:
            raise ValueError(f"balance_speakers is a power in [0, 1], got {self.balance_speakers}")
        if self.validation not in VALIDATIONS:
            raise ValueError(f"validation must be one of {VALIDATIONS}, got {self.validation!r}")
        if self.centre_corpora not in CENTRE_MODES:
            raise ValueError(f"centre_corpora must be one of {CENTRE_MODES}, got {self.centre_corpora!r}")
        if self.profile_heads and self.finetune.blocks:
            raise ValueError("profile heads read the frozen encoder's means; they are not trained with fine-tuning")
        if self.profile_layers is not None and not self.profile_heads:
            raise ValueError("profile_layers chooses the states of the profile heads: ask for them too (--profile-heads)")
        if self.profile_layers is not None and (not self.profile_layers or min(self.profile_layers) < 0):
            raise ValueError(f"profile_layers must be encoder state indices, got {self.profile_layers}")
        if self.level_jitter is not None and self.level_jitter[0] > self.level_jitter[1]:
            raise ValueError(f"level_jitter {self.level_jitter}: low above high")
        if self.level_jitter is not None and self.finetune.blocks:
            raise ValueError("fine-tuning (--finetune-blocks) does not take level-jittered copies yet")

    def augment_recipe(self) -> AugmentRecipe:
        """The :class:`emovox.audio.augment.AugmentRecipe` of this config's copies."""
        return AugmentRecipe(reverb=self.reverb, mask=self.mask, noise=self.noise)


def parse_layers(spec: str | None, n_states: int) -> tuple[int, ...] | None:
    """Which encoder states a head reads: ``"all"`` = every state with learned weights (the
    default since v4: best on corpora and languages never heard), ``"auto"`` = the state two
    thirds of the way up (state 4 of Whisper-base's 7, v3's choice on a 3-corpus protocol that
    misled), or a comma-separated list.

    Examples:
        >>> parse_layers("auto", 7), parse_layers("all", 7), parse_layers("2,3", 7)
        ((4,), None, (2, 3))
    """
    if spec is None or spec == "all":
        return None
    if spec == "auto":
        return (round(2 * (n_states - 1) / 3),)
    layers = tuple(int(i) for i in spec.split(","))
    if not layers or min(layers) < 0 or max(layers) >= n_states:
        raise EmovoxError(f"layers must be between 0 and {n_states - 1}, got {spec!r}")
    return layers


def label_set(utterances: Sequence[Utterance]) -> list[str]:
    """Labels present in the data, in taxonomy order (each member of a candidate set counts)."""
    present = {member for u in utterances for member in candidates(u.label)}
    return [label for label in EMOTIONS if label in present]


def label_targets(utterances: Sequence[Utterance], labels: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """Each utterance's class index in ``labels`` (-1 for a candidate set) and, when any label is a
    candidate set, every row's candidates ``(n, len(labels))`` (else ``None``).

    Raises:
        EmovoxError: A label (or a candidate) outside ``labels``.

    Examples:
        >>> from emovox.corpora.manifest import Utterance
        >>> u = [Utterance(f"{i}.wav", label, label, "s", "c") for i, label in enumerate(["sad", "happy|angry"])]
        >>> y, sets = label_targets(u, ["happy", "sad", "angry"])
        >>> y.tolist(), sets.astype(int).tolist()
        ([1, -1], [[0, 1, 0], [1, 0, 1]])
    """
    rows = [candidates(u.label) for u in utterances]
    missing = sorted({m for members in rows for m in members} - set(labels))
    if missing:
        raise EmovoxError(f"labels {missing} are not among the model's {labels}")
    y = np.array([labels.index(members[0]) if len(members) == 1 else -1 for members in rows], dtype=np.int64)
    if (y >= 0).all():
        return y, None
    sets = np.zeros((len(rows), len(labels)), dtype=bool)
    for i, members in enumerate(rows):
        sets[i, [labels.index(m) for m in members]] = True
    return y, sets


def load_features(utterances: Sequence[Utterance], extractor: FeatureExtractor, *, cache_root=None) -> np.ndarray:
    """Pooled features for every utterance, from the cache where possible."""
    cache = FeatureCache(extractor.settings, cache_root)
    return extract_files([u.path for u in utterances], extractor, cache=cache)


def load_augmented(utterances: Sequence[Utterance], extractor: FeatureExtractor, copies: int, *,
                   groups: Sequence[str] | None = None, cache_root=None, recipe=None) -> np.ndarray | None:
    """Features of ``copies`` augmented copies of every utterance, ``(copies, n, ...)`` (None for 0).

    Babble noise comes from utterances of other speakers of the same group (like the test
    babble of ``benchmarks/bench_accuracy.py``; a group of one speaker uses that speaker's other
    clips): by default the group is the utterance's corpus, so copies of one corpus never contain
    another corpus's audio (a held-out corpus stays unheard in cross-corpus tests). For k-fold tests give each utterance its fold
    (:func:`kfold_groups`): a clip of fold k trains only models tested on other folds, so no
    test speaker is ever heard, not even as noise. ``recipe``: an
    :class:`emovox.audio.augment.AugmentRecipe` (default: level, pitch, tempo and noise only).
    """
    if copies <= 0:
        return None
    from emovox.audio.augment import augmented_features  # looked up at call time (tests replace it)

    cache = FeatureCache(extractor.settings, cache_root)
    out = np.zeros((copies, len(utterances), *extractor.feature_shape), np.float32)
    group_of = np.array([u.corpus for u in utterances]) if groups is None else np.asarray(groups)
    speakers = np.array([u.speaker_key for u in utterances])
    for group in sorted(set(group_of)):
        members = group_of == group
        for speaker in sorted(set(speakers[members])):
            rows = np.flatnonzero(members & (speakers == speaker))
            others = np.flatnonzero(members & (speakers != speaker))
            pool = [utterances[i].path for i in (others if len(others) else np.flatnonzero(members))]
            out[:, rows] = augmented_features([utterances[i].path for i in rows], extractor, copies=copies,
                                              babble_pool=pool, cache=cache, recipe=recipe or AugmentRecipe())
    return out


def kfold_groups(utterances: Sequence[Utterance], n_folds: int) -> list[str]:
    """Each utterance's babble group for a speaker k-fold test: ``corpus/fold`` (the folds of
    :func:`emovox.evaluation.splits.speaker_folds`, as :func:`emovox.evaluation.protocols.speaker_kfold` makes them).

    Examples:
        >>> from emovox.corpora.manifest import Utterance
        >>> utts = [Utterance(f"{s}{i}.wav", "happy", "happy", s, "c") for s in "abcd" for i in range(2)]
        >>> kfold_groups(utts, 2)
        ['c/0', 'c/0', 'c/0', 'c/0', 'c/1', 'c/1', 'c/1', 'c/1']
    """
    speakers = np.array([u.speaker_key for u in utterances])
    fold = np.zeros(len(utterances), int)
    for k, test in enumerate(speaker_folds(speakers, n_folds)):
        fold[test] = k
    return [f"{u.corpus}/{k}" for u, k in zip(utterances, fold, strict=True)]


def augmenting_trainer(config: TrainConfig, utterances: Sequence[Utterance], augmented: np.ndarray | None):
    """A protocol trainer (``(X, utts) -> Ensemble``) that adds the training utterances'
    augmented copies, found by path in ``augmented`` (aligned with ``utterances``)."""
    row = {u.path: i for i, u in enumerate(utterances)}

    def trainer(X: np.ndarray, utts: Sequence[Utterance]) -> Ensemble:
        extra = None if augmented is None else augmented[:, [row[u.path] for u in utts]]
        return train_ensemble(X, utts, config=config, augmented=extra)

    return trainer


def load_frames(utterances: Sequence[Utterance], extractor: FeatureExtractor, blocks: int, *, cache_root=None) -> list:
    """Every utterance's frames below the top ``blocks`` encoder blocks
    (:class:`emovox.features.frames.ClipFrames`), from the frame cache where possible."""
    from emovox.features.frames import FrameCache, clip_frames

    if extractor.settings.silence_context:
        raise EmovoxError("fine-tuning (--finetune-blocks) does not take the silence context (--silence-context) yet")
    if extractor.settings.level_band:
        raise EmovoxError("fine-tuning (--finetune-blocks) does not take a level band (--level-band) yet")
    state = extractor.encoder.config.n_layers - blocks
    cache = FrameCache(extractor.settings, state, None if cache_root is None else os.path.join(cache_root, "frames"))
    return clip_frames([u.path for u in utterances], extractor.encoder, extractor.settings, state=state, cache=cache)


def finetuning_trainer(config: TrainConfig, utterances: Sequence[Utterance], extractor: FeatureExtractor):
    """A protocol trainer (``(X, utts) -> Ensemble``) for a recipe that fine-tunes the encoder: the
    top blocks are tuned on each training part only, the heads train on the tuned features, and the
    ensemble recomputes a test clip's tuned states itself (:meth:`Ensemble.features_for`). The
    frames of every clip in ``utterances`` are computed (and cached) once, here."""
    frames = load_frames(utterances, extractor, config.finetune.blocks)
    row = {u.path: i for i, u in enumerate(utterances)}

    def trainer(X: np.ndarray, utts: Sequence[Utterance]) -> Ensemble:
        X_tuned, result = tune_encoder(utts, X, extractor, config, frames=[frames[row[u.path]] for u in utts])
        ensemble = train_ensemble(X_tuned, utts, config=config)
        ensemble.transform = lambda Xs, us: tuned_features(result.top, [frames[row[u.path]] for u in us], Xs)
        return ensemble

    return trainer


def copy_row_weights(clean: int, rows: int, copy_weight: float) -> np.ndarray | None:
    """Per-row loss weights when the first ``clean`` of ``rows`` training rows are clean clips and
    the rest their augmented copies: 1 for clean rows, ``copy_weight`` for copies (None: all 1).

    Examples:
        >>> copy_row_weights(2, 4, 0.5).tolist()
        [1.0, 1.0, 0.5, 0.5]
        >>> copy_row_weights(2, 4, 1.0) is None
        True
    """
    if copy_weight == 1.0 or rows == clean:
        return None
    out = np.full(rows, copy_weight)
    out[:clean] = 1.0
    return out


def validation_rows(speakers: np.ndarray, corpora: np.ndarray, config: TrainConfig, k: int) -> np.ndarray:
    """Head ``k``'s validation mask under ``config.validation``: held-out speakers of every corpus
    (seeded ``config.seed + k``), or the whole ``k``-th corpus in name order (cycling).

    Examples:
        >>> speakers, corpora = np.array(["a", "b", "c", "d"]), np.array(["x", "x", "y", "y"])
        >>> validation_rows(speakers, corpora, TrainConfig(validation="corpus"), 1).tolist()
        [False, False, True, True]
    """
    if config.validation == "corpus":
        names = np.unique(corpora)
        if len(names) < 2:
            raise EmovoxError(f"validation on a held-out corpus needs at least two training corpora, got {list(names)}")
        return corpora == names[k % len(names)]
    val = speaker_holdout(speakers, corpora, fraction=config.val_fraction, seed=config.seed + k)
    if not val.any():
        raise EmovoxError("speaker-disjoint validation needs at least two speakers in some corpus")
    return val


def train_ensemble(
    X: np.ndarray, utterances: Sequence[Utterance], *, config: TrainConfig = TrainConfig(), labels: list[str] | None = None,
    augmented: np.ndarray | None = None,
) -> Ensemble:
    """Fit ``config.ensemble`` heads, each validated (early stopping) on its own held-out
    speakers, then one temperature on all their validation predictions.

    ``augmented`` (``(copies, len(X), ...)``, from :func:`emovox.audio.augment.augmented_features`)
    adds each training speaker's augmented copies to that head's training rows; validation and
    temperature use the original clips only.

    ``config.profile_heads``: the ensemble also gets :attr:`Ensemble.profile_heads`, the same recipe
    trained on the first half of each state's vector (its mean over frames; :func:`means_only`), reading
    the encoder states ``config.profile_layers`` (default: the heads' own).
    """
    profile_heads = None
    if config.profile_heads:
        half = X.shape[-1] // 2
        if config.profile_layers is not None and max(config.profile_layers) >= X.shape[1]:
            raise EmovoxError(f"profile layers {list(config.profile_layers)} must be below the features' "
                              f"{X.shape[1]} encoder states")
        fit = config.fit if config.profile_layers is None else dataclasses.replace(config.fit,
                                                                                   layers=config.profile_layers)
        profile_heads = train_ensemble(X[..., :half], utterances, labels=labels or label_set(utterances),
                                       config=dataclasses.replace(config, profile_heads=False, profile_layers=None,
                                                                  fit=fit),
                                       augmented=None if augmented is None else augmented[..., :half])
        profile_heads.heads = [means_only(head) for head in profile_heads.heads]
    augmented = training_copies(augmented, X, utterances, config.centre_corpora)
    n_clips = len(X)
    X, utterances = training_rows(X, utterances, config.centre_corpora)
    labels = labels or label_set(utterances)
    if len(labels) < 2:
        raise EmovoxError(f"need at least two emotion labels to train, found {labels}")
    y, sets = label_targets(utterances, labels)
    if sets is not None and (config.fit.voice_swap or config.fit.nuisance_dims or config.balance_labels_per_corpus):
        raise EmovoxError("candidate-set labels (e.g. baved-arousal's high level) do not combine with --voice-swap, "
                          "--nuisance-dims or --balance-labels-per-corpus, which need one label a row")
    speakers = np.array([u.speaker_key for u in utterances])
    corpora = np.array([u.corpus for u in utterances])
    # a speaker's raw and corpus-centred rows ("both") are two voices, each with its own mean (a row may be
    # moved into a voice of either view)
    voice_keys = np.char.add((np.arange(len(X)) >= n_clips).astype(int).astype(str), speakers.astype(str))
    points = class_points(labels) if config.fit.dimensions_weight > 0 else None
    heads, members, val_logits, val_targets, adapted_logits = [], [], [], [], []
    for k in range(config.ensemble):
        seed = config.seed + k
        held = validation_rows(speakers, corpora, config, k)
        val = held & (y >= 0)  # a held-out speaker's candidate-set rows neither train nor validate
        fit_cfg = dataclasses.replace(config.fit, seed=seed)
        X_fit, y_fit, corpora_fit, copies = X[~held], y[~held], corpora[~held], None
        sets_fit = None if sets is None else sets[~held]
        if augmented is not None and len(augmented) and config.fit.consistency:
            copies = augmented[:, ~held]  # paired with their clips (emovox.training.fit: consistency loss)
        elif augmented is not None and len(augmented):
            X_fit = np.concatenate([X_fit, *augmented[:, ~held]])
            y_fit = np.tile(y_fit, 1 + len(augmented))
            corpora_fit = np.tile(corpora_fit, 1 + len(augmented))
            sets_fit = None if sets_fit is None else np.tile(sets_fit, (1 + len(augmented), 1))
        factors = [copy_row_weights(len(y[~held]), len(y_fit), config.copy_weight)]  # each row's loss weight
        voices = None
        if config.fit.voice_swap or config.fit.nuisance_dims:  # the head's own training speakers; copies never move
            table = VoiceTable.build(X_fit[: int((~held).sum())], voice_keys[~held], [labels[i] for i in y[~held]])
            voices = dataclasses.replace(table, rows=np.pad(table.rows, (0, len(y_fit) - len(table.rows)),
                                                            constant_values=-1))
        if config.balance_corpora:
            factors.append(group_balance_weights(corpora_fit))
        if config.balance_labels_per_corpus:
            factors.append(corpus_label_weights(y_fit, corpora_fit, len(labels)))
        if config.balance_speakers:  # over the clean rows; each augmented copy weighs as its clip
            balance = group_balance_weights(speakers[~held], config.balance_speakers)
            factors.append(np.tile(balance, len(y_fit) // len(balance)))
        factors = [f for f in factors if f is not None]
        weights = functools.reduce(np.multiply, factors) if factors else None
        result = fit_head(X_fit, y_fit, X[val], y[val], n_classes=len(labels), config=fit_cfg, sample_weights=weights,
                          copies=copies, points=points, domains=corpora_fit if config.fit.adversary else None,
                          voices=voices, candidates=sets_fit)
        heads.append(result.head)
        val_logits.append(predict_logits(result.head, X[val]))
        reference = Ensemble([result.head], labels).reference_mean()
        adapted_logits.append(predict_logits(result.head, adapt_groups(X[val], speakers[val], reference)))
        val_targets.append(y[val])
        members.append({
            "seed": seed, "val_speakers": sorted(set(speakers[held])), "val_ua": round(result.best_val_ua, 4),
            "best_epoch": result.best_epoch,
        })
        log.info("head %d/%d: val UA %.3f (epoch %d)", k + 1, config.ensemble, result.best_val_ua, result.best_epoch)
    targets = np.concatenate(val_targets)
    temperature = fit_temperature(np.concatenate(val_logits), targets)
    adapted_temperature = fit_temperature(np.concatenate(adapted_logits), targets)
    return Ensemble(heads, labels, temperature, members, adapted_temperature=adapted_temperature,
                    profile_heads=profile_heads)


def tune_encoder(utterances: Sequence[Utterance], X: np.ndarray, extractor: FeatureExtractor, config: TrainConfig, *,
                 cache_root=None, frames=None) -> tuple[np.ndarray, FinetuneResult]:
    """Fine-tune the top ``config.finetune.blocks`` encoder blocks with a head (validated on held-out
    speakers, 15 % of each corpus's, other than the ensemble heads' own), and return the features
    of the tuned encoder (``X`` with the tuned states recomputed) with the result.

    ``frames``: the clips' :class:`emovox.features.frames.ClipFrames` (default: :func:`load_frames`)."""
    if frames is None:
        frames = load_frames(utterances, extractor, config.finetune.blocks, cache_root=cache_root)
    labels = label_set(utterances)
    y, sets = label_targets(utterances, labels)
    if sets is not None:
        raise EmovoxError("fine-tuning the encoder needs one label a clip; leave corpora with candidate-set labels "
                          "(baved-arousal) out of --finetune-blocks runs")
    speakers = np.array([u.speaker_key for u in utterances])
    corpora = np.array([u.corpus for u in utterances])
    val = speaker_holdout(speakers, corpora, fraction=config.val_fraction, seed=config.seed + 997)
    if not val.any():
        raise EmovoxError("fine-tuning needs held-out speakers: at least two speakers in some corpus")
    result = finetune(extractor.encoder, frames, X, y, np.flatnonzero(~val), np.flatnonzero(val), n_classes=len(labels),
                      config=dataclasses.replace(config.finetune, seed=config.seed), fit=config.fit, corpora=corpora)
    log.info("fine-tuned %s: val UA %.3f at epoch %d (%.0f s)", config.finetune.describe(), result.best_val_ua,
             result.best_epoch, result.seconds)
    return tuned_features(result.top, frames, X, progress=True), result


def train_model(
    utterances: Sequence[Utterance],
    out_dir: str | os.PathLike,
    *,
    config: TrainConfig = TrainConfig(),
    extractor: FeatureExtractor | None = None,
    features: np.ndarray | None = None,
    provenance: dict | None = None,
    cache_root: str | os.PathLike | None = None,
    heads_dtype: str = "float32",
    profile_spread_power: float = SPREAD_POWER,
) -> dict:
    """Train and save a model; returns the training report (also stored in config.json).
    ``heads_dtype``: how the heads are stored (:func:`emovox.training.checkpoint.save_model`).
    ``profile_spread_power``: how far domain profiles scale a deployment's spread toward the training
    corpora's (:mod:`emovox.training.profile_spread`; the model stores that spread); 0: profiles only centre."""
    if not utterances:
        raise EmovoxError("no training utterances")
    extractor = extractor or FeatureExtractor(config.encoder)
    start = time.time()
    X = features if features is not None else load_features(utterances, extractor, cache_root=cache_root)
    augmented = load_augmented(utterances, extractor, config.augment, cache_root=cache_root, recipe=config.augment_recipe())
    if config.level_jitter is not None:
        jittered = jittered_features(utterances, extractor, config.level_jitter, cache_root=cache_root)[None]
        augmented = jittered if augmented is None else np.concatenate([augmented, jittered])
    tuned, finetuning = None, None
    if config.finetune.blocks:
        X, result = tune_encoder(utterances, X, extractor, config, cache_root=cache_root)
        tuned = {"tensors": result.top.tuned_tensors(), "scale": result.top.scale, "rank": result.top.rank}
        finetuning = {"recipe": config.finetune.describe(), "best_val_ua": round(result.best_val_ua, 4),
                      "best_epoch": result.best_epoch, "history": result.history, "seconds": result.seconds,
                      "split": "tuned on the training speakers less a held-out 15 % of each corpus's speakers, "
                               "whose UA chose the epoch"}
    ensemble = train_ensemble(X, utterances, config=config, augmented=augmented)
    members = ensemble.members
    report = {
        **(provenance or {}),
        "labels": ensemble.labels,
        "n_utterances": len(utterances),
        "label_counts": dict(Counter(u.label for u in utterances)),
        "corpora": dict(Counter(u.corpus for u in utterances)),
        "n_speakers": len({u.speaker_key for u in utterances}),
        "split": ("each head validates on one whole training corpus, in turn, and trains on the others"
                  if config.validation == "corpus" else "each head validates on its own held-out speakers "
                  f"({config.val_fraction:.0%} of each corpus's speakers); no speaker is in both its train and validation sets"),
        "augmentation": ({"copies": config.augment, "recipe": config.augment_recipe().tag(),
                          "copy_weight": config.copy_weight,
                          "babble": "utterances of other speakers of the same corpus",
                          "validation": "original clips only"} if config.augment else None),
        "level_jitter": (None if config.level_jitter is None else {
            "band": list(config.level_jitter), "copies": 1,
            "level": "each clip's loud-frame level set to a point of the band drawn from its content",
            "validation": "original clips only"}),
        "ensemble": members,
        "mean_val_ua": round(float(np.mean([m["val_ua"] for m in members])), 4),
        "temperature": round(ensemble.temperature, 4),
        "adapted_temperature": round(ensemble.adapted_temperature, 4),
        "config": {**dataclasses.asdict(config)},
        "finetuning": finetuning,
        "profile_heads": None if ensemble.profile_heads is None else {
            "inputs": "each state's mean over frames (not its std); used when a domain profile centres the audio",
            "ensemble": ensemble.profile_heads.members,
            "mean_val_ua": round(float(np.mean([m["val_ua"] for m in ensemble.profile_heads.members])), 4),
            "temperature": round(ensemble.profile_heads.temperature, 4)},
        "seconds": round(time.time() - start, 1),
    }
    spread = None
    if profile_spread_power > 0:  # the clean training clips (as the heads' features), never augmented copies
        spread = ProfileSpread.of_training(X, [u.corpus for u in utterances], profile_spread_power)
    report["profile_spread"] = None if spread is None else spread.record()
    save_ensemble(out_dir, ensemble, extractor.settings, training=report, tuned=tuned, heads_dtype=heads_dtype,
                  profile_spread=spread)
    return report


def add_profile_spread(model_dir: str | os.PathLike, utterances: Sequence, *, power: float = SPREAD_POWER,
                       training: dict | None = None) -> ProfileSpread:
    """Store in the model in ``model_dir`` the within-corpus spread of its training ``utterances``
    (:class:`~emovox.corpora.manifest.Utterance`; their pooled features as the model computes them, from
    the feature cache), as ``emovox train`` does: ``profile_spread.safetensors`` and its ``config.json``
    entry, and its ``profile_spread`` entry in the training record (with ``training``'s entries, in the same
    write). The heads are untouched, so single clips predict as before; profiles built afterwards scale."""
    bundle = load_model_files(model_dir)
    if bundle.tuned:
        raise EmovoxError("a model with a tuned encoder: retrain it with --profile-spread-power instead")
    settings = bundle.features
    extractor = FeatureExtractor.from_settings(settings)
    if extractor.settings.encoder_sha256 != settings.encoder_sha256:
        raise EmovoxError("the encoder found is not the one the model was trained with")
    X = load_features(list(utterances), extractor)
    spread = ProfileSpread.of_training(X, [u.corpus for u in utterances], power)
    update_config(model_dir, {"profile_spread": spread.save(model_dir)}, {"profile_spread": spread.record(), **(training or {})})
    return spread


ROOM_COPIES = AugmentRecipe(reverb=1.0, noise=0.0)  # the linear head's room copies: a room in every copy, no noise


def room_copies(utterances: Sequence[Utterance], extractor: FeatureExtractor, copies: int = 1, *,
                groups: Sequence[str] | None = None) -> np.ndarray:
    """Features of ``copies`` copies of every clip heard in a simulated room (:data:`ROOM_COPIES`: RT60 0.2-0.8 s,
    microphone 0.3-2.5 m, level, pitch and tempo as every augmented copy's, no noise), ``(copies, n, ...)``,
    encoded by ``extractor`` and cached as ``--augment``'s copies are (:func:`load_augmented`, ``groups`` as there)."""
    if copies < 1:
        raise ValueError(f"room copies: at least one, got {copies}")
    out = load_augmented(utterances, extractor, copies, groups=groups, recipe=ROOM_COPIES)
    assert out is not None
    return out


def add_linear_head(model_dir: str | os.PathLike, utterances: Sequence, *, weight: float = LINEAR_WEIGHT,
                    strength: float = LINEAR_STRENGTH, features: np.ndarray | None = None,
                    training: dict | None = None, profile: bool = False, copies: np.ndarray | None = None,
                    copies_recipe: str = ROOM_COPIES.tag()) -> LinearHead:
    """Fit a linear head for the model in ``model_dir`` on its training ``utterances``
    (:class:`~emovox.corpora.manifest.Utterance`) and write it there (``linear_head.safetensors`` and the
    ``linear_head`` entry of ``config.json``); the heads are untouched. ``features``: the clips' pooled
    features as the heads were trained on them (default: from the feature cache, encoded as the model's
    ``features`` settings say); ``training``: entries to set in the config's training record as well.
    ``profile=True``: the one beside the profile heads instead (each state's mean, fitted on every corpus moved
    to the mean of all; ``profile_linear_head.safetensors``, :func:`profile_linear_head`). ``copies``: augmented
    copies of the clips, ``(k, n, ...)`` encoded as ``features`` (e.g. :func:`room_copies`), fitted beside them with
    each clip's label and corpus (single-clip head only; ``copies_recipe`` names them in the config, by default
    :func:`room_copies`' recipe: v7.5's head hears every clip also in a room, ``experiments/exp_room_linear.py``)."""
    bundle = load_model_files(model_dir)
    if copies is not None and profile:
        raise ValueError("copies train the single-clip linear head only")
    if bundle.tuned:
        raise ModelError("a model with a tuned encoder: its features are not the frozen encoder's")
    if bundle.average != "logits":
        raise ModelError("a linear head mixes into heads that average their logits (models since v5)")
    if profile and not bundle.profile_heads:
        raise ModelError("a profile linear head mixes into profile heads; this model has none (train --profile-heads)")
    if features is None:
        features = load_features(list(utterances), FeatureExtractor.from_settings(bundle.features))
    if profile:
        head = profile_linear_head(features, utterances, bundle.labels, weight=weight, strength=strength)
        entry = {"profile_linear_head": head.save(model_dir, bundle.labels, LINEAR_PROFILE_FILE)}
    else:
        head = fit_linear_head(features, [u.label for u in utterances], [u.corpus for u in utterances], bundle.labels,
                               weight=weight, strength=strength, copies=copies)
        entry = {"linear_head": {**head.save(model_dir, bundle.labels),
                                 **({"copies": len(copies), "copies_recipe": copies_recipe} if copies is not None else {})}}
    update_config(model_dir, entry, training)
    return head


def profile_linear_head(X: np.ndarray, utterances: Sequence[Utterance], labels: Sequence[str], *,
                        weight: float = LINEAR_WEIGHT, strength: float = LINEAR_STRENGTH) -> LinearHead:
    """The linear head beside a model's profile heads, fitted on training clips ``X`` of ``utterances``: it reads
    what they read (each state's mean over frames) and learns from every corpus moved to the mean of all, as a
    domain profile moves a deployment's audio (``experiments/exp_profile_linear.py``). Set it as
    ``ensemble.profile_heads.linear``.

    Examples:
        >>> from emovox.corpora.manifest import Utterance
        >>> u = [Utterance(f"{i}.wav", lab, lab, "s", c) for i, (lab, c) in enumerate([("sad", "a"), ("angry", "b")] * 4)]
        >>> head = profile_linear_head(np.random.default_rng(0).standard_normal((8, 2, 6)), u, ["angry", "sad"])
        >>> head.inputs, head.shape
        ('mean', (2, 3, 2))
    """
    return fit_linear_head(X, [u.label for u in utterances], [u.corpus for u in utterances], labels, weight=weight,
                           strength=strength, rows="centred", inputs="mean")
