"""Korean emotional TTS corpus (emotiontts open DB, public 5 %), Korean.

Layout ``.../<group>/<spk>/wav/<spk>NNNNN.wav`` with ``<group>`` ``emotional-to-emotional`` or
``plain-to-emotional``; the utterance number gives the emotion: 00001-00100 neutral,
00101-00200 happy, 00201-00300 sad, 00301-00400 angry. A ``transcript/<spk>NNNNN.txt`` next to
``wav/`` holds the sentence when present. 15 speakers; sentences acted for TTS, so subtle.

The corpus's own README (and the shared corpora's) gives 00201-00300 as angry (화남) and
00301-00400 as sad (슬픔); the recordings say the opposite. In ``emotional-to-emotional`` the
script matches the emotion, and the 002xx sentences read are grief or sympathy ("since the
funeral mother has had no strength, I am worried", "I am so depressed") and the 003xx ones
reproaches ("how many more times must I tell you to stop drinking?"). The voices agree in both
groups, plain scripts included: v6's recipe trained on the five other corpora calls 44 of 75
clips of 003xx angry (17 of the 25 read from plain scripts) and 63 of 75 of 002xx neutral, 7
angry. Until 2026-12-05 emovox followed the README, so Korean rows measured before then swap
the two labels.

Examples:
    >>> parse_name("ema00123")
    ('ema', 123, 'happy')
    >>> parse_name("readme") is None
    True
"""

from __future__ import annotations

import os
import re

from emovox.corpora._common import audio_files, check_root, finish
from emovox.corpora.labels import map_label
from emovox.corpora.manifest import Utterance

_NAME = re.compile(r"([a-z]{3})(\d{5})$")
_RANGES = ((100, "neutral"), (200, "happy"), (300, "sad"), (400, "angry"))  # not the README's order: see above


def parse_name(stem: str) -> tuple[str, int, str] | None:
    """Split ``<spk>NNNNN`` into (speaker, number, native emotion); ``None`` if it does not fit."""
    m = _NAME.fullmatch(stem.lower())
    if not m:
        return None
    number = int(m.group(2))
    for upper, emotion in _RANGES:
        if 1 <= number <= upper:
            return m.group(1), number, emotion
    return None


def scan(root: str | os.PathLike) -> list[Utterance]:
    """List the Korean corpus's utterances under ``root`` (searched recursively).

    Examples:
        >>> scan("~/.cache/emovox-corpora/koetts")  # doctest: +SKIP
    """
    root = check_root(root, "koetts")
    out = []
    for p in audio_files(root):
        f = parse_name(p.stem)
        if f is None or p.parent.name.lower() != "wav" or p.parent.parent.name.lower() != f[0]:
            continue
        label = map_label("koetts", f[2])
        text_file = p.parent.parent / "transcript" / f"{p.stem}.txt"
        text = None
        if text_file.is_file():
            text = text_file.read_text(encoding="utf-8", errors="replace").strip() or None
        out.append(Utterance(str(p), label, f[2], f[0], "koetts", language="ko",
                             transcript=text))
    return finish(out, "koetts", root, "<spk>/wav/<spk>NNNNN.wav (e.g. ema/wav/ema00101.wav)")
