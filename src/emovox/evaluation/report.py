"""Evaluation reports: a Markdown summary, a JSON file with every number, and PNG plots
(confusion matrix, reliability diagram, per-class bars) for each test set.

Examples:
    >>> table_row(["a", 0.5])
    '| a | 0.500 |'
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


def table_row(cells) -> str:
    return "| " + " | ".join(f"{c:.3f}" if isinstance(c, float) else str(c) for c in cells) + " |"


def plot_outcome(metrics: dict, out_dir: Path, stem: str) -> list[str]:
    """Write confusion / reliability / per-class PNGs; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = metrics["labels"]
    files = []
    cm = np.array(metrics["confusion_normalized"])
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * len(labels), 0.8 + 0.7 * len(labels)))
    ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
    counts = np.array(metrics["confusion"])
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{cm[i, j]:.2f}\n({counts[i, j]})", ha="center", va="center", fontsize=7,
                    color="white" if cm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{stem}: UA {metrics['ua']:.3f}, WA {metrics['wa']:.3f}")
    fig.tight_layout()
    files.append(f"{stem}_confusion.png")
    fig.savefig(out_dir / files[-1], dpi=110)
    plt.close(fig)

    if "reliability" in metrics:
        bins = [b for b in metrics["reliability"] if b["count"]]
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
        ax.bar([b["confidence"] for b in bins], [b["accuracy"] for b in bins], width=1 / len(metrics["reliability"]),
               alpha=0.7, edgecolor="black", label="accuracy per confidence bin")
        ax.set_xlabel("confidence (top probability)")
        ax.set_ylabel("accuracy")
        ax.set_title(f"{stem}: ECE {metrics['ece']:.3f}")
        ax.legend(loc="upper left", fontsize=8)
        fig.tight_layout()
        files.append(f"{stem}_reliability.png")
        fig.savefig(out_dir / files[-1], dpi=110)
        plt.close(fig)

    fig, ax = plt.subplots(figsize=(1.5 + 0.8 * len(labels), 3.5))
    x = np.arange(len(labels))
    for k, key in enumerate(("precision", "recall", "f1")):
        ax.bar(x + (k - 1) * 0.27, [metrics["per_class"][l][key] for l in labels], width=0.27, label=key)
    ax.set_xticks(x, labels, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, ncol=3)
    ax.set_title(f"{stem}: per class")
    fig.tight_layout()
    files.append(f"{stem}_per_class.png")
    fig.savefig(out_dir / files[-1], dpi=110)
    plt.close(fig)
    return files


def write_report(results: list[dict], out_dir: str | os.PathLike, *, title: str, plots: bool = True) -> Path:
    """``results``: dicts with ``name``, ``split`` and ``metrics`` (from classification_metrics)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"# {title}", "", "| test set | n | UA | WA | macro-F1 | weighted-F1 | ECE | ECE before temperature |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        m = r["metrics"]
        lines.append(table_row([r["name"], m["n"], m["ua"], m["wa"], m["macro_f1"], m["weighted_f1"], m.get("ece", float("nan")),
                                m.get("ece_uncalibrated", float("nan"))]))
    if len(results) > 1:
        lines.append(table_row(["**mean**", "", float(np.mean([r["metrics"]["ua"] for r in results])),
                                float(np.mean([r["metrics"]["wa"] for r in results])),
                                float(np.mean([r["metrics"]["macro_f1"] for r in results])), "", "", ""]))
    lines += ["", "UA = unweighted accuracy (mean per-class recall); WA = accuracy; ECE = expected calibration error.", ""]
    for r in results:
        m = r["metrics"]
        lines += [f"## {r['name']}", "", f"**Split:** {r['split']}", ""]
        if r.get("label_mapping"):
            lines += [f"**Labels:** {r['label_mapping']}", ""]
        lines += ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        lines += [table_row([l, v["precision"], v["recall"], v["f1"], v["support"]]) for l, v in m["per_class"].items()]
        lines.append("")
        if plots:
            for f in plot_outcome(m, out_dir, r["name"].replace("/", "_")):
                lines += [f"![{f}]({f})", ""]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    (out_dir / "report.json").write_text(json.dumps({"title": title, "results": results}, indent=2, ensure_ascii=False) + "\n")
    return path
