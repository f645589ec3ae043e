"""Utterance manifests: one dataclass per utterance, stored as JSON lines.

Corpus adapters (:mod:`emovox.corpora`) produce lists of :class:`Utterance`; everything
downstream (splits, feature extraction, training) reads them. Nothing here touches audio
except :func:`with_durations`, which reads file headers only.

Examples:
    >>> u = Utterance("a.wav", "angry", "05", "01", "ravdess", gender="male")
    >>> u.speaker_key
    'ravdess/01'
    >>> Utterance.from_dict(u.to_dict()) == u
    True
    >>> summarize([u])["labels"]
    {'angry': 1}
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from emovox.corpora.labels import EMOTIONS
from emovox.errors import CorpusError


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One labelled audio file.

    Attributes:
        path: Audio file path (absolute when produced by an adapter).
        label: Taxonomy label (see :data:`emovox.corpora.labels.EMOTIONS`).
        native_label: The label as the corpus writes it.
        speaker: Speaker id, unique within its corpus.
        corpus: Corpus name (``"ravdess"``, ...).
        gender: ``"male"``, ``"female"`` or ``None`` when unknown.
        language: ISO 639-1 code, or ``None``.
        transcript: What is said, when the corpus provides it.
        duration: Seconds, when known.
    """

    path: str
    label: str
    native_label: str
    speaker: str
    corpus: str
    gender: str | None = None
    language: str | None = None
    transcript: str | None = None
    duration: float | None = None

    @property
    def speaker_key(self) -> str:
        """``"corpus/speaker"``: unique across corpora, the unit of speaker-independent splits."""
        return f"{self.corpus}/{self.speaker}"

    def to_dict(self) -> dict:
        """Return the fields as a plain dict (JSON-serialisable)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Utterance:
        """Build an utterance from a dict, ignoring unknown keys.

        Raises:
            CorpusError: A required field is missing.

        Examples:
            >>> Utterance.from_dict({"path": "x.wav", "label": "sad", "native_label": "sad",
            ...                      "speaker": "s1", "corpus": "c", "extra": 1}).label
            'sad'
        """
        names = {f.name for f in dataclasses.fields(cls)}
        required = [f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING]
        missing = [k for k in required if k not in d]
        if missing:
            raise CorpusError(f"utterance record lacks {', '.join(missing)}: {d!r}")
        return cls(**{k: v for k, v in d.items() if k in names})


def write_jsonl(utterances: Iterable[Utterance], path: str | os.PathLike) -> Path:
    """Write utterances as JSON lines (UTF-8), atomically: a reader never sees half a file.

    Creates the parent folder if needed and returns the path written.

    Examples:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> u = Utterance("żółw.wav", "happy", "happiness", "KS0", "nemo", language="pl")
        >>> read_jsonl(write_jsonl([u], d / "m.jsonl")) == [u]
        True
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            for u in utterances:
                f.write(json.dumps(u.to_dict(), ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_jsonl(path: str | os.PathLike) -> list[Utterance]:
    """Read a manifest written by :func:`write_jsonl`; blank lines are ignored.

    Raises:
        CorpusError: The file is missing, or a line is not a valid utterance record.
    """
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"manifest not found: {path}")
    out = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise CorpusError(f"{path}:{n}: not JSON ({e.msg})") from None
            if not isinstance(record, dict):
                raise CorpusError(f"{path}:{n}: expected a JSON object")
            try:
                out.append(Utterance.from_dict(record))
            except CorpusError as e:
                raise CorpusError(f"{path}:{n}: {e}") from None
    return out


def summarize(utterances: Iterable[Utterance]) -> dict:
    """Count utterances per label, speaker (``speaker_key``) and corpus.

    Labels come in taxonomy order, speakers and corpora sorted by name. ``"hours"`` sums the
    known durations (0.0 when none is known).

    Examples:
        >>> us = [Utterance("a", "sad", "4", "1", "c"), Utterance("b", "angry", "5", "2", "c")]
        >>> s = summarize(us)
        >>> s["utterances"], s["labels"], s["speakers"], s["corpora"]
        (2, {'sad': 1, 'angry': 1}, {'c/1': 1, 'c/2': 1}, {'c': 2})
    """
    utterances = list(utterances)
    labels = Counter(u.label for u in utterances)
    order = {e: i for i, e in enumerate(EMOTIONS)}
    by_taxonomy = sorted(labels.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
    return {
        "utterances": len(utterances),
        "labels": dict(by_taxonomy),
        "speakers": dict(sorted(Counter(u.speaker_key for u in utterances).items())),
        "corpora": dict(sorted(Counter(u.corpus for u in utterances).items())),
        "hours": sum(u.duration or 0.0 for u in utterances) / 3600,
    }


def with_durations(utterances: Iterable[Utterance]) -> list[Utterance]:
    """Return copies with ``duration`` filled from each file's header (no decoding).

    Raises:
        CorpusError: A file is missing or unreadable.
    """
    import soundfile as sf

    out = []
    for u in utterances:
        try:
            info = sf.info(u.path)
        except (OSError, RuntimeError) as e:  # soundfile raises LibsndfileError (RuntimeError)
            raise CorpusError(f"cannot read audio header of {u.path}: {e}") from None
        out.append(dataclasses.replace(u, duration=info.frames / info.samplerate))
    return out
