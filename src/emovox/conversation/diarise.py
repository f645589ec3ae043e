"""Who spoke when in a mono recording: speech (Silero VAD), a speaker embedding per window, clusters.

:func:`diarise` finds the speech with :func:`emovox.audio.vad.speech_segments`, cuts every stretch
into windows of :data:`WINDOW` seconds that overlap by half (a shorter stretch is one window),
embeds each window with the GE2E encoder (:mod:`emovox.conversation.speaker`), and clusters the
embeddings with scikit-learn's agglomerative clustering (Ward linkage on the L2-normalised
embeddings, so on their cosine distance; on synthetic calls it beat average and complete linkage
and spectral clustering, ``benchmarks/bench_diarisation.py``). Windows shorter than
:data:`RELIABLE` seconds carry too little voice to be clustered; they join the nearest cluster
afterwards. With the speaker count not given, it is chosen between 2 and ``max_speakers`` by
the silhouette score (cosine); when the two halves of a 2-way split sound alike (centroids'
cosine over :data:`ONE_SPEAKER`) there is one speaker. Telling 2 from 3 voices of one
language and corpus is the weak point (see the benchmark); give ``speakers`` when it is known.
Every 0.1 s of speech then takes the speaker of the window centred nearest to it, and
runs shorter than :data:`MIN_TURN` join their neighbour, which gives the turns.

One voice at a time: where two people speak at once the mono signal gives one speaker (the
one the window sounds most like); the channel mode (:mod:`emovox.conversation.parties`) marks
overlaps.

Examples:
    >>> sliding_windows(0.0, 1.0)
    [(0.0, 1.0)]
    >>> sliding_windows(0.0, 3.0)
    [(0.0, 1.5), (0.75, 2.25), (1.5, 3.0)]
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from emovox.audio.load import SAMPLING_RATE
from emovox.audio.vad import VADSettings, speech_segments

WINDOW = 1.5  # seconds of speech per embedding
RELIABLE = 1.0  # shorter windows are assigned to clusters, not used to form them
ONE_SPEAKER = 0.92  # cosine of the two centroids of a 2-way split above which speakers:auto finds one voice
MIN_TURN = 0.5  # seconds: shorter runs of one speaker inside a stretch join their neighbour
STEP = 0.1  # seconds: the resolution of speaker changes inside a stretch of speech
MAX_SPEAKERS = 6


@dataclasses.dataclass(frozen=True)
class Turn:
    """A stretch of one speaker's speech; ``speaker`` counts from 0 in order of first appearance."""

    start: float
    end: float
    speaker: int


def sliding_windows(start: float, end: float, window: float = WINDOW) -> list[tuple[float, float]]:
    """Windows of ``window`` seconds, half overlapping, covering ``[start, end]`` (the last one
    ends at ``end``); a shorter stretch is one window."""
    if end - start <= window:
        return [(start, end)]
    n = math.ceil((end - start - window) / (window / 2) - 1e-9)
    starts = [start + k * (end - start - window) / n for k in range(n + 1)]
    return [(round(a, 3), round(a + window, 3)) for a in starts]


def choose_clusters(embeddings: np.ndarray, speakers: int | None = None, *, max_speakers: int = MAX_SPEAKERS) -> np.ndarray:
    """Cluster ids (0..k-1) of L2-normalised embeddings: ``speakers`` clusters, or as many (1 to
    ``max_speakers``) as the silhouette score prefers (1 when a 2-way split's halves sound alike).

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> a, b = rng.normal(size=16), rng.normal(size=16)
        >>> near = lambda centre: [centre + 0.1 * rng.normal(size=16) for _ in range(5)]
        >>> points = np.stack(near(a) + near(b))
        >>> choose_clusters(points).tolist()
        [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
        >>> choose_clusters(points[:5]).tolist()
        [0, 0, 0, 0, 0]
    """
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.metrics import silhouette_score

    n = len(embeddings)
    if n < 2 or speakers == 1:
        return np.zeros(n, int)

    def fit(k: int) -> np.ndarray:
        return AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(embeddings)

    if speakers is not None:
        return fit(min(speakers, n))
    two = fit(2)
    halves = np.stack([embeddings[two == c].mean(axis=0) for c in (0, 1)])
    halves /= np.maximum(np.linalg.norm(halves, axis=1, keepdims=True), 1e-8)
    if n < 4 or float(halves[0] @ halves[1]) > ONE_SPEAKER:
        return np.zeros(n, int)
    best, best_score = two, silhouette_score(embeddings, two, metric="cosine")
    for k in range(3, min(max_speakers, n - 1) + 1):
        ids = fit(k)
        score = silhouette_score(embeddings, ids, metric="cosine")
        if score > best_score:
            best, best_score = ids, score
    return best


