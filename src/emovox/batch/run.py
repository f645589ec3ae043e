"""``run_batch``: inputs → skip what is done → an engine → part files, with progress and a summary.

Resumable and idempotent: the paths already in the output are skipped (matched by
:func:`~emovox.batch.inputs.path_identity`, so ``in`` and ``/abs/path/in`` are one folder),
each chunk's rows are written as one atomic part file, so a run killed at any moment loses at
most the chunks in flight and a rerun neither repeats nor drops a row.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time
from collections.abc import Sequence

from emovox.batch.engines import local_engine, ray_engine
from emovox.batch.inputs import path_identity, read_inputs
from emovox.batch.rows import load_worker_model, model_info, resolve_model, result_schema
from emovox.batch.store import PartStore

ENGINES = ("local", "ray")

log = logging.getLogger(__name__)


@dataclasses.dataclass
class BatchSummary:
    """What a run did, and what the whole output dataset now holds."""

    inputs: int  # distinct input paths
    skipped: int  # already in the output before this run
    processed: int  # files annotated by this run
    failed: int  # files of this run that became error rows
    elapsed: float  # seconds this run spent annotating
    counts: dict[str, int]  # rows per label in the whole dataset
    failures: dict[str, int]  # error rows per error type in the whole dataset
    parts: int  # part files in the dataset
    first_part: tuple[float, int] | None = None  # (seconds, files) when the first part was written

    @property
    def steady_files_per_s(self) -> float:
        """Throughput after the first part: without worker start-up and model loading."""
        if not self.first_part or self.elapsed <= self.first_part[0]:
            return self.files_per_s
        return (self.processed - self.first_part[1]) / (self.elapsed - self.first_part[0])

    @property
    def files_per_s(self) -> float:
        return self.processed / self.elapsed if self.elapsed > 0 else 0.0


def run_batch(inputs: str | os.PathLike, output: str | os.PathLike, *, engine: str = "local", workers: int = 1,
              model_dir: str | os.PathLike | None = None, timeline: bool | str = False, chunk_size: int = 64,
              threads: int = 1, address: str | None = None, progress: bool = True,
              profile: str | os.PathLike | None = None, party_names: str | Sequence[str] | None = None) -> BatchSummary:
    """Annotate every audio file of ``inputs`` into the Parquet dataset folder ``output``.

    Args:
        inputs: a folder, a glob, or a manifest (``.csv``, ``.jsonl``, ``.parquet`` with a
            ``path`` column).
        output: the dataset folder; files already in it are skipped.
        engine: ``local`` (a process pool here) or ``ray`` (Ray Data).
        workers: processes or Ray actors, each with its own model.
        model_dir: a model or exported folder (default: the shipped model); a model folder is
            exported once to onnxruntime for the workers.
        timeline: one row per speech segment (see :mod:`emovox.prediction.timeline`) instead of per file;
            a ``--parties`` spec (``"channels"``, ``"speakers:2"`` ...) for a conversation's segments,
            each with party, overlap, arousal and valence (:mod:`emovox.conversation`).
        chunk_size: files per task and per part file.
        threads: compute threads per worker.
        address: the Ray cluster to connect to (``ray`` engine; default: a local one).
        progress: show a progress bar with throughput and ETA on stderr.
        profile: a domain profile made for this model (``emovox profile``), applied by every worker.
        party_names: with a ``--parties`` ``timeline``: the parties' names, comma-separated or a list
            (channel order, or order of first speech; see :func:`emovox.conversation.parties.party_names`).

    Raises:
        ValueError: an unknown engine, a bad ``--parties`` spec, ``party_names`` without one, or
            names that repeat: before any worker starts.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if party_names is not None and not isinstance(timeline, str):
        raise ValueError("party_names needs a --parties timeline")
    names = list(party_names) if party_names is not None and not isinstance(party_names, str) else party_names
    if isinstance(timeline, str):
        from emovox.conversation.parties import parse_parties
        from emovox.conversation.parties import party_names as check_names

        parse_parties(timeline)  # a bad spec fails here, not in every worker
        check_names(names, 0)  # so do names that repeat
    passed_over: list[tuple[str, str]] = []
    paths = read_inputs(inputs, passed_over)
    for path, reason in passed_over:
        log.warning("warning: skipped %s: %s", path, reason)
    model_path = resolve_model(model_dir)
    labels, _ = model_info(model_path)
    if profile is not None:  # refuse another model's profile here, before any worker starts
        profile = os.path.abspath(profile)
        load_worker_model(model_path, profile=profile)
    with PartStore(output, result_schema(labels, timeline=timeline)) as store:
        done = {path_identity(p) for p in store.done_paths()}
        todo = [p for p in paths if path_identity(p) not in done]
        chunks = [todo[i : i + chunk_size] for i in range(0, len(todo), chunk_size)]
        log.info("%d files, %d already done, %d to annotate", len(paths), len(paths) - len(todo), len(todo))
        if engine == "local":
            tables = local_engine(chunks, str(model_path), workers=workers, timeline=timeline, threads=threads,
                                  profile=profile, party_names=names)
        else:
            tables = ray_engine(chunks, str(model_path), workers=workers, timeline=timeline, threads=threads,
                                address=address, profile=profile, party_names=names)
        processed, failed_paths, first_part = 0, set(), None
        start = time.perf_counter()
        bar = _progress(len(todo), len(paths) - len(todo), progress)
        try:
            for table in tables:
                if table.num_rows == 0:
                    continue
                store.write(table)
                files = set(table.column("path").to_pylist())
                errors = table.filter(table.column("error").is_valid()).column("path").to_pylist()
                failed_paths.update(errors)
                processed += len(files)
                first_part = first_part or (time.perf_counter() - start, processed)
                bar.update(len(files))
        finally:
            bar.close()
            tables.close()
        elapsed = time.perf_counter() - start
        counts, failures = store.counts()
        return BatchSummary(len(paths), len(paths) - len(todo), processed, len(failed_paths), elapsed,
                            dict(sorted(counts.items())), dict(sorted(failures.items())), len(store.parts()), first_part)


def _progress(total: int, skipped: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="file", desc="annotating", disable=not enabled or not total, file=sys.stderr,
                dynamic_ncols=True, smoothing=0.1, postfix={"skipped": skipped} if skipped else None)
