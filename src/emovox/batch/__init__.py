"""Batch emotion annotation of large archives into a resumable Parquet dataset.

``run_batch`` reads a folder, glob or manifest of audio paths, skips the paths already in the
output, and has an engine (a local process pool or Ray Data) annotate the rest; results land
in numbered part files written atomically, one row per file (or per speech segment).

Examples:
    >>> from emovox.batch import run_batch                      # doctest: +SKIP
    >>> run_batch("archive/", "emotions/", engine="local", workers=4).counts  # doctest: +SKIP
    {'angry': 120, 'sad': 881}
"""

from __future__ import annotations

from emovox.batch.inputs import read_inputs
from emovox.batch.rows import annotate, result_schema
from emovox.batch.run import BatchSummary, run_batch
from emovox.batch.store import PartStore

__all__ = ["BatchSummary", "PartStore", "annotate", "read_inputs", "result_schema", "run_batch"]
