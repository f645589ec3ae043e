"""Does adding the words help? Audio-only vs fused unweighted accuracy (UA) on real corpora.

Acoustic probabilities are out-of-fold, speaker-independent: the shipped model's recipe
(Whisper-base features, state 4, 256-unit heads) is retrained on ``--folds`` folds of whole
speakers per corpus, and each utterance is scored by the heads that never heard its speaker.
The text branch (emovox/models/text-default) reads each utterance's reference transcript in
its corpus language. Decisions are made among the labels the corpus has. Features come from
the emovox feature cache; out-of-fold probabilities are cached under
``$EMOVOX_CACHE/fusion-eval``.

    python experiments/eval_fusion.py ravdess:../shared/corpora/ravdess nemo:../shared/corpora/nemo
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from emovox.cli.train import load_corpora
from emovox.encoder.weights import cache_dir
from emovox.evaluation.metrics import classification_metrics
from emovox.evaluation.splits import speaker_folds
from emovox.features.extractor import FeatureExtractor
from emovox.text import TextEmotionModel, embed_cached
from emovox.text.fusion import fuse_arrays
from emovox.training.fit import FitConfig
from emovox.training.train import TrainConfig, load_features, train_ensemble

log = logging.getLogger("eval_fusion")


def out_of_fold(X, utts, labels, folds, ensemble, seed):
    speakers = np.array([u.speaker_key for u in utts])
    probs = np.zeros((len(utts), len(labels)))
    config = TrainConfig(encoder="whisper-base", ensemble=ensemble, seed=seed, fit=FitConfig(layers=(4,)))
    for k, test in enumerate(speaker_folds(speakers, folds)):
        train = [u for u, t in zip(utts, test, strict=False) if not t]
        ens = train_ensemble(X[~test], train, config=config, labels=labels)
        probs[test] = ens.probabilities(X[test])
        log.info("fold %d/%d: %d test utterances", k + 1, folds, int(test.sum()))
    return probs


SYNTHETIC = {
    "happy": "I am so happy today, this is absolutely wonderful!",
    "angry": "I am furious with you, I hate this so much!",
    "sad": "I miss her so much, I cannot stop crying.",
    "fear": "I am terrified, please help me, someone is outside!",
    "disgust": "That is disgusting, it makes me sick to my stomach.",
    "surprise": "Wow, I did not expect that at all, what a surprise!",
    "neutral": "The meeting is at three o'clock in room twelve.",
}


def synthetic(audio, labels, text_model, weight, threshold):
    """Put each synthetic English sentence on every clip: how often is the decision its class?"""
    texts = list(SYNTHETIC.values())
    p = text_model.probabilities_for_embeddings(embed_cached(texts, "minilm"), "minilm")
    out = {}
    for (target, sentence), row in zip(SYNTHETIC.items(), p, strict=False):
        fused = fuse_arrays(audio, labels, np.tile(row, (len(audio), 1)), text_model.labels,
                            weight=weight, threshold=threshold)
        out[target] = {
            "sentence": sentence, "text_top": text_model.labels[int(row.argmax())],
            "p_text_neutral": round(float(row[text_model.labels.index("neutral")]), 3),
            "audio_share": round(float(np.mean(np.array(labels)[audio.argmax(1)] == target)), 4),
            "fused_share": round(float(np.mean(np.array(labels)[fused.argmax(1)] == target)), 4),
            "decisions_changed": int((fused.argmax(1) != audio.argmax(1)).sum()),
        }
    return out


def ua(truth, probs, labels):
    pred = [labels[i] for i in probs.argmax(1)]
    return classification_metrics(truth, pred, labels=labels)["ua"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpora", nargs="+")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--ensemble", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--weights", default="0.25,0.5,0.75,1.0")
    ap.add_argument("--thresholds", default="model", help="comma-separated, or 'model': the text model's own")
    ap.add_argument("--demo-weight", type=float, default=0.5)
    ap.add_argument("--demo-threshold", type=float, default=None, help="default: the text model's own")
    ap.add_argument("--text-model", type=Path, default=None, help="text model folder (default: the shipped one)")
    ap.add_argument("--audio-only", action="store_true", help="only compute (and cache) the acoustic probabilities")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    extractor = FeatureExtractor("whisper-base")
    results, text_model = {}, None
    for spec in args.corpora:
        utts = [u for u in load_corpora([spec]) if u.transcript]
        corpus = utts[0].corpus
        labels = sorted({u.label for u in utts})
        cached = cache_dir() / "fusion-eval" / f"{corpus}-f{args.folds}-e{args.ensemble}-s{args.seed}.npz"
        if cached.is_file():
            audio = np.load(cached)["probs"]
        else:
            X = load_features(utts, extractor)
            audio = out_of_fold(X, utts, labels, args.folds, args.ensemble, args.seed)
            cached.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cached, probs=audio)
        if args.audio_only:
            continue
        text_model = text_model or TextEmotionModel.load(args.text_model)
        language = utts[0].language or "en"
        encoder = text_model.encoder_for(language)
        texts = sorted({u.transcript for u in utts})
        emb = embed_cached(texts, encoder)
        by_text = dict(zip(texts, text_model.probabilities_for_embeddings(emb, encoder), strict=False))
        text = np.array([by_text[u.transcript] for u in utts])
        truth = [u.label for u in utts]
        text_only_labels = [l for l in labels if l in text_model.labels]
        cols = [text_model.labels.index(l) for l in text_only_labels]
        row = {
            "n": len(utts), "speakers": len({u.speaker_key for u in utts}), "unique_transcripts": len(texts),
            "language": language, "text_encoder": encoder, "labels": labels,
            "split": f"speaker-independent {args.folds}-fold (whole speakers), ensemble of {args.ensemble}",
            "audio_ua": round(ua(truth, audio, labels), 4),
            "text_only_ua": round(ua([t for t in truth if t in text_only_labels],
                                     text[[t in text_only_labels for t in truth]][:, cols], text_only_labels), 4),
            "mean_text_emotional": round(float(1 - text[:, text_model.labels.index("neutral")].mean()), 4),
            "fused": {},
        }
        for w in map(float, args.weights.split(",")):
            ths = [text_model.gate_threshold(encoder)] if args.thresholds == "model" else map(float, args.thresholds.split(","))
            for th in ths:
                fused = fuse_arrays(audio, labels, text, text_model.labels, weight=w, threshold=th)
                changed = int((fused.argmax(1) != audio.argmax(1)).sum())
                row["fused"][f"w={w},t={th}"] = {"ua": round(ua(truth, fused, labels), 4), "decisions_changed": changed}
        if language == "en":
            row["synthetic_sentences"] = synthetic(audio, labels, text_model, args.demo_weight,
                                                   args.demo_threshold or text_model.gate_threshold("minilm"))
        results[corpus] = row
        log.info("%s: %s", corpus, json.dumps(row))
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
