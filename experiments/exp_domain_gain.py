"""Experiment: bring a whole deployment to the training corpora's level, keeping its own loudness contrasts.

The level band (v7.2) moves each clip on its own: a quiet clip is raised whatever made it quiet, a sad
whisper and a badly set microphone alike. A domain profile sees a deployment's unlabelled archive, so it
could instead measure the archive's typical speech level and move every clip of that deployment by one
gain, to the level the training corpora typically sit at: the microphone's offset goes, the loudness
differences between the deployment's clips (angry louder than sad) stay.

Here, for each held-out corpus, the gain is the training corpora's typical level (the median over the
other corpora of each one's median loud-frame level, :func:`emovox.audio.level_band.loud_level`) minus the
median level of the corpus's profile half (the archive half the benchmark builds profiles from, never
the test half); every clip of the corpus is scaled by it (hard-clipped) and encoded as v7.1 serves
(silence context at stride 8); then the benchmark's leave-one-corpus-out rows are computed with v7's fold
models (heads that never heard the corpus): ``single`` = clips answered after the gain alone, ``profile``
= the gain and a profile made from the gained archive. Compare with v7.1's and v7.2's rows in
docs/bench_generalisation.json:

    python experiments/exp_domain_gain.py    # ~15 min on 2 cores (levels, then every clip encoded at its gain)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_generalisation as bench  # noqa: E402
from exp_level_gain import features_at_gain  # noqa: E402

from emovox.audio.level_band import loud_level  # noqa: E402
from emovox.audio.load import load_audio  # noqa: E402
from emovox.corpora.labels import collapse  # noqa: E402
from emovox.training.train import load_features  # noqa: E402

FOLDS = Path("runs/fold_models/all-mixed-level-d0.5-ph-e10-sp0.5-sc")
SERVED = "all-mixed-level-d0.5-ph-e10-sp0.5-sc-serve8"  # v7.1 as it serves


def clip_levels(paths: list[str], cache: Path) -> np.ndarray:
    """Every clip's loud-frame level in dBFS (kept in ``cache``, a JSON file by path)."""
    known = json.loads(cache.read_text()) if cache.is_file() else {}
    for path in tqdm([p for p in paths if p not in known], desc="levels", unit="file"):
        known[path] = loud_level(load_audio(path, max_duration=None))
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(known))
    return np.array([known[p] for p in paths])


def domain_gains(levels: np.ndarray, corpora: np.ndarray, archive: dict[str, np.ndarray]) -> dict[str, float]:
    """Per corpus: the other corpora's typical level (median of their medians) minus the median level of
    that corpus's ``archive`` rows, rounded to 0.5 dB.

    Examples:
        >>> lv, cs = np.array([-30.0, -34.0, -18.0, -20.0, -16.0]), np.array(list("aabbc"))
        >>> domain_gains(lv, cs, {c: np.flatnonzero(cs == c) for c in "abc"})
        {'a': 14.5, 'b': -5.0, 'c': -9.5}
    """
    medians = {c: float(np.median(levels[corpora == c])) for c in dict.fromkeys(corpora)}
    return {str(c): round(2 * (float(np.median([m for o, m in medians.items() if o != c])) - float(np.median(levels[rows])))) / 2
            for c, rows in archive.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench.add_corpus_options(parser)
    parser.add_argument("--folds", type=Path, default=FOLDS, help="fold models, one folder per held-out corpus")
    parser.add_argument("--out", type=Path, default=Path("runs/exp_domain_gain.json"))
    args = parser.parse_args()

    utts = bench.load_corpora(args.corpora, args.extra, None)
    design = bench.DESIGNS[SERVED]
    paths, corpora = [u.path for u in utts], np.array([u.corpus for u in utts])
    levels = clip_levels(paths, Path("~/.cache/emovox/levels.json").expanduser())
    archive = {}  # the profile half of each corpus, exactly as bench.loco draws it
    truth_all = [collapse(u.label, "4class") for u in utts]
    for corpus in dict.fromkeys(corpora):
        rows = np.flatnonzero(corpora == corpus)
        archive[corpus] = rows[bench.halves([truth_all[i] for i in rows])[0]]
    gains = domain_gains(levels, corpora, archive)
    print("gain per held-out corpus (dB):", gains, flush=True)
    X = bench.design_inputs(design, load_features(utts, design.extractor()))
    serving = design.serving_extractor()
    X_serve = np.zeros_like(X)
    for corpus, gain in gains.items():
        rows = np.flatnonzero(corpora == corpus)
        X_serve[rows] = bench.design_inputs(design, features_at_gain([paths[i] for i in rows], serving, gain))
    rows = bench.loco(design, X, utts, reuse=args.folds, X_serve=X_serve)
    entry = {"note": "v7.1 with each held-out corpus moved by one gain to the training corpora's typical level "
                     "(experiments/exp_domain_gain.py)", "gains_db": gains, "loco": rows, "summary": bench.summary(rows)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({f"{SERVED}-domaingain": entry}, indent=1))
    s = entry["summary"]
    print(" | ".join(f"{k} {100 * s[k]['mean']:.1f} ({100 * s[k]['worst']:.1f})" for k in ("single", "profile_neutral",
                                                                                        "skewed_neutral")))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
