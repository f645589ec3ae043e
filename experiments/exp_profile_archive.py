"""Experiment: does it matter that the benchmark's profiles hold only clips of the four classes?

Until 2026-12-06 ``benchmarks/bench_generalisation.py`` built a held-out corpus's profile from a random
half of its clips of angry, happy, sad and neutral (calm) only (this finding changed that), while a
deployment's archive holds every emotion and training centres each corpus on the mean of all its clips.
Here, for each held-out corpus given, v6.2's recipe (``all-mixed-level-d0.5-ph``) trains on the other
corpora and the same 4-class test half is predicted with a profile (balance 0.5, the profile heads)
built from (a) the benchmark's 4-class profile half, (b) that half plus the corpus's clips of its other
emotions not in the test half (half of them, drawn at random), so the archive has every emotion the
corpus has.

    python experiments/exp_profile_archive.py --held-out ravdess --out runs/exp_profile_archive.json
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_generalisation as bench  # noqa: E402

from emovox.training.profiles import centre, domain_mean  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench.add_corpus_options(parser)
    parser.add_argument("--held-out", nargs="+", default=["ravdess"])
    parser.add_argument("--out", type=Path, default=Path("runs/exp_profile_archive.json"))
    args = parser.parse_args()

    design = bench.DESIGNS["all-mixed-level-d0.5-ph"]
    utts, X = bench.corpora_features(args, design.pooling)
    rows = {}
    for held, test, train_utts, idx, truth in bench.held_out_splits(utts, args.held_out):
        ensemble = bench.train_ensemble(X[~test], train_utts, config=design.config)
        profiled = functools.partial(ensemble.probabilities, profiled=True)
        others = np.setdiff1d(np.flatnonzero(test), idx)  # the corpus's clips of its other emotions
        profile, half, _ = bench.halves(truth)
        extra = np.random.default_rng(1).permutation(others)[: len(others) // 2]
        reference = ensemble.reference_mean()
        truth_half = [truth[i] for i in half]
        row = {"n_test": len(half), "n_profile_4class": len(profile), "n_profile_other": len(extra)}
        for name, source in (("four_classes", X[idx[profile]]),
                             ("every_emotion", np.concatenate([X[idx[profile]], X[extra]]))):
            mean = domain_mean(source, reference, probabilities=profiled, balance=bench.PROFILE_BALANCE)
            row[name] = bench.ua(truth_half, bench.four_class_decision(ensemble, profiled(centre(X[idx[half]], mean,
                                                                                                  reference))))
        row["single"] = bench.ua(truth_half, bench.four_class_decision(ensemble, ensemble.probabilities(X[idx[half]])))
        rows[held] = row
        print(held, row, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"design": "all-mixed-level-d0.5-ph", "corpora": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
