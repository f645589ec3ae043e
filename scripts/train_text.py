"""Train the shipped text-emotion model (emovox/models/text-default) and measure it.

Embeds a class-capped subsample of GoEmotions train + CARER train with each sentence encoder
(all-MiniLM-L6-v2 for English, multilingual-e5-small for other languages), fits a
class-balanced logistic regression per encoder (C = 4 on L2-normalised embeddings, not tuned),
and reports macro-F1 on each corpus's own official test split, plus CLUEmotion test (Chinese,
never trained on) for the multilingual encoder. Embeddings are cached under
``$EMOVOX_CACHE/text-embeddings`` in chunks of 1,000, so a rerun is fast.

    python scripts/train_text.py --data ../shared/text-emotion --out src/emovox/models/text-default
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import defaultdict

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, recall_score

from emovox.text import TEXT_LABELS, TextEmotionModel, embed_cached, read_split

log = logging.getLogger("train_text")


def cap_per_class(texts, labels, cap, seed):
    """At most ``cap`` examples per label (all when cap <= 0), in a seeded random order."""
    rng = np.random.default_rng(seed)
    by_label = defaultdict(list)
    for i, y in enumerate(labels):
        by_label[y].append(i)
    keep = []
    for y in sorted(by_label):
        idx = np.array(by_label[y])
        keep += list(rng.permutation(idx)[:cap] if cap > 0 else idx)
    keep = sorted(keep)
    return [texts[i] for i in keep], [labels[i] for i in keep]


def embed_chunked(texts, encoder, chunk=1000):
    parts = []
    for start in range(0, len(texts), chunk):
        t0 = time.perf_counter()
        parts.append(embed_cached(texts[start:start + chunk], encoder))
        log.info("%s: %d/%d sentences (%.1f s)", encoder, min(start + chunk, len(texts)), len(texts),
                 time.perf_counter() - t0)
    return np.concatenate(parts) if parts else np.zeros((0, 384), np.float32)


def scores(model, encoder, x, y):
    """Macro-F1 and unweighted recall, deciding only among the labels the corpus has."""
    present = [l for l in TEXT_LABELS if l in set(y)]
    cols = [model.labels.index(l) for l in present]
    p = model.probabilities_for_embeddings(x, encoder)[:, cols]
    pred = [present[i] for i in p.argmax(axis=1)]
    return {"macro_f1": round(float(f1_score(y, pred, labels=present, average="macro")), 4),
            "ua": round(float(recall_score(y, pred, labels=present, average="macro")), 4),
            "n": len(y), "labels": present}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/text-emotion")
    ap.add_argument("--out", default="src/emovox/models/text-default")
    ap.add_argument("--encoders", default="minilm,e5")
    ap.add_argument("--cap-minilm", type=int, default=600, help="training examples per class per corpus")
    ap.add_argument("--cap-e5", type=int, default=100)
    ap.add_argument("--test-cap-e5", type=int, default=60, help="test examples per class (e5 is slower)")
    ap.add_argument("--gate-quantile", type=float, default=0.99,
                    help="fusion gate threshold: this quantile of 1 - p(neutral) on neutral training sentences")
    ap.add_argument("--C", type=float, default=4.0, help="inverse L2 strength of the logistic regression")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)

    heads, results, sizes, thresholds = {}, {}, {}, {}
    for encoder in args.encoders.split(","):
        cap = args.cap_minilm if encoder == "minilm" else args.cap_e5
        train_t, train_y = [], []
        for corpus in ("goemotions", "carer"):
            t, y = cap_per_class(*read_split(args.data, corpus, "train"), cap, args.seed)
            train_t += t
            train_y += y
        x = embed_chunked(train_t, encoder)
        t0 = time.perf_counter()
        clf = LogisticRegression(C=args.C, class_weight="balanced", max_iter=2000).fit(x, train_y)
        log.info("%s: logistic regression on %d examples (%.1f s)", encoder, len(train_y), time.perf_counter() - t0)
        order = [list(clf.classes_).index(l) for l in TEXT_LABELS]
        heads[encoder] = (clf.coef_[order], clf.intercept_[order])
        model = TextEmotionModel(TEXT_LABELS, {encoder: heads[encoder]})
        # fusion gate: 99 % of neutral training sentences must leave the audio result alone
        emotional = 1 - model.probabilities_for_embeddings(x, encoder)[:, TEXT_LABELS.index("neutral")]
        thresholds[encoder] = round(float(np.quantile(emotional[np.array(train_y) == "neutral"], args.gate_quantile)), 4)
        sizes[encoder] = {"train": len(train_y), "C": args.C}
        tests = [("goemotions", "test"), ("carer", "test")]
        if encoder == "e5":
            tests.append(("cluemotion", "test"))
        for corpus, split in tests:
            t, y = read_split(args.data, corpus, split)
            if encoder == "e5":
                t, y = cap_per_class(t, y, args.test_cap_e5, args.seed)
            results[f"{encoder}/{corpus}-{split}"] = scores(model, encoder, embed_chunked(t, encoder), y)
            log.info("%s %s-%s: %s", encoder, corpus, split, results[f"{encoder}/{corpus}-{split}"])

    languages = {"en": "minilm", "default": "e5"} if {"minilm", "e5"} <= set(heads) else None
    config = {
        "training": {"command": "python " + " ".join(["scripts/train_text.py", *(argv or sys.argv[1:])]),
                     "data": "GoEmotions train (single-Ekman-class examples) + CARER train, "
                             "capped per class per corpus", "seed": args.seed, **{f"{k}": v for k, v in sizes.items()},
                     "cap_per_class": {"minilm": args.cap_minilm, "e5": args.cap_e5}},
        "scores": results,
        "gate_threshold": thresholds,
    }
    TextEmotionModel(TEXT_LABELS, heads, languages=languages, config=config).save(args.out)
    log.info("saved %s", args.out)


if __name__ == "__main__":
    main()
