"""Level-jittered training copies: every training clip also heard at a random speech level inside a band.

A model served with a level band in front (``features.level_band``, :mod:`emovox.audio.level_band`) hears a
clip anywhere inside that band, depending on how loud it was recorded. Heads trained on clips as recorded
learn each corpus's own level; a jittered copy of every clip, its loud-frame level set to a point drawn
uniformly (in dBFS) inside the band, teaches them that a clip's level inside the band says nothing of its
emotion. The point is drawn from the clip's content hash, so a copy is the same in every run and cached
once (``emovox train --level-jitter=-32:-10``; ``benchmarks/bench_generalisation.py``'s ``-jitter32`` design).

Measured leave-one-corpus-out (six corpora, docs/training.md): heads trained with the copies lost 1.5 points on
single clips of held-out corpora (57.4 against 58.9): within a corpus the louder clips are the angrier ones, and
the copies take that cue away. The default model does not use it; it is here for corpora where it measures better.

Examples:
    >>> from emovox.training.level_jitter import jitter_level
    >>> a = jitter_level("ab" * 32, (-32.0, -10.0))
    >>> -32.0 <= a <= -10.0, a == jitter_level("ab" * 32, (-32.0, -10.0))
    (True, True)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from emovox.audio.level_band import levelled
from emovox.corpora.manifest import Utterance
from emovox.features.extractor import FeatureCache, FeatureExtractor, extract_files


def jitter_level(digest: str, band: tuple[float, float]) -> float:
    """The speech level (dBFS) a clip's jittered copy is set to: uniform in ``band``, drawn from the clip's
    content hash ``digest`` (hex; the same copy every run).

    Examples:
        >>> jitter_level("0" * 64, (-20.0, -20.0))
        -20.0
    """
    low, high = band
    if low > high:
        raise ValueError(f"level band {band}: low above high")
    return float(np.random.default_rng(int(digest[:16], 16)).uniform(low, high))


def jitter_cache_key(digest: str, band: tuple[float, float]) -> str:
    """The feature-cache key of a clip's jittered copy (its content hash ``digest`` and the band).

    Examples:
        >>> jitter_cache_key("0" * 64, (-32.0, -10.0)) == jitter_cache_key("0" * 64, (-32.0, -10.0))
        True
        >>> jitter_cache_key("0" * 64, (-32.0, -10.0)) == jitter_cache_key("0" * 64, (-26.0, -14.0))
        False
    """
    return hashlib.sha256(f"{digest}:{jitter_tag(band)}".encode()).hexdigest()


def jitter_tag(band: tuple[float, float]) -> str:
    """How copies of ``band`` are named (progress bar, cache key).

    Examples:
        >>> jitter_tag((-32.0, -10.0))
        'jitter:-32:-10'
    """
    return f"jitter:{band[0]:g}:{band[1]:g}"


def jittered_features(utterances: Sequence[Utterance], extractor: FeatureExtractor, band: tuple[float, float], *,
                      cache_root=None) -> np.ndarray:
    """Pooled features ``(n, ...)`` of every utterance with its loud-frame level
    (:func:`emovox.audio.level_band.loud_level`) set to :func:`jitter_level`, encoded by ``extractor``
    (cached per clip and band; silent clips stay as they are)."""
    return extract_files([u.path for u in utterances], extractor, cache=FeatureCache(extractor.settings, cache_root),
                         desc=jitter_tag(band),
                         transform=lambda signal, digest: levelled(signal, jitter_level(digest, band)),
                         cache_key=lambda digest: jitter_cache_key(digest, band))
