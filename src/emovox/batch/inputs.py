"""What to annotate: a folder, a glob, or a manifest (CSV, JSONL, Parquet) with a ``path`` column.

Examples:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "list.csv").write_text("path,speaker\\na.wav,1\\n/data/b.wav,2\\na.wav,1\\n")
    >>> [p.replace(str(folder), "ROOT") for p in read_inputs(folder / "list.csv")]
    ['ROOT/a.wav', '/data/b.wav']
    >>> path_identity("in/./a.wav") == path_identity(os.path.abspath("in/a.wav"))
    True
"""

from __future__ import annotations

import csv
import functools
import json
import os
from pathlib import Path

from emovox.cli.inputs import expand_inputs
from emovox.errors import CorpusError

MANIFEST_SUFFIXES = (".csv", ".jsonl", ".parquet")


def path_identity(path: str | os.PathLike) -> str:
    """What makes two spellings of a path the same file for resuming: the absolute path with
    its folder resolved (``in/a.wav``, ``./in/a.wav`` and ``/abs/in/a.wav`` are one file; so
    are paths through a linked folder). The file name itself is kept: two links to one
    recording in an archive are two entries. Relative paths are taken from the current folder,
    as they were written by a run started there.
    """
    absolute = os.path.abspath(os.fspath(path))
    folder, name = os.path.split(absolute)
    return os.path.join(_resolved(folder), name)


@functools.lru_cache(maxsize=4096)
def _resolved(folder: str) -> str:
    return os.path.realpath(folder)


def read_inputs(source: str | os.PathLike, skipped: list[tuple[str, str]] | None = None) -> list[str]:
    """The audio paths of ``source``, in order, each once (by :func:`path_identity`, keeping
    the first spelling).

    A folder is searched recursively for audio files and a glob is expanded (as in
    ``emovox predict``); a folder's entries that are not regular files (dangling links, FIFOs)
    are appended to ``skipped`` as ``(path, reason)``. In a manifest, relative paths are
    relative to the manifest's folder.
    """
    source = os.fspath(source)
    if os.path.isfile(source) and source.lower().endswith(MANIFEST_SUFFIXES):
        paths = _manifest_paths(Path(source))
    else:
        paths = expand_inputs([source], skipped)
        if len(paths) == 1 and not os.path.exists(paths[0]) and paths[0] == source:
            raise CorpusError(f"{source}: no such folder, file or matching files")
    unique: dict[str, str] = {}
    for path in paths:
        unique.setdefault(path_identity(path), path)
    return list(unique.values())


def _manifest_paths(manifest: Path) -> list[str]:
    suffix = manifest.suffix.lower()
    try:
        if suffix == ".csv":
            with manifest.open(newline="") as f:
                rows = list(csv.DictReader(f))
            if rows and "path" not in rows[0]:
                raise CorpusError(f"{manifest}: no 'path' column (columns: {', '.join(rows[0])})")
            raw = [r["path"] for r in rows]
        elif suffix == ".jsonl":
            raw = []
            for n, line in enumerate(manifest.read_text().splitlines(), 1):
                if line.strip():
                    record = json.loads(line)
                    if "path" not in record:
                        raise CorpusError(f"{manifest}:{n}: no 'path' field")
                    raw.append(record["path"])
        else:
            import pyarrow.parquet as pq

            table = pq.read_table(manifest)
            if "path" not in table.column_names:
                raise CorpusError(f"{manifest}: no 'path' column (columns: {', '.join(table.column_names)})")
            raw = table.column("path").to_pylist()
    except (OSError, ValueError) as exc:
        raise CorpusError(f"{manifest}: cannot read the manifest: {exc}") from None
    root = manifest.parent
    return [p if os.path.isabs(p) else str(root / p) for p in (str(x) for x in raw if x)]
