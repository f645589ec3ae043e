"""Experiment: do the heads generalise better when each clip is encoded the way Whisper was trained,
zero-padded to a 30 s window, instead of at its own length?

Whisper's encoder only ever saw 30 s windows (speech followed by the log-mel of silence); emovox
encodes a clip at its own length, ~25x cheaper for a 1 s clip. In 2026 an early in-domain check (RAVDESS
6-fold, encoder state 4, one head) found +0.6 for padding; it was never measured on unseen corpora with
heads over every state. Here: leave-one-corpus-out over every corpus the benchmark finds, on a seeded
random subsample of each corpus (``--per-corpus`` clips; padded encoding takes ~20x as long: ~2.5 h for
every clip on 2 cores), v6.1's single-clip recipe (``all-mixed-level-d0.5``: 5 heads, every state, level pooling), heads
trained once on own-length and once on padded features of the *same* clips, tested on the held-out
corpus's 4-class clips as ``--labels angry,happy,sad,neutral`` does (single clips). Only the frames of
real audio are pooled in both (``FeatureExtractor(window=...)``).

    python experiments/exp_padded_windows.py --per-corpus 450 --windows 10,30 --seeds 0   # ~45 min on 2 cores
    python experiments/exp_padded_windows.py --per-corpus 450 --windows 30 --seeds 1
    python experiments/exp_padded_windows.py --per-corpus 450 --windows 30 --silence-context --seeds 0   # and 1

``--silence-context`` adds a view encoded at the clip's own length whose frames also attend to a 30 s window of
silence after the clip (``FeatureExtractor(silence_context=True)``; exp_silence_context.py).

Found (2026-12-07; mean (worst) UA % over the six held-out corpora, single clips):

    subsample   own length    padded to 10 s   padded to 30 s
    seed 0      49.6 (32.6)   51.3 (33.3)      53.1 (39.4)
    seed 1      51.0 (38.5)   -                54.9 (44.7)

    with the silence context (2026-12-07; padded to 30 s rerun beside it: 53.2 (39.4) with seed 0's new heads)
    seed 0      54.3 (42.2)
    seed 1      54.4 (43.0)

Padding to 30 s gained on ten of the twelve corpus-and-subsample pairs (nEMO -3.4 and TurEV-DB -1.0 in the
first subsample). The silence context matches padding at the clip's own length's cost; the benchmark on every
clip is design ``all-mixed-level-d0.5-ph-e10-sp0.5-sc`` (experiments/README.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_generalisation as bench  # noqa: E402


def subsample(utts: list, per_corpus: int, seed: int = 0) -> list:
    """At most ``per_corpus`` clips of each corpus, drawn at random (seeded), in their original order.

    Examples:
        >>> from emovox.corpora.manifest import Utterance
        >>> u = [Utterance(f"{c}{i}.wav", "sad", "sad", "s", c) for c in "ab" for i in range(5)]
        >>> [x.corpus for x in subsample(u, 2)]
        ['a', 'a', 'b', 'b']
    """
    rng = np.random.default_rng(seed)
    corpora = np.array([u.corpus for u in utts])
    keep = np.zeros(len(utts), bool)
    for corpus in dict.fromkeys(corpora):
        rows = np.flatnonzero(corpora == corpus)
        keep[rng.choice(rows, min(per_corpus, len(rows)), replace=False)] = True
    return [u for u, k in zip(utts, keep, strict=True) if k]


def views_loco(views: dict[str, np.ndarray], utts: list, design) -> dict[str, dict[str, float]]:
    """Single-clip 4-class UA of ``design``'s heads on each view (features of the same clips encoded one way
    each), leave-one-corpus-out: ``{held-out corpus: {view: UA}}``, printed as a table row per corpus and a
    mean (worst) row."""
    rows: dict[str, dict[str, float]] = {}
    for held, test, train_utts, idx, truth in bench.held_out_splits(utts):
        start = time.time()
        rows[held] = {}
        for name, X in views.items():
            ensemble = bench.train_ensemble(X[~test], train_utts, config=design.config)
            rows[held][name] = bench.ua(truth, bench.four_class_decision(ensemble, ensemble.probabilities(X[idx])))
        print(f"| {held} | " + " | ".join(f"{k} {100 * v:.1f}" for k, v in rows[held].items())
              + f" | {time.time() - start:.0f} s |", flush=True)
    print("| mean (worst) | " + " | ".join(f"{k} {100 * v['mean']:.1f} ({100 * v['worst']:.1f})"
                                           for k, v in bench.summary(rows).items()) + " |", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench.add_corpus_options(parser)
    parser.add_argument("--per-corpus", type=int, default=450, help="clips drawn from each corpus")
    parser.add_argument("--windows", default="30", help="comma-separated padded window lengths in seconds")
    parser.add_argument("--design", default="all-mixed-level-d0.5")
    parser.add_argument("--seeds", default="0", help="comma-separated subsample seeds")
    parser.add_argument("--silence-context", action="store_true",
                        help="also encode at the clip's own length with a 30 s window of silence as context")
    parser.add_argument("--out", type=Path, default=Path("runs/exp_padded_windows.json"))
    args = parser.parse_args()

    design = bench.DESIGNS[args.design]
    every = bench.load_corpora(args.corpora, args.extra, None)
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    for seed in map(int, args.seeds.split(",")):
        utts = subsample(every, args.per_corpus, seed)
        print(f"seed {seed}: {len(utts)} clips", {c: sum(u.corpus == c for u in utts)
                                                  for c in dict.fromkeys(u.corpus for u in utts)}, flush=True)
        views = {"own": bench.load_features(utts, design.extractor())}
        for w in map(float, args.windows.split(",")):
            views[f"pad{w:g}"] = bench.load_features(utts, dataclasses.replace(design, window=w).extractor())
        if args.silence_context:
            views["silence"] = bench.load_features(utts, dataclasses.replace(design, silence_context=True).extractor())
        rows = views_loco(views, utts, design)
        summary = bench.summary(rows)
        results[f"seed{seed}"] = {**results.get(f"seed{seed}", {}), "design": args.design,
                                  "per_corpus": args.per_corpus, "rows": rows,
                                  "summary": summary,
                                  "split": "leave-one-corpus-out on a random subsample of each corpus; single clips, "
                                           "4 classes; the held-out corpus never heard"}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
