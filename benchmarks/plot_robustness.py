"""Plot the k-fold UA of several ``bench_accuracy.py`` runs under each test condition (clean,
white noise, babble, a reverberant room) as grouped bars, one group per condition.

    python benchmarks/plot_robustness.py runs/r1_default.json:default runs/r2_noise.json:"noise recipe" \
        runs/r3_noise_room.json:"noise recipe + rooms" --out docs/robustness.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="RUN.json or RUN.json:label (a bench_accuracy.py result)")
    parser.add_argument("--out", type=Path, default=Path("runs/robustness.png"))
    args = parser.parse_args()
    runs = []
    for spec in args.runs:
        path, _, label = spec.partition(":")
        result = json.loads(Path(path).read_text())
        runs.append((label or Path(path).stem, result["kfold"]))
    conditions = list(runs[0][1]["ua"])
    missing = [label for label, kfold in runs if list(kfold["ua"]) != conditions]
    if missing:
        raise SystemExit(f"runs {missing} were not measured under the same conditions as {runs[0][0]!r}: {conditions}")
    width = 0.8 / len(runs)
    fig, ax = plt.subplots(figsize=(1.6 + 1.9 * len(conditions), 3.8))
    x = np.arange(len(conditions))
    for k, (label, kfold) in enumerate(runs):
        values = [kfold["ua"][c] for c in conditions]
        bars = ax.bar(x + (k - (len(runs) - 1) / 2) * width, values, width, label=label)
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=7, padding=2)
    ax.set_xticks(x, conditions)
    ax.set_ylabel("UA (mean per-class recall)")
    ax.set_ylim(0, 1.08)  # room above the bars for the legend
    ax.set_title(f"{runs[0][1]['corpus']}: {runs[0][1]['split']}", fontsize=8)
    ax.legend(fontsize=8, loc="upper center", ncol=len(runs), frameon=False)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
