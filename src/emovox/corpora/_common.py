"""Helpers shared by the corpus adapters: root checks, audio file listing, final checks.

Examples:
    >>> is_audio(Path("a/03-01-01-01-01-01-01.FLAC")), is_audio(Path("notes.txt"))
    (True, False)
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from emovox.corpora.manifest import Utterance
from emovox.errors import CorpusError

AUDIO_EXTENSIONS = (".wav", ".flac")
"""Accepted audio extensions, compared case-insensitively (originals are .wav, dev copies .flac)."""


def is_audio(path: Path) -> bool:
    """True for a ``.wav``/``.flac`` name (any case) that is not a hidden/AppleDouble file."""
    return path.suffix.lower() in AUDIO_EXTENSIONS and not path.name.startswith(".")


def check_root(root: str | os.PathLike, corpus: str) -> Path:
    """Return ``root`` as an absolute path, or raise CorpusError if it is not a folder."""
    path = Path(root).expanduser().absolute()
    if not path.exists():
        raise CorpusError(f"{corpus}: corpus folder not found: {path}")
    if not path.is_dir():
        raise CorpusError(f"{corpus}: expected a folder, got a file: {path}")
    return path


def subdir(root: Path, name: str) -> Path:
    """``root/name`` when that folder exists, else ``root`` (accept either level as root)."""
    inner = root / name
    return inner if inner.is_dir() else root


def audio_files(folder: Path, *, recursive: bool = True) -> list[Path]:
    """All audio files under ``folder`` (recursively by default), sorted."""
    if not folder.is_dir():
        return []
    it = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in it if is_audio(p) and p.is_file())


def find_audio(base: Path) -> Path | None:
    """The existing audio file ``base`` with any accepted extension, or ``None``.

    ``base`` may carry an extension (``x.wav``); ``x.wav``, ``x.flac``, ``x.WAV`` and
    ``x.FLAC`` are tried in that order.
    """
    stem = base.with_suffix("") if base.suffix.lower() in AUDIO_EXTENSIONS else base
    for ext in AUDIO_EXTENSIONS:
        for cand in (stem.with_name(stem.name + ext), stem.with_name(stem.name + ext.upper())):
            if cand.is_file():
                return cand
    return None


def finish(utterances: Iterable[Utterance], corpus: str, root: Path, hint: str) -> list[Utterance]:
    """Sort by path; raise CorpusError naming the expected layout when nothing was found."""
    out = sorted(utterances, key=lambda u: u.path)
    if not out:
        raise CorpusError(f"{corpus}: no labelled audio found under {root}; expected {hint}")
    return out
