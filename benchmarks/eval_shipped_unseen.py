"""A shipped model, exactly as it ships, on corpora it never heard: 4-class UA per corpus.

Where a model's training corpora are known (its config.json), the other corpora found are
unseen by it, so the model itself can be tested there, not only its recipe by
leave-one-corpus-out (``bench_generalisation.py``). Decides as ``--labels
angry,happy,sad,neutral`` does (calm counts as neutral). Prints a table, writes JSON.

    python benchmarks/eval_shipped_unseen.py --model noise-robust --out runs/noise_robust_unseen.json

Measured (2026-12-04): ``noise-robust`` (trained on RAVDESS, nEMO, TurEV-DB) on TESS 70.0, the
Korean set 33.0, EmoSpeech 45.5 (UA %).

BAVED (Arabic; arousal levels, not emotions) is scored where it is unseen and fetched: 3-level UA
of the arousal each prediction carries (low / mid / high against levels 0 / 1 / 2), on single
clips and with a profile (built from a random half of the clips, no labels, the other half
predicted; ``profile_prosody``: a profile made with ``emovox profile --prosody``, the model's prosody
head reading the profile half's statistics). Measured (2026-12-06): the default ``emovox-default-v6.4``,
which never heard Arabic, 55.4 on single clips and 43.7 with a profile (chance 33.3), 44.3 with a
``--prosody`` profile; other estimators 50.9 (neutral share 0.3), 51.4 (balanced 0.5), 51.5 (balanced 1):

v6.5 (profiles that also scale): 43.9 with a profile (``profile_centred``, centring only: 43.7), 43.9 with a
``--prosody`` profile; other estimators 49.6 / 51.1 / 51.4 (2026-12-07):

    python benchmarks/eval_shipped_unseen.py --model default --estimators neutral,neutral0.3,b0.5,b1 \
        --out runs/default_unseen.json

v7.1 (2026-12-07; its PyTorch path, the thinned silence context): 60.8 on single clips, 44.3 with a profile
(44.8 centring only, 44.5 ``--prosody``); v7's files from git beside it (the whole context): 59.1 and 44.3.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import bench_generalisation as bench  # noqa: E402

from emovox.conversation.dimensions import arousal_valence, level  # noqa: E402
from emovox.corpora import scan_corpus  # noqa: E402
from emovox.corpora.labels import collapse  # noqa: E402
from emovox.evaluation.metrics import classification_metrics  # noqa: E402
from emovox.features.prosody import cached_prosody_features  # noqa: E402
from emovox.prediction.loading import shipped_model_dir  # noqa: E402
from emovox.prediction.torch_model import EmotionModel  # noqa: E402
from emovox.training.checkpoint import load_model_files  # noqa: E402
from emovox.training.train import load_features  # noqa: E402

AROUSAL = ("low", "mid", "high")
BAVED_LEVELS = {"level0": "low", "level1": "mid", "level2": "high"}


def arousal_levels(model: EmotionModel, root: Path, estimators=(bench.SHIPPED,)) -> dict:
    """3-level UA of the arousal ``model``'s predictions carry on BAVED's levels: single clips, and
    with a profile of a random half (the other half predicted): ``profile`` with the shipped estimator,
    ``profile_<estimator>`` with each other one (as ``bench_generalisation.estimator_kwargs`` names them)."""
    utts = scan_corpus("baved-arousal", root)
    X = load_features(utts, model.extractor)
    truth = [BAVED_LEVELS[u.native_label] for u in utts]
    ensemble = model.ensemble

    def score(probs: np.ndarray, rows: np.ndarray) -> float:
        found = [level(arousal_valence(dict(zip(ensemble.labels, map(float, p), strict=True)))[0], AROUSAL)
                 for p in probs]
        return classification_metrics([truth[i] for i in rows], found, labels=list(AROUSAL))["ua"]

    # the benchmark's halves read 4-class labels: each level stands in as one
    profile, half, _ = bench.halves([{"low": "sad", "mid": "neutral", "high": "happy"}[t] for t in truth])

    def profiled(estimator: str, spread=model.profile_spread) -> np.ndarray:  # what --profile does: the profile heads
        return bench.profiled_probabilities(ensemble, X[profile], X[half], estimator, spread)

    prosody = {}
    if model.profile_spread is not None:  # what `emovox profile --no-scale` does: centring only
        prosody["profile_centred"] = score(profiled(bench.SHIPPED, None), half)
    if model.prosody_head is not None:  # a profile made with `emovox profile --prosody` (opt-in): its head mixed in
        P = cached_prosody_features([u.path for u in utts])
        fused = bench.with_prosody(model.prosody_head, P, profile, half, profiled(bench.SHIPPED))
        prosody["profile_prosody"] = score(fused, half)
    return {"n": len(utts), "single": score(ensemble.probabilities(X), np.arange(len(utts))),
            "profile": score(profiled(bench.SHIPPED), half),
            **{f"profile_{e}": score(profiled(e), half) for e in estimators if e != bench.SHIPPED}, **prosody,
            "profile_clips": len(profile), "split": "single: every clip; profile: a random half profiles, the other "
            "half is predicted; no clip of BAVED was in training"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="noise-robust", help="a shipped model's name or a model directory")
    bench.add_corpus_options(parser)
    parser.add_argument("--estimators", default=bench.SHIPPED,
                        help="comma-separated profile estimators for BAVED's arousal (neutral, neutral<share>, b<balance>)")
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
    if "baved" in unseen and (args.extra / "baved").is_dir():
        results["arousal"] = {"baved": arousal_levels(model, args.extra / "baved", args.estimators.split(","))}
    print(f"| {model.model_id} | " + " | ".join(f"{n} {r['ua']:.3f} (n={r['n']})" for n, r in results["unseen"].items()) + " |")
    for name, r in results.get("arousal", {}).items():
        others = "".join(f", {k} {v:.3f}" for k, v in r.items() if k.startswith("profile_") and k != "profile_clips")
        print(f"| {model.model_id} | {name} arousal 3-level UA: single {r['single']:.3f}, profile {r['profile']:.3f}"
              f"{others} (n={r['n']}, {r['profile_clips']} profiled) |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
