"""A conversation's timeline: who spoke when (by channel or by voice), and each party's emotion.

``--parties channels``: every channel of the file is a party (a call recorder's stereo file has
the agent on one side and the customer on the other); each channel gets its own VAD and its own
emotion timeline. ``--parties speakers`` (or ``speakers:N``, ``speakers:auto``): the mono mix is
diarised (:mod:`emovox.conversation.diarise`) and each speaker's turns are judged. Either way the
segments of all parties come back in one :class:`emovox.prediction.timeline.Timeline`, in time
order, each with its ``party``; windows during which another party speaks are marked
``overlap`` (they are kept, not merged), and the summary has a section per party. Every segment
also gets ``arousal`` and ``valence`` (:mod:`emovox.conversation.dimensions`), and the timeline
lists each party's escalations and recoveries (``moments``, :mod:`emovox.conversation.moments`).

A call recorder's channels leak into each other (crosstalk, echo): the VAD hears the other
party's voice, faintly, on one's own channel. So a channel's speech counts only where that
channel is no more than :data:`CROSSTALK_DB` quieter than the loudest channel
(:func:`own_speech`).

Examples:
    >>> parse_parties("speakers:2"), parse_parties("speakers"), parse_parties("channels")
    (PartySpec(mode='speakers', count=2), PartySpec(mode='speakers', count=None), PartySpec(mode='channels', count=None))
    >>> party_names("agent, customer", 2), party_names(None, 3, "speaker")
    (['agent', 'customer'], ['speaker1', 'speaker2', 'speaker3'])
"""

from __future__ import annotations

import dataclasses
import os
from typing import BinaryIO

import numpy as np

from emovox.audio.load import DEFAULT_MAX_DURATION, SAMPLING_RATE
from emovox.audio.vad import VADSettings, speech_segments
from emovox.conversation.diarise import MAX_SPEAKERS, diarise
from emovox.conversation.dimensions import add_dimensions
from emovox.conversation.moments import find_moments
from emovox.errors import InvalidAudioError
from emovox.prediction.timeline import Segment, Timeline, make_timeline

CROSSTALK_DB = 20.0  # a channel this much quieter than the loudest one hears another party
FRAME = 0.2  # seconds: the loudness frames of own_speech
BRIDGE = 0.4  # seconds: shorter gaps inside one's own speech are filled (pauses between syllables)


@dataclasses.dataclass(frozen=True)
class PartySpec:
    """How to tell the parties apart: ``"channels"`` or ``"speakers"`` (``count``: None chooses)."""

    mode: str
    count: int | None = None


def parse_parties(spec: str) -> PartySpec:
    """``channels``, ``speakers``, ``speakers:auto`` or ``speakers:N`` (1 to 6).

    Examples:
        >>> parse_parties("speakers:9")
        Traceback (most recent call last):
        ...
        ValueError: --parties speakers:N takes N from 1 to 6, got 9
    """
    mode, _, count = spec.strip().lower().partition(":")
    if mode == "channels" and not count:
        return PartySpec("channels")
    if mode != "speakers":
        raise ValueError(f"--parties takes channels, speakers, speakers:auto or speakers:N, got {spec!r}")
    if count in ("", "auto"):
        return PartySpec("speakers")
    if not count.isdigit() or not 1 <= int(count) <= MAX_SPEAKERS:
        raise ValueError(f"--parties speakers:N takes N from 1 to {MAX_SPEAKERS}, got {count}")
    return PartySpec("speakers", int(count))


def party_names(names: str | list[str] | None, n: int, prefix: str = "channel") -> list[str]:
    """``n`` party names: those given (comma-separated or a list; missing ones numbered), else
    ``<prefix>1`` ... ``<prefix>n``."""
    given = [s.strip() for s in names.split(",")] if isinstance(names, str) else list(names or [])
    given = [s for s in given if s]
    if len(set(given)) != len(given):
        raise ValueError(f"party names must differ, got {', '.join(given)}")
    out = given[:n] + [f"{prefix}{k + 1}" for k in range(len(given), n)]
    return [name if name not in out[:i] else f"{name}-{i + 1}" for i, name in enumerate(out)]


def load_channels(source: str | os.PathLike | bytes | BinaryIO | np.ndarray, sampling_rate: int | None = None, *,
                  max_duration: float | None = DEFAULT_MAX_DURATION) -> list[np.ndarray]:
    """Each channel of a file (or of a ``(frames, channels)`` array) as a 16 kHz mono signal,
    validated and resampled like :func:`emovox.audio.load.load_audio` does.

    Examples:
        >>> left, right = load_channels(np.stack([np.ones(8000), np.zeros(8000)], axis=1), 8000)
        >>> left.shape, float(right.max())
        ((16000,), 0.0)
    """
    from emovox.audio.load import MAX_CHANNELS, decode, load_audio

    if isinstance(source, np.ndarray):
        array, rate = np.asarray(source), sampling_rate
        if array.ndim == 2 and array.shape[0] <= MAX_CHANNELS < array.shape[1]:
            array = array.T
    else:
        array, rate = decode(source, max_duration=max_duration)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise InvalidAudioError(f"expected (frames,) or (frames, channels), got shape {array.shape}")
    return [load_audio(np.ascontiguousarray(array[:, c]), rate, max_duration=max_duration) for c in range(array.shape[1])]


