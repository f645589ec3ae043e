"""Expand command-line inputs (files, directories, globs) into a list of audio paths, and say
which entries of a folder were passed over.

Examples:
    >>> expand_inputs([])
    []
"""

from __future__ import annotations

import glob
import os
import stat
from pathlib import Path

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".aifc", ".au", ".opus", ".w64", ".caf",
                  ".xi", ".gsm"}


def expand_inputs(items: list[str], skipped: list[tuple[str, str]] | None = None) -> list[str]:
    """Files stay as given (even if missing, so they get an error line); directories are
    searched recursively for audio files; glob patterns are expanded. Order is kept.

    Inside a directory, an entry with an audio suffix that is not a regular file (a dangling
    link, a FIFO, a socket, a device) is left out and, when ``skipped`` is a list, appended
    to it as ``(path, reason)``.

    Examples:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> (folder / "gone.wav").symlink_to(folder / "nowhere.wav")
        >>> skipped = []
        >>> expand_inputs([str(folder)], skipped), [(Path(p).name, why) for p, why in skipped]
        ([], [('gone.wav', 'a link to nothing')])
    """
    out: list[str] = []
    for item in items:
        if os.path.isdir(item):
            for path in sorted(Path(item).rglob("*")):
                if path.suffix.lower() not in AUDIO_SUFFIXES:
                    continue
                reason = _not_a_file(path)
                if reason is None:
                    out.append(str(path))
                elif skipped is not None and reason:
                    skipped.append((str(path), reason))
        elif glob.has_magic(item) and not os.path.exists(item):
            out += sorted(p for p in glob.glob(item, recursive=True) if os.path.isfile(p))
        else:
            out.append(item)
    return out


def _not_a_file(path: Path) -> str | None:
    """None for a regular file (or a link to one); else why it is skipped ("" to say nothing:
    a directory with an audio suffix is searched like any other)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "a link to nothing" if path.is_symlink() else "vanished while listed"
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return ""
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe), not a file"
    if stat.S_ISSOCK(mode):
        return "a socket, not a file"
    return "a device, not a file"
