"""The training objective: class weights, label smoothing and per-row (corpus-balance) weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emovox.fit import class_weights, compute_objective, group_balance_weights


def test_row_weights_of_one_give_the_plain_objective_and_zero_drops_a_row():
    torch.manual_seed(0)
    logits, targets = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 1])
    weights = class_weights(targets.numpy(), 3)
    plain = compute_objective(logits, targets, weights, 0.1)
    assert compute_objective(logits, targets, weights, 0.1, torch.ones(6)).item() == pytest.approx(plain.item(), rel=1e-6)
    keep = torch.tensor([1.0, 1, 1, 1, 1, 0])
    dropped = compute_objective(logits[:5], targets[:5], weights, 0.1)
    assert compute_objective(logits, targets, weights, 0.1, keep).item() == pytest.approx(dropped.item(), rel=1e-6)


def test_group_balance_gives_every_group_the_same_total_weight():
    groups = np.array(["ravdess"] * 30 + ["nemo"] * 60 + ["turev"] * 10)
    w = group_balance_weights(groups)
    totals = [w[groups == g].sum() for g in ("ravdess", "nemo", "turev")]
    assert np.allclose(totals, totals[0]) and w.mean() == pytest.approx(1.0)
