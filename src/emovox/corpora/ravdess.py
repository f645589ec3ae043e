"""RAVDESS, speech part (Livingstone & Russo 2018): ``Actor_XX/03-01-EE-II-SS-RR-AA.wav``.

Fields: modality (03 audio-only), vocal channel (01 speech, 02 song), emotion, intensity,
statement, repetition, actor. Only audio-only speech files are kept; odd actors are male.

Examples:
    >>> parse_name("03-01-05-02-01-01-07")
    {'emotion': '05', 'intensity': '02', 'statement': '01', 'actor': '07', 'gender': 'male'}
    >>> parse_name("03-02-05-02-01-01-07") is None  # song
    True
"""

from __future__ import annotations

import os
import re

from emovox.corpora._common import audio_files, check_root, finish
from emovox.corpora.labels import map_label
from emovox.corpora.manifest import Utterance

STATEMENTS = {"01": "Kids are talking by the door.", "02": "Dogs are sitting by the door."}
_NAME = re.compile(r"^03-01-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")


def parse_name(stem: str) -> dict | None:
    """Split a RAVDESS file stem; ``None`` unless it is an audio-only speech file."""
    m = _NAME.match(stem)
    if not m:
        return None
    emotion, intensity, statement, _, actor = m.groups()
    gender = "male" if int(actor) % 2 else "female"
    return {"emotion": emotion, "intensity": intensity, "statement": statement,
            "actor": actor, "gender": gender}


def scan(root: str | os.PathLike) -> list[Utterance]:
    """List the RAVDESS speech utterances under ``root`` (the folder holding ``Actor_XX``).

    Speaker is the two-digit actor number; language ``"en"``.

    Examples:
        >>> scan("/data/RAVDESS")  # doctest: +SKIP
    """
    root = check_root(root, "ravdess")
    out = []
    for p in audio_files(root):
        f = parse_name(p.stem)
        label = f and map_label("ravdess", f["emotion"])
        if label:
            out.append(Utterance(str(p), label, f["emotion"], f["actor"], "ravdess",
                                 gender=f["gender"], language="en",
                                 transcript=STATEMENTS.get(f["statement"])))
    return finish(out, "ravdess", root, "Actor_XX/03-01-EE-II-SS-RR-AA.wav")
