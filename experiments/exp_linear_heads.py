"""Experiment: would a linear head (logistic regression) hear unseen corpora better than v7's MLP heads?

v7's heads are ten MLPs (256 hidden, dropout 0.5) over a learned mix of the seven encoder states. A simpler
classifier has less room to learn the training corpora's voices and channels. Leave-one-corpus-out as the
benchmark: for each held-out corpus, a multinomial logistic regression is fitted on the other corpora's
clips (each twice, raw and less its corpus's mean, centred on zero: v7's "all-mixed" rows centre each corpus on the
mean of all instead; features standardised on those
rows), on every state concatenated or on the states' average, at a few strengths ``C``; the held-out corpus is
served as v7.2 serves (silence context at stride 8, level band -32 .. -10) and decided over the four classes
as ``--labels angry,happy,sad,neutral``. Beside it: v7's fold model of that corpus (the shipped recipe) on
the same features, and the two mixed (weights ``--mix``: probabilities averaged, and log-probabilities averaged, as one ensemble
averaging its heads' logits would answer). Single clips, 4-class UA::

    python experiments/exp_linear_heads.py --out runs/exp_linear_heads.json    # ~35 min on 2 cores, cached features
    python experiments/exp_linear_heads.py --strengths 0.0001,0.0003 --views concat --mix 0.3,0.5
    python experiments/exp_linear_heads.py --strengths 0.0003 --views concat --mix 0.3 --weigh corpus

``--weigh corpus``: every training corpus weighs the same in the regression (each row ``1 / its corpus's rows``,
the label balancing on top), where the shipped fit lets a corpus weigh by its clips (EmoSpeech is 39 % of them).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_generalisation as bench  # noqa: E402

from emovox.training.checkpoint import load_model_files  # noqa: E402
from emovox.training.linear_head import centred_rows  # noqa: E402
from emovox.training.train import load_features, training_rows  # noqa: E402

DESIGN = "all-mixed-level-d0.5-ph-e10-sp0.5-sc-serve8-band32"  # v7.2 as it serves
FOLDS = Path("runs/fold_models/all-mixed-level-d0.5-ph-e10-sp0.5-sc")


def view(X: np.ndarray, how: str) -> np.ndarray:
    """The linear head's input: every state concatenated (``concat``) or the states' average (``mean``)."""
    return X.reshape(len(X), -1) if how == "concat" else X.mean(axis=1)


def training_view(X: np.ndarray, utts: list, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The regression's rows and their labels, for clips ``utts``: ``zero``, every clip as recorded and less its
    corpus's mean (the library's :func:`centred_rows`, what v7.3 ships); ``mean``, as recorded and moved to the mean
    of all rows (the heads' ``--centre-corpora both`` rows, :func:`training_rows`); ``raw``, as recorded only.

    Examples:
        >>> from emovox.corpora.manifest import Utterance
        >>> u = [Utterance(f"{c}{i}.wav", "sad", "sad", "s", c) for c, i in ("c1", "c2", "d1")]
        >>> X = np.array([[1.0], [3.0], [5.0]])
        >>> [training_view(X, u, k)[0][:, 0].tolist() for k in ("zero", "mean", "raw")]
        [[1.0, 3.0, 5.0, -1.0, 1.0, 0.0], [1.0, 3.0, 5.0, 2.0, 4.0, 3.0], [1.0, 3.0, 5.0]]
    """
    y = np.array([u.label for u in utts])
    if kind == "zero":
        return centred_rows(X, [u.corpus for u in utts]), np.concatenate([y, y])
    if kind == "mean":
        rows, row_utts = training_rows(X, utts, "both")
        return rows, np.array([u.label for u in row_utts])
    if kind == "raw":
        return X, y
    raise ValueError(f"rows {kind!r}: zero, mean or raw")


def nested_choice(rows: dict, keys: list[str]) -> dict:
    """Per held-out corpus, the variant (of ``keys``) with the best mean UA over the *other* corpora, and
    its UA on this one: the choice a user without this corpus would have made (no selection on it).

    Examples:
        >>> rows = {"a": {"x": 0.5, "y": 0.6}, "b": {"x": 0.7, "y": 0.4}, "c": {"x": 0.6, "y": 0.5}}
        >>> nested_choice(rows, ["x", "y"])
        {'a': ('x', 0.5), 'b': ('x', 0.7), 'c': ('x', 0.6)}
    """
    return {held: (best := max(keys, key=lambda k: np.mean([r[k] for c, r in rows.items() if c != held])),
                   rows[held][best]) for held in rows}


