"""A shipped model, exactly as it ships, on corpora it never heard: 4-class UA per corpus.

Where a model's training corpora are known (its config.json), the other corpora found are
unseen by it, so the model itself can be tested there, not only its recipe by
leave-one-corpus-out (``bench_generalisation.py``). Decides as ``--labels
angry,happy,sad,neutral`` does (calm counts as neutral). Prints a table, writes JSON.

    python benchmarks/eval_shipped_unseen.py --model noise-robust --out runs/noise_robust_unseen.json

Measured (2026-12-04): ``noise-robust`` (trained on RAVDESS, nEMO, TurEV-DB) on TESS 70.0, the
Korean set 33.0, EmoSpeech 45.5 (UA %).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import bench_generalisation as bench  # noqa: E402

from emovox.corpora.labels import collapse  # noqa: E402
from emovox.prediction.loading import shipped_model_dir  # noqa: E402
from emovox.prediction.torch_model import EmotionModel  # noqa: E402
from emovox.training.checkpoint import load_model_files  # noqa: E402
from emovox.training.train import load_features  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="noise-robust", help="a shipped model's name or a model directory")
    parser.add_argument("--corpora", type=Path, default=Path("../shared/corpora"))
    parser.add_argument("--extra", type=Path, default=Path("~/.cache/emovox-corpora").expanduser())
    parser.add_argument("--out", type=Path, default=Path("runs/shipped_unseen.json"))
    args = parser.parse_args()
    directory = Path(args.model) if Path(args.model).is_dir() else shipped_model_dir(args.model)
    model = EmotionModel(load_model_files(directory))
    seen = set(model.bundle.config.get("training", {}).get("corpora", {}))
    unseen = [n for n in (*bench.SHARED, *bench.EXTRA) if n not in seen]
    results = {"model": model.model_id, "trained_on": sorted(seen), "unseen": {}}
    for name in unseen:
        utts = [u for u in bench.load_corpora(args.corpora, args.extra, [name])
                if collapse(u.label, "4class") is not None]
        if len({collapse(u.label, "4class") for u in utts}) < 2:
            continue
        X = load_features(utts, model.extractor)
        truth = [collapse(u.label, "4class") for u in utts]
        predicted = bench.four_class_decision(model.ensemble, model.ensemble.probabilities(X))
        results["unseen"][name] = {"n": len(utts), "ua": bench.ua(truth, predicted)}
    print(f"| {model.model_id} | " + " | ".join(f"{n} {r['ua']:.3f} (n={r['n']})" for n, r in results["unseen"].items()) + " |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
