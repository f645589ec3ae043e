"""Generic corpus: one folder per emotion, ``root/<label>/**/*.wav|flac``.

Folder names (case-insensitive) must be taxonomy labels (:data:`emovox.corpora.labels.EMOTIONS`) or
keys of ``mapping``; a mapping to ``None`` drops the folder, and folders that are neither are
skipped with a warning. Speakers are not known from this layout, so the speaker is taken from
the file name: the part of the stem before the first ``_`` or ``-`` (the whole stem when there
is neither, i.e. every file is its own speaker). Name files ``<speaker>_<anything>.wav`` to get
meaningful speaker-independent splits.

Examples:
    >>> speaker_from_stem("spk07_take2"), speaker_from_stem("ann-01"), speaker_from_stem("solo")
    ('spk07', 'ann', 'solo')
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping

from emovox.corpora._common import audio_files, check_root, finish
from emovox.corpora.labels import EMOTIONS
from emovox.corpora.manifest import Utterance

log = logging.getLogger(__name__)


def speaker_from_stem(stem: str) -> str:
    """The part of a file stem before the first ``_`` or ``-`` (the stem if neither occurs)."""
    return re.split(r"[_-]", stem, maxsplit=1)[0] or stem


def resolve_label(native: str, mapping: Mapping[str, str | None] | None) -> tuple[bool, str | None]:
    """(known, label) for a native label: via ``mapping`` (keys compared lower-cased) or as is."""
    key = native.strip().lower()
    table = {k.lower(): v for k, v in (mapping or {}).items()}
    if key in table:
        return True, table[key]
    return (True, key) if key in EMOTIONS else (False, None)


def scan(root: str | os.PathLike, *, mapping: Mapping[str, str | None] | None = None,
         corpus: str | None = None, language: str | None = None) -> list[Utterance]:
    """List the utterances of a folder-per-label corpus.

    Args:
        root: Folder holding one sub-folder per emotion.
        mapping: Native folder name -> taxonomy label (or ``None`` to drop).
        corpus: Corpus name stored in each utterance; defaults to the folder name of ``root``.
        language: Language code stored in each utterance, if known.

    Examples:
        >>> scan("/data/my_corpus", mapping={"joy": "happy"})  # doctest: +SKIP
    """
    root = check_root(root, "folder")
    corpus = corpus or root.resolve().name or "folder"
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        known, label = resolve_label(folder.name, mapping)
        if not known:
            log.warning("folder %s: %r is not a taxonomy label nor in the mapping; skipped",
                        root, folder.name)
        if not label:
            continue
        for p in audio_files(folder):
            out.append(Utterance(str(p), label, folder.name, speaker_from_stem(p.stem), corpus,
                                 language=language))
    return finish(out, "folder", root, f"<label>/*.wav with labels among {', '.join(EMOTIONS)}")
