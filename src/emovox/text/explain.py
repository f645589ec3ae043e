"""A short, factual explanation of one decision: what the voice and the words show.

Three kinds of evidence, each measured, none inferred:

* **acoustic**: the audio model's top classes, their probabilities, and the margin between
  the first two;
* **prosody**: median pitch over voiced frames (:func:`yin`), the voiced fraction, and the
  speech level in dBFS (:func:`measure_prosody`); given a neutral clip of the same speaker,
  pitch in semitones and level in dB relative to it. Without one, the absolute numbers are
  reported and the explanation says that no speaker reference was given: there is no
  population norm to compare a voice with;
* **words** (with a transcript and a text model): leave-one-word-out occlusion
  (:func:`word_evidence`), the words whose removal lowers the text branch's top non-neutral
  label the most.

:func:`explain` gathers them into an :class:`Explanation` with ``to_dict()`` (JSON) and
``sentence()`` (one line for people). NumPy only; the text model brings its own encoder.

Examples:
    >>> from emovox.testing import voice
    >>> x = voice(3.0, f0=220.0, seed=1)
    >>> e = explain({"angry": 0.62, "happy": 0.21, "sad": 0.17}, x, 16000, reference=measure_prosody(0.5 * x, 16000))
    >>> e.sentence()
    "Predicted angry (0.62; next: happy 0.21). Pitch +0.0 semitones and energy +6.0 dB relative to
    the speaker's neutral reference."
    >>> e.to_dict()["acoustic"]["margin"]
    0.41
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np

FMIN, FMAX = 60.0, 600.0  # the pitch range searched, Hz: low male to high, excited female/child voices
HOP = 0.01  # seconds between analysis frames
SPEECH_RANGE_DB = 30.0  # frames this far below the loudest (95th percentile) count as pauses
SILENCE_DBFS = -70.0  # frames below this never count as speech
MIN_WORD_DELTA = 0.01  # a word whose removal changes the text probability less than this did not move it


@dataclasses.dataclass
class Prosody:
    """Pitch and level of one signal.

    Attributes:
        f0_hz: median fundamental frequency over voiced frames; None when no frame is voiced.
        voiced_fraction: share of the speech frames that are voiced, in [0, 1].
        energy_dbfs: RMS level of the speech frames, ``20 log10(rms)`` with full scale 1.0.
    """

    f0_hz: float | None
    voiced_fraction: float
    energy_dbfs: float

    def to_dict(self) -> dict:
        return {"f0_hz": None if self.f0_hz is None else round(self.f0_hz, 1),
                "voiced_fraction": round(self.voiced_fraction, 3), "energy_dbfs": round(self.energy_dbfs, 2)}


@dataclasses.dataclass
class TextEvidence:
    """What the words say: the text branch's top non-neutral label and the words behind it.

    Attributes:
        label: the text branch's most probable label other than neutral.
        probability: its probability for the whole transcript.
        words: ``(word, delta)``, largest first: removing ``word`` lowers ``probability`` by ``delta``.
        neutral: the text branch's probability of neutral (0 when it has no neutral label).
    """

    label: str
    probability: float
    words: list[tuple[str, float]]
    neutral: float = 0.0

    def to_dict(self) -> dict:
        return {"label": self.label, "probability": round(self.probability, 3), "neutral": round(self.neutral, 3),
                "words": [{"word": w, "delta": round(d, 3)} for w, d in self.words]}


@dataclasses.dataclass
class Explanation:
    """The evidence behind one decision (see the module docstring).

    Attributes:
        label: the decision (the fused one when words were fused in; ``"unknown"`` on abstention).
        scores: the decision's probabilities.
        audio_scores: the audio model's own probabilities (equal to ``scores`` without fusion).
        prosody: the clip's pitch and level.
        reference: the same for the speaker's neutral reference, if one was given.
        text: the word evidence, if there was a transcript and a text model.
        note: why there is no word evidence, when there was a transcript but none came out.
    """

    label: str
    scores: dict[str, float]
    audio_scores: dict[str, float]
    prosody: Prosody
    reference: Prosody | None = None
    text: TextEvidence | None = None
    note: str | None = None

    def relative(self) -> dict[str, float | None] | None:
        """Pitch in semitones and level in dB relative to the reference (None without one)."""
        if self.reference is None:
            return None
        pitch = None
        if self.prosody.f0_hz is not None and self.reference.f0_hz is not None:
            pitch = semitones(self.prosody.f0_hz, self.reference.f0_hz)
        return {"pitch_semitones": pitch, "energy_db": self.prosody.energy_dbfs - self.reference.energy_dbfs}

    def to_dict(self) -> dict:
        top = top_classes(self.audio_scores)
        relative = self.relative()
        return {
            "label": self.label,
            "probability": None if self.label not in self.scores else round(self.scores[self.label], 3),
            "acoustic": {"top": [{"label": l, "probability": round(p, 3)} for l, p in top],
                         "margin": round(top[0][1] - top[1][1], 3) if len(top) > 1 else None},
            "prosody": self.prosody.to_dict(),
            "reference": None if self.reference is None else self.reference.to_dict(),
            "relative": None if relative is None else {k: None if v is None else round(v, 2) for k, v in relative.items()},
            "text": None if self.text is None else self.text.to_dict(),
            "note": self.note,
            "sentence": self.sentence(),
        }

    def sentence(self) -> str:
        """One to three factual sentences: decision, prosody, and the words if any."""
        return " ".join(filter(None, [self._decision(), self._prosody(), self._words()]))

    def _decision(self) -> str:
        top = top_classes(self.scores)
        runner_up = f"; next: {top[1][0]} {top[1][1]:.2f}" if len(top) > 1 else ""
        if self.label not in self.scores:
            out = f"No decision ({self.label}): the top class {top[0][0]} has only {top[0][1]:.2f}{runner_up}."
        else:
            out = f"Predicted {self.label} ({self.scores[self.label]:.2f}{runner_up})."
        audio = top_classes(self.audio_scores, 1)[0]
        if audio[0] != top[0][0]:
            out += f" The voice alone said {audio[0]} ({audio[1]:.2f})."
        return out

    def _prosody(self) -> str:
        relative = self.relative()
        if relative is not None:
            pitch = ("pitch not measurable" if relative["pitch_semitones"] is None
                     else f"Pitch {relative['pitch_semitones']:+.1f} semitones")
            return f"{pitch} and energy {relative['energy_db']:+.1f} dB relative to the speaker's neutral reference."
        p = self.prosody
        pitch = ("No voiced frames" if p.f0_hz is None
                 else f"Median pitch {p.f0_hz:.0f} Hz (voiced {100 * p.voiced_fraction:.0f} % of speech)")
        return f"{pitch}, energy {p.energy_dbfs:.1f} dBFS; no speaker reference was given."

    def _words(self) -> str:
        if self.text is None:
            return f"No word evidence: {self.note}." if self.note else ""
        t = self.text
        if t.neutral >= t.probability:  # neutral wording: which words nudged a minor label is no evidence
            return f"The text branch reads the words as neutral ({t.neutral:.2f})."
        if not t.words:
            return f"No single word moved the text branch toward {t.label} ({t.probability:.2f})."
        quoted = [f"'{w}'" for w, _ in t.words]
        listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]
        noun = "word" if len(quoted) == 1 else "words"
        return f"The {noun} {listed} moved the text branch toward {t.label} ({t.probability:.2f})."


def top_classes(scores: Mapping[str, float], k: int = 3) -> list[tuple[str, float]]:
    """The ``k`` most probable ``(label, probability)``, largest first.

    Examples:
        >>> top_classes({"sad": 0.1, "angry": 0.6, "happy": 0.3}, 2)
        [('angry', 0.6), ('happy', 0.3)]
    """
    return sorted(((l, float(p)) for l, p in scores.items()), key=lambda lp: -lp[1])[:k]


def semitones(f0: float, reference: float) -> float:
    """Pitch difference in semitones, ``12 log2(f0 / reference)``.

    Examples:
        >>> semitones(220.0, 110.0)
        12.0
    """
    return 12.0 * math.log2(f0 / reference)


def yin(signal: np.ndarray, sampling_rate: int, *, fmin: float = FMIN, fmax: float = FMAX, hop: float = HOP,
        threshold: float = 0.15, voicing: float = 0.3) -> np.ndarray:
    """Frame-wise F0 by YIN (de Cheveigné & Kawahara, JASA 2002); NaN where a frame is unvoiced.

    Per frame, the difference function ``d(tau) = sum_j (x_j - x_{j+tau})^2`` over a window
    of two periods of ``fmin`` (computed with one FFT), normalised by its running mean
    (``d'``); the period is the first local minimum of ``d'`` below ``threshold`` (else the
    global minimum), refined by parabolic interpolation. A frame is voiced when ``d'`` there
    is below ``voicing``.

    Args:
        signal: 1-D signal.
        sampling_rate: its rate in Hz.
        fmin: lowest pitch searched, Hz.
        fmax: highest pitch searched, Hz.
        hop: seconds between frames.
        threshold: the absolute threshold of the dip search.
        voicing: largest ``d'`` (aperiodicity) of a voiced frame.

    Returns:
        ``float64`` F0 in Hz, one per frame (frame ``i`` starts at ``i * hop`` seconds).

    Examples:
        >>> from emovox.testing import sinusoid
        >>> f0 = yin(sinusoid(200.0, 0.5), 16000)
        >>> round(float(np.nanmedian(f0)), 1)
        200.0
    """
    x = np.asarray(signal, dtype=np.float64)
    tau_min, tau_max = max(2, int(sampling_rate / fmax)), math.ceil(sampling_rate / fmin)
    frames = _frames(x, 3 * tau_max + 1, max(1, round(hop * sampling_rate)))
    chunks = [_yin_frames(frames[i : i + 512], sampling_rate, tau_min, tau_max, threshold, voicing)
              for i in range(0, len(frames), 512)]  # 512 frames at a time bound the FFT buffers
    return np.concatenate(chunks)


def _yin_frames(frames: np.ndarray, sampling_rate: int, tau_min: int, tau_max: int, threshold: float,
                voicing: float) -> np.ndarray:
    """:func:`yin` on ``(n, 3 tau_max + 1)`` frames: a window of ``2 tau_max`` samples, lags up to ``tau_max``."""
    width = 2 * tau_max
    n_fft = 1 << math.ceil(math.log2(frames.shape[1] + width))
    spectrum = np.fft.rfft(frames, n_fft)
    head = np.fft.rfft(frames[:, :width], n_fft)
    acf = np.fft.irfft(np.conj(head) * spectrum, n_fft)[:, : tau_max + 1]  # sum_j x_j x_{j+tau}
    power = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames**2, axis=1)], axis=1)
    energy = power[:, width : width + tau_max + 1] - power[:, : tau_max + 1]  # sum_j x_{j+tau}^2
    diff = np.maximum(energy[:, :1] + energy - 2.0 * acf, 0.0)
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] * np.arange(1, tau_max + 1) / np.maximum(np.cumsum(diff[:, 1:], axis=1), 1e-12)
    lags = np.arange(tau_min, tau_max)
    f0 = np.full(len(frames), np.nan)
    for i, d in enumerate(cmnd):
        dips = lags[(d[lags] < threshold) & (d[lags] <= d[lags - 1]) & (d[lags] <= d[lags + 1])]
        tau = int(dips[0]) if dips.size else tau_min + int(np.argmin(d[tau_min:tau_max]))
        if d[tau] >= voicing or energy[i, 0] <= 0.0:
            continue
        a, b, c = d[tau - 1], d[tau], d[tau + 1]
        bend = a - 2.0 * b + c
        shift = 0.5 * (a - c) / bend if bend > 0 else 0.0
        f0[i] = sampling_rate / (tau + float(np.clip(shift, -1.0, 1.0)))
    return f0


def measure_prosody(signal: np.ndarray, sampling_rate: int, *, fmin: float = FMIN, fmax: float = FMAX) -> Prosody:
    """Median pitch, voiced fraction and speech level of a signal.

    Speech frames are those within ``SPEECH_RANGE_DB`` of the loudest frames (the 95th
    percentile, so one click does not set the scale) and above ``SILENCE_DBFS``; pauses and
    leading silence do not dilute the level. The level is relative, so scaling a clip by 2
    raises it by exactly 6.02 dB.

    Args:
        signal: 1-D signal.
        sampling_rate: its rate in Hz.
        fmin: lowest pitch searched, Hz.
        fmax: highest pitch searched, Hz.

    Examples:
        >>> from emovox.testing import voice
        >>> x = voice(3.0, f0=150.0, seed=2)
        >>> p, q = measure_prosody(x, 16000), measure_prosody(2 * x, 16000)
        >>> abs(p.f0_hz / 150.0 - 1) < 0.03, round(q.energy_dbfs - p.energy_dbfs, 2)
        (True, 6.02)
    """
    x = np.asarray(signal, dtype=np.float64)
    f0 = yin(x, sampling_rate, fmin=fmin, fmax=fmax)
    length, hop = 3 * math.ceil(sampling_rate / fmin) + 1, max(1, round(HOP * sampling_rate))
    power = np.concatenate([[0.0], np.cumsum(np.pad(x, (0, max(0, length - len(x)))) ** 2)])
    starts = np.arange(len(f0)) * hop
    mean_square = (power[starts + length] - power[starts]) / length  # per frame yin analysed
    level = 10.0 * np.log10(np.maximum(mean_square, 1e-20))
    speech = level > max(np.percentile(level, 95) - SPEECH_RANGE_DB, SILENCE_DBFS)
    if not speech.any():
        return Prosody(None, 0.0, float(10.0 * np.log10(max(float(np.mean(x**2)), 1e-20))))
    voiced = speech & np.isfinite(f0)
    return Prosody(f0_hz=float(np.median(f0[voiced])) if voiced.any() else None,
                   voiced_fraction=float(voiced.sum() / speech.sum()),
                   energy_dbfs=float(10.0 * np.log10(np.mean(mean_square[speech]))))


def word_evidence(text_model, transcript: str, language: str | None = None, *, top: int = 3,
                  max_words: int = 200) -> TextEvidence | None:
    """Leave-one-word-out occlusion on the text branch.

    The transcript and each copy without one of its words go through the text model in one
    batch; a word's ``delta`` is how much its removal lowers the probability of the text
    branch's top non-neutral label. Words with ``delta >= MIN_WORD_DELTA`` are kept, the
    ``top`` largest first (a repeated word counts once, by its largest delta).

    Args:
        text_model: anything with ``labels`` and ``probabilities(texts, language)`` (such as
            :class:`emovox.text.TextEmotionModel`).
        transcript: the words.
        language: ISO 639-1 code, passed on to the text model.
        top: how many words to report.
        max_words: longer transcripts are not occluded (the batch would grow with their square).

    Returns:
        The evidence, or None for an empty transcript or one longer than ``max_words``.

    Examples:
        >>> class Angry:  # p(angry) = 0.25, plus 0.5 if "furious" is in the text
        ...     labels = ["neutral", "angry"]
        ...     def probabilities(self, texts, language=None):
        ...         a = np.array([0.25 + 0.5 * ("furious" in t) for t in texts])
        ...         return np.stack([1 - a, a], axis=1)
        >>> word_evidence(Angry(), "I am furious today!", "en")
        TextEvidence(label='angry', probability=0.75, words=[('furious', 0.5)], neutral=0.25)
    """
    tokens = transcript.split()
    spots = [i for i, t in enumerate(tokens) if any(c.isalnum() for c in t)]
    if not spots or len(tokens) > max_words:
        return None
    texts = [transcript] + [" ".join(tokens[:i] + tokens[i + 1 :]) for i in spots]
    probs = np.asarray(text_model.probabilities(texts, language), dtype=np.float64)
    labels = list(text_model.labels)
    emotional = [j for j, l in enumerate(labels) if l != "neutral"]
    target = max(emotional, key=lambda j: probs[0, j])
    deltas: dict[str, float] = {}
    for i, delta in zip(spots, probs[0, target] - probs[1:, target], strict=False):
        word = tokens[i].strip(".,;:!?\"'()[]{}«»“”‘’…-")
        if delta >= MIN_WORD_DELTA and delta > deltas.get(word, -1.0):
            deltas[word] = float(delta)
    words = sorted(deltas.items(), key=lambda wd: -wd[1])[:top]
    neutral = float(probs[0, labels.index("neutral")]) if "neutral" in labels else 0.0
    return TextEvidence(labels[target], float(probs[0, target]), words, neutral)


def explain(scores: Mapping[str, float], signal: np.ndarray, sampling_rate: int, *, label: str | None = None,
            audio_scores: Mapping[str, float] | None = None, reference: Prosody | None = None,
            transcript: str | None = None, language: str | None = None, text_model=None) -> Explanation:
    """Gather the evidence for one clip's decision.

    Args:
        scores: the decision's ``{label: probability}``.
        signal: the clip, 1-D.
        sampling_rate: its rate in Hz.
        label: the decision (default: the top of ``scores``; ``"unknown"`` for an abstention).
        audio_scores: the audio model's own scores when ``scores`` are fused (default: ``scores``).
        reference: :func:`measure_prosody` of a neutral clip of the same speaker.
        transcript: the words, for the word evidence (needs ``text_model`` too).
        language: the transcript's language.
        text_model: see :func:`word_evidence`; its :class:`~emovox.errors.ModelError` propagates.

    Examples:
        >>> from emovox.testing import voice
        >>> e = explain({"sad": 0.3, "happy": 0.7}, voice(2.0, f0=200.0), 16000)
        >>> e.sentence().startswith("Predicted happy (0.70; next: sad 0.30). Median pitch")
        True
        >>> e.sentence().endswith("no speaker reference was given.")
        True
    """
    scores = {l: float(p) for l, p in scores.items()}
    text = note = None
    if transcript is not None and text_model is not None:
        text = word_evidence(text_model, transcript, language)
        if text is None:
            note = "the transcript is empty" if not transcript.strip() else "the transcript is too long to occlude"
    return Explanation(label=label or max(scores, key=scores.get), scores=scores,
                       audio_scores=dict(audio_scores) if audio_scores is not None else dict(scores),
                       prosody=measure_prosody(signal, sampling_rate), reference=reference, text=text, note=note)


def _frames(x: np.ndarray, length: int, hop: int) -> np.ndarray:
    """``(n, length)`` frames every ``hop`` samples; a short signal is zero-padded to one frame."""
    if len(x) < length:
        x = np.pad(x, (0, length - len(x)))
    return np.lib.stride_tricks.sliding_window_view(x, length)[::hop]


__all__: Sequence[str] = ["Explanation", "Prosody", "TextEvidence", "explain", "measure_prosody", "semitones",
                          "top_classes", "word_evidence", "yin"]
