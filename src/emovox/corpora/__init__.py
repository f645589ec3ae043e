"""Corpus adapters: a corpus folder in, a sorted ``list[Utterance]`` out.

Each adapter module exposes ``scan(root) -> list[Utterance]``; :data:`ADAPTERS` maps corpus
names to them. The CLI names corpora as ``"name:path"`` (:func:`parse_spec`); a bare path is
recognised by its layout (:func:`detect`).

Examples:
    >>> parse_spec("ravdess:/data/RAVDESS")
    ('ravdess', PosixPath('/data/RAVDESS'))
    >>> sorted(ADAPTERS)[:4]
    ['banglaser', 'baved', 'baved-arousal', 'cremad']
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from pathlib import Path

from emovox.corpora import (
    banglaser,
    baved,
    cremad,
    csvmanifest,
    emodb,
    emospeech,
    emovo,
    folder,
    iemocap,
    koetts,
    nemo,
    ravdess,
    savee,
    tess,
    turev,
    urdu,
)
from emovox.corpora._common import AUDIO_EXTENSIONS, is_audio
from emovox.corpora.labels import EMOTIONS
from emovox.corpora.manifest import Utterance
from emovox.errors import CorpusError

ADAPTERS: dict[str, Callable[..., list[Utterance]]] = {
    "ravdess": ravdess.scan, "nemo": nemo.scan, "turev": turev.scan, "emodb": emodb.scan,
    "emovo": emovo.scan, "cremad": cremad.scan, "tess": tess.scan, "savee": savee.scan,
    "urdu": urdu.scan, "iemocap": iemocap.scan, "koetts": koetts.scan,
    "emospeech": emospeech.scan, "baved": baved.scan, "banglaser": banglaser.scan,
    "baved-arousal": functools.partial(baved.scan, arousal_sets=True),
    "folder": folder.scan, "csv": csvmanifest.scan,
}
"""Corpus name -> ``scan(root, **options)``. ``folder`` and ``csv`` accept ``mapping=``.
``baved-arousal`` is BAVED with every arousal level (the high one as a candidate set)."""

__all__ = ["ADAPTERS", "AUDIO_EXTENSIONS", "detect", "parse_spec", "scan_corpus"]


def scan_corpus(name: str, root: str | os.PathLike, **options) -> list[Utterance]:
    """Scan ``root`` with the adapter called ``name`` (options go to that adapter).

    Raises:
        CorpusError: Unknown adapter name, missing root, or no labelled audio found.

    Examples:
        >>> scan_corpus("ravdess", "/data/RAVDESS")  # doctest: +SKIP
    """
    try:
        adapter = ADAPTERS[name.lower()]
    except KeyError:
        raise CorpusError(f"unknown corpus {name!r}; known: {', '.join(ADAPTERS)}") from None
    return adapter(root, **options)


def _subdirs(root: Path) -> list[str]:
    return [p.name for p in root.iterdir() if p.is_dir()]


def _has_audio(folder: Path, pattern: str) -> bool:
    rx = re.compile(pattern)
    return any(is_audio(p) and rx.match(p.stem) for p in folder.rglob("*"))


def detect(root: str | os.PathLike) -> str | None:
    """Guess the corpus from its layout; ``None`` if nothing matches.

    First match wins: a ``.csv`` file -> csv; ``data.tsv`` + ``samples/`` -> nemo;
    ``Actor_*/`` -> ravdess; ``Actor - NN/`` -> banglaser; ``emotional-to-emotional/`` or
    ``SpeechCorpus/`` -> koetts; ``speakers_info.json`` -> baved; ``Metro/``, ``Roads/`` ... ->
    emospeech; ``Sound Source/`` -> turev; ``Session1/`` ... -> iemocap;
    ``AudioWAV/`` -> cremad; ``AudioData/`` or ``DC_a01``-style files -> savee; ``wav/`` ->
    emodb; speaker folders ``f1``, ``m2`` ... -> emovo; ``OAF_*``/``YAF_*`` folders -> tess;
    Angry/Happy/Neutral/Sad folders with ``SM1_...`` files -> urdu; any folder named after a
    taxonomy label -> folder; nothing but one subfolder -> that subfolder's answer.

    Examples:
        >>> detect("/no/such/folder") is None
        True
    """
    root = Path(root).expanduser()
    if root.is_file():
        return "csv" if root.suffix.lower() == ".csv" else None
    if not root.is_dir():
        return None
    subs = _subdirs(root)
    lower = {s.lower() for s in subs}
    if (root / "data.tsv").is_file() and "samples" in lower:
        return "nemo"
    checks = [
        ("ravdess", any(s.startswith("Actor_") for s in subs)),
        ("banglaser", any(re.fullmatch(r"Actor - \d+", s) for s in subs) or "complete" in subs
         and any(re.fullmatch(r"Actor - \d+", s.name) for s in (root / "complete").iterdir())),
        ("koetts", bool(lower & {"dataset", "speechcorpus", "emotional", "emotional-to-emotional",
                                 "plain-to-emotional"})),
        ("baved", (root / "speakers_info.json").is_file()),
        ("emospeech", len(lower & {"house", "metro", "roads", "railway", "near lake"}) >= 2),
        ("turev", "Sound Source" in subs),
        ("iemocap", any(re.fullmatch(r"Session\d", s) for s in subs)),
        ("cremad", "AudioWAV" in subs),
        ("savee", "AudioData" in subs),
        ("emodb", "wav" in subs),
        ("emovo", any(re.fullmatch(r"[fm]\d", s) for s in subs)),
        ("tess", any(s.upper().startswith(("OAF_", "YAF_")) for s in subs)),
    ]
    for name, hit in checks:
        if hit:
            return name
    if any(is_audio(p) and re.match(r"(DC|JE|JK|KL)_(sa|su|[adfhn])\d+$", p.stem)
           for p in root.iterdir()):
        return "savee"
    if lower and lower <= {"angry", "happy", "neutral", "sad"} and _has_audio(root, r"S[MF]\d+_"):
        return "urdu"
    if lower & set(EMOTIONS):
        return "folder"
    if len(subs) == 1 and not any(p.is_file() for p in root.iterdir()):
        return detect(root / subs[0])  # a lone wrapper folder, as archives often have
    return None


def parse_spec(spec: str) -> tuple[str, Path]:
    """Split a CLI corpus spec ``"name:path"``; a bare path is resolved with :func:`detect`.

    Raises:
        CorpusError: The layout of a bare path is not recognised.

    Examples:
        >>> parse_spec("EmoDB:~/corpora/emodb")[0]
        'emodb'
    """
    name, sep, rest = spec.partition(":")
    if sep and name.lower() in ADAPTERS:
        return name.lower(), Path(rest).expanduser()
    path = Path(spec).expanduser()
    found = detect(path)
    if found is None:
        what = "does not exist" if not path.exists() else "has no recognised corpus layout"
        raise CorpusError(f"{spec!r} {what}; name the corpus as NAME:PATH with NAME among "
                          f"{', '.join(ADAPTERS)}")
    return found, path
