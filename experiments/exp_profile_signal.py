"""Experiment: can a profile tell, without labels, speech the model knows from speech it never heard?

The neutral estimator's share of heard-neutral clips pulls two ways: on corpora the model never
heard a high share wins (leave-one-corpus-out), on speakers of a corpus it was trained on (RAVDESS
6-fold, clean and noisy) a low share wins by 7-11 points. If some statistic of the archive itself
separates the two cases, a profile could pick its share. Candidates, computed on each profile
archive with the profile heads after a balanced (b0.5) profile of it: the mean top probability,
the mean entropy, the heard-neutral share; and the distance of the archive's plain mean from the
training reference (relative to the reference's norm).

Archives: each held-out corpus's random half of every clip (``bench_generalisation.halves``,
models from :mod:`fold_models`), and each RAVDESS 6-fold test fold's random half in every
condition (clean, white 10 dB, babble 10 dB, room), models trained on the other five folds.

    python experiments/exp_profile_signal.py --out runs/exp_profile_signal.json
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_generalisation as bench  # noqa: E402
from bench_accuracy import noisy_features  # noqa: E402
from fold_models import fold_ensembles  # noqa: E402

from emovox.corpora import scan_corpus  # noqa: E402
from emovox.corpora.labels import collapse  # noqa: E402
from emovox.evaluation.splits import speaker_folds  # noqa: E402
from emovox.features.extractor import FeatureExtractor  # noqa: E402
from emovox.training.profiles import centre, domain_mean, neutral_columns  # noqa: E402


def signals(ensemble, X: np.ndarray) -> dict:
    """The candidate statistics of archive ``X`` (see the module docstring)."""
    reference = ensemble.reference_mean()
    profiled = functools.partial(ensemble.probabilities, profiled=True)
    mean = domain_mean(X, reference, probabilities=profiled, balance=0.5)
    P = profiled(centre(X, mean, reference))
    plain = X.mean(0)
    ok = ~np.isnan(reference)
    return {"top": float(P.max(1).mean()),
            "entropy": float(-(P * np.log(np.clip(P, 1e-9, None))).sum(1).mean()),
            "neutral_share": float(P[:, neutral_columns(ensemble.labels)].sum(1).mean()),
            "distance": float(np.linalg.norm((plain - reference)[ok]) / np.linalg.norm(reference[ok]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench.add_corpus_options(parser)
    parser.add_argument("--design", default="all-mixed-level-d0.5-ph")
    parser.add_argument("--out", type=Path, default=Path("runs/exp_profile_signal.json"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="y_pred contains classes")
    design = bench.DESIGNS[args.design]
    extractor = FeatureExtractor("whisper-base", pooling=design.pooling)
    rows = []
    utts = bench.load_corpora(args.corpora, args.extra, None)
    X = bench.load_features(utts, extractor)
    for held, test, _, _, _, ensemble in fold_ensembles(args.design, X, utts):
        corpus_rows = np.flatnonzero(test)
        profile, _, _ = bench.halves([collapse(utts[i].label, "4class") for i in corpus_rows])
        rows.append({"archive": f"unseen {held}", **signals(ensemble, X[corpus_rows[profile]])})
        print(rows[-1], flush=True)
    r_utts = scan_corpus("ravdess", args.corpora / "ravdess")
    tests = {"clean": bench.load_features(r_utts, extractor),
             **{name: noisy_features(r_utts, extractor, kind, 10.0)
                for name, kind in (("white", "white"), ("babble", "babble"), ("room", "room"))}}
    speakers = np.array([u.speaker_key for u in r_utts])
    for k, test in enumerate(speaker_folds(speakers, 6)):
        train_utts = [u for u, t in zip(r_utts, test, strict=True) if not t]
        ensemble = bench.train_ensemble(tests["clean"][~test], train_utts, config=design.config)
        rows_ = np.flatnonzero(test)
        half = rows_[np.random.default_rng(0).permutation(len(rows_))[: len(rows_) // 2]]
        for name, Xc in tests.items():
            rows.append({"archive": f"in-domain ravdess fold {k} {name}", **signals(ensemble, Xc[half])})
            print(rows[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"design": args.design, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
