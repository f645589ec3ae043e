"""EmoSpeech v1 (Rakshak team), crowd-sourced Hindi/English keywords recorded in the wild.

Layout ``<place>/<keyword>-<environment>-<emotion>-<timestamp>-<userhash>.wav``, e.g.
``Metro/help-safe-fearful-20190710134657-d14a...wav``. Emotions angry, calm, fearful, happy
(``None`` is dropped). The keywords ``background`` and ``unknown`` are not speech commands and
are dropped too. The speaker is the user hash; about three quarters of the clips share the hash
of an anonymous user, so speaker-independent splits within this corpus are only approximate.

Examples:
    >>> parse_name("help-safe-fearful-20190710134657-d14a02")
    ('help', 'safe', 'fearful', 'd14a02')
    >>> parse_name("glass break-x") is None
    True
"""

from __future__ import annotations

import os

from emovox.corpora._common import audio_files, check_root, finish
from emovox.corpora.labels import map_label
from emovox.corpora.manifest import Utterance

NOT_SPEECH = frozenset({"background", "unknown"})
"""Keywords that are not spoken commands."""


def parse_name(stem: str) -> tuple[str, str, str, str] | None:
    """Split a stem into (keyword, environment, emotion, user hash); ``None`` if it does not fit."""
    parts = stem.split("-")
    if len(parts) != 5:
        return None
    keyword, environment, emotion, _timestamp, user = parts
    return keyword.lower(), environment.lower(), emotion.lower(), user.lower()


def scan(root: str | os.PathLike) -> list[Utterance]:
    """List EmoSpeech utterances under ``root`` (searched recursively).

    Examples:
        >>> scan("~/.cache/emovox-corpora/emospeech")  # doctest: +SKIP
    """
    root = check_root(root, "emospeech")
    out = []
    for p in audio_files(root):
        f = parse_name(p.stem)
        if f is None or f[0] in NOT_SPEECH:
            continue
        label = map_label("emospeech", f[2])
        if label:
            out.append(Utterance(str(p), label, f[2], f[3][:12], "emospeech",
                                 transcript=f[0]))
    return finish(out, "emospeech", root,
                  "<place>/<keyword>-<environment>-<emotion>-<timestamp>-<user>.wav")
