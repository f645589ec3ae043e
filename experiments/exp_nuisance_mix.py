"""Experiment: do heads trained with the nuisance projection add to v6.3's heads as one ensemble?

Leave-one-corpus-out fold models of two designs, kept by ``bench_generalisation.py --keep-models``
(v6.3's ``all-mixed-level-d0.5-ph-e10`` and ``...-nap32``, whose heads have the 32 directions of largest
spread between the training speakers' means projected out). Each held-out corpus's 4-class clips are
answered as ``--labels angry,happy,sad,neutral`` does, single clips and under the shipped profile (neutral
estimator, built from a random half of every clip, tested on the other half), by: each design's ten heads;
a ten-head mix of heads 0-4 of each (what a recipe projecting in half its heads would cost to run: as
much as v6.3); all twenty heads. Mixed ensembles average logits, temperatures averaged.

    python experiments/exp_nuisance_mix.py --a runs/fold_models/all-mixed-level-d0.5-ph-e10 \\
        --b runs/s17/folds/all-mixed-level-d0.5-ph-e10-nap32 --out runs/s17/nuisance_mix.json   # minutes
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_generalisation as bench  # noqa: E402
from exp_seed_ensemble import mean_and_worst, merged  # noqa: E402

from emovox.corpora.labels import collapse  # noqa: E402
from emovox.training.checkpoint import load_model_files  # noqa: E402
from emovox.training.head import Ensemble  # noqa: E402


def first(ensemble: Ensemble, n: int) -> Ensemble:
    """The ensemble's first ``n`` heads and first ``n`` profile heads (temperatures kept)."""
    profile = ensemble.profile_heads
    return Ensemble(ensemble.heads[:n], list(ensemble.labels), ensemble.temperature, average=ensemble.average,
                    profile_heads=None if profile is None else first(profile, n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", type=Path, required=True, help="fold models of the first design (DIR/<corpus>/)")
    parser.add_argument("--b", type=Path, required=True, help="fold models of the second design")
    bench.add_corpus_options(parser)
    parser.add_argument("--out", type=Path, default=Path("runs/exp_nuisance_mix.json"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="y_pred contains classes")
    utts, X = bench.corpora_features(args)
    rows = {}
    for held, test, _, idx, truth in bench.held_out_splits(utts):
        a, b = (load_model_files(root / held).ensemble() for root in (args.a, args.b))
        answers = {"a": a, "b": b, "a0-4+b0-4": merged([first(a, 5), first(b, 5)]), "a+b": merged([a, b])}
        corpus_rows = np.flatnonzero(test)
        four = [collapse(utts[i].label, "4class") for i in corpus_rows]
        profile, half, _ = bench.halves(four)
        truth_half = [four[i] for i in half]
        Xc, row = X[corpus_rows], {}
        for name, e in answers.items():
            row[f"single_{name}"] = bench.ua(truth, bench.four_class_decision(e, e.probabilities(X[idx])))
            profiled = bench.profiled_probabilities(e, Xc[profile], Xc[half])
            row[f"profile_{name}"] = bench.ua(truth_half, bench.four_class_decision(e, profiled))
        rows[held] = row
        print(held, {k: round(v, 3) for k, v in row.items()}, flush=True)
    mean, worst = mean_and_worst(rows, width=24)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"a": str(args.a), "b": str(args.b), "corpora": rows, "mean": mean, "worst": worst},
                                   indent=2) + "\n")


if __name__ == "__main__":
    main()
