"""Leave-one-corpus-out fold models, trained once and kept on disk for the experiments.

Training a design's ensemble for one held-out corpus takes ~5 min on 2 cores; the profile and
decision experiments only need the trained heads, so each fold's model is written as an emovox
model directory (``save_model``, safetensors) under ``runs/fold_models/<design>/<corpus>/`` and
read back by later runs (``bench_generalisation.reused_fold``, which ``--reuse-models`` uses too). A
directory is used only when it records the same design config and the same training clips (their count
and a hash of their paths), else it is trained anew.

    from fold_models import fold_ensembles
    for held, test, train_utts, idx, truth, ensemble in fold_ensembles("all-mixed-level-d0.5-ph", X, utts):
        ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_generalisation as bench  # noqa: E402

from emovox.corpora.manifest import Utterance  # noqa: E402
from emovox.training.checkpoint import save_ensemble  # noqa: E402

ROOT = Path("runs/fold_models")


def training_key(design_name: str, train_utts: list[Utterance]) -> dict:
    """What a cached fold model must match: the design's config and its training clips (the key that
    ``bench_generalisation.py --keep-models runs/fold_models`` writes as well)."""
    design = bench.DESIGNS[design_name]
    return bench.fold_key(design_name, design.config, train_utts, design.encoding)


def report(rows: dict, design_name: str, out: Path) -> None:
    """Print each key's mean and worst over the held-out corpora (then every corpus), UA %, and write
    ``rows`` (``{corpus: {key: UA}}``; a key may be missing for a corpus) to ``out`` as JSON."""
    print("\nmean / worst over the held-out corpora, then each corpus (UA %)")
    for key in dict.fromkeys(k for r in rows.values() for k in r):
        values = [r[key] for r in rows.values() if key in r]
        print(f"{key:28s} {100 * np.mean(values):5.1f} {100 * min(values):5.1f}  "
              + " ".join(f"{100 * v:5.1f}" for v in values))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"design": design_name, "corpora": list(rows), "rows": rows}, indent=1) + "\n")


def print_table(rows: dict, width: int = 16) -> None:
    """Print ``rows`` (``{corpus: {key: UA}}``, every corpus with the same keys; ``n`` is skipped) as a table, UA %:
    one line per key, each corpus's column, then the mean and the worst corpus.

    Examples:
        >>> print_table({"a": {"n": 3, "x": 0.5}, "b": {"n": 4, "x": 0.7}}, width=4)
        <BLANKLINE>
        variant         a         b      mean  worst
        x         50.0      70.0      60.0   50.0
    """
    keys = [k for k in next(iter(rows.values())) if k != "n"]
    print(f"\n{'variant':{width}s} " + " ".join(f"{c:>9s}" for c in rows) + "      mean  worst")
    for k in keys:
        v = [rows[c][k] for c in rows]
        print(f"{k:{width}s} " + " ".join(f"{100 * x:9.1f}" for x in v) + f" {100 * np.mean(v):9.1f} {100 * min(v):6.1f}")


def fold_ensembles(design_name: str, X: np.ndarray, utts: list[Utterance], held_out=(), root: Path = ROOT):
    """Like :func:`bench_generalisation.held_out_splits`, each split with its trained ensemble
    appended (loaded from ``root`` when cached there for the same design and training clips)."""
    design = bench.DESIGNS[design_name]
    if design.config.augment or design.config.finetune.blocks or design.inputs != "mean_std":
        raise ValueError(f"{design_name}: only designs without augmented copies, tuning or input selection are cached")
    extractor = design.extractor()
    for held, test, train_utts, idx, truth in bench.held_out_splits(utts, held_out):
        ensemble = bench.reused_fold(root / design_name, held, design, train_utts)
        if ensemble is None:
            directory = root / design_name / held
            ensemble = bench.train_ensemble(X[~test], train_utts, config=design.config)
            ensemble = bench.with_linear(design, ensemble, X[~test], train_utts)  # as --keep-models saves them
            save_ensemble(directory, ensemble, extractor.settings)
            key = training_key(design_name, train_utts)
            (directory / "fold.json").write_text(json.dumps(key, indent=1) + "\n")  # last: a crash leaves no valid key
        yield held, test, train_utts, idx, truth, ensemble

