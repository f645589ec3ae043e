"""Experiment: would a linear head beside the profile heads raise accuracy with a domain profile?

v7.3 mixes a linear head (a logistic regression over every encoder state side by side) into its heads'
answer on single clips (+0.9 UA over six held-out corpora), but under a profile its profile heads answer
alone. This is the analogue for profiles: a regression over what the profile heads read (each state's mean
over frames, 7 x 512 values side by side), fitted on the training corpora as a profile presents a corpus
(``centred``: every training corpus moved to the mean of all, as a profile moves a deployment's audio; or
``both``: raw and centred, as the profile heads train), mixed into the profile heads' log-probabilities.

Leave-one-corpus-out as the benchmark's profile rows: v7's fold models (the shipped recipe), the held-out
corpus served as v7.3 serves it (stride 8, level band -32 .. -10), a profile built with `emovox profile`'s
estimator (neutral) and the fold's profile spread from the random half of its clips (``profile``) or a half
70 % neutral (``skewed``), tested on the other half, 4-class UA::

    python experiments/exp_profile_linear.py --out runs/exp_profile_linear.json   # ~15 min, cached features
    python experiments/exp_profile_linear.py --rows centred --mix 0.2,0.3 --seeds 0,1,2,3,4   # five random halves

Every seed also gets the ``shipped`` rows: v7.4 as it serves, the library's linear head
(:func:`emovox.training.train.profile_linear_head`, weight 0.3) set on the profile ensemble, so that the profile is
also built with the mixed answer (the neutral estimator weighs the archive's clips by it, as ``emovox profile``
does with v7.4); the other rows build the profile with the profile heads alone.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_generalisation as bench  # noqa: E402

from emovox.corpora.labels import collapse  # noqa: E402
from emovox.training.checkpoint import load_model_files  # noqa: E402
from emovox.training.train import load_features, profile_linear_head, training_rows  # noqa: E402

DESIGN = "all-mixed-level-d0.5-ph-e10-sp0.5-sc-serve8-band32"  # v7.2/v7.3 as it serves (profile heads alone)
FOLDS = Path("runs/fold_models/all-mixed-level-d0.5-ph-e10-sp0.5-sc")


def means(X: np.ndarray) -> np.ndarray:
    """What the profile heads read, every state side by side: each state's mean over frames (the first half
    of its vector)."""
    return X[..., : X.shape[-1] // 2].reshape(len(X), -1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench.add_corpus_options(parser)
    parser.add_argument("--strengths", default="0.0003", help="comma-separated C of the regression")
    parser.add_argument("--rows", default="centred,both", help="comma-separated: centred, both")
    parser.add_argument("--mix", default="0.2,0.3,0.5", help="comma-separated weights of the linear head")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds of the random halves (0: the benchmark's)")
    parser.add_argument("--folds", type=Path, default=FOLDS)
    parser.add_argument("--out", type=Path, default=Path("runs/exp_profile_linear.json"))
    args = parser.parse_args()

    design = bench.DESIGNS[DESIGN]
    utts = bench.load_corpora(args.corpora, args.extra, None)
    X = load_features(utts, design.extractor()).astype(np.float32)
    X_serve = load_features(utts, design.serving_extractor()).astype(np.float32)
    truth_all = [collapse(u.label, "4class") for u in utts]
    rows: dict = {}
    for held, test, train_utts, _, _ in bench.held_out_splits(utts):
        t0 = time.time()
        ensemble = load_model_files(args.folds / held).ensemble()
        labels = list(ensemble.labels)
        spread = bench.fold_spread(design, X[~test], train_utts)
        corpus_rows = np.flatnonzero(test)
        Xc = X_serve[corpus_rows]
        truth = [truth_all[i] for i in corpus_rows]
        y = np.array([u.label for u in train_utts])
        keep = np.isin(y, labels)
        kept = [u for u, k in zip(train_utts, keep, strict=True) if k]
        shipped = copy.deepcopy(ensemble)  # v7.4: the library's head beside the profile heads
        shipped.profile_heads.linear = profile_linear_head(X[~test], train_utts, labels, weight=0.3)
        regressions = {}  # fitted once per fold, tested on every seed's halves
        for mode in args.rows.split(","):
            train, train_kept = training_rows(X[~test][keep], kept, mode)
            train = means(train)
            mu, sd = train.mean(axis=0), train.std(axis=0) + 1e-6
            for c in map(float, args.strengths.split(",")):
                lr = LogisticRegression(C=c, max_iter=300, class_weight="balanced")
                regressions[f"{mode}-C{c:g}"] = (lr.fit((train - mu) / sd, [u.label for u in train_kept]), mu, sd)
        per_seed = []
        for seed in map(int, args.seeds.split(",")):
            profile, half, skewed = bench.halves(truth, seed=seed)
            truth_half = [truth[i] for i in half]
            served = {name: bench.profiled_features(ensemble, Xc[archive], Xc[half], bench.SHIPPED, spread)
                      for name, archive in (("profile", profile), ("skewed", skewed))}
            p_heads = {name: ensemble.probabilities(Z, profiled=True) for name, Z in served.items()}
            row = {f"{name}-heads": bench.ua(truth_half, bench.four_class_decision(ensemble, p))
                   for name, p in p_heads.items()}
            for name, archive in (("profile", profile), ("skewed", skewed)):
                Z = bench.profiled_features(shipped, Xc[archive], Xc[half], bench.SHIPPED, spread)
                row[f"{name}-shipped"] = bench.ua(truth_half, bench.four_class_decision(
                    shipped, shipped.probabilities(Z, profiled=True)))
            for key, (lr, mu, sd) in regressions.items():
                columns = [labels.index(k) for k in lr.classes_]
                for name, Z in served.items():
                    p = np.full_like(p_heads[name], 1e-12)
                    p[:, columns] = lr.predict_proba((means(Z) - mu) / sd)
                    row[f"{name}-lr-{key}"] = bench.ua(truth_half, bench.four_class_decision(ensemble, p))
                    for w in map(float, args.mix.split(",")):
                        mixed = np.exp(w * np.log(p + 1e-12) + (1 - w) * np.log(p_heads[name] + 1e-12))
                        row[f"{name}-logmix{w:g}-{key}"] = bench.ua(truth_half, bench.four_class_decision(ensemble, mixed))
            per_seed.append(row)
        # each variant's UA averaged over the seeds' halves, and its spread over them
        row = {"n": len(half), **{k: float(np.mean([r[k] for r in per_seed])) for k in per_seed[0]},
               "seed_std": {k: float(np.std([r[k] for r in per_seed])) for k in per_seed[0]}, "per_seed": per_seed}
        rows[held] = row
        print(f"{held:10s} ({time.time() - t0:4.0f} s) "
              + "  ".join(f"{k} {v:.3f}" for k, v in row.items() if isinstance(v, float)), flush=True)
    keys = [k for k in next(iter(rows.values())) if k not in ("n", "seed_std", "per_seed")]
    print(f"\n{'variant':34s} " + " ".join(f"{c:>9s}" for c in rows) + "      mean  worst")
    for k in keys:
        v = [rows[c][k] for c in rows]
        print(f"{k:34s} " + " ".join(f"{100 * x:9.1f}" for x in v) + f" {100 * np.mean(v):9.1f} {100 * min(v):6.1f}")
    if len(args.seeds.split(",")) > 1:  # how far one seed's halves move a corpus's row
        print(f"{'std over seeds, profile heads':34s} "
              + " ".join(f"{100 * rows[c]['seed_std']['profile-heads']:9.1f}" for c in rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"design": DESIGN, "folds": str(args.folds), "rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
