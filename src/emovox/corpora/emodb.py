"""Berlin EmoDB (Burkhardt et al. 2005), German: ``wav/03a01Fa.wav``.

Name: speaker (2 digits), text code (3 chars), emotion letter, version letter. Emotion
letters are German initials: W anger, L boredom, E disgust, A fear, F happiness, T sadness,
N neutral.

Examples:
    >>> parse_name("03a01Fa")
    {'speaker': '03', 'text': 'a01', 'emotion': 'F', 'gender': 'male'}
"""

from __future__ import annotations

import os
import re

from emovox.corpora._common import audio_files, check_root, finish, subdir
from emovox.corpora.labels import map_label
from emovox.corpora.manifest import Utterance

GENDERS = {"03": "male", "10": "male", "11": "male", "12": "male", "15": "male",
           "08": "female", "09": "female", "13": "female", "14": "female", "16": "female"}
_NAME = re.compile(r"^(\d\d)([ab]\d\d)([A-Z])[a-z]?$")


def parse_name(stem: str) -> dict | None:
    """Split an EmoDB file stem; ``None`` if it does not fit the pattern."""
    m = _NAME.match(stem)
    if not m:
        return None
    speaker, text, emotion = m.groups()
    return {"speaker": speaker, "text": text, "emotion": emotion, "gender": GENDERS.get(speaker)}


def scan(root: str | os.PathLike) -> list[Utterance]:
    """List EmoDB utterances; ``root`` may be the corpus folder or its ``wav/`` folder.

    Examples:
        >>> scan("/data/emodb")  # doctest: +SKIP
    """
    root = check_root(root, "emodb")
    out = []
    for p in audio_files(subdir(root, "wav"), recursive=False):
        f = parse_name(p.stem)
        label = f and map_label("emodb", f["emotion"])
        if label:
            out.append(Utterance(str(p), label, f["emotion"], f["speaker"], "emodb",
                                 gender=f["gender"], language="de"))
    return finish(out, "emodb", root, "wav/<SS><text><E><v>.wav, e.g. wav/03a01Fa.wav")