def conversation_timeline(
    model,
    channels: list[np.ndarray],
    *,
    parties: PartySpec | str = "channels",
    names: str | list[str] | None = None,
    **options,
) -> Timeline:
    """The emotion timeline of a conversation, with a party for every segment.

    Args:
        model: an emovox model (see :func:`emovox.prediction.timeline.make_timeline`).
        channels: the recording's channels, 16 kHz mono each (:func:`load_channels`); by speaker,
            they are mixed down first.
        parties: a :class:`PartySpec` or its text (:func:`parse_parties`).
        names: party names, in channel order (by channel) or order of first speech (by speaker).
        **options: passed to :func:`emovox.prediction.timeline.make_timeline` for each party
            (``labels``, ``max_window``, ``adapt``: each party is judged against its own average, ...).

    Returns:
        A :class:`emovox.prediction.timeline.Timeline` with ``parties`` set; ``speech_segment``
        numbers the parties' stretches of speech (turns) in time order.
    """
    spec = parse_parties(parties) if isinstance(parties, str) else parties
    if spec.mode == "channels":
        names = party_names(names, len(channels), "channel")
        vad = options.pop("vad", None) or VADSettings()
        per_party = [(name, make_timeline(model, signal, speech=own_speech(channels, c, speech_segments(signal, vad)), **options))
                     for c, (name, signal) in enumerate(zip(names, channels, strict=True))]
        duration = max(len(c) for c in channels) / SAMPLING_RATE
    else:
        signal = channels[0] if len(channels) == 1 else np.mean(np.stack(channels), axis=0).astype(np.float32)
        vad = options.get("vad")
        turns = diarise(signal, speakers=spec.count, **({"vad": vad} if vad is not None else {}))
        count = max((t.speaker for t in turns), default=-1) + 1
        names = party_names(names, max(count, spec.count or 1), "speaker")
        per_party = [(name, make_timeline(model, signal, speech=[(t.start, t.end) for t in turns if t.speaker == k], **options))
                     for k, name in enumerate(names)]
        duration = len(signal) / SAMPLING_RATE
    segments = []
    for name, timeline in per_party:
        for s in timeline.segments:
            s.party, s.speech_segment = name, (name, s.speech_segment)
            segments.append(s)
    segments.sort(key=lambda s: (s.start, s.end))
    turn_ids = {key: i for i, key in enumerate(dict.fromkeys(s.speech_segment for s in segments))}
    for s in segments:
        s.speech_segment = turn_ids[s.speech_segment]
    mark_overlaps(segments)
    add_dimensions(segments)
    first = per_party[0][1] if per_party else None
    labels = first.labels if first else list(options.get("labels") or model.labels)
    return Timeline(duration, labels, segments, getattr(model, "model_id", ""),
                    transcribed=bool(first and first.transcribed), adapted=bool(first and first.adapted), parties=list(names),
                    moments=find_moments(segments))


def own_speech(channels: list[np.ndarray], index: int, stretches: list[tuple[float, float]], *,
               min_speech: float = 0.25) -> list[tuple[float, float]]:
    """The parts of channel ``index``'s speech ``stretches`` where it is at most
    :data:`CROSSTALK_DB` quieter than the loudest channel (0.2 s frames; gaps under 0.4 s filled,
    parts under ``min_speech`` dropped).

    Examples:
        >>> from emovox.testing import voice
        >>> talk = np.concatenate([voice(2.0), np.zeros(32000, np.float32)])
        >>> left, right = talk, 0.01 * talk  # the right channel only hears the left one's voice
        >>> own_speech([left, right], 0, [(0.0, 2.0)]), own_speech([left, right], 1, [(0.0, 2.0)])
        ([(0.0, 2.0)], [])
    """
    if len(channels) < 2:
        return list(stretches)
    hop, out = int(FRAME * SAMPLING_RATE), []
    for start, end in stretches:
        first, n = int(start * SAMPLING_RATE), max(1, round((end - start) / FRAME))
        levels = []
        for c in channels:
            part = np.zeros(n * hop, np.float32)
            piece = c[first : first + n * hop]
            part[: len(piece)] = piece
            levels.append(10 * np.log10(np.mean(part.reshape(n, hop).astype(np.float64) ** 2, axis=1) + 1e-10))
        levels = np.stack(levels)
        own = levels[index] >= levels.max(axis=0) - CROSSTALK_DB
        edges = np.flatnonzero(np.diff(np.concatenate([[0], own.astype(int), [0]])))
        runs = [[a, b] for a, b in zip(edges[::2], edges[1::2], strict=True)]
        merged: list[list[int]] = []
        for a, b in runs:
            if merged and (a - merged[-1][1]) * FRAME < BRIDGE:
                merged[-1][1] = b
            else:
                merged.append([a, b])
        for a, b in merged:
            a_s, b_s = float(start + a * FRAME), float(min(end, start + b * FRAME))
            if b_s - a_s >= min_speech:
                out.append((round(a_s, 3), round(b_s, 3)))
    return out


def mark_overlaps(segments: list[Segment], *, tolerance: float = 0.05) -> None:
    """Set ``overlap`` on every segment that shares more than ``tolerance`` seconds with another
    party's segment.

    Examples:
        >>> a = Segment(0.0, 2.0, "sad", {}, 0, party="a")
        >>> b = Segment(1.5, 3.0, "sad", {}, 1, party="b")
        >>> c = Segment(3.0, 4.0, "sad", {}, 2, party="a")
        >>> mark_overlaps([a, b, c]); [a.overlap, b.overlap, c.overlap]
        [True, True, False]
    """
    ordered = sorted(segments, key=lambda s: s.start)
    for i, s in enumerate(ordered):
        for t in ordered[i + 1 :]:
            if t.start >= s.end - tolerance:
                break
            if t.party != s.party and min(s.end, t.end) - max(s.start, t.start) > tolerance:
                s.overlap = t.overlap = True
