"""Fit an :class:`~emovox.training.head.EmotionHead` on cached features, with early stopping.

The loop follows SpeechBrain's split: :func:`compute_forward` gives logits (and arousal and
valence, for a multi-task head) for a batch and :func:`compute_objective` (plus
:func:`dimensions_objective`) the loss; :func:`fit_head` runs epochs, measures unweighted
accuracy (mean per-class recall) on the validation set after each, and keeps the best weights.

Multi-task (``FitConfig.dimensions_weight`` > 0): the head also learns arousal and valence. The
targets are the circumplex points of each row's label (:func:`class_points`, the table of
:mod:`emovox.conversation.dimensions`), the loss adds ``dimensions_weight`` times their squared
error (class-weighted like the cross-entropy, so a corpus of mostly neutral clips does not pull
every answer to the centre), and rows whose label has no point add nothing to it. The epoch is
still chosen by emotion UA (shared, ties go to the smaller validation error of arousal and
valence). With ``dimensions_shared=False`` that loss reaches only the dimensional layer: the
emotion path trains exactly as without it (the layer is initialised on a forked generator, so that
dropout draws the same masks, and ties of UA are broken as without it). Shared, on unseen
corpora, it cost 2.5 points of emotion UA; unshared, its arousal fell 2.6 points below the
table's and its valence rose 1.0 (``docs/conversations.md``).

Examples:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 40)
    >>> X = rng.normal(size=(80, 2, 6)).astype("float32") + 2 * y[:, None, None]
    >>> result = fit_head(X, y, X, y, n_classes=2, config=FitConfig(epochs=40, hidden=8, lr=1e-2))
    >>> result.best_val_ua > 0.9
    True
"""

from __future__ import annotations

import copy
import dataclasses
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import balanced_accuracy_score
from torch import nn

from emovox.training.head import EmotionHead, predict_dimensions, predict_logits
from emovox.training.voices import VoiceTable


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """Optimisation settings for one head."""

    epochs: int = 60
    patience: int = 12
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-2
    # 0.1 and 0.2 lost on every held-out corpus (cross-corpus 4-class mean UA 0.488 and 0.464
    # against 0.504 for none; two seed sets agree), for -1 point in-corpus (RAVDESS 6-fold)
    label_smoothing: float = 0.0
    hidden: int = 256
    dropout: float = 0.3
    layers: tuple[int, ...] | None = None  # encoder states the head reads (None: all, weighted)
    seed: int = 0
    # weight of KL(clean prediction || prediction on an augmented copy of the same clip), when
    # fit_head gets the copies paired with their clips (0: copies are just more training rows)
    consistency: float = 0.0
    # weight of the arousal/valence squared error (a dimensional output on the head, targets from
    # the circumplex points of the labels: see the module docstring); 0: no dimensional output
    dimensions_weight: float = 0.0
    # True: the arousal/valence loss trains the shared layers too (multi-task); False: only the
    # dimensional output learns, on the hidden layer the emotion loss alone shapes, so that the
    # emotion logits are exactly those of a head trained without it
    dimensions_shared: bool = True
    # mixup (Zhang et al. 2018): each batch is mixed with a shuffled copy of itself, weight drawn from
    # Beta(mixup, mixup), and the loss mixed likewise; rows of a batch come from every training corpus,
    # so most pairs mix two corpora's voices (0: none)
    mixup: float = 0.0
    # weight of a corpus adversary (Ganin & Lempitsky 2015): a linear classifier of the training row's
    # corpus reads the hidden layer through a gradient reversal, so the layer learns to hide which
    # corpus a clip came from (0: none; needs the rows' domains in fit_head)
    adversary: float = 0.0
    # probability that a training row, in each batch, is moved into another training speaker's voice
    # (emovox.training.voices; needs the rows' voices in fit_head); 0: none
    voice_swap: float = 0.0
    # 0: a swapped row moves into another training speaker's voice; > 0: into a new voice drawn from a
    # Gaussian with the training voices' mean and this times their spread (VoiceTable.draw)
    voice_spread: float = 0.0
    # nuisance attribute projection: the directions of largest spread between the training speakers'
    # class-balanced means (in the head's standardised input, every state's pooled vector a sample) are
    # projected out of the mixed input while the head trains, then folded into its first layer, so that
    # a speaker's (and corpus's, language's) offset along them cannot move the answer (needs the rows'
    # voices in fit_head); 0: none
    nuisance_dims: int = 0

    def __post_init__(self):
        if self.mixup < 0 or self.adversary < 0:
            raise ValueError(f"mixup and adversary are non-negative weights, got {self.mixup}, {self.adversary}")
        if not 0.0 <= self.voice_swap <= 1.0:
            raise ValueError(f"voice_swap is a probability, got {self.voice_swap}")
        if self.voice_spread < 0 or (self.voice_spread and not self.voice_swap):
            raise ValueError(f"voice_spread is a non-negative scale of the voices drawn by voice_swap (> 0), got "
                             f"voice_spread {self.voice_spread} with voice_swap {self.voice_swap}")
        if self.nuisance_dims < 0:
            raise ValueError(f"nuisance_dims counts directions and is non-negative, got {self.nuisance_dims}")
        if self.mixup and self.dimensions_weight:
            raise ValueError("mixup does not mix the arousal/valence targets: use one or the other")


