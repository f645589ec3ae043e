"""TESS, Toronto emotional speech set (Dupuis & Pichora-Fuller 2010), English.

Layout ``<SPK>_<emotion>/<SPK>_<word>_<emotion>.wav``, e.g. ``OAF_angry/OAF_back_angry.wav``;
two female speakers, OAF (older) and YAF (younger). The emotion is the last ``_`` token of the
stem, except pleasant surprise, written ``ps`` or ``pleasant_surprise(d)``. Each sentence is
"Say the word <word>".

Examples:
    >>> parse_name("OAF_back_angry")
    ('OAF', 'back', 'angry')
    >>> parse_name("YAF_bath_pleasant_surprised")
    ('YAF', 'bath', 'pleasant_surprised')
"""

from __future__ import annotations

import os

from emovox.corpora._common import audio_files, check_root, finish
from emovox.corpora.labels import map_label
from emovox.corpora.manifest import Utterance


def parse_name(stem: str) -> tuple[str, str, str] | None:
    """Split a TESS file stem into (speaker, word, emotion); ``None`` if it does not fit."""
    parts = stem.split("_")
    if len(parts) >= 4 and "_".join(parts[-2:]).lower().startswith("pleasant_surprise"):
        parts = [*parts[:-2], "_".join(parts[-2:])]
    if len(parts) < 3:
        return None
    return parts[0].upper(), "_".join(parts[1:-1]), parts[-1].lower()


def scan(root: str | os.PathLike) -> list[Utterance]:
    """List TESS utterances under ``root`` (searched recursively); gender female.

    Examples:
        >>> scan("/data/TESS")  # doctest: +SKIP
    """
    root = check_root(root, "tess")
    out = []
    for p in audio_files(root):
        f = parse_name(p.stem)
        label = f and map_label("tess", f[2])
        if label:
            # The folder names the speaker reliably (one file is named OA_bite_neutral).
            folder = p.parent.name.upper().split("_")[0]
            speaker = folder if folder in {"OAF", "YAF"} else f[0]
            out.append(Utterance(str(p), label, f[2], speaker, "tess", gender="female",
                                 language="en", transcript=f"Say the word {f[1]}."))
    return finish(out, "tess", root, "<SPK>_<emotion>/<SPK>_<word>_<emotion>.wav")
