"""Experiment: would ten heads (both seed sets) answer better than the shipped five on unseen corpora?

Leave-one-corpus-out, v6.2's recipe; the fold models of heads 0–4 and heads 5–9 (:mod:`fold_models`)
answer each held-out corpus's 4-class clips as ``--labels angry,happy,sad,neutral`` does, alone and
with their probabilities averaged, and as one ten-head ensemble with their logits averaged (what
``emovox train --ensemble 10`` trains: its heads are these ten exactly) (single clips; and under the
shipped profile, built from a random half of every clip, tested on the other half).

    python experiments/exp_seed_ensemble.py --out runs/exp_seed_ensemble.json   # minutes with cached folds
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_generalisation as bench  # noqa: E402
from fold_models import fold_ensembles  # noqa: E402

from emovox.corpora.labels import collapse  # noqa: E402
from emovox.training.head import Ensemble  # noqa: E402

DESIGNS = ("all-mixed-level-d0.5-ph", "all-mixed-level-d0.5-ph-s5")


def merged(ensembles: list[Ensemble]) -> Ensemble:
    """The heads of ``ensembles`` (and their profile heads) as one ensemble, temperatures averaged."""
    def join(parts: list[Ensemble]) -> Ensemble:
        return Ensemble([h for e in parts for h in e.heads], list(parts[0].labels),
                        float(np.mean([e.temperature for e in parts])), average=parts[0].average)
    profile = [e.profile_heads for e in ensembles]
    both = join(ensembles)
    return dataclasses.replace(both, profile_heads=None if None in profile else join(profile))


def mean_and_worst(rows: dict[str, dict[str, float]], width: int = 26) -> tuple[dict, dict]:
    """Each key's mean and worst value over the held-out corpora's ``rows``, printed one line a key.

    Examples:
        >>> mean_and_worst({"a": {"x": 0.5}, "b": {"x": 0.7}}, width=2)
        x  mean 0.600 worst 0.500
        ({'x': 0.6}, {'x': 0.5})
    """
    keys = list(next(iter(rows.values())))
    mean = {k: float(np.mean([r[k] for r in rows.values()])) for k in keys}
    worst = {k: float(np.min([r[k] for r in rows.values()])) for k in keys}
    for k in keys:
        print(f"{k:{width}s} mean {mean[k]:.3f} worst {worst[k]:.3f}")
    return mean, worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench.add_corpus_options(parser)
    parser.add_argument("--out", type=Path, default=Path("runs/exp_seed_ensemble.json"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="y_pred contains classes")
    utts, X = bench.corpora_features(args, bench.DESIGNS[DESIGNS[0]].pooling)
    folds = [list(fold_ensembles(design, X, utts)) for design in DESIGNS]
    rows = {}
    for splits in zip(*folds, strict=True):
        held, test, _, idx, truth, _ = splits[0]
        ensembles = [split[-1] for split in splits]
        # one ensemble of all ten heads, logits averaged as a trained ``--ensemble 10`` model does (its
        # temperature, here the two sets' mean, moves only the calm + neutral sum of the 4-class decision
        # and the weights of the profile's estimate)
        ensembles.append(merged(ensembles))
        labels = ensembles[0].labels
        assert all(e.labels == labels for e in ensembles)
        corpus_rows = np.flatnonzero(test)
        four = [collapse(utts[i].label, "4class") for i in corpus_rows]
        profile, half, _ = bench.halves(four)
        truth_half = [four[i] for i in half]
        Xc = X[corpus_rows]
        row = {}
        single = [e.probabilities(X[idx]) for e in ensembles]
        profiled = [bench.profiled_probabilities(e, Xc[profile], Xc[half]) for e in ensembles]
        for name, probs, t in (("single", single, truth), ("profile", profiled, truth_half)):
            for k, p in enumerate(probs):
                key = "ten_heads_one_ensemble" if k == 2 else f"heads{5 * k}-{5 * k + 4}"
                row[f"{name}_{key}"] = bench.ua(t, bench.four_class_decision(ensembles[0], p))
            row[f"{name}_ten_heads"] = bench.ua(t, bench.four_class_decision(ensembles[0], np.mean(probs[:2], axis=0)))
        rows[held] = row
        print(held, {k: round(v, 3) for k, v in row.items()}, flush=True)
    mean, worst = mean_and_worst(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"designs": DESIGNS, "corpora": rows, "mean": mean, "worst": worst}, indent=2) + "\n")


if __name__ == "__main__":
    main()
