"""CREMA-D (Cao et al. 2014), English: ``AudioWAV/1001_DFA_ANG_XX.wav``.

Name: actor, sentence code, emotion (ANG DIS FEA HAP NEU SAD), intensity (LO MD HI XX).
Gender comes from ``VideoDemographics.csv`` (columns ActorID, Sex) when it lies in ``root``.

Examples:
    >>> parse_name("1001_DFA_ANG_XX")
    {'speaker': '1001', 'sentence': 'DFA', 'emotion': 'ANG', 'intensity': 'XX'}
    >>> SENTENCES["DFA"]
    "Don't forget a jacket."
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

from emovox.corpora._common import audio_files, check_root, finish, subdir
from emovox.corpora.labels import map_label
from emovox.corpora.manifest import Utterance

SENTENCES = {
    "IEO": "It's eleven o'clock.", "TIE": "That is exactly what happened.",
    "IOM": "I'm on my way to the meeting.", "IWW": "I wonder what this is about.",
    "TAI": "The airplane is almost full.", "MTI": "Maybe tomorrow it will be cold.",
    "IWL": "I would like a new alarm clock.", "ITH": "I think I have a doctor's appointment.",
    "DFA": "Don't forget a jacket.", "ITS": "I think I've seen this before.",
    "TSI": "The surface is slick.", "WSI": "We'll stop in a couple of minutes.",
}
_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


def parse_name(stem: str) -> dict | None:
    """Split a CREMA-D file stem; ``None`` if it does not fit the pattern."""
    m = _NAME.match(stem)
    if not m:
        return None
    return dict(zip(("speaker", "sentence", "emotion", "intensity"), m.groups(), strict=True))


def read_genders(csv_path: Path) -> dict[str, str]:
    """ActorID -> ``"male"``/``"female"`` from VideoDemographics.csv; empty if absent."""
    if not csv_path.is_file():
        return {}
    with csv_path.open(encoding="utf-8-sig", newline="") as f:
        return {row["ActorID"].strip(): row["Sex"].strip().lower()
                for row in csv.DictReader(f) if row.get("ActorID") and row.get("Sex")}


def scan(root: str | os.PathLike) -> list[Utterance]:
    """List CREMA-D utterances; ``root`` may be the corpus folder or ``AudioWAV/``.

    Examples:
        >>> scan("/data/CREMA-D")  # doctest: +SKIP
    """
    root = check_root(root, "cremad")
    genders = read_genders(root / "VideoDemographics.csv")
    out = []
    for p in audio_files(subdir(root, "AudioWAV"), recursive=False):
        f = parse_name(p.stem)
        label = f and map_label("cremad", f["emotion"])
        if label:
            out.append(Utterance(str(p), label, f["emotion"], f["speaker"], "cremad",
                                 gender=genders.get(f["speaker"]), language="en",
                                 transcript=SENTENCES.get(f["sentence"])))
    return finish(out, "cremad", root, "AudioWAV/<actor>_<sentence>_<EMO>_<level>.wav")
