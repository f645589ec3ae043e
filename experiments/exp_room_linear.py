"""Experiment: can the linear head alone learn rooms, so single clips lose less in a room without the heads
hearing rooms (which cost unseen corpora)?

v7.4 mixes ten MLP heads with a linear head (a logistic regression over every state, weight 0.3). Heads trained
with copies of every clip heard in a simulated room fixed the room in-domain (drop 5.1 against 17) but lost 7 to 16
points on unseen corpora (the card's ``all-mixed-level-d0.5-rooms``). Here the MLP heads stay v7.4's and only the
linear head also trains on one copy of every training clip in a room (``emovox.audio.augment``'s statistical room,
RT60 0.2-0.8 s, level, pitch and tempo as the recipe, no noise; the test rooms are pyroomacoustics' image-method
rooms of ``benchmarks/bench_accuracy.py``, another simulator). Its log-probabilities mix into the heads' at several
weights.

``--ravdess``: RAVDESS speaker-independent 6-fold, 8 classes, as ``bench_generalisation.py --ravdess-only --room``
(heads of the shipped design trained per fold on the clean clips of five folds; the copies of a fold's clips
train only models tested on other folds), clean, 10 dB white noise, babble and the room.
``--loco``: leave-one-corpus-out over the six corpora, the shipped design's fold models (``runs/fold_models``,
trained when missing), single clips of the held-out corpus (clean, as recorded) decided over four classes, the
linear head refitted per fold on the other corpora's clips and their room copies::

    python experiments/exp_room_linear.py --ravdess                       # ~15 min on 2 cores
    python experiments/exp_room_linear.py --loco --extra ~/.cache/emovox-corpora   # ~30 min with the copies encoded

``--in-room N`` adds N clips of each held-out corpus (a random sample of its four classes) heard in a
pyroomacoustics room, against the same clips clean: does the room-trained linear head carry to unseen languages?
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_generalisation as bench  # noqa: E402
from bench_accuracy import noisy_features  # noqa: E402
from fold_models import fold_ensembles, print_table, training_key  # noqa: E402

from emovox.corpora import scan_corpus  # noqa: E402
from emovox.evaluation.splits import speaker_folds  # noqa: E402
from emovox.training.head import Ensemble  # noqa: E402
from emovox.training.linear_head import LinearHead, fit_linear_head, mix_log_probabilities  # noqa: E402
from emovox.training.train import ROOM_COPIES, kfold_groups, load_features, room_copies  # noqa: E402

DESIGN = "all-mixed-level-d0.5-ph-e10-sp0.5-sc-serve8-band32-lin0.3-plin0.3"  # v7.4
FOLDS = Path("runs/fold_models") / DESIGN


def copies_of(utts, groups=None) -> np.ndarray:
    """One copy of every clip in a simulated room (the library's ``ROOM_COPIES``, the copies of the card's
    ``all-mixed-level-d0.5-rooms``: a room in every copy, no noise), encoded as the shipped design's training clips."""
    return room_copies(utts, bench.DESIGNS[DESIGN].extractor(), groups=groups)[0]


def room_linear(X: np.ndarray, copies: np.ndarray, utts, labels, weight: float) -> LinearHead:
    """The shipped linear head's fit, on every clip and its room copy (same label, same corpus)."""
    return fit_linear_head(X, [u.label for u in utts], [u.corpus for u in utts], labels, weight=weight,
                           strength=bench.DESIGNS[DESIGN].linear_strength, copies=copies[None])


@torch.no_grad()
def variants(ensemble: Ensemble, room_head: LinearHead, X: np.ndarray, weights) -> dict[str, np.ndarray]:
    """Probabilities of each variant for features ``X``: the heads alone, as shipped (their own linear head at
    its weight), each linear head alone, and the heads with the room-trained linear head at each weight."""
    shipped_head = ensemble.linear
    assert shipped_head is not None
    heads = torch.from_numpy(dataclasses.replace(ensemble, linear=None).probabilities(X))
    x = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    out = {"heads alone": heads.numpy(), "shipped (linear 0.3)": ensemble.probabilities(X),
           "linear alone": shipped_head.probabilities(X), "room linear alone": room_head.probabilities(X)}
    for w in weights:
        out[f"room linear {w:g}"] = mix_log_probabilities(heads, room_head(x), w).numpy()
    return out


