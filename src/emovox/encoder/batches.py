"""Batching of encoder inputs by length (no torch: the runtime uses it too).

Windows of similar length go together, so that padding wastes little: the rule the feature
extractor (:class:`emovox.features.extractor.FeatureExtractor`), the frame cache
(:mod:`emovox.features.frames`), fine-tuning and the torch-free runtime all share.
"""

from __future__ import annotations

from collections.abc import Sequence


def length_batches(lengths: Sequence[int], max_frames: int) -> list[list[int]]:
    """Indices of ``lengths`` grouped into batches of similar length: sorted ascending, each batch
    grown while (its size x its longest item) stays within ``max_frames`` (an item longer than
    that is a batch of its own).

    Examples:
        >>> length_batches([5, 1, 3, 9], 9)
        [[1, 2], [0], [3]]
        >>> length_batches([300, 100, 3000, 120], 400)
        [[1, 3], [0], [2]]
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches, start = [], 0
    while start < len(order):
        stop = start + 1
        while stop < len(order) and (stop - start + 1) * lengths[order[stop]] <= max_frames:
            stop += 1
        batches.append(order[start:stop])
        start = stop
    return batches