@dataclasses.dataclass
class FitResult:
    head: EmotionHead
    best_val_ua: float
    best_epoch: int
    history: list[dict]


def class_weights(y: np.ndarray, n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights (mean 1 over present classes); absent classes get 0."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / (counts > 0).sum(), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


def class_points(labels: list[str]) -> np.ndarray:
    """The circumplex (arousal, valence) of each label, ``(len(labels), 2)``; NaN for a label
    without a point (:data:`emovox.conversation.dimensions.CIRCUMPLEX`).

    Examples:
        >>> class_points(["angry", "joy"]).round(2).tolist()
        [[0.8, -0.6], [nan, nan]]
    """
    from emovox.conversation.dimensions import CIRCUMPLEX  # at call time: the package imports prediction

    return np.array([CIRCUMPLEX.get(label, (np.nan, np.nan)) for label in labels], dtype=np.float64)


def compute_forward(head: EmotionHead, features: torch.Tensor, *,
                    shared: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logits and (arousal, valence) (None without the dimensional output) for a batch;
    ``shared=False``: the latter's loss does not reach the layers the logits share with it."""
    return head.outputs(features, detach=not shared)


def dimensions_objective(dims: torch.Tensor, targets: torch.Tensor, points: torch.Tensor,
                         row_weights: torch.Tensor) -> torch.Tensor:
    """Weighted mean squared error of ``dims`` ``(b, 2)`` against the ``points`` ``(n_classes, 2)``
    of the rows' classes; rows of a class without a point (NaN) count for nothing."""
    goal = points[targets]
    known = ~torch.isnan(goal[:, 0])
    w = row_weights * known
    if not bool(w.sum() > 0):
        return dims.sum() * 0.0
    error = ((dims - torch.nan_to_num(goal)) ** 2).mean(1)
    return (error * w).sum() / w.sum()


def compute_objective(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor, smoothing: float,
                      sample_weights: torch.Tensor | None = None, candidates: torch.Tensor | None = None) -> torch.Tensor:
    """Class-weighted, label-smoothed cross-entropy; ``sample_weights`` scale each row (as
    PyTorch's weighted mean: the sum over rows divided by the rows' total weight).

    ``candidates`` (``(b, n_classes)`` bool, for rows whose label is a candidate set, e.g. "one of
    the high-arousal emotions"): each row's loss is minus the log of the probability its candidates
    hold together, weighted by their mean class weight; a row with one candidate is the plain
    cross-entropy (``targets`` are then not read). No smoothing with candidates.

    Examples:
        >>> z, w = torch.tensor([[2.0, 0.0, -1.0]]), torch.ones(3)
        >>> one = torch.tensor([[True, False, False]])
        >>> bool(torch.isclose(compute_objective(z, torch.tensor([0]), w, 0.0),
        ...                    compute_objective(z, torch.tensor([0]), w, 0.0, candidates=one)))
        True
        >>> both = torch.tensor([[True, True, False]])  # either of the first two: only the third is wrong
        >>> round(float(compute_objective(z, torch.tensor([0]), w, 0.0, candidates=both)), 4)
        0.0429
    """
    if candidates is not None:
        if smoothing:
            raise ValueError("label smoothing is not defined for candidate-set labels")
        held = torch.logsumexp(logits.masked_fill(~candidates, float("-inf")), -1)
        losses = torch.logsumexp(logits, -1) - held
        rows = (candidates * weights).sum(1) / candidates.sum(1)
        if sample_weights is not None:
            rows = rows * sample_weights
        return (losses * rows).sum() / rows.sum()
    if sample_weights is None:
        return F.cross_entropy(logits, targets, weight=weights, label_smoothing=smoothing)
    losses = F.cross_entropy(logits, targets, weight=weights, label_smoothing=smoothing, reduction="none")
    return (losses * sample_weights).sum() / (weights[targets] * sample_weights).sum()


def group_balance_weights(groups: np.ndarray, power: float = 1.0) -> np.ndarray:
    """Per-row weights, mean 1, that give every group (e.g. corpus) the same total weight
    (``power`` 1), or a total that grows as its row count to the ``1 - power`` (0.5: as the square
    root; 0: every row 1).

    Examples:
        >>> group_balance_weights(np.array(["a", "a", "a", "b"])).tolist()
        [0.6666666666666666, 0.6666666666666666, 0.6666666666666666, 2.0]
        >>> w = group_balance_weights(np.array(["a"] * 4 + ["b"]), power=0.5)
        >>> round(float(w[:4].sum() / w[4:].sum()), 6)  # sqrt(4) against sqrt(1)
        2.0
    """
    _, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    weights = counts[inverse].astype(np.float64) ** -float(power)
    return weights * (len(groups) / weights.sum())


def corpus_label_weights(y: np.ndarray, corpora: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-row weights that, times :func:`class_weights` of ``y``, give every label the same total
    over all corpora (as the class weights alone do) and every corpus the same mix of the labels it
    has: each label of a corpus first weighs the same within it (the corpus keeps its share of
    rows), then one factor per label, the same in every corpus, evens the labels' totals. A corpus
    recorded mostly in one emotion (EmoSpeech: 49 % calm) then no longer teaches its channel or
    language as that emotion.

    Examples:
        >>> y, corpora = np.array([0, 0, 0, 1, 0, 1]), np.array(["a", "a", "a", "a", "b", "b"])
        >>> rows = corpus_label_weights(y, corpora, 2) * class_weights(y, 2).numpy()[y]
        >>> [round(float(rows[(corpora == c) & (y == k)].sum() / rows.sum()), 3) for c in "ab" for k in (0, 1)]
        [0.333, 0.333, 0.167, 0.167]
    """
    y, corpora = np.asarray(y), np.asarray(corpora)
    if (y < 0).any():
        raise ValueError("corpus_label_weights needs one label a row (no candidate sets)")
    keys = np.char.add(np.char.add(corpora.astype(str), "\x00"), y.astype(str))
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    per_corpus = {c: (len(y[corpora == c]), len(np.unique(y[corpora == c]))) for c in np.unique(corpora)}
    share = np.array([per_corpus[c][0] / per_corpus[c][1] for c in corpora]) / counts[inverse]
    totals = np.bincount(y, weights=share, minlength=n_classes)  # each label's total over corpora
    rows = share / totals[y]  # every label the same total
    rows = rows * (len(y) / rows.sum())
    return rows / class_weights(y, n_classes).numpy()[y]


def fit_head(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray | None,
    y_val: np.ndarray | None,
    *,
    n_classes: int,
    config: FitConfig = FitConfig(),
    sample_weights: np.ndarray | None = None,
    copies: np.ndarray | None = None,
    points: np.ndarray | None = None,
    domains: np.ndarray | None = None,
    voices: VoiceTable | None = None,
    candidates: np.ndarray | None = None,
    progress=None,
) -> FitResult:
    """Train a head; validation UA picks the epoch (or the last epoch without validation).
    ``sample_weights`` (one per training row, e.g. :func:`group_balance_weights` of the rows'
    corpora) scale each row's loss on top of the class weights.

    ``copies`` ``(k, len(X_train), ...)``: augmented copies paired with their training rows.
    Each step then sees a batch of clips and one random copy of each; the loss is both
    cross-entropies plus ``config.consistency`` times the KL divergence from the clip's
    (fixed) prediction to the copy's, which teaches the head to answer the same under noise.

    ``domains`` (one label per training row, e.g. its corpus): what the adversary of
    ``config.adversary`` learns to tell apart (its loss weighs every domain the same).

    ``voices`` (a :class:`~emovox.training.voices.VoiceTable` of the training rows): the speakers'
    means that ``config.voice_swap`` moves rows between.

    ``candidates`` (``(len(X_train), n_classes)`` bool): each training row's candidate set, for
    labels that name several emotions (:func:`emovox.corpora.labels.candidates`); such rows have
    ``y_train`` -1, a row with one candidate its class. Class weights count the single-label rows;
    the loss is :func:`compute_objective`'s. Validation rows have single labels.

    Runs on one thread: the head is small, and extra threads only contend with other work.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _fit(X_train, y_train, X_val, y_val, n_classes=n_classes, config=config, progress=progress,
                    sample_weights=sample_weights, copies=copies, points=points, domains=domains, voices=voices,
                    candidates=candidates)
    finally:
        torch.set_num_threads(threads)


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by ``-scale`` (the adversary's reversal)."""

    @staticmethod
    def forward(ctx, x, scale: float):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.scale * grad, None


def adversary_ramp(progress: float) -> float:
    """The reversal's scale at ``progress`` (0 to 1) through training: 0 at the start, rising to
    nearly 1, so that the adversary first learns what to tell apart (Ganin & Lempitsky's schedule).

    Examples:
        >>> [round(adversary_ramp(p), 2) for p in (0.0, 0.1, 0.5, 1.0)]
        [0.0, 0.46, 0.99, 1.0]
    """
    return float(2.0 / (1.0 + np.exp(-10.0 * progress)) - 1.0)


def _fit(X_train, y_train, X_val, y_val, *, n_classes, config, progress, sample_weights=None, copies=None,
         points=None, domains=None, voices=None, candidates=None) -> FitResult:
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    X_train = np.ascontiguousarray(X_train, dtype=np.float32)
    multitask = config.dimensions_weight > 0
    if multitask and (points is None or np.shape(points) != (n_classes, 2)):
        raise ValueError(f"dimensions_weight > 0 needs points (n_classes, 2) = ({n_classes}, 2), got "
                         f"{None if points is None else np.shape(points)}")
    head = EmotionHead(X_train.shape[1], X_train.shape[2], n_classes, hidden=config.hidden, dropout=config.dropout,
                       layers=config.layers, dimensions=multitask)
    if copies is not None:
        copies = torch.from_numpy(np.ascontiguousarray(copies, dtype=np.float32))
        if copies.shape[1:] != X_train.shape:
            raise ValueError(f"copies {tuple(copies.shape)} do not pair with training rows {X_train.shape}")
        head.set_normalization(torch.cat([torch.from_numpy(X_train), copies.flatten(0, 1)]))
    else:
        head.set_normalization(torch.from_numpy(X_train))
    adversary, dt, domain_weights = None, None, None
    if config.adversary:
        if domains is None or len(domains) != len(X_train):
            raise ValueError("adversary > 0 needs one domain per training row (domains)")
        names, codes = np.unique(np.asarray(domains), return_inverse=True)
        if len(names) < 2:
            raise ValueError("the corpus adversary (--adversary) needs at least two training corpora (domains), "
                             f"got {list(names)}")
        with torch.random.fork_rng(devices=[]):  # the head's own initialisation and dropout as without it
            adversary = nn.Linear(config.hidden, len(names))
        dt = torch.from_numpy(codes.astype(np.int64))
        domain_weights = class_weights(codes, len(names))
    if (config.voice_swap or config.nuisance_dims) and (voices is None or len(voices.rows) != len(X_train)):
        raise ValueError("voice_swap or nuisance_dims > 0 needs the training rows' voices (a VoiceTable of X_train)")
    if config.nuisance_dims:
        if len(voices.means) < 2:
            raise ValueError(f"nuisance_dims {config.nuisance_dims} needs at least two usable voices among the "
                             f"training rows (speakers with 10+ clips of 3+ labels), got {len(voices.means)}")
        head.nuisance = nuisance_directions(head, voices.means, config.nuisance_dims)
    if (config.mixup or config.adversary) and copies is not None:
        raise ValueError("mixup and the adversary do not take paired copies (consistency): give copies as rows")
    ct = None
    if candidates is not None:
        ct = _candidate_tensor(candidates, y_train, n_classes, config)
    params = list(head.parameters()) + ([] if adversary is None else list(adversary.parameters()))
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs)
    weights = class_weights(np.asarray(y_train)[np.asarray(y_train) >= 0], n_classes)
    Xt, yt = torch.from_numpy(X_train), torch.from_numpy(np.asarray(y_train, dtype=np.int64))
    st = None if sample_weights is None else torch.as_tensor(np.asarray(sample_weights), dtype=torch.float32)
    pt = torch.as_tensor(np.asarray(points, dtype=np.float32)) if multitask else None

    def objective(batch: torch.Tensor, targets: torch.Tensor, row_weights: torch.Tensor | None,
                  sets: torch.Tensor | None = None):
        """The batch's logits and loss (cross-entropy, plus the weighted dimensional error)."""
        logits, dims = compute_forward(head, batch, shared=config.dimensions_shared)
        loss = compute_objective(logits, targets, weights, config.label_smoothing, row_weights, sets)
        if dims is not None:
            rows = weights[targets] * (1.0 if row_weights is None else row_weights)
            loss = loss + config.dimensions_weight * dimensions_objective(dims, targets, pt, rows)
        return logits, loss

    best, best_ua, best_epoch, history, stale = None, -1.0, -1, [], 0
    # validation arousal/valence error breaks ties of UA, when the output shares the emotion layers;
    # unshared, the epoch is chosen as without it, so the emotion path stays exactly the same
    best_error = float("inf")
    for epoch in range(config.epochs):
        head.train()
        perm = rng.permutation(len(Xt))
        total = 0.0
        for i in range(0, len(perm), config.batch_size):
            idx = torch.from_numpy(perm[i : i + config.batch_size])
            row_weights = None if st is None else st[idx]
            batch = Xt[idx]
            if config.voice_swap:
                batch = torch.from_numpy(voices.swap(batch.numpy(), idx.numpy(), p=config.voice_swap, rng=rng,
                                                       spread=config.voice_spread))
            if config.mixup or adversary is not None:
                loss = _regularised_loss(head, adversary, batch, yt[idx], None if dt is None else dt[idx],
                                         row_weights, weights, domain_weights, config, rng,
                                         adversary_ramp((epoch + i / len(perm)) / config.epochs))
            else:
                sets = None if ct is None else ct[idx]
                logits, loss = objective(batch, yt[idx], row_weights, sets)
                if copies is not None:
                    pick = torch.from_numpy(rng.integers(0, len(copies), len(idx)))
                    noisy, noisy_loss = objective(copies[pick, idx], yt[idx], row_weights, sets)
                    loss = loss + noisy_loss
                    if config.consistency:
                        loss = loss + config.consistency * F.kl_div(F.log_softmax(noisy, -1),
                                                                    F.softmax(logits, -1).detach(), reduction="batchmean")
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        record = {"epoch": epoch, "train_loss": total / len(perm)}
        if X_val is not None and len(X_val):
            with warnings.catch_warnings():  # a validation speaker may lack a class: expected
                warnings.simplefilter("ignore", UserWarning)
                ua = balanced_accuracy_score(y_val, predict_logits(head, X_val).argmax(1))
            record["val_ua"] = float(ua)
            if multitask:
                record["val_dims_mse"] = _dimensions_error(head, X_val, y_val, pt)
        else:
            ua = float(epoch)  # no validation: keep the last epoch
        history.append(record)
        if progress:
            progress(record)
        error = record.get("val_dims_mse", float("inf")) if config.dimensions_shared else float("inf")
        if ua > best_ua or (ua == best_ua and error < best_error):  # a tie: the epoch whose dims are closer
            best, best_ua, best_epoch, stale = copy.deepcopy(head.state_dict()), ua, epoch, 0
            best_error = error
        else:
            stale += 1
            if stale >= config.patience:
                break
    head.load_state_dict(best)
    head.fold_nuisance()
    head.eval()
    return FitResult(head, best_ua if X_val is not None else float("nan"), best_epoch, history)


def nuisance_directions(head: EmotionHead, voice_means: np.ndarray, k: int) -> torch.Tensor:
    """The ``k`` orthonormal directions ``(dim, k)`` of largest spread between ``voice_means``
    ``(voices, n_states, ...)`` in ``head``'s standardised input: each voice's vector of each state the
    head reads, centred on that state's mean over voices, is one sample of the spread.

    Examples:
        >>> head = EmotionHead(n_states=1, dim=3, n_classes=2, hidden=4)
        >>> means = np.array([[[0.0, 0.0, 0.0]], [[0.0, 5.0, 0.0]], [[0.0, 1.0, 0.1]]], dtype="float32")
        >>> nuisance_directions(head, means, 1).abs().round(decimals=1).flatten().tolist()
        [0.0, 1.0, 0.0]
    """
    means = torch.as_tensor(np.asarray(voice_means, dtype=np.float32))
    if head.config.inputs == "mean":
        means = means[..., : head.config.dim]
    z = (means[:, head.layer_index] - head.feature_mean) / head.feature_std
    z = (z - z.mean(0)).reshape(-1, z.shape[-1]).double()
    if len(means) < 2 or k > min(z.shape):
        raise ValueError(f"{k} nuisance directions need at least two voices and at most min(samples, dim) = "
                         f"{min(z.shape)} directions; got {len(means)} voices")
    _, _, vh = torch.linalg.svd(z, full_matrices=False)
    return vh[:k].T.contiguous().float()


def _candidate_tensor(candidates: np.ndarray, y_train: np.ndarray, n_classes: int, config: FitConfig) -> torch.Tensor:
    """``candidates`` checked against the single labels and the options that need one label a row."""
    candidates = np.asarray(candidates, dtype=bool)
    y = np.asarray(y_train)
    if candidates.shape != (len(y), n_classes):
        raise ValueError(f"candidates {candidates.shape} must be (training rows, classes) = ({len(y)}, {n_classes})")
    single = candidates.sum(1) == 1
    if not candidates.any(1).all() or (y[~single] != -1).any() or (candidates[single].argmax(1) != y[single]).any():
        raise ValueError("candidates must name each single-label row's class and at least one class for the "
                         "others, whose labels are -1")
    needs_one = [name for name, on in (("mixup", config.mixup), ("adversary", config.adversary),
                                       ("voice_swap", config.voice_swap), ("nuisance_dims", config.nuisance_dims),
                                       ("dimensions_weight", config.dimensions_weight),
                                       ("label_smoothing", config.label_smoothing)) if on]
    if needs_one:
        raise ValueError(f"candidate-set labels do not combine with {', '.join(needs_one)} (each needs one label a row)")
    return torch.from_numpy(candidates)


def _regularised_loss(head: EmotionHead, adversary: nn.Linear | None, batch: torch.Tensor, targets: torch.Tensor,
                      domains: torch.Tensor | None, row_weights: torch.Tensor | None, weights: torch.Tensor,
                      domain_weights: torch.Tensor | None, config: FitConfig, rng: np.random.Generator,
                      scale: float) -> torch.Tensor:
    """One batch's loss with mixup and/or the corpus adversary: the (mixed) cross-entropy, plus
    ``config.adversary`` times the adversary's cross-entropy on the reversed hidden layer (its
    targets mixed like the emotions')."""
    lam, other = 1.0, None
    if config.mixup:
        lam = float(rng.beta(config.mixup, config.mixup))
        other = torch.from_numpy(rng.permutation(len(batch)))
        batch = lam * batch + (1.0 - lam) * batch[other]
    hidden = head.hidden(batch)
    logits = head.mlp[-1](hidden)

    def mixed(loss_of) -> torch.Tensor:
        return loss_of(slice(None)) if other is None else lam * loss_of(slice(None)) + (1.0 - lam) * loss_of(other)

    loss = mixed(lambda rows: compute_objective(logits, targets[rows], weights, config.label_smoothing,
                                                None if row_weights is None else row_weights[rows]))
    if adversary is not None:
        guess = adversary(_ReverseGradient.apply(hidden, scale))
        loss = loss + config.adversary * mixed(lambda rows: F.cross_entropy(guess, domains[rows], weight=domain_weights))
    return loss


@torch.no_grad()
def _dimensions_error(head: EmotionHead, X: np.ndarray, y: np.ndarray, points: torch.Tensor) -> float:
    """Class-balanced mean squared error of ``head``'s arousal and valence on ``X`` against the
    points of the classes ``y`` (rows without a point left out)."""
    dims = torch.from_numpy(predict_dimensions(head, X))
    targets = torch.as_tensor(np.asarray(y, dtype=np.int64))
    counts = torch.bincount(targets, minlength=len(points)).clamp_min(1).to(torch.float32)
    return float(dimensions_objective(dims, targets, points, 1.0 / counts[targets]))
