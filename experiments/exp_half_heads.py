"""Experiment: can a model's heads be stored in float16 (half the file) without changing its answers?

For each leave-one-corpus-out fold model that ``benchmarks/bench_generalisation.py --keep-models DIR``
wrote (trained without the held-out corpus), the heads and profile heads are answered twice: as
trained (float32) and with every stored tensor rounded to float16 and read back into float32 (what a
float16 ``heads.safetensors`` gives). Reported per held-out corpus: 4-class UA of single clips (as
``--labels angry,happy,sad,neutral``) and with the shipped profile (built from a random half of the
corpus, tested on the other half), both ways; how often the two agree on the label; the largest
probability difference.

    python experiments/exp_half_heads.py --folds runs/s16/folds/all-mixed-level-d0.5-ph-e10 --out runs/half.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_generalisation as bench  # noqa: E402

from emovox.corpora.labels import collapse  # noqa: E402
from emovox.features.extractor import FeatureSettings  # noqa: E402
from emovox.training.checkpoint import load_model_files, save_ensemble  # noqa: E402
from emovox.training.head import Ensemble  # noqa: E402


def rounded(ensemble: Ensemble, features: FeatureSettings) -> Ensemble:
    """``ensemble`` as a model saved with float16 heads and read back (what ``emovox train --heads-dtype
    float16`` ships: :func:`emovox.training.checkpoint.save_ensemble`, then :func:`load_model_files`).

    Examples:
        >>> import torch
        >>> from emovox.training.head import EmotionHead
        >>> e = Ensemble([EmotionHead(2, 4, 3, hidden=8)], ["a", "b", "c"])
        >>> t = next(iter(rounded(e, FeatureSettings(encoder="whisper-tiny.en")).heads[0].state_dict().values()))
        >>> t.dtype == torch.float32 and bool(torch.equal(t, t.half().float()))
        True
    """
    with tempfile.TemporaryDirectory() as directory:
        return load_model_files(save_ensemble(directory, ensemble, features, heads_dtype="float16")).ensemble()


def answers(ensemble: Ensemble, X: np.ndarray, idx: np.ndarray, Xc: np.ndarray, profile: np.ndarray,
            half: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Single-clip probabilities of ``X[idx]`` and profiled ones of ``Xc[half]`` (profile from ``Xc[profile]``)."""
    return ensemble.probabilities(X[idx]), bench.profiled_probabilities(ensemble, Xc[profile], Xc[half])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=Path, required=True, help="DIR/<held-out corpus>/ model directories")
    bench.add_corpus_options(parser)
    parser.add_argument("--out", type=Path, default=Path("runs/exp_half_heads.json"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="y_pred contains classes")
    utts, X = bench.corpora_features(args)
    rows = {}
    for held, test, _, idx, truth in bench.held_out_splits(utts):
        if not (args.folds / held / "config.json").is_file():
            print(f"{held}: no fold model in {args.folds}, skipped")
            continue
        bundle = load_model_files(args.folds / held)
        if bundle.config["training"].get("held_out") not in (None, held):
            raise SystemExit(f"{args.folds / held} was trained with {bundle.config['training']['held_out']} held out")
        full = bundle.ensemble()
        corpus_rows = np.flatnonzero(test)
        four = [collapse(utts[i].label, "4class") for i in corpus_rows]
        profile, half, _ = bench.halves(four)
        truth_half = [four[i] for i in half]
        both = [answers(e, X, idx, X[corpus_rows], profile, half) for e in (full, rounded(full, bundle.features))]
        row = {}
        for k, (name, t) in enumerate((("single", truth), ("profile", truth_half))):
            fp32, fp16 = both[0][k], both[1][k]
            row[f"{name}_fp32"] = bench.ua(t, bench.four_class_decision(full, fp32))
            row[f"{name}_fp16"] = bench.ua(t, bench.four_class_decision(full, fp16))
            row[f"{name}_agreement"] = float(np.mean(np.array(bench.four_class_decision(full, fp32))
                                                     == np.array(bench.four_class_decision(full, fp16))))
            row[f"{name}_max_prob_diff"] = float(np.abs(fp32 - fp16).max())
        rows[held] = row
        print(held, {k: round(v, 5) for k, v in row.items()}, flush=True)
    keys = list(next(iter(rows.values())))
    mean = {k: float(np.mean([r[k] for r in rows.values()])) for k in keys}
    for k in keys:
        print(f"{k:24s} mean {mean[k]:.5f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"folds": str(args.folds), "corpora": rows, "mean": mean}, indent=2) + "\n")


if __name__ == "__main__":
    main()
