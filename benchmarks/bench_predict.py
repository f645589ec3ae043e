"""Time `emovox predict` end to end (process start, model load, decode, features, heads) on N clips.

Uses real RAVDESS clips from ../shared/corpora when present (else synthetic 3 s voices), runs the
CLI in a fresh process like a user would, and prints a table and writes JSON.

    python benchmarks/bench_predict.py --n 300 --out runs/bench_predict.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]


def clips(n: int, workdir: Path) -> tuple[list[str], str]:
    corpora = Path(os.environ.get("EMOVOX_CORPORA", ROOT.parent / "shared" / "corpora"))
    real = sorted((corpora / "ravdess").rglob("*.flac"))
    if len(real) >= n:
        step = len(real) // n
        return [str(p) for p in real[::step][:n]], "RAVDESS (16 kHz FLAC, ~3.5-4 s)"
    from emovox.testing import speechlike

    out = []
    for i in range(n):
        path = workdir / f"clip{i}.wav"
        sf.write(path, speechlike(duration=3.0, f0=100 + i % 150, seed=i), 16000)
        out.append(str(path))
    return out, "synthetic 3 s voices"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--model", default=None)
    parser.add_argument("--out", default="runs/bench_predict.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths, kind = clips(args.n, Path(tmp))
        audio_seconds = sum(sf.info(p).duration for p in paths)
        cmd = [sys.executable, "-m", "emovox", "predict", *paths, "--format", "jsonl"]
        if args.model:
            cmd += ["--model", args.model]
        # warm-up: first use assembles/exports cached files once; not what a user sees each time
        subprocess.run([*cmd[:4], paths[0], *cmd[-2:]], check=True, capture_output=True)
        start = time.perf_counter()
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - start
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    result = {
        "clips": len(paths), "ok": sum("label" in r for r in rows), "audio": kind,
        "audio_seconds": round(audio_seconds, 1), "wall_seconds": round(wall, 2),
        "clips_per_second": round(len(paths) / wall, 2), "rtf": round(wall / audio_seconds, 4),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
    }
    print("| clips | audio | wall s (model load included) | clips/s | RTF |")
    print("|---|---|---|---|---|")
    print(f"| {result['clips']} | {result['audio_seconds']} s {kind} | {result['wall_seconds']} | "
          f"{result['clips_per_second']} | {result['rtf']} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
