"""Engines: run :func:`~emovox.batch.rows.annotate` over chunks of paths, one model per worker.

Each engine is a generator ``engine(chunks, model_dir, *, workers, timeline, party_names, ...)`` that yields
one Arrow table per chunk as chunks finish (in any order); the caller writes each as a part.
Both keep a bounded number of chunks in flight, so memory stays flat on any archive size.

- :func:`local_engine`: a process pool on this machine; each process loads the model once.
- :func:`ray_engine`: Ray Data on a running cluster (``address``) or a local one, with an
  actor pool of predictors (one model per actor); Ray's streaming executor does the
  backpressure.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

import pyarrow as pa

from emovox.batch.rows import annotate, load_worker_model

_worker_model = None  # the model of this pool process, loaded by _init_worker
_worker_timeline = False
_worker_party_names: str | list[str] | None = None


def _init_worker(model_dir: str, threads: int, timeline: bool | str, profile: str | None = None,
                 party_names: str | list[str] | None = None) -> None:
    global _worker_model, _worker_timeline, _worker_party_names
    _die_with_parent()
    _worker_model = load_worker_model(model_dir, threads=threads, timeline=timeline, profile=profile)
    _worker_timeline = timeline
    _worker_party_names = party_names


def _die_with_parent() -> None:
    """Linux: end this pool process when the driver dies, even by SIGKILL (no orphans)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _annotate_chunk(paths: list[str]) -> pa.Table:
    return annotate(_worker_model, paths, timeline=_worker_timeline, party_names=_worker_party_names)


def local_engine(chunks: Sequence[list[str]], model_dir: str, *, workers: int = 1, timeline: bool | str = False,
                 threads: int = 1, profile: str | None = None,
                 party_names: str | list[str] | None = None) -> Iterator[pa.Table]:
    """Annotate ``chunks`` in ``workers`` processes; at most two chunks per worker in flight
    (``profile``: a domain profile every worker applies, :mod:`emovox.training.profiles`;
    ``party_names``: with a ``--parties`` ``timeline``, the parties' names)."""
    if workers <= 1:  # in this process: no start-up cost, same results
        model = load_worker_model(model_dir, threads=threads, timeline=timeline, profile=profile)
        for chunk in chunks:
            yield annotate(model, chunk, timeline=timeline, party_names=party_names)
        return
    context = multiprocessing.get_context("spawn")  # no inherited threads or locks from the driver
    pending = iter(chunks)
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                             initargs=(model_dir, threads, timeline, profile, party_names)) as pool:
        try:
            running = set()
            for chunk in pending:
                running.add(pool.submit(_annotate_chunk, chunk))
                if len(running) >= 2 * workers:
                    done, running = wait(running, return_when=FIRST_COMPLETED)
                    yield from (f.result() for f in done)
            while running:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                yield from (f.result() for f in done)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


class RayPredictor:
    """A Ray Data actor: loads the model once, annotates ``path`` batches into result tables."""

    def __init__(self, model_dir: str, threads: int = 1, timeline: bool | str = False, profile: str | None = None,
                 party_names: str | list[str] | None = None):
        self.model = load_worker_model(model_dir, threads=threads, timeline=timeline, profile=profile)
        self.timeline = timeline
        self.party_names = party_names

    def __call__(self, batch: pa.Table) -> pa.Table:
        chunks = batch.column("paths").to_pylist()
        return pa.concat_tables(annotate(self.model, chunk, timeline=self.timeline, party_names=self.party_names)
                                for chunk in chunks)


def ray_engine(chunks: Sequence[list[str]], model_dir: str, *, workers: int = 2, timeline: bool | str = False,
               threads: int = 1, address: str | None = None, profile: str | None = None,
               party_names: str | list[str] | None = None) -> Iterator[pa.Table]:
    """Annotate ``chunks`` with Ray Data: ``workers`` predictor actors of ``threads`` CPUs each.

    Connects to the cluster at ``address`` (``auto``: the one ``ray start`` made here), uses
    the Ray already initialised in this process, or starts a local one sized for the actors
    (shut down at the end). Every node needs emovox and ``model_dir`` at the same path.
    """
    import ray
    import ray.data

    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers * threads, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the caller shows one
        if not chunks:
            return
        # one row per chunk: an actor annotates exactly the batches the local engine does
        items = [{"paths": list(chunk)} for chunk in chunks]
        try:
            dataset = ray.data.from_items(items, override_num_blocks=len(chunks))
        except TypeError:  # Ray < 2.10
            dataset = ray.data.from_items(items, parallelism=len(chunks))
        dataset = dataset.map_batches(
            RayPredictor, fn_constructor_kwargs={"model_dir": str(model_dir), "threads": threads, "timeline": timeline,
                                                 "profile": profile, "party_names": party_names},
            batch_size=1, batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=threads)
        yield from dataset.iter_batches(batch_size=None, batch_format="pyarrow")
    finally:
        if started:
            ray.shutdown()
