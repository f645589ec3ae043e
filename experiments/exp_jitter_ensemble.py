"""Experiment: do v7.3's heads and heads trained on level-jittered copies err differently enough to ensemble?

Heads trained on every clip and a copy at a random speech level inside the band (the benchmark's
``...-sc8-jitter32`` design, ``emovox train --level-jitter``) won on some held-out corpora and lost on others
against heads trained on clips as recorded: they no longer read a recording's absolute level. Averaging the
two ensembles' log-probabilities keeps half of each view. Leave-one-corpus-out over the six corpora, each
fold's two models as the benchmark kept them, the held-out corpus served as v7.3 serves (stride 8, level band
-32 .. -10), each fold's linear head fitted as v7.3's (C 3e-4, weight 0.3, on v7's training features); single
clips and a profile from the random half (the neutral estimator and each model's own profile spread), 4-class
UA::

    python experiments/exp_jitter_ensemble.py --out runs/exp_jitter_ensemble.json   # ~20 min, cached features
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_generalisation as bench  # noqa: E402
from fold_models import print_table  # noqa: E402

from emovox.corpora.labels import collapse  # noqa: E402
from emovox.training.checkpoint import load_model_files  # noqa: E402
from emovox.training.linear_head import fit_linear_head, mix_log_probabilities  # noqa: E402
from emovox.training.train import load_features  # noqa: E402

V7 = "all-mixed-level-d0.5-ph-e10-sp0.5-sc-serve8-band32"  # v7's heads as v7.2/v7.3 serve them
JITTER = "all-mixed-level-d0.5-ph-e10-sp0.5-sc8-jitter32"
FOLDS = Path("runs/fold_models")


def log_mix(a: np.ndarray, b: np.ndarray, w: float = 0.5) -> np.ndarray:
    """``softmax((1 - w) log a + w log b)``.

    Examples:
        >>> log_mix(np.array([[0.5, 0.5]]), np.array([[0.9, 0.1]])).round(2).tolist()
        [[0.75, 0.25]]
    """
    m = np.exp((1 - w) * np.log(a + 1e-12) + w * np.log(b + 1e-12))
    return m / m.sum(1, keepdims=True)


def mixed_in(linear, p: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``p`` with ``linear``'s answer on ``X`` mixed in at its weight (as the model mixes it)."""
    with torch.no_grad():
        return mix_log_probabilities(torch.from_numpy(p), linear(torch.from_numpy(X)), linear.weight).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench.add_corpus_options(parser)
    parser.add_argument("--held-out", default="", help="comma-separated: only these held-out corpora")
    parser.add_argument("--folds", type=Path, default=FOLDS)
    parser.add_argument("--out", type=Path, default=Path("runs/exp_jitter_ensemble.json"))
    args = parser.parse_args()

    v7, jit = bench.DESIGNS[V7], bench.DESIGNS[JITTER]
    utts = bench.load_corpora(args.corpora, args.extra, None)
    X_v7 = load_features(utts, v7.extractor()).astype(np.float32)  # v7's training features (stride 1, no band)
    X_jit = load_features(utts, jit.extractor()).astype(np.float32)  # the jitter heads' (stride 8, no band)
    X_serve = load_features(utts, v7.serving_extractor()).astype(np.float32)  # both serve at stride 8, banded
    truth_all = [collapse(u.label, "4class") for u in utts]
    rows: dict = {}
    for held, test, train_utts, idx, truth in bench.held_out_splits(utts, [c for c in args.held_out.split(",") if c]):
        t0 = time.time()
        a = load_model_files(args.folds / "all-mixed-level-d0.5-ph-e10-sp0.5-sc" / held).ensemble()
        b = load_model_files(args.folds / JITTER / held).ensemble()
        labels, corpora = [u.label for u in train_utts], [u.corpus for u in train_utts]
        linear = fit_linear_head(X_v7[~test], labels, corpora, a.labels)
        with_linear = functools.partial(mixed_in, linear)
        Xt = X_serve[idx]
        pa, pb = a.probabilities(Xt), b.probabilities(Xt)
        single = {"v7.2": pa, "jitter": pb, "v7.3": with_linear(pa, Xt), "jitter+lin": with_linear(pb, Xt),
                  "ens": log_mix(pa, pb), "ens+lin": with_linear(log_mix(pa, pb), Xt),
                  "ens0.3+lin": with_linear(log_mix(pa, pb, 0.3), Xt)}
        row = {"n": len(idx), **{k: bench.ua(truth, bench.four_class_decision(a, p)) for k, p in single.items()}}
        corpus_rows = np.flatnonzero(test)
        Xc = X_serve[corpus_rows]
        t_c = [truth_all[i] for i in corpus_rows]
        profile, half, _ = bench.halves(t_c)
        truth_half = [t_c[i] for i in half]
        qa = bench.profiled_probabilities(a, Xc[profile], Xc[half], bench.SHIPPED,
                                          bench.fold_spread(v7, X_v7[~test], train_utts))
        qb = bench.profiled_probabilities(b, Xc[profile], Xc[half], bench.SHIPPED,
                                          bench.fold_spread(jit, X_jit[~test], train_utts))
        for k, q in {"profile-v7": qa, "profile-jitter": qb, "profile-ens": log_mix(qa, qb)}.items():
            row[k] = bench.ua(truth_half, bench.four_class_decision(a, q))
        rows[held] = row
        print(f"{held:10s} ({time.time() - t0:4.0f} s) " + "  ".join(f"{k} {v:.3f}" for k, v in row.items() if k != "n"),
              flush=True)
    print_table(rows, 16)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"designs": [V7, JITTER], "folds": str(args.folds), "rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
