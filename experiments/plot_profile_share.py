"""Plot the neutral estimator's share against accuracy: unseen corpora (each kind of archive) and
RAVDESS in-domain, from the share sweep's JSON files (``exp_profile_estimators.py --only-mix``, both
seed sets, and the benchmark's ``--ravdess-only --estimators`` run). Writes a summary JSON and a PNG.

    python experiments/plot_profile_share.py --sweeps runs/skew_s0.json runs/skew_s5.json \\
        --ravdess runs/ravdess_est.json --out docs/profile_share
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ARCHIVES = {"profile": "random half", "skewed": "70 % neutral", "skewedangry": "70 % angry",
            "skewedhappy": "70 % happy", "skewedsad": "70 % sad"}
SHARES = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
RAVDESS = ("clean", "white 10 dB", "babble 10 dB", "room")


def corpora_of(path: Path) -> dict:
    """The per-corpus rows of a sweep file (its final JSON or the ``.partial.json`` a stop leaves)."""
    data = json.loads(path.read_text())
    return data["corpora"] if "corpora" in data else data


def summary(sweeps: list[Path], ravdess: Path, answer: str = "profile_heads") -> dict:
    """Mean UA over corpora, averaged over seed sets, per archive and share; RAVDESS per condition."""
    runs = [corpora_of(p) for p in sweeps]
    out: dict = {"seed_sets": [str(p) for p in sweeps], "answer": answer, "unseen": {}, "ravdess_6fold": {}}
    estimators = {f"{share:g}": f"mix{100 * share:g}_b0" for share in SHARES} | {"balanced": "weighted_b0.5"}
    for archive in ARCHIVES:
        row = {}
        for name, est in estimators.items():
            key = f"every_{archive}_{answer}_{est}"
            means = [np.mean([r[key] for r in run.values() if key in r]) for run in runs]
            worsts = [np.min([r[key] for r in run.values() if key in r]) for run in runs]
            row[name] = {"mean": float(np.mean(means)), "worst": float(np.mean(worsts))}
        out["unseen"][archive] = row
    reference = json.loads(ravdess.read_text())
    entry = next(iter(reference.values()))["ravdess_6fold"]
    for condition in RAVDESS:
        row = {"single clips": entry[condition], "0.7": entry[f"{condition} + profile"]}
        for key, value in entry.items():
            if key.startswith(f"{condition} + profile ") and not isinstance(value, dict):
                name = key.removeprefix(f"{condition} + profile ")
                row["balanced" if name == "b0.5" else name.removeprefix("neutral")] = value
        out["ravdess_6fold"][condition] = row
    return out


def plot(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    for archive, label in ARCHIVES.items():
        row = data["unseen"][archive]
        line, = left.plot(SHARES, [100 * row[f"{s:g}"]["mean"] for s in SHARES], marker="o", label=label)
        left.axhline(100 * row["balanced"]["mean"], color=line.get_color(), ls=":", lw=1)
    left.set(xlabel="neutral share of the profile", ylabel="UA % (mean of six unseen corpora, two seed sets)",
             title="unseen corpora, by archive (dotted: balanced estimator)")
    left.legend(fontsize=8)
    for condition, row in data["ravdess_6fold"].items():
        shares = [s for s in SHARES if f"{s:g}" in row]
        line, = right.plot(shares, [100 * row[f"{s:g}"] for s in shares], marker="o", label=condition)
        right.axhline(100 * row["balanced"], color=line.get_color(), ls=":", lw=1)
    right.set(xlabel="neutral share of the profile", ylabel="UA % (8 classes)",
              title="RAVDESS 6-fold, in-domain (dotted: balanced estimator)")
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.axvline(0.7, color="grey", lw=0.8, ls="--")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=Path, nargs="+", required=True)
    parser.add_argument("--ravdess", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("docs/profile_share"))
    args = parser.parse_args()
    data = summary(args.sweeps, args.ravdess)
    args.out.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n")
    plot(data, args.out.with_suffix(".png"))
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