def diarise(
    signal: np.ndarray,
    *,
    speakers: int | None = None,
    max_speakers: int = MAX_SPEAKERS,
    vad: VADSettings = VADSettings(),
    speech: list[tuple[float, float]] | None = None,
) -> list[Turn]:
    """The speaker turns of a 16 kHz mono recording, in time order.

    Args:
        signal: 16 kHz mono float32.
        speakers: how many speakers there are; None chooses 1 to ``max_speakers``.
        max_speakers: the most speakers ``speakers=None`` may find.
        vad: voice-activity settings.
        speech: the speech stretches ``(start, end)`` in seconds, if already found.

    Returns:
        :class:`Turn` s; none for a recording without speech.
    """
    stretches = speech_segments(signal, vad) if speech is None else list(speech)
    windows, embeddings = embed_speech(signal, stretches)
    if not windows:
        return []
    lengths = np.array([b - a for _, a, b in windows])
    reliable = lengths >= RELIABLE if (lengths >= RELIABLE).sum() >= 2 else np.ones(len(windows), bool)
    ids = choose_clusters(embeddings[reliable], speakers, max_speakers=max_speakers)
    centroids = np.stack([embeddings[reliable][ids == c].mean(axis=0) for c in range(ids.max() + 1)])
    return label_turns(stretches, windows, (embeddings @ centroids.T).argmax(axis=1))


def embed_speech(signal: np.ndarray, stretches: list[tuple[float, float]]) -> tuple[list[tuple[int, float, float]], np.ndarray]:
    """The windows ``(stretch index, start, end)`` of every stretch and their speaker embeddings."""
    from emovox.conversation.speaker import embed_windows

    windows = [(k, a, b) for k, (start, end) in enumerate(stretches) for a, b in sliding_windows(start, end)]
    clips = [signal[int(a * SAMPLING_RATE) : int(b * SAMPLING_RATE)] for _, a, b in windows]
    return windows, embed_windows(clips)


def label_turns(stretches: list[tuple[float, float]], windows: list[tuple[int, float, float]], assigned) -> list[Turn]:
    """Turns from each window's speaker: every :data:`STEP` of a stretch takes the speaker of the
    window centred nearest to it; speakers are renumbered in order of first appearance."""
    turns = []
    for k, (start, end) in enumerate(stretches):
        mine = [(i, (a + b) / 2) for i, (kk, a, b) in enumerate(windows) if kk == k]
        grid = np.arange(start, end, STEP)
        labels = [assigned[min(mine, key=lambda m: abs(m[1] - t - STEP / 2))[0]] for t in grid]
        turns += _runs(start, end, labels)
    order = {s: i for i, s in enumerate(dict.fromkeys(t.speaker for t in turns))}
    return [dataclasses.replace(t, speaker=order[t.speaker]) for t in turns]


def _runs(start: float, end: float, labels: list[int]) -> list[Turn]:
    """Turns from one label per :data:`STEP` of ``[start, end]``; short runs join a neighbour.

    Examples:
        >>> [(t.start, t.end, t.speaker) for t in _runs(0.0, 2.0, [0] * 8 + [1] * 2 + [0] * 10)]
        [(0.0, 2.0, 0)]
        >>> [(t.start, t.end, t.speaker) for t in _runs(0.0, 2.0, [0] * 10 + [1] * 10)]
        [(0.0, 1.0, 0), (1.0, 2.0, 1)]
    """
    runs: list[list] = []  # [label, steps]
    for label in labels:
        if runs and runs[-1][0] == label:
            runs[-1][1] += 1
        else:
            runs.append([label, 1])
    short = round(MIN_TURN / STEP)
    while len(runs) > 1 and min(r[1] for r in runs) < short:
        i = min(range(len(runs)), key=lambda j: runs[j][1])
        j = i - 1 if i == len(runs) - 1 or (i > 0 and runs[i - 1][1] >= runs[i + 1][1]) else i + 1
        runs[j][1] += runs[i][1]
        del runs[i]
        merged = []
        for r in runs:
            if merged and merged[-1][0] == r[0]:
                merged[-1][1] += r[1]
            else:
                merged.append(r)
        runs = merged
    out, t = [], start
    for n, (label, steps) in enumerate(runs):
        stop = end if n == len(runs) - 1 else round(t + steps * STEP, 3)
        out.append(Turn(round(t, 3), stop, int(label)))
        t = stop
    return out
