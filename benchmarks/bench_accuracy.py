"""Reproduce the accuracy tables: speaker-independent k-fold on one corpus, clean and with 10 dB
white and babble noise added to the test clips, and the cross-corpus 4-class matrix.

Noise is added only to the held-out speakers' clips (babble = four other speakers' utterances
of the same corpus); so is a reverberant room (``--room-test``: pyroomacoustics' image sources
and ray tracing in a 4–8 × 3.6–6 × 2.4–3 m room, RT60 0.4–0.9 s, microphone 1–3 m away; a
geometric simulation, unlike the statistical impulse responses of ``--reverb`` training copies;
``pip install pyroomacoustics``). Heads train on clean features of the training speakers, and with
``--augment N`` also on N augmented copies of each training clip (:mod:`emovox.audio.augment`). In the
k-fold part the copies' babble is made of the *other* shared corpora, or with ``--babble-source
same-fold`` of the other speakers of the clip's own fold (:func:`emovox.training.train.kfold_groups`: a
clip of fold k only trains models tested on other folds); either way the held-out speakers'
audio is never in training, not even as noise. In the cross-corpus part each corpus's copies
use its own utterances (:func:`emovox.training.train.load_augmented`), so the held-out corpus stays
unheard. Prints a table and writes JSON.

    python benchmarks/bench_accuracy.py --corpora ../shared/corpora --out runs/bench_accuracy.json
    python benchmarks/bench_accuracy.py --augment 2 --out runs/bench_accuracy_aug2.json
    python benchmarks/bench_accuracy.py --augment 2 --babble-source same-fold --skip-cross
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import balanced_accuracy_score

from emovox.audio.augment import AugmentRecipe, augmented_features, babble, mix_at_snr, same_level
from emovox.audio.load import load_audio
from emovox.corpora import scan_corpus
from emovox.evaluation.metrics import classification_metrics, expected_calibration_error
from emovox.evaluation.protocols import cross_corpus
from emovox.evaluation.splits import speaker_folds
from emovox.features.extractor import FeatureCache, FeatureExtractor, extract_files
from emovox.features.pooling import POOLINGS
from emovox.training.adaptation import adapt_groups
from emovox.training.fit import FitConfig
from emovox.training.train import (
    TrainConfig,
    augmenting_trainer,
    kfold_groups,
    load_augmented,
    load_features,
    parse_layers,
    train_ensemble,
)


def geometric_room(signal: np.ndarray, seed: int) -> np.ndarray:
    """``signal`` in a room simulated by pyroomacoustics (image sources + ray tracing, seeded)."""
    import random

    import pyroomacoustics
    from audiomentations import RoomSimulator

    pyroomacoustics.random.seed(seed)  # its ray tracer's C++ generator
    np.random.seed(seed)
    random.seed(seed)  # audiomentations draws the room from Python's generator
    room = RoomSimulator(calculation_mode="rt60", min_target_rt60=0.4, max_target_rt60=0.9, min_size_x=4.0,
                         max_size_x=8.0, min_size_y=3.6, max_size_y=6.0, min_mic_distance=1.0, max_mic_distance=3.0,
                         leave_length_unchanged=True, p=1.0)
    return room(samples=signal, sample_rate=16000).astype(np.float32)


def dereverberate(signal: np.ndarray) -> np.ndarray:
    """``signal`` (16 kHz) with its late reverberation removed by single-channel WPE (weighted
    prediction error; nara_wpe, ``pip install nara_wpe``): a 512-sample STFT with hop 128, a
    10-frame prediction filter after a 3-frame delay, 3 iterations; same length, float32.

    Tried as a test-time step against rooms (``bench_generalisation.py --ravdess-only --room
    --dereverb``): v6's room drop 17.0 -> 16.0 points for 0.4 on clean clips, so it does not ship."""
    from nara_wpe.utils import istft, stft
    from nara_wpe.wpe import wpe

    x = np.asarray(signal, dtype=np.float64)
    if len(x) < 512 + 14 * 128:  # too short for the prediction filter
        return x.astype(np.float32)
    spectra = stft(x[None], size=512, shift=128).transpose(2, 0, 1)  # (bins, channels, frames)
    clean = wpe(spectra, taps=10, delay=3, iterations=3, statistics_mode="full")
    out = istft(clean.transpose(1, 2, 0), size=512, shift=128)[0]
    return np.pad(out, (0, max(0, len(x) - len(out))))[: len(x)].astype(np.float32)


