"""URDU (Latif et al. 2018), Urdu: ``<Angry|Happy|Neutral|Sad>/SM1_F1_A01.wav``.

The first ``_`` field is the speaker (``SM1``: S + gender letter + number), so gender is its
second letter when that is M or F (else unknown).

Examples:
    >>> parse_name("SM1_F1_A01"), parse_name("SF3_F12_N070")
    (('SM1', 'male'), ('SF3', 'female'))
"""

from __future__ import annotations

import os

from emovox.corpora._common import audio_files, check_root, finish
from emovox.corpora.labels import map_label
from emovox.corpora.manifest import Utterance

_GENDERS = {"M": "male", "F": "female"}


def parse_name(stem: str) -> tuple[str, str | None] | None:
    """Return (speaker, gender) for a URDU file stem; ``None`` if it does not fit."""
    parts = stem.split("_")
    if len(parts) < 2 or len(parts[0]) < 2:
        return None
    speaker = parts[0].upper()
    return speaker, _GENDERS.get(speaker[1])


def scan(root: str | os.PathLike) -> list[Utterance]:
    """List URDU utterances under ``root`` (the folder holding the emotion folders).

    Examples:
        >>> scan("/data/URDU-Dataset")  # doctest: +SKIP
    """
    root = check_root(root, "urdu")
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        label = map_label("urdu", folder.name)
        if not label:
            continue
        for p in audio_files(folder):
            f = parse_name(p.stem)
            if f:
                out.append(Utterance(str(p), label, folder.name, f[0], "urdu", gender=f[1],
                                     language="ur"))
    return finish(out, "urdu", root, "<Angry|Happy|Neutral|Sad>/<SPK>_<file>_<id>.wav")
