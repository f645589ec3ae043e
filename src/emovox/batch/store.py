"""The output dataset: numbered Parquet part files, each written atomically, read back on resume.

A part is written to a hidden temp file in the same folder, flushed to disk and renamed to
``part-NNNNN.parquet``, so a part is either complete or absent; readers (pyarrow, pandas,
Spark, Ray) skip the hidden ``.``-prefixed leftovers of a killed run, and the next run removes
them. An exclusive lock on ``.lock`` keeps two runs from writing the same folder.

Examples:
    >>> import tempfile, pyarrow as pa
    >>> store = PartStore(tempfile.mkdtemp(), pa.schema([("path", pa.string())]))
    >>> store.write(pa.table({"path": ["a.wav", "b.wav"]})).name
    'part-00000.parquet'
    >>> sorted(store.done_paths())
    ['a.wav', 'b.wav']
    >>> store.close()
"""

from __future__ import annotations

import fcntl
import os
import re
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from emovox.errors import EmovoxError

PART = re.compile(r"^part-(\d{5,})\.parquet$")


class PartStore:
    """The Parquet dataset in ``root``: its finished parts, and atomic writes of new ones."""

    def __init__(self, root: str | os.PathLike, schema: pa.Schema):
        self.root = Path(root)
        self.schema = schema
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.root / ".lock", "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            raise EmovoxError(f"{self.root}: another emovox batch run is writing there") from None
        for leftover in self.root.glob(".part-*.tmp"):  # a run killed while writing
            leftover.unlink()
        existing = self.parts()
        self._next = max((int(PART.match(p.name).group(1)) for p in existing), default=-1) + 1
        if existing:
            found = pq.read_schema(existing[0])
            if not found.remove_metadata().equals(schema):
                raise EmovoxError(f"{self.root} holds results with other columns ({', '.join(found.names)}): "
                                  f"another model or --timeline setting; use a new output folder")

    def parts(self) -> list[Path]:
        """The finished part files, in order."""
        return sorted(p for p in self.root.iterdir() if PART.match(p.name))

    def done_paths(self) -> set[str]:
        """The input paths already in the dataset."""
        done: set[str] = set()
        for part in self.parts():
            done.update(pq.read_table(part, columns=["path"]).column("path").to_pylist())
        return done

    def write(self, table: pa.Table) -> Path:
        """Write ``table`` as the next part file, atomically; returns its path."""
        table = table.cast(self.schema)
        name = f"part-{self._next:05d}.parquet"
        tmp, final = self.root / f".{name}.tmp", self.root / name
        with pa.OSFile(str(tmp), "wb") as sink:
            pq.write_table(table, sink)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, final)
        _fsync_dir(self.root)
        self._next += 1
        return final

    def read(self, columns: list[str] | None = None) -> pa.Table:
        """Every finished part as one table (the schema's columns, or ``columns``)."""
        parts = self.parts()
        if not parts:
            return self.schema.empty_table() if columns is None else self.schema.empty_table().select(columns)
        return pa.concat_tables(pq.read_table(p, columns=columns) for p in parts)

    def counts(self) -> tuple[Counter, Counter]:
        """Rows per label and failed rows per error type, over the whole dataset."""
        table = self.read(["label", "error_type"])
        labels = Counter(l for l in table.column("label").to_pylist() if l is not None)
        errors = Counter(e for e in table.column("error_type").to_pylist() if e is not None)
        return labels, errors

    def close(self) -> None:
        """Release the lock."""
        if not self._lock.closed:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()

    def __enter__(self) -> PartStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
