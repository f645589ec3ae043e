"""Experiment: under a domain profile, which heads should answer: v6.2's profile heads (each
state's mean only), its single-clip heads (mean and std), or both averaged?

Leave-one-corpus-out over every corpus ``benchmarks/bench_generalisation.py`` finds, v6.2's recipe
(``all-mixed-level-d0.5-ph``: both ensembles, trained on the other corpora; the held-out corpus is
never heard), 4 classes as ``--labels angry,happy,sad,neutral``. As in the benchmark, a profile
(balance 0.5) is built from a random half of the held-out corpus's clips (or a 70 %-neutral subset
of it), no labels, and the other half is predicted with it. Each way of answering builds its own
profile (its probabilities weigh the clips) and predicts with it; "geometric_w" is a weighted
geometric mean of the two ensembles' calibrated probabilities (``w``: the profile heads' weight).

    python experiments/exp_profile_views.py --out runs/exp_profile_views.json   # about 25 min on 2 cores
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_generalisation as bench  # noqa: E402
from exp_mean_std_views import geometric_mean  # noqa: E402

from emovox.training.profiles import centre, domain_mean  # noqa: E402

WEIGHTS = (0.5, 0.75)


def mixed(F: np.ndarray, *, main, profile, w: float) -> np.ndarray:
    """The two ensembles' probabilities for features ``F``, geometric mean with weight ``w`` on ``profile``."""
    return geometric_mean(main(F), profile(F), w)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench.add_corpus_options(parser)
    parser.add_argument("--design", default="all-mixed-level-d0.5-ph", help="a design with profile heads")
    parser.add_argument("--out", type=Path, default=Path("runs/exp_profile_views.json"))
    args = parser.parse_args()

    design = bench.DESIGNS[args.design]
    if not design.config.profile_heads:
        parser.error(f"{args.design} trains no profile heads")
    utts, X = bench.corpora_features(args, design.pooling)
    rows = {}
    for held, test, train_utts, idx, truth in bench.held_out_splits(utts):
        ensemble = bench.train_ensemble(X[~test], train_utts, config=design.config)
        main_heads, profile_heads = ensemble.probabilities, ensemble.profile_heads.probabilities
        answers = {"profile_heads": profile_heads, "main_heads": main_heads,
                   **{f"geometric_w{w:g}": functools.partial(mixed, main=main_heads, profile=profile_heads, w=w)
                      for w in WEIGHTS}}
        profile, half, skewed = bench.halves(truth)
        truth_half = [truth[i] for i in half]
        reference = ensemble.reference_mean()
        Xt = X[idx]
        row = {}
        for name, answer in answers.items():
            for kind, source in (("profile", profile), ("skewed", skewed)):
                mean = domain_mean(Xt[source], reference, probabilities=answer, balance=bench.PROFILE_BALANCE)
                predicted = bench.four_class_decision(ensemble, answer(centre(Xt[half], mean, reference)))
                row[f"{kind}_{name}"] = bench.ua(truth_half, predicted)
        rows[held] = row
        print(held, {k: round(v, 3) for k, v in row.items()}, flush=True)
    means_row = {k: float(np.mean([r[k] for r in rows.values()])) for k in next(iter(rows.values()))}
    print("mean", {k: round(v, 3) for k, v in means_row.items()})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"design": args.design, "split": "leave-one-corpus-out; profiles from a random "
                                    "half of the held-out corpus (or a 70 %-neutral subset of it), tested on the other "
                                    "half; 4 classes", "corpora": rows, "mean": means_row}, indent=2) + "\n")


if __name__ == "__main__":
    main()
