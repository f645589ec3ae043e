"""Experiment: do the heads need each encoder state's std over frames, or only its mean? And does
averaging the two views (v6's heads on mean and std, v6's recipe on the means alone) help?

Leave-one-corpus-out over every corpus ``benchmarks/bench_generalisation.py`` finds, v6's recipe
(``all-mixed-level-d0.5``), single clips, 4 classes as ``--labels angry,happy,sad,neutral``; the
held-out corpus is never heard. For each held-out corpus two ensembles train on the other corpora,
one on the full level-weighted mean-and-std features and one on their mean half, and the test
clips are scored by each and by a weighted geometric mean of their calibrated probabilities
(``w``: the means-only view's weight).

    python experiments/exp_mean_std_views.py --out runs/exp_mean_std_views.json   # about 30 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_generalisation as bench  # noqa: E402

WEIGHTS = (0.25, 0.5, 0.75)


def geometric_mean(p_full: np.ndarray, p_mean: np.ndarray, w: float) -> np.ndarray:
    """Rows of ``p_full ** (1 - w) * p_mean ** w``, renormalised.

    Examples:
        >>> geometric_mean(np.array([[0.5, 0.5]]), np.array([[0.9, 0.1]]), 0.0).tolist()
        [[0.5, 0.5]]
    """
    log_p = (1 - w) * np.log(p_full + 1e-12) + w * np.log(p_mean + 1e-12)
    p = np.exp(log_p - log_p.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench.add_corpus_options(parser)
    parser.add_argument("--out", type=Path, default=Path("runs/exp_mean_std_views.json"))
    args = parser.parse_args()

    design = bench.DESIGNS["all-mixed-level-d0.5"]
    utts, X = bench.corpora_features(args, design.pooling)
    X_mean = bench.design_inputs(bench.DESIGNS["all-mixed-level-d0.5-mean"], X)  # the means-only view
    rows = {}
    for held, test, train_utts, idx, truth in bench.held_out_splits(utts):
        full = bench.train_ensemble(X[~test], train_utts, config=design.config)
        means = bench.train_ensemble(X_mean[~test], train_utts, config=design.config)
        p_full, p_mean = full.probabilities(X[idx]), means.probabilities(X_mean[idx])
        row = {"full": bench.ua(truth, bench.four_class_decision(full, p_full)),
               "mean": bench.ua(truth, bench.four_class_decision(means, p_mean))}
        for w in WEIGHTS:
            row[f"geometric_w{w:g}"] = bench.ua(truth, bench.four_class_decision(full, geometric_mean(p_full, p_mean, w)))
        rows[held] = row
        print(held, {k: round(v, 3) for k, v in row.items()}, flush=True)
    means_row = {k: float(np.mean([r[k] for r in rows.values()])) for k in next(iter(rows.values()))}
    print("mean", {k: round(v, 3) for k, v in means_row.items()})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"split": "leave-one-corpus-out, single clips, 4 classes", "corpora": rows,
                                    "mean": means_row}, indent=2) + "\n")


if __name__ == "__main__":
    main()
