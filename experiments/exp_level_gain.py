"""Experiment: does the answer change with the volume knob, and does the level band stop that?

A user's recording sits at whatever level their microphone gain left it; the emotion does not change with
it. Whisper's log-mel keeps absolute level, so v7.1's heads (trained on corpora recorded between -32 and
-16 dBFS) may answer a clip differently when it is 20 dB quieter. Here each held-out corpus's clips (a seeded
random subsample of its 4-class clips) are scaled by each ``--gains`` dB (hard-clipped at full scale, as a
recorder would) and answered by the benchmark's leave-one-corpus-out fold model of v7 (``--folds``: heads
that never heard the corpus), encoded as v7.1 serves (silence context at stride 8), once as they are and
once with the level band (``emovox.audio.level_band``) in front. Printed per gain: 4-class UA (single clips)
and the share of clips whose label matches the one at 0 dB, mean over the held-out corpora:

    python experiments/exp_level_gain.py --per-corpus 240 --gains=-20,-10,0,6    # ~8 min on 2 cores
    python experiments/exp_level_gain.py --gains=-30,-20,-10,0,6 --band=-26:-14 --band=-32:-10 --band=-38:-10
    python experiments/exp_level_gain.py --gains=-20,-10,0 --band=-32:-10 --profile    # and with a profile
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_generalisation as bench  # noqa: E402
from exp_padded_windows import subsample  # noqa: E402

from emovox.audio.level_band import parse_band  # noqa: E402
from emovox.corpora.labels import collapse  # noqa: E402
from emovox.features.extractor import FeatureCache, FeatureExtractor, extract_files  # noqa: E402
from emovox.training.checkpoint import load_model_files  # noqa: E402
from emovox.training.train import load_features  # noqa: E402

FOLDS = Path("runs/fold_models/all-mixed-level-d0.5-ph-e10-sp0.5-sc")


def gained(signal: np.ndarray, gain_db: float) -> np.ndarray:
    """``signal`` scaled by ``gain_db`` and hard-clipped at full scale.

    Examples:
        >>> [round(float(v), 2) for v in gained(np.array([0.1, 0.6], np.float32), 6.0)]
        [0.2, 1.0]
    """
    return np.clip(signal * np.float32(10 ** (gain_db / 20)), -1.0, 1.0).astype(np.float32)


def features_at_gain(paths: list[str], extractor: FeatureExtractor, gain_db: float) -> np.ndarray:
    """Pooled features of every clip scaled by ``gain_db`` (cached per clip, gain and encoding)."""
    if gain_db == 0:
        return extract_files(paths, extractor, cache=FeatureCache(extractor.settings), desc="0 dB")
    return extract_files(paths, extractor, cache=FeatureCache(extractor.settings), desc=f"{gain_db:+g} dB",
                         transform=lambda signal, _digest: gained(signal, gain_db),
                         cache_key=lambda d: hashlib.sha256(f"{d}:gain:{gain_db:g}".encode()).hexdigest())


def training_spreads(every: list, design: bench.Design, held_out: np.ndarray) -> dict:
    """Per held-out corpus, the profile spread its fold model would store (from the other corpora's clips in
    ``every``, all of them, encoded as the heads were trained): what a profile made with ``emovox profile``
    scales toward."""
    X = bench.design_inputs(design, load_features(every, design.extractor()))
    corpora = np.array([u.corpus for u in every])
    return {held: bench.fold_spread(design, X[corpora != held], [u for u in every if u.corpus != held])
            for held in dict.fromkeys(held_out)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench.add_corpus_options(parser)
    parser.add_argument("--per-corpus", type=int, default=240, help="4-class clips drawn from each corpus")
    parser.add_argument("--gains", default="-20,-10,0,6", help="comma-separated gains in dB (0 must be one)")
    parser.add_argument("--band", action="append", help="a level band compared with none (repeat for several; "
                        "default -26:-14)")
    parser.add_argument("--folds", type=Path, default=FOLDS, help="fold models, one folder per held-out corpus")
    parser.add_argument("--profile", action="store_true",
                        help="also answer each clip with a profile of the other half of its corpus's clips at the same "
                             "gain (a deployment recorded quietly throughout; emovox profile's estimator and scale)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/exp_level_gain.json"))
    args = parser.parse_args()

    gains = [float(g) for g in args.gains.split(",")]
    if 0.0 not in gains:
        raise SystemExit("--gains must include 0 (the reference answer)")
    every = bench.load_corpora(args.corpora, args.extra, None)
    utts = subsample([u for u in every if collapse(u.label, "4class")], args.per_corpus, args.seed)
    paths, truth = [u.path for u in utts], np.array([collapse(u.label, "4class") for u in utts])
    corpora = np.array([u.corpus for u in utts])
    served = bench.DESIGNS["all-mixed-level-d0.5-ph-e10-sp0.5-sc-serve8"]  # v7.1 as it serves
    views = {"as recorded": served.serving_extractor(),
             **{f"band {band}": dataclasses.replace(served, serve_level_band=parse_band(band)).serving_extractor()
                for band in args.band or ["-26:-14"]}}
    spreads = training_spreads(every, served, corpora) if args.profile else {}
    ensembles = {held: load_model_files(args.folds / held).ensemble() for held in dict.fromkeys(corpora)}
    rows: dict = {}
    for view, extractor in views.items():
        X = {g: features_at_gain(paths, extractor, g) for g in gains}
        for held, ensemble in ensembles.items():
            idx = np.flatnonzero(corpora == held)
            labels = {g: np.array(bench.four_class_decision(ensemble, ensemble.probabilities(X[g][idx]))) for g in gains}
            rows.setdefault(view, {})[held] = {
                f"{g:+g}": {"ua": bench.ua(truth[idx].tolist(), labels[g].tolist()),
                            "agree_0db": float(np.mean(labels[g] == labels[0.0]))} for g in gains}
            for g in gains if args.profile else ():
                profiled = bench.profiled_predictions(ensemble, X[g][idx], seed=args.seed, spread=spreads[held],
                                                      decide=bench.four_class_decision)
                rows[view][held][f"{g:+g}"]["profile_ua"] = bench.ua(truth[idx].tolist(), profiled)
    print(f"{len(utts)} clips; fold models {args.folds}; mean over held-out corpora (worst corpus's UA)")
    print(f"{'view':22s} " + " ".join(f"{f'{g:+g} dB UA / agree':>24s}" for g in gains))
    for view, per in rows.items():
        cells = []
        for g in gains:
            uas = [per[c][f"{g:+g}"]["ua"] for c in per]
            agree = np.mean([per[c][f"{g:+g}"]["agree_0db"] for c in per])
            cells.append(f"{100 * np.mean(uas):5.1f} ({100 * min(uas):4.1f}) / {100 * agree:5.1f}")
        print(f"{view:22s} " + " ".join(f"{c:>24s}" for c in cells))
        if args.profile:
            cells = [f"{100 * np.mean([per[c][f'{g:+g}']['profile_ua'] for c in per]):5.1f}" for g in gains]
            print(f"{'  with a profile':22s} " + " ".join(f"{c:>24s}" for c in cells))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"gains_db": gains, "per_corpus": args.per_corpus, "seed": args.seed,
                                    "folds": str(args.folds), "rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
