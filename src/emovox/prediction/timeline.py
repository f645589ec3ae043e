"""Emotion over time for long recordings: speech segments from a VAD, a label for each.

:func:`make_timeline` finds the speech in a 16 kHz signal with Silero VAD, cuts segments longer
than ``max_window`` seconds into equal windows, classifies every window in batches, and sums
up the share of speech time per emotion. The command line (``emovox timeline``) and the
server (``POST /v1/timeline``) both call it. The speech comes from :mod:`emovox.audio.vad`.

:func:`predict_recording` is the one answer for a whole file: a clip of up to
:data:`LONG_RECORDING` seconds (one encoder window, one utterance or a few) is judged whole;
a longer recording is judged on its speech, by its timeline's summary, so that a file's label
never contradicts its own timeline (pooled over 30 s windows, the pauses and silence of a
long call outvoted its speech). ``emovox predict``, ``emovox batch`` and
:meth:`emovox.prediction.predictor.Predictor.predict_files` use it.

Given a :class:`emovox.text.transcribe.Transcriber`, every window also gets the words said in it
(``text``, ``language``); given a text model as well, the emotion fuses audio and words
(:mod:`emovox.text.fusion`). The words come from transcribing each window's own audio, so a
speech stretch longer than ``max_window`` may have a word cut at a window edge.

Examples:
    >>> split_windows(0.0, 25.0, 10.0)
    [(0.0, 8.333), (8.333, 16.667), (16.667, 25.0)]
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emovox.audio.load import SAMPLING_RATE
from emovox.audio.vad import VADSettings, speech_segments, split_windows
from emovox.errors import ModelError
from emovox.prediction.decision import restrict, top_label
from emovox.training.adaptation import MIN_CLIPS

LONG_RECORDING = 30.0  # seconds: longer recordings are judged on their speech (predict_recording)


@dataclasses.dataclass
class Segment:
    """A stretch of speech (or a window of a long one) with its emotion."""

    start: float
    end: float
    label: str
    scores: dict[str, float]
    speech_segment: int  # index of the VAD segment this window belongs to
    text: str | None = None  # what was said (None: not transcribed)
    language: str | None = None  # its language, ISO 639-1
    audio_label: str | None = None  # the audio-only label, when the label fuses audio and words
    party: str | None = None  # who spoke (a conversation's channel or speaker; None: not asked)
    overlap: bool = False  # another party speaks during this window too
    arousal: float | None = None  # in [-1, 1], the heads' or from the scores (make_timeline sets them)
    valence: float | None = None

    def to_dict(self) -> dict:
        """The window as JSON; ``text``/``language`` (and ``audio_label``) only when they were asked for.

        Examples:
            >>> Segment(0.5, 2.0, "sad", {"sad": 1.0}, 0).to_dict()
            {'start': 0.5, 'end': 2.0, 'label': 'sad', 'speech_segment': 0, 'scores': {'sad': 1.0}}
            >>> Segment(0.5, 2.0, "sad", {"sad": 1.0}, 0, "so long", "en").to_dict()["text"]
            'so long'
        """
        out = {"start": self.start, "end": self.end, "label": self.label, "speech_segment": self.speech_segment,
               "scores": {k: round(v, 5) for k, v in self.scores.items()}}
        if self.text is not None:
            out.update(text=self.text, language=self.language)
        if self.audio_label is not None:
            out["audio_label"] = self.audio_label
        if self.party is not None:
            out.update(party=self.party, overlap=self.overlap)
        if self.arousal is not None:
            out.update(arousal=self.arousal, valence=self.valence)
        return out


@dataclasses.dataclass
class Timeline:
    """Every speech window of a recording with its emotion, and the share of time per emotion."""

    duration: float
    labels: list[str]
    segments: list[Segment]
    model_id: str = ""
    transcribed: bool = False  # segments carry text and language
    adapted: bool = False  # windows judged against the recording's own average (emovox.training.adaptation)
    parties: list[str] | None = None  # a conversation's parties (emovox.conversation); segments carry theirs
    moments: list[dict] | None = None  # escalations and recoveries (emovox.conversation.moments)

    @property
    def speech_duration(self) -> float:
        return round(sum(s.end - s.start for s in self.segments), 3)

    def summary(self) -> dict:
        """Seconds of speech, share of speech time per label (0 to 1), and the dominant label; for a
        conversation, the same for each party under ``parties`` (overlapping speech counts for each)."""
        speech = self.speech_duration
        time = {label: 0.0 for label in self.labels}
        for s in self.segments:
            time[s.label] += s.end - s.start
        shares = {label: round(t / speech, 4) if speech else 0.0 for label, t in time.items()}
        out = {"speech": speech, "speech_share": round(speech / self.duration, 4) if self.duration else 0.0,
               "shares": shares, "dominant": top_label(shares) if speech else None}
        if speech and any(s.arousal is not None for s in self.segments):  # time-weighted means
            for key in ("arousal", "valence"):
                out[key] = round(sum((s.end - s.start) * (getattr(s, key) or 0.0) for s in self.segments) / speech, 4)
        if self.parties is not None:
            out["parties"] = {p: Timeline(self.duration, self.labels, [s for s in self.segments if s.party == p]).summary()
                              for p in self.parties}
        return out

    def to_dict(self) -> dict:
        out = {"model": self.model_id, "duration": round(self.duration, 3), "labels": self.labels,
               "segments": [s.to_dict() for s in self.segments], "summary": self.summary()}
        if self.parties is not None:
            out.update(parties=self.parties, moments=self.moments or [])
        return {**out, "adapted": True} if self.adapted else out

    def to_csv(self) -> str:
        """One row per window: start, end, label, speech_segment, a column per label, then party and
        overlap for a conversation, arousal and valence where known, language and text if transcribed."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        words = ["language", "text"] if self.transcribed else []
        party = ["party", "overlap"] if self.parties is not None else []
        dims = ["arousal", "valence"] if any(s.arousal is not None for s in self.segments) else []
        writer.writerow(["start", "end", "label", "speech_segment", *self.labels, *party, *dims, *words])
        for s in self.segments:
            writer.writerow([s.start, s.end, s.label, s.speech_segment, *(f"{s.scores[l]:.5f}" for l in self.labels),
                             *([s.party, int(s.overlap)] if party else []), *([s.arousal, s.valence] if dims else []),
                             *([s.language, s.text] if words else [])])
        return out.getvalue()

    def write(self, path: str | os.PathLike) -> Path:
        """Write ``.csv``, ``.json`` or ``.png`` (a plot), chosen by the suffix."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".csv":
            path.write_text(self.to_csv())
        elif suffix == ".json":
            path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        elif suffix == ".png":
            plot(self, path)
        else:
            raise ValueError(f"cannot write a timeline as {suffix or 'a file without suffix'}: use .csv, .json or .png")
        return path


def make_timeline(
    model,
    signal: np.ndarray,
    *,
    labels: Sequence[str] | None = None,
    max_window: float = 10.0,
    batch_size: int = 8,
    vad: VADSettings = VADSettings(),
    transcriber=None,
    text_model=None,
    language: str | None = None,
    adapt: bool = False,
    speech: Sequence[tuple[float, float]] | None = None,
) -> Timeline:
    """The emotion timeline of a 16 kHz mono signal, optionally with the words of each window.

    Args:
        model: anything with ``labels``, ``model_id`` and ``predict_signals`` (an emovox model).
        signal: the recording, 16 kHz mono float32 (see :func:`emovox.audio.load.load_audio`).
        labels: decide among this subset of the model's labels only.
        max_window: longest window classified at once, in seconds; longer speech is split.
        batch_size: windows classified together.
        vad: voice-activity settings.
        transcriber: a :class:`emovox.text.transcribe.Transcriber`: each window gets ``text`` and
            ``language``.
        text_model: a :class:`emovox.text.TextEmotionModel` (needs ``transcriber``): each
            window's scores fuse audio and words (:mod:`emovox.text.fusion`); ``audio_label`` keeps
            the audio-only label.
        language: force the transcripts' language (ISO 639-1); None detects it once, on the
            first 30 s of speech.
        adapt: judge every window against the recording's own average (the model's
            ``predict_speaker``, :mod:`emovox.training.adaptation`): for one speaker (or one call) with
            at least ``MIN_CLIPS`` windows; with fewer, the windows are judged as they are and
            ``adapted`` stays False.
        speech: the stretches ``(start, end)`` to judge, in seconds, instead of the VAD's (one
            speaker's turns, :mod:`emovox.conversation`).

    Returns:
        A :class:`Timeline`; silence-only input gives one without segments. Every segment has
        ``arousal`` and ``valence`` in [-1, 1]: the heads' for a model with the dimensional
        output (``Prediction.dimensions``), else (and for scores fused with words) read off its
        (restricted, fused) scores by :func:`emovox.conversation.dimensions.arousal_valence`.
    """
    from emovox.conversation.dimensions import add_dimensions  # at call time: conversation imports this module

    if text_model is not None and transcriber is None:
        raise ValueError("fusing with a text model needs a transcriber")
    stretches = speech_segments(signal, vad) if speech is None else speech
    pieces = [(k, a, b) for k, (start, end) in enumerate(stretches)
              for a, b in split_windows(start, end, max_window)]
    windows = [signal[int(a * SAMPLING_RATE) : int(b * SAMPLING_RATE)] for _, a, b in pieces]
    words = transcriber.transcribe_clips(windows, language=language) if transcriber is not None else None
    adapted = model.predict_speaker(windows) if adapt and len(windows) >= MIN_CLIPS else None
    segments = []
    for first in range(0, len(pieces), batch_size):
        batch = pieces[first : first + batch_size]
        clips = windows[first : first + batch_size]
        results = adapted[first : first + batch_size] if adapted is not None else model.predict_signals(clips)
        spoken = words[first : first + batch_size] if words is not None else [None] * len(clips)
        fused = _fused_scores([r.scores for r in results], spoken, text_model) if text_model is not None else None
        for i, ((k, a, b), result, said) in enumerate(zip(batch, results, spoken, strict=True)):
            scores = restrict(fused[i] if fused else result.scores, labels)
            segment = Segment(a, b, top_label(scores), scores, k)
            if said is not None:
                segment.text, segment.language = said.text, said.language
            if fused:
                segment.audio_label = top_label(restrict(result.scores, labels))
            elif result.dimensions is not None:  # the heads' arousal and valence (fused scores: the table's)
                segment.arousal, segment.valence = result.dimensions
            segments.append(segment)
    add_dimensions(segments)
    names = list(labels) if labels else list(model.labels)
    return Timeline(len(signal) / SAMPLING_RATE, names, segments, getattr(model, "model_id", ""),
                    transcribed=transcriber is not None, adapted=adapted is not None)


def predict_recording(
    model,
    signal: np.ndarray,
    *,
    labels: Sequence[str] | None = None,
    long_recording: float = LONG_RECORDING,
    max_window: float = 10.0,
    batch_size: int = 8,
    vad: VADSettings = VADSettings(),
):
    """The emotion of one whole recording (16 kHz mono), by the same rule everywhere.

    Up to ``long_recording`` seconds the clip is judged whole (``model.predict_signals``).
    A longer recording is judged on its speech: its :func:`make_timeline` finds the speech
    segments with the VAD and labels each window; the answer is the timeline summary's
    dominant label, with ``scores`` the share of speech time of each label (they sum to 1),
    and ``basis`` says so, e.g. ``"speech segments (n=3, 21.5 s of speech)"``, and ``arousal`` and
    ``valence`` are the timeline's time-weighted means (its summary's). A long
    recording without speech is judged whole, with basis ``"whole recording (no speech
    found)"``. The model's ``abstain`` threshold, if any, applies to the dominant share.

    Args:
        model: anything with ``labels`` and ``predict_signals`` (an emovox model, or the
            server's inference engine).
        signal: the recording, 16 kHz mono float32 (see :func:`emovox.audio.load.load_audio`).
        labels: decide among this subset of the model's labels only.
        long_recording: longest clip judged whole, in seconds.
        max_window: longest window of speech classified at once (see :func:`make_timeline`).
        batch_size: windows classified together.
        vad: voice-activity settings.

    Returns:
        A :class:`emovox.prediction.result.Prediction`; ``basis`` is None for a clip judged whole.

    Examples:
        >>> from emovox.prediction.result import Prediction
        >>> class Loud:  # "angry" when the window is loud
        ...     labels = ["sad", "angry"]
        ...     def predict_signals(self, clips, labels=None):
        ...         loud = [float(np.abs(c).max()) > 0.3 for c in clips]
        ...         return [Prediction("angry" if l else "sad", {"sad": 1.0 - l, "angry": float(l)}, len(c) / 16000)
        ...                 for l, c in zip(loud, clips)]
        >>> from emovox.testing import voice
        >>> quiet = lambda s: np.zeros(int(s * 16000), np.float32)
        >>> call = np.concatenate([quiet(9), voice(4.0, amplitude=0.6), quiet(20), voice(3.0, seed=1, amplitude=0.6), quiet(9)])
        >>> result = predict_recording(Loud(), call)
        >>> result.label, result.scores, result.basis
        ('angry', {'sad': 0.0, 'angry': 1.0}, 'speech segments (n=2, 7.1 s of speech)')
    """
    from emovox.prediction.result import UNKNOWN, Prediction

    duration = len(signal) / SAMPLING_RATE
    if duration <= long_recording:
        return model.predict_signals([signal], labels=labels)[0]
    timeline = make_timeline(model, signal, labels=labels, max_window=max_window, batch_size=batch_size, vad=vad)
    summary = timeline.summary()
    if summary["dominant"] is None:
        result = model.predict_signals([signal], labels=labels)[0]
        result.basis = "whole recording (no speech found)"
        return result
    label, scores = summary["dominant"], summary["shares"]
    abstain = getattr(model, "abstain", None)
    if abstain is not None and scores[label] < abstain:
        label = UNKNOWN
    stretches = len({s.speech_segment for s in timeline.segments})
    return Prediction(label, scores, duration, basis=f"speech segments (n={stretches}, {summary['speech']:.1f} s of speech)",
                      dimensions=(summary["arousal"], summary["valence"]))


def _fused_scores(audio: list[dict[str, float]], spoken: list, text_model) -> list[dict[str, float]]:
    """Each window's audio scores fused with what the text model reads in its transcript; the
    texts of one language are embedded together. Empty transcripts keep the audio scores."""
    from emovox.text.fusion import fuse

    out = [dict(scores) for scores in audio]
    by_language: dict[str | None, list[int]] = {}
    for i, words in enumerate(spoken):
        if words.text.strip():
            by_language.setdefault(words.language, []).append(i)
    for lang, indices in by_language.items():
        threshold = text_model.gate_threshold(text_model.encoder_for(lang))
        probabilities = text_model.probabilities([spoken[i].text for i in indices], lang)
        for i, p in zip(indices, probabilities, strict=True):
            try:
                out[i] = fuse(audio[i], dict(zip(text_model.labels, map(float, p), strict=True)), threshold=threshold)
            except ValueError:  # the branches share fewer than two labels: audio only
                pass
    return out


def plot(timeline: Timeline, path: str | os.PathLike) -> Path:
    """Save a PNG: each label's score over time (steps per window), speech windows shaded by label
    (a lane per party for a conversation, escalations ▼ and recoveries ▲ marked)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ModelError("a timeline plot needs matplotlib: pip install 'emovox[plots]'") from None
    colors = {label: plt.cm.tab10(i % 10) for i, label in enumerate(timeline.labels)}
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 4.5), sharex=True, gridspec_kw={"height_ratios": [1, 3]})
    # a conversation: a lane per party, escalations marked
    lanes: list[str | None] = [*timeline.parties] if timeline.parties else [None]
    for s in timeline.segments:
        row = lanes.index(s.party) if s.party in lanes else 0
        top.axvspan(s.start, s.end, ymin=1 - (row + 1) / len(lanes), ymax=1 - row / len(lanes), color=colors[s.label],
                    alpha=0.8, ec="black" if s.overlap else None)
    for m in timeline.moments or []:
        row = lanes.index(m["party"]) if m["party"] in lanes else 0
        top.plot([m["start"]], [1 - (row + 0.5) / len(lanes)], marker="v" if m["kind"] == "escalation" else "^",
                 color="black", markersize=9, transform=top.get_xaxis_transform())
    top.set_yticks([1 - (k + 0.5) / len(lanes) for k in range(len(lanes))] if timeline.parties else [])
    if timeline.parties:
        top.set_yticklabels(timeline.parties)
    top.set_title("emotion over time (" + ", ".join(f"{k} {v:.0%}" for k, v in timeline.summary()["shares"].items()) + ")")
    for label in timeline.labels:
        xs, ys = [], []
        for s in timeline.segments:
            xs += [s.start, s.end, s.end]
            ys += [s.scores[label], s.scores[label], np.nan]
        bottom.plot(xs, ys, color=colors[label], label=label, linewidth=2)
    bottom.set_xlim(0, max(timeline.duration, 1e-3))
    bottom.set_ylim(0, 1)
    bottom.set_xlabel("time (s)")
    bottom.set_ylabel("score")
    bottom.legend(loc="upper right", ncol=min(len(timeline.labels), 6), fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
