"""EMOVO (Costantini et al. 2014), Italian: ``<speaker>/<emo>-<speaker>-<sentence>.wav``.

Speakers f1-f3 and m1-m3; emotion codes dis, gio, neu, pau, rab, sor, tri.

Examples:
    >>> parse_name("dis-f1-b1")
    {'emotion': 'dis', 'speaker': 'f1', 'sentence': 'b1', 'gender': 'female'}
"""

from __future__ import annotations

import os
import re

from emovox.corpora._common import audio_files, check_root, finish
from emovox.corpora.labels import map_label
from emovox.corpora.manifest import Utterance

_NAME = re.compile(r"^([a-z]{3})-([fm]\d+)-(\w+)$", re.IGNORECASE)


def parse_name(stem: str) -> dict | None:
    """Split an EMOVO file stem; ``None`` if it does not fit the pattern."""
    m = _NAME.match(stem)
    if not m:
        return None
    emotion, speaker, sentence = m.groups()
    gender = "female" if speaker[0].lower() == "f" else "male"
    return {"emotion": emotion.lower(), "speaker": speaker.lower(), "sentence": sentence,
            "gender": gender}


def scan(root: str | os.PathLike) -> list[Utterance]:
    """List EMOVO utterances under ``root`` (searched recursively); language ``"it"``.

    Examples:
        >>> scan("/data/EMOVO")  # doctest: +SKIP
    """
    root = check_root(root, "emovo")
    out = []
    for p in audio_files(root):
        f = parse_name(p.stem)
        label = f and map_label("emovo", f["emotion"])
        if label:
            out.append(Utterance(str(p), label, f["emotion"], f["speaker"], "emovo",
                                 gender=f["gender"], language="it"))
    return finish(out, "emovo", root,
                  "<speaker>/<emo>-<speaker>-<sentence>.wav, e.g. f1/dis-f1-b1.wav")