def print_table(rows: dict) -> None:
    """Per-variant UA on every held-out corpus, mean and worst, then the nested choice among the mixes."""
    keys = [k for k in next(iter(rows.values())) if k != "n"]
    print(f"\n{'head':28s} " + " ".join(f"{c:>9s}" for c in rows) + "      mean  worst")
    for k in keys:
        v = [rows[c][k] for c in rows]
        print(f"{k:28s} " + " ".join(f"{100 * x:9.1f}" for x in v) + f" {100 * np.mean(v):9.1f} {100 * min(v):6.1f}")
    mixes = [k for k in keys if "mix" in k]
    if len(rows) > 2 and mixes:
        chosen = nested_choice(rows, mixes)
        v = [ua for _, ua in chosen.values()]
        print(f"{'nested choice of the mixes':28s} " + " ".join(f"{100 * x:9.1f}" for x in v)
              + f" {100 * np.mean(v):9.1f} {100 * min(v):6.1f}")
        print("  chosen: " + ", ".join(f"{c} {k}" for c, (k, _) in chosen.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench.add_corpus_options(parser)
    parser.add_argument("--strengths", default="0.0003,0.001,0.003", help="comma-separated C of the regression")
    parser.add_argument("--views", default="concat,mean", help="comma-separated: concat, mean")
    parser.add_argument("--rows", default="zero", help="comma-separated: zero (shipped), mean, raw (training_view)")
    parser.add_argument("--mix", default="0.5", help="comma-separated: the linear head's weights where mixed with v7's")
    parser.add_argument("--weigh", default="none", help="comma-separated: none (shipped), corpus (each corpus the same)")
    parser.add_argument("--folds", type=Path, default=FOLDS)
    parser.add_argument("--out", type=Path, default=Path("runs/exp_linear_heads.json"))
    parser.add_argument("--table", type=Path, nargs="+", default=None,
                        help="print the table (and nested choice) of these --out files' rows, merged, and stop")
    args = parser.parse_args()
    if args.table:
        merged: dict = {}
        for path in args.table:
            for held, row in json.loads(path.read_text())["rows"].items():
                merged.setdefault(held, {}).update(row)
        print_table(merged)
        return

    design = bench.DESIGNS[DESIGN]
    utts = bench.load_corpora(args.corpora, args.extra, None)
    X = load_features(utts, design.extractor()).astype(np.float32)
    X_serve = load_features(utts, design.serving_extractor()).astype(np.float32)
    rows: dict = {}
    for held, test, train_utts, idx, truth in bench.held_out_splits(utts):
        t0 = time.time()
        ensemble = load_model_files(args.folds / held).ensemble()
        labels = list(ensemble.labels)
        p_mlp = ensemble.probabilities(X_serve[idx])
        row = {"n": len(idx), "v7.2": bench.ua(truth, bench.four_class_decision(ensemble, p_mlp))}
        y = np.array([u.label for u in train_utts])
        keep = np.isin(y, labels)
        kept = [u for u, k in zip(train_utts, keep, strict=True) if k]
        variants = ((h, r, w) for h in args.views.split(",") for r in args.rows.split(",") for w in args.weigh.split(","))
        for how, rows_kind, weigh in variants:
            train, targets = training_view(view(X[~test][keep], how), kept, rows_kind)
            mean, std = train.mean(axis=0), train.std(axis=0) + 1e-6
            test_rows = (view(X_serve[idx], how) - mean) / std
            corpora = np.array([u.corpus for u in kept] * (len(train) // len(kept)))
            weights = None
            if weigh == "corpus":  # each corpus's rows sum to the same weight (their mean weight 1)
                counts = {c: int((corpora == c).sum()) for c in set(corpora)}
                weights = np.array([len(corpora) / (len(counts) * counts[c]) for c in corpora])
            how = how if rows_kind == "zero" else f"{how}-{rows_kind}"  # the shipped rows keep their old names
            how = how if weigh == "none" else f"{how}-w{weigh}"
            for c in map(float, args.strengths.split(",")):
                lr = LogisticRegression(C=c, max_iter=300, class_weight="balanced")
                lr.fit((train - mean) / std, targets, sample_weight=weights)
                p = np.zeros_like(p_mlp)
                p[:, [labels.index(k) for k in lr.classes_]] = lr.predict_proba(test_rows)
                row[f"lr-{how}-C{c:g}"] = bench.ua(truth, bench.four_class_decision(ensemble, p))
                for w in map(float, args.mix.split(",")):
                    mixed = w * p + (1 - w) * p_mlp
                    row[f"mix{w:g}-{how}-C{c:g}"] = bench.ua(truth, bench.four_class_decision(ensemble, mixed))
                    # log-probabilities mixed: what one ensemble averaging its heads' logits would answer
                    logit = np.exp(w * np.log(p + 1e-12) + (1 - w) * np.log(p_mlp + 1e-12))
                    row[f"logmix{w:g}-{how}-C{c:g}"] = bench.ua(truth, bench.four_class_decision(ensemble, logit))
        rows[held] = row
        print(f"{held:10s} ({time.time() - t0:4.0f} s) " + "  ".join(f"{k} {v:.3f}" for k, v in row.items() if k != "n"),
              flush=True)
    print_table(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"design": DESIGN, "folds": str(args.folds), "mix": args.mix, "strengths": args.strengths,
                                    "rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
