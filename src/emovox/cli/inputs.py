"""Expand command-line inputs (files, directories, globs) into a list of audio paths.

Examples:
    >>> expand_inputs([])
    []
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au", ".opus", ".w64", ".caf"}


def expand_inputs(items: list[str]) -> list[str]:
    """Files stay as given (even if missing, so they get an error line); directories are
    searched recursively for audio files; glob patterns are expanded. Order is kept."""
    out: list[str] = []
    for item in items:
        if os.path.isdir(item):
            out += sorted(str(p) for p in Path(item).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
        elif glob.has_magic(item) and not os.path.exists(item):
            out += sorted(p for p in glob.glob(item, recursive=True) if os.path.isfile(p))
        else:
            out.append(item)
    return out
