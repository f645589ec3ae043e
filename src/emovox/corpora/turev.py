"""TurEV-DB (Canpolat et al. 2020), Turkish: ``Sound Source/<Emotion>/<SPK>_<code>_<word>.flac``
(or ``.wav``).

Emotion folders: Angry, Calm, Happy, Sad. Each file is a single spoken word; the transcript is
the file name's word as the corpus writes it, ASCII-folded (``ordek`` for *ördek*, ``cilek``
for *çilek*), and the language is ``"tr"``.

Examples:
    >>> parse_name("1157_kz_acik")
    ('1157', 'kz', 'acik')
"""

from __future__ import annotations

import os

from emovox.corpora._common import audio_files, check_root, finish, subdir
from emovox.corpora.labels import map_label
from emovox.corpora.manifest import Utterance


def parse_name(stem: str) -> tuple[str, str, str] | None:
    """Split ``SPK_code_word`` into (speaker, code, word); ``None`` if it does not fit."""
    parts = stem.split("_", 2)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 and all(parts) else None


def scan(root: str | os.PathLike) -> list[Utterance]:
    """List TurEV-DB utterances; ``root`` may be the corpus folder or its ``Sound Source``.

    Speaker is SPK, language ``"tr"``, gender unknown.

    Examples:
        >>> scan("/data/TurEV-DB")  # doctest: +SKIP
    """
    root = check_root(root, "turev")
    base = subdir(root, "Sound Source")
    out = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        label = map_label("turev", folder.name)
        if not label:
            continue
        for p in audio_files(folder):
            parts = parse_name(p.stem)
            if parts:
                out.append(Utterance(str(p), label, folder.name, parts[0], "turev",
                                     language="tr", transcript=parts[2]))
    return finish(out, "turev", root, "Sound Source/<Angry|Calm|Happy|Sad>/<SPK>_<code>_<word>.wav")
