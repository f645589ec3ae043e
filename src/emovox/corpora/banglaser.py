"""BanglaSER extension (disgust and fear only), Bangla, RAVDESS-style file names.

Layout ``.../Actor - NN/03-01-EE-II-SS-RR-AA.wav``; EE is 06 disgust or 07 fear in this
extension; BanglaSER's own codes 01-05 are happy, sad, angry, surprise, neutral (not RAVDESS's).
Recordings are 48 kHz stereo in mixed sample formats.

Examples:
    >>> parse_name("03-01-07-02-05-03-35")
    ('07', '35')
"""

from __future__ import annotations

import os
import re

from emovox.corpora._common import audio_files, check_root, finish
from emovox.corpora.labels import map_label
from emovox.corpora.manifest import Utterance

_NAME = re.compile(r"\d\d-\d\d-(\d\d)-\d\d-\d\d-\d\d-(\d\d)")


def parse_name(stem: str) -> tuple[str, str] | None:
    """(emotion code, actor) from ``03-01-EE-II-SS-RR-AA``; ``None`` if it does not fit."""
    m = _NAME.fullmatch(stem)
    return (m.group(1), m.group(2)) if m else None


def scan(root: str | os.PathLike) -> list[Utterance]:
    """List BanglaSER utterances under ``root`` (searched recursively).

    Examples:
        >>> scan("~/.cache/emovox-corpora/banglaser")  # doctest: +SKIP
    """
    root = check_root(root, "banglaser")
    out = []
    for p in audio_files(root):
        f = parse_name(p.stem)
        label = f and map_label("banglaser", f[0])
        if label:
            out.append(Utterance(str(p), label, f[0], f[1], "banglaser",
                                 language="bn"))
    return finish(out, "banglaser", root, "Actor - NN/03-01-EE-II-SS-RR-AA.wav")
