"""SAVEE (Jackson & Haq 2014), English, four male speakers DC, JE, JK, KL.

Either ``AudioData/<SPK>/<e><nn>.wav`` or flat ``<SPK>_<e><nn>.wav``, where the emotion
prefix is a, d, f, h, n, sa or su (e.g. ``sa03``).

Examples:
    >>> parse_name("DC_sa03", "x"), parse_name("a01", "JK")
    (('DC', 'sa'), ('JK', 'a'))
"""

from __future__ import annotations

import os
import re

from emovox.corpora._common import audio_files, check_root, finish
from emovox.corpora.labels import map_label
from emovox.corpora.manifest import Utterance

_NAME = re.compile(r"^(?:([A-Za-z]{2})_)?(sa|su|a|d|f|h|n)(\d+)$")


def parse_name(stem: str, folder: str) -> tuple[str, str] | None:
    """Return (speaker, emotion code); the speaker is the prefix if present, else ``folder``."""
    m = _NAME.match(stem)
    if not m:
        return None
    return (m.group(1) or folder).upper(), m.group(2)


def scan(root: str | os.PathLike) -> list[Utterance]:
    """List SAVEE utterances under ``root`` (searched recursively); gender male.

    Examples:
        >>> scan("/data/SAVEE")  # doctest: +SKIP
    """
    root = check_root(root, "savee")
    out = []
    for p in audio_files(root):
        f = parse_name(p.stem, p.parent.name)
        label = f and map_label("savee", f[1])
        if label:
            out.append(Utterance(str(p), label, f[1], f[0], "savee", gender="male",
                                 language="en"))
    return finish(out, "savee", root, "AudioData/<SPK>/<e><nn>.wav or <SPK>_<e><nn>.wav")
