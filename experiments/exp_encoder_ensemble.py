"""Experiment: does a second encoder (Whisper tiny.en) ensembled with v7.4's whisper-base heads hear unseen corpora better?

Every design so far read one encoder, whisper-base, the largest multilingual one here. The only other encoder
we have is the English-only Whisper tiny.en (4 blocks of 384, about a third of base's time per clip). Heads on
a second encoder err where the encoder hears differently, not only where the heads' seeds differ; ten more heads
on the same encoder gave +0.5 (v6.3), so the question is whether a weaker, different encoder adds more.

Leave-one-corpus-out over the six corpora, each fold's two models kept under ``--folds`` (``--train``, or
``bench_generalisation.py --keep-models``: v7.4's design on whisper-base; its single-clip recipe on tiny.en, no
profile heads; both with their linear heads), each held-out corpus served as its model serves it (stride 8, level
band -32 .. -10). Answers are mixed as the model mixes its linear head: ``softmax((1 - w) log p_base + w log
p_tiny)``. Single clips, and profiles (each model its own profile of the same archive: the neutral estimator and
its own spread) from the random half and from a 70 %-neutral subset, averaged over ``--seeds`` draws of the halves;
``chosen``: for each held-out corpus, the weight that did best on the other five. 4-class UA::

    # each fold's model, kept under runs/fold_models/<design>/<held-out corpus>/ (one process per design)
    python experiments/exp_encoder_ensemble.py --extra ~/.cache/emovox-corpora --train base &
    python experiments/exp_encoder_ensemble.py --extra ~/.cache/emovox-corpora --train second
    python experiments/exp_encoder_ensemble.py --extra ~/.cache/emovox-corpora --seeds 0,1,2,3,4

Found (2026-12-08; the model card's "Tried beside v7.4"): tiny.en alone 54.1 (worst 42.0) on single clips against
v7.4's 59.8 (46.3); mixed at 0.1 .. 0.5, 59.5 .. 57.4: every weight lower, with a profile too. Not shipped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_generalisation as bench  # noqa: E402
from exp_jitter_ensemble import log_mix  # noqa: E402  # softmax((1 - w) log a + w log b)
from fold_models import fold_ensembles, print_table  # noqa: E402

from emovox.corpora.labels import collapse  # noqa: E402
from emovox.training.train import load_features  # noqa: E402

BASE = "all-mixed-level-d0.5-ph-e10-sp0.5-sc-serve8-band32-lin0.3-plin0.3"  # v7.4 as it serves
SECOND = "tiny.en-all-mixed-level-d0.5-e10-sp0.5-sc8-serveband32-lin0.3"
FOLDS = Path("runs/fold_models")


def chosen_rows(rows: dict, prefix: str, weights: list[float]) -> dict:
    """For each held-out corpus, the UA at the weight whose ``<prefix><w>`` row has the best mean over the
    *other* corpora (the weight a user would take from what we measured, not from their own corpus).

    Examples:
        >>> rows = {"a": {"s0": 0.5, "s1": 0.9}, "b": {"s0": 0.6, "s1": 0.4}, "c": {"s0": 0.6, "s1": 0.7}}
        >>> {k: round(v, 2) for k, v in chosen_rows(rows, "s", [0, 1]).items()}
        {'a': 0.5, 'b': 0.4, 'c': 0.7}
    """
    out = {}
    for held in rows:
        others = [c for c in rows if c != held]
        best = max(weights, key=lambda w: np.mean([rows[c][f"{prefix}{w:g}"] for c in others]))
        out[held] = rows[held][f"{prefix}{best:g}"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench.add_corpus_options(parser)
    parser.add_argument("--held-out", default="", help="comma-separated: only these held-out corpora")
    parser.add_argument("--folds", type=Path, default=FOLDS)
    parser.add_argument("--second", default=SECOND, help="the second encoder's design (bench_generalisation.DESIGNS)")
    parser.add_argument("--weights", default="0.1,0.2,0.3,0.4,0.5", help="the second model's weights in the mix")
    parser.add_argument("--seeds", default="0", help="draws of the random halves the profile rows average over")
    parser.add_argument("--train", choices=("base", "second"), default=None,
                        help="only train (and keep under --folds) that design's missing fold models, then stop: one "
                             "process per design runs both on 2 cores")
    parser.add_argument("--out", type=Path, default=Path("runs/exp_encoder_ensemble.json"))
    args = parser.parse_args()
    weights = [float(w) for w in args.weights.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]

    designs = {"base": bench.DESIGNS[BASE], "second": bench.DESIGNS[args.second]}
    utts = bench.load_corpora(args.corpora, args.extra, None)
    held_out = [c for c in args.held_out.split(",") if c]
    names = {"base": BASE, "second": args.second}
    if args.train:
        X = load_features(utts, designs[args.train].extractor()).astype(np.float32)
        for held, *_ in fold_ensembles(names[args.train], X, utts, held_out, args.folds):
            print(f"{names[args.train]} / {held}: kept", flush=True)
        return
    X_train = {k: load_features(utts, d.extractor()).astype(np.float32) for k, d in designs.items()}
    X_serve = {k: load_features(utts, d.serving_extractor() or d.extractor()).astype(np.float32)
               for k, d in designs.items()}
    truth_all = [collapse(u.label, "4class") for u in utts]
    rows: dict = {}
    for held, test, train_utts, idx, truth in bench.held_out_splits(utts, held_out):
        if len(set(truth)) < 2 or held in bench.TRAINING_ONLY.values():
            continue
        t0 = time.time()
        models = {}
        for k, design in designs.items():
            models[k] = bench.reused_fold(args.folds / names[k], held, design, train_utts)
            if models[k] is None:
                raise SystemExit(f"no fold model {args.folds / names[k] / held}: run this script with --train {k} "
                                 f"--folds {args.folds} first")
        a, b = models["base"], models["second"]
        pa, pb = a.probabilities(X_serve["base"][idx]), b.probabilities(X_serve["second"][idx])
        decide = bench.four_class_decision
        row: dict = {"n": len(idx), "single_base": bench.ua(truth, decide(a, pa)),
                     "single_second": bench.ua(truth, decide(b, pb)),
                     **{f"single_mix{w:g}": bench.ua(truth, decide(a, log_mix(pa, pb, w))) for w in weights}}
        spreads = {k: bench.fold_spread(d, X_train[k][~test], train_utts) for k, d in designs.items()}
        corpus_rows = np.flatnonzero(test)
        labels = [truth_all[i] for i in corpus_rows]
        Xc = {k: X_serve[k][corpus_rows] for k in designs}  # the held-out corpus's clips as each model serves them
        per_seed = []
        for seed in seeds:
            profile, half, skewed = bench.halves(labels, seed=seed)
            truth_half = [labels[i] for i in half]
            seed_row = {}
            for archive_name, archive in (("profile", profile), ("skewed", skewed)):
                q = {k: bench.profiled_probabilities(models[k], Xc[k][archive], Xc[k][half], bench.SHIPPED, spreads[k])
                     for k in designs}
                seed_row[f"{archive_name}_base"] = bench.ua(truth_half, decide(a, q["base"]))
                seed_row[f"{archive_name}_second"] = bench.ua(truth_half, decide(b, q["second"]))
                for w in weights:
                    seed_row[f"{archive_name}_mix{w:g}"] = bench.ua(truth_half, decide(a, log_mix(q["base"], q["second"], w)))
            per_seed.append(seed_row)
        row.update(bench.mean_rows(per_seed))
        rows[held] = row
        print(f"{held:10s} ({time.time() - t0:4.0f} s) " + "  ".join(f"{k} {v:.3f}" for k, v in row.items() if k != "n"),
              flush=True)
    for prefix in ("single_mix", "profile_mix", "skewed_mix"):
        for held, value in chosen_rows(rows, prefix, weights).items():
            rows[held][f"{prefix.removesuffix('_mix')}_chosen"] = value
    print_table(rows, 18)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"designs": names, "folds": str(args.folds), "weights": weights, "seeds": seeds,
                                    "rows": rows}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