def noisy_features(utts, extractor, kind: str, snr: float, dereverb: bool = False) -> np.ndarray:
    """Features of every clip with ``kind`` noise at ``snr`` dB, or in a reverberant room
    (``kind="room"``, ``snr`` unused), or as it is (``kind="clean"``), cached per clip and recipe;
    ``dereverb``: each (corrupted) clip goes through :func:`dereverberate` before the encoder."""
    speakers = np.array([u.speaker_key for u in utts])
    rng = np.random.default_rng(0)

    def transform(signal, digest):
        corrupted = corrupt(signal, digest)
        return dereverberate(corrupted) if dereverb else corrupted

    def corrupt(signal, digest):
        if kind == "clean":
            return signal
        seed = int(hashlib.sha256(f"{digest}:{kind}:{snr}".encode()).hexdigest()[:8], 16)
        local = np.random.default_rng(seed)
        if kind == "room":
            return same_level(geometric_room(signal, seed), signal)
        if kind == "white":
            noise = local.standard_normal(len(signal)).astype(np.float32)
        else:
            index = index_of[digest]
            others = np.flatnonzero(speakers != speakers[index])
            picks = local.choice(others, 4, replace=False)
            noise = babble([load_audio(utts[i].path, max_duration=None) for i in picks], len(signal), rng)
        return mix_at_snr(signal, noise, snr)

    from emovox.features.extractor import content_hash

    index_of = {content_hash(u.path): i for i, u in enumerate(utts)}
    cache = FeatureCache(extractor.settings)
    desc = kind if kind in ("room", "clean") else f"{kind} {snr:g} dB"
    wpe = ":wpe" if dereverb else ""
    return extract_files([u.path for u in utts], extractor, cache=cache, desc=desc + (" + WPE" if dereverb else ""),
                         transform=transform,
                         cache_key=lambda d: hashlib.sha256((f"{d}:test-room:pyroomacoustics{wpe}" if kind == "room"
                                                          else f"{d}:test-noise:{kind}:{snr}{wpe}").encode()).hexdigest())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=Path("../shared/corpora"))
    parser.add_argument("--kfold-corpus", default="ravdess")
    parser.add_argument("--folds", type=int, default=6)
    parser.add_argument("--ensemble", type=int, default=5)
    parser.add_argument("--layers", default="auto", help="encoder states the heads read (auto, all, or e.g. 3,4,5)")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--label-smoothing", type=float, default=FitConfig.label_smoothing)
    parser.add_argument("--dropout", type=float, default=FitConfig.dropout)
    parser.add_argument("--pooling", choices=POOLINGS, default="mean_std",
                        help="level_mean_std: frames weighted by speech level (emovox.audio.speech_level)")
    parser.add_argument("--consistency", type=float, default=0.0,
                        help="with --augment: weight of the clean-vs-copy consistency loss (emovox.training.fit)")
    parser.add_argument("--seed", type=int, default=0, help="first head's seed (head k gets seed + k)")
    parser.add_argument("--snr", type=float, default=10.0)
    parser.add_argument("--augment", type=int, default=0, help="augmented copies of each training clip")
    parser.add_argument("--reverb", type=float, default=0.0, help="with --augment: probability of a simulated room in a copy")
    parser.add_argument("--mask", type=float, default=0.0, help="with --augment: probability of time and band masking in a copy")
    parser.add_argument("--room-test", action="store_true", help="also test on the held-out clips in a reverberant room")
    parser.add_argument("--babble-source", choices=("other-corpora", "same-fold"), default="other-corpora",
                        help="k-fold copies' babble: the other shared corpora, or the other speakers of the "
                        "clip's own fold (never a test speaker of any model the copy trains)")
    parser.add_argument("--adapt", action="store_true", help="adapt to each test speaker (emovox.training.adaptation): "
                        "its features centred on the mean of its own unlabelled test clips, per noise condition")
    parser.add_argument("--skip-cross", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_accuracy.json"))
    args = parser.parse_args()
    start = time.time()
    extractor = FeatureExtractor("whisper-base", pooling=args.pooling)
    config = TrainConfig(ensemble=args.ensemble, seed=args.seed,
                         fit=FitConfig(layers=parse_layers(args.layers, extractor.feature_shape[0]),
                                       hidden=args.hidden, label_smoothing=args.label_smoothing,
                                       dropout=args.dropout, consistency=args.consistency))
    result: dict = {"recipe": {"encoder": "whisper-base", "pooling": args.pooling, "seed": args.seed,
                               "consistency": args.consistency, "layers": config.fit.layers, "ensemble": args.ensemble,
                               "hidden": args.hidden, "label_smoothing": args.label_smoothing, "dropout": args.dropout,
                               "augment": args.augment, "adapt": args.adapt, "reverb": args.reverb, "mask": args.mask,
                               "babble_source": args.babble_source if args.augment else None}}
    shared = [name for name in ("ravdess", "nemo", "turev") if (args.corpora / name).is_dir()]

    utts = scan_corpus(args.kfold_corpus, args.corpora / args.kfold_corpus)
    recipe = AugmentRecipe(reverb=args.reverb, mask=args.mask)
    tests = {"clean": load_features(utts, extractor)}
    for kind in ("white", "babble"):
        tests[f"{kind} {args.snr:g} dB"] = noisy_features(utts, extractor, kind, args.snr)
    if args.room_test:
        tests["room"] = noisy_features(utts, extractor, "room", args.snr)
    speakers = np.array([u.speaker_key for u in utts])
    copies = None
    folds = speaker_folds(speakers, args.folds)
    if args.augment and args.babble_source == "same-fold":  # never a test speaker of a model the copy trains
        copies = load_augmented(utts, extractor, args.augment, groups=kfold_groups(utts, args.folds), recipe=recipe)
    elif args.augment:
        pool = [u.path for name in shared if name != args.kfold_corpus for u in scan_corpus(name, args.corpora / name)]
        copies = augmented_features([u.path for u in utts], extractor, copies=args.augment, babble_pool=pool,
                                    cache=FeatureCache(extractor.settings), recipe=recipe)
    preds = {name: np.empty(len(utts), dtype=object) for name in tests}
    confidence = np.zeros(len(utts))  # calibrated top probability on clean held-out clips, for ECE
    for test in folds:
        ensemble = train_ensemble(tests["clean"][~test], [u for u, t in zip(utts, test, strict=True) if not t], config=config,
                                  augmented=None if copies is None else copies[:, ~test])
        test_speakers = speakers[test]
        for name, X in tests.items():
            X_test = adapt_groups(X[test], test_speakers, ensemble.reference_mean()) if args.adapt else X[test]
            probs = ensemble.probabilities(X_test, adapted=args.adapt)
            preds[name][test] = [ensemble.labels[i] for i in probs.argmax(1)]
            if name == "clean":
                confidence[test] = probs.max(1)
    truth = [u.label for u in utts]
    correct = np.array([p == t for p, t in zip(preds["clean"], truth, strict=True)])
    ece = expected_calibration_error(confidence[:, None], correct)
    kfold = {name: float(balanced_accuracy_score(truth, list(p))) for name, p in preds.items()}
    result["kfold"] = {"corpus": args.kfold_corpus, "split": f"speaker-independent {args.folds}-fold "
                       f"({len(set(speakers))} speakers); noise and rooms only on held-out clips"
                       + ("; each test speaker adapted on its own clips of the same condition" if args.adapt else ""),
                       "ua": kfold, "ece_clean": round(ece, 4),
                       "ua_drop_points": {k: round(100 * (kfold["clean"] - v), 2) for k, v in kfold.items() if k != "clean"}}
    print(f"| {args.kfold_corpus} {args.folds}-fold | " + " | ".join(f"{k}: UA {v:.3f}" for k, v in kfold.items())
          + f" | ECE {ece:.3f} |")

    if not args.skip_cross:
        all_utts = [u for name in shared for u in scan_corpus(name, args.corpora / name)]
        X = load_features(all_utts, extractor)
        trainer = augmenting_trainer(config, all_utts, load_augmented(all_utts, extractor, args.augment, recipe=recipe))
        cross = {}
        for o in cross_corpus(X, all_utts, trainer=trainer, scheme="4class", adapt=args.adapt):
            cross[o.name] = classification_metrics(o.truth, o.predicted, labels=o.labels)["ua"]
            print(f"| cross-corpus 4-class, held out {o.name} | UA {cross[o.name]:.3f} |")
        result["cross_corpus_4class_ua"] = cross | {"mean": float(np.mean(list(cross.values())))}
    result["seconds"] = round(time.time() - start, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
