"""BAVED, Basic Arabic Vocal Emotions Dataset, Arabic: seven words at three arousal levels.

Layout ``<word id>/<spk>-<gender>-<age>-<word>-<level>-<rec>.wav``, e.g. ``3/56-f-40-3-0-884.wav``.
Levels are arousal, not categories: 0 low (tired, down), 1 neutral, 2 high (positive or
negative). Only level 1 maps onto the taxonomy (neutral); levels 0 and 2 are dropped by
default, since no single emotion fits them. ``keep_levels=True`` keeps them as ``sad`` (0) and
``angry`` (2) for arousal experiments, an approximation to state when reporting;
``arousal_sets=True`` (the adapter ``baved-arousal``) keeps them as what they say: level 0 as
``sad`` (down), level 2 as the candidate set of the high-arousal emotions
(:data:`~emovox.corpora.labels.HIGH_AROUSAL`: one of them, not known which), for training with
candidate sets. The native label is always ``level0``/``level1``/``level2``.

Examples:
    >>> parse_name("56-f-40-3-0-884")
    ('56', 'female', '3', '0')
    >>> parse_name("notes") is None
    True
"""

from __future__ import annotations

import os

from emovox.corpora._common import audio_files, check_root, finish
from emovox.corpora.labels import HIGH_AROUSAL, candidate_label, map_label
from emovox.corpora.manifest import Utterance

_GENDER = {"m": "male", "f": "female"}
_AROUSAL_PROXY = {"0": "sad", "2": "angry"}
_AROUSAL_SETS = {"0": "sad", "2": candidate_label(HIGH_AROUSAL)}


def parse_name(stem: str) -> tuple[str, str, str, str] | None:
    """Split a stem into (speaker, gender, word, level); ``None`` if it does not fit."""
    parts = stem.split("-")
    if len(parts) != 6 or parts[1].lower() not in _GENDER or parts[4] not in {"0", "1", "2"}:
        return None
    return parts[0], _GENDER[parts[1].lower()], parts[3], parts[4]


def scan(root: str | os.PathLike, *, keep_levels: bool = False, arousal_sets: bool = False) -> list[Utterance]:
    """List BAVED utterances under ``root``: level 1 as neutral (plus 0/2 with ``keep_levels`` as
    proxies, or with ``arousal_sets`` as sad and a high-arousal candidate set).

    Examples:
        >>> scan("~/.cache/emovox-corpora/baved")  # doctest: +SKIP
    """
    if keep_levels and arousal_sets:
        raise ValueError("keep_levels and arousal_sets are two readings of levels 0 and 2: choose one")
    root = check_root(root, "baved")
    out = []
    for p in audio_files(root):
        f = parse_name(p.stem)
        if f is None:
            continue
        label = map_label("baved", f[3])
        if label is None and (keep_levels or arousal_sets):
            label = (_AROUSAL_SETS if arousal_sets else _AROUSAL_PROXY)[f[3]]
        if label:
            out.append(Utterance(str(p), label, f"level{f[3]}", f[0], "baved",
                                 gender=f[1], language="ar"))
    return finish(out, "baved", root, "<word>/<spk>-<m|f>-<age>-<word>-<level>-<rec>.wav")