def ravdess(args) -> dict:
    design = bench.DESIGNS[DESIGN]
    utts = scan_corpus("ravdess", args.corpora / "ravdess")
    extractor, serving = design.extractor(), design.serving_extractor()
    X_train = load_features(utts, extractor)
    copies = copies_of(utts, kfold_groups(utts, 6))
    tests = {"clean": load_features(utts, serving),
             **{name: noisy_features(utts, serving, kind, 10.0)
                for name, kind in (("white 10 dB", "white"), ("babble 10 dB", "babble"), ("room", "room"))}}
    truth = [u.label for u in utts]
    predicted: dict = {}
    for k, test in enumerate(speaker_folds(np.array([u.speaker_key for u in utts]), 6)):
        train_utts = [u for u, t in zip(utts, test, strict=True) if not t]
        ensemble = bench.train_ensemble(X_train[~test], train_utts, config=design.config)
        ensemble = bench.with_linear(design, ensemble, X_train[~test], train_utts)
        head = room_linear(X_train[~test], copies[~test], train_utts, ensemble.labels, design.linear_weight)
        for condition, X in tests.items():
            for name, p in variants(ensemble, head, X[test], args.weights).items():
                predicted.setdefault(condition, {}).setdefault(name, np.empty(len(utts), dtype=object))[test] = \
                    [ensemble.labels[i] for i in p.argmax(1)]
        print(f"fold {k + 1}/6 done", flush=True)
    rows = {c: {name: float(balanced_accuracy_score(truth, list(p))) for name, p in v.items()}
            for c, v in predicted.items()}
    print_table(rows, width=24)
    print("\ndrops (points) from each variant's clean UA")
    for name in rows["clean"]:
        print(f"{name:24s} " + " ".join(f"{c}: {100 * (rows['clean'][name] - rows[c][name]):5.1f}"
                                        for c in rows if c != "clean"))
    return rows


def loco(args) -> dict:
    design = bench.DESIGNS[DESIGN]
    utts = bench.load_corpora(args.corpora, args.extra, None)
    X = load_features(utts, design.extractor())
    served = load_features(utts, design.serving_extractor())
    copies = copies_of(utts)
    rows: dict = {}
    in_room: dict = {}
    for held, test, train_utts, idx, truth, ensemble in fold_ensembles(DESIGN, X, utts):
        # the fold's room-trained head, fitted once (~3 min); kept only for the same training clips and copies
        kept, key = FOLDS / held / "room_linear", {**training_key(DESIGN, train_utts), "copies": ROOM_COPIES.tag()}
        record = json.loads((kept / "config.json").read_text()) if (kept / "config.json").is_file() else {}
        if record.get("key") == key:
            head = LinearHead.load(kept, record["head"], ensemble.labels)
        else:
            head = room_linear(X[~test], copies[~test], train_utts, ensemble.labels, design.linear_weight)
            kept.mkdir(parents=True, exist_ok=True)
            (kept / "config.json").write_text(json.dumps({"head": head.save(kept, ensemble.labels), "key": key}) + "\n")
        probs = variants(ensemble, head, served[idx], args.weights)
        rows[held] = {name: bench.ua(truth, bench.four_class_decision(ensemble, p)) for name, p in probs.items()}
        print(held, {k: round(100 * v, 1) for k, v in rows[held].items()}, flush=True)
        if args.in_room:  # a sample of the held-out clips, each in a pyroomacoustics room, served as shipped
            pick = np.sort(np.random.default_rng(0).choice(len(idx), min(args.in_room, len(idx)), replace=False))
            sample = [utts[i] for i in idx[pick]]
            Z = noisy_features(sample, design.serving_extractor(), "room", 10.0)
            in_room[held] = {
                **{f"{name} (clean)": bench.ua([truth[i] for i in pick], bench.four_class_decision(ensemble, p[pick]))
                   for name, p in probs.items()},
                **{f"{name} (room)": bench.ua([truth[i] for i in pick], bench.four_class_decision(ensemble, p))
                   for name, p in variants(ensemble, head, Z, args.weights).items()}}
    print_table(rows, width=24)
    if in_room:
        print(f"\nheld-out clips in a room ({args.in_room} per corpus, the same clips clean beside them)")
        print_table(in_room, width=32)
        rows = {"clean": rows, "in_room_sample": in_room}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=Path("../shared/corpora"))
    parser.add_argument("--extra", type=Path, default=None, help="the fetched corpora (extract-more.sh's DEST)")
    parser.add_argument("--weights", type=lambda s: [float(w) for w in s.split(",")], default=[0.3, 0.5, 0.7])
    parser.add_argument("--ravdess", action="store_true", help="RAVDESS 6-fold in-domain, clean, noise and the room")
    parser.add_argument("--loco", action="store_true", help="leave-one-corpus-out, single clips")
    parser.add_argument("--in-room", type=int, default=0,
                        help="with --loco: also this many held-out clips per corpus in a simulated room")
    parser.add_argument("--out", type=Path, default=Path("runs/exp_room_linear.json"))
    args = parser.parse_args()
    out = {"design": DESIGN, "augment_recipe": ROOM_COPIES.tag()}
    if args.ravdess:
        out["ravdess_6fold"] = ravdess(args)
    if args.loco:
        out["loco_single_clips"] = loco(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
