"""onnxruntime sessions: which execution providers, how many threads.

Everything about *where* a graph runs is decided here: :func:`choose_providers` (CPU by
default, CUDA when asked for or available) and :func:`make_session` (thread counts, graph
optimisation level).

Examples:
    >>> choose_providers("cpu")
    ['CPUExecutionProvider']
"""

from __future__ import annotations

import os

import onnxruntime as ort

from emovox.errors import ModelError

DEVICES = ("auto", "cpu", "cuda")


def choose_providers(device: str = "auto") -> list[str]:
    """Execution providers for ``device``: ``cpu``; ``cuda`` (error if unavailable); or
    ``auto``, CUDA when onnxruntime has it, else CPU. CPU always comes last as the fallback."""
    if device not in DEVICES:
        raise ModelError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    available = ort.get_available_providers()
    if device == "cuda" and "CUDAExecutionProvider" not in available:
        raise ModelError("device 'cuda' asked for, but this onnxruntime has no CUDAExecutionProvider "
                         "(pip install onnxruntime-gpu)")
    if device != "cpu" and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def make_session(path: str | os.PathLike, *, device: str = "auto", threads: int | None = None,
                 inter_threads: int | None = None, spin: bool = False) -> ort.InferenceSession:
    """An inference session for the graph at ``path``.

    ``threads``: intra-op threads (default: ``$EMOVOX_THREADS``, else onnxruntime's choice,
    one per physical core); ``inter_threads``: threads running independent nodes in parallel.
    ``spin``: let idle worker threads busy-wait between operators. onnxruntime does by
    default; on a shared 2-core machine that made 2 threads 3x slower than 1 (a 4 s clip:
    105 ms vs 37 ms), without it 2 threads take 50-75 ms. Turn it on for a dedicated machine.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    threads = threads if threads is not None else int(os.environ.get("EMOVOX_THREADS", "0"))
    if threads:
        options.intra_op_num_threads = threads
    if inter_threads:
        options.inter_op_num_threads = inter_threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    options.log_severity_level = 3  # errors only: shape-inference notes are not for users
    try:
        return ort.InferenceSession(os.fspath(path), options, providers=choose_providers(device))
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelError(f"cannot load {path}: {exc}") from exc
