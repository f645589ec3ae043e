"""Throughput of ``emovox batch``: one process, the local process pool, and Ray with 2 actors.

The same N short synthetic clips (default 1000 of 1 s, 16 kHz WAV) are annotated three times
into fresh output folders, each worker with one compute thread; files/s counts everything a
user waits for after the command starts its engine (worker start-up and model loading
included; Ray's own cluster start is timed apart). "Steady" figures leave out the time to
the first part file (worker start-up, model loading, the first chunk): what a long archive
sees. Scaling efficiency is files/s divided by (workers x the one-process files/s). Prints a
Markdown table and writes JSON.

Without ``--model`` a tiny whisper-tiny.en model is trained and exported first (needs the
``tiny`` extra); pass an exported folder to measure a real model.

Usage:
    python benchmarks/bench_batch.py --n 200 --out bench_batch.json
    python benchmarks/bench_batch.py --model exported/ --workers 4 --ray-actors 4
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path


def make_clips(root: Path, n: int, duration: float) -> Path:
    from emovox.testing import speechlike, write_wav

    folder = root / "clips"
    folder.mkdir(parents=True)
    for k in range(n):
        signal = speechlike(duration=duration, f0=110.0 + 150.0 * (k % 2), seed=k, amplitude=0.1 + 0.5 * (k % 2))
        write_wav(folder / f"clip{k:06d}.wav", signal, 16000)
    return folder


def tiny_model(root: Path) -> Path:
    from typer.testing import CliRunner

    from emovox.cli import app
    from emovox.testing import make_synthetic_corpus

    corpus = make_synthetic_corpus(root / "corpus")
    runner = CliRunner()
    result = runner.invoke(app, ["train", f"folder:{corpus}", "--out", str(root / "model"), "--encoder",
                                 "whisper-tiny.en", "--ensemble", "2", "--epochs", "30", "--hidden", "16"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["export", str(root / "model"), str(root / "exported")])
    assert result.exit_code == 0, result.output
    return root / "exported"


def measure(name: str, clips: Path, out: Path, model: Path, *, engine: str, workers: int, chunk: int) -> dict:
    from emovox.batch import run_batch

    summary = run_batch(clips, out, engine=engine, workers=workers, model_dir=model, chunk_size=chunk, progress=False)
    assert summary.processed == summary.inputs and summary.failed == 0, summary
    return {"name": name, "engine": engine, "workers": workers, "files": summary.processed,
            "seconds": round(summary.elapsed, 2), "files_per_s": round(summary.files_per_s, 2),
            "startup_seconds": round(summary.first_part[0], 2) if summary.first_part else None,
            "steady_files_per_s": round(summary.steady_files_per_s, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="clips")
    parser.add_argument("--duration", type=float, default=1.0, help="seconds per clip")
    parser.add_argument("--model", type=Path, help="exported (or model) folder; default: train a tiny one")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="local pool processes")
    parser.add_argument("--ray-actors", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=32)
    parser.add_argument("--no-ray", action="store_true", help="skip Ray")
    parser.add_argument("--out", type=Path, default=Path("bench_batch.json"))
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        model = args.model or tiny_model(root)
        clips = make_clips(root, args.n, args.duration)
        runs = [measure("1 process", clips, root / "out-1", model, engine="local", workers=1, chunk=args.chunk_size),
                measure(f"local pool ({args.workers})", clips, root / "out-pool", model, engine="local",
                        workers=args.workers, chunk=args.chunk_size)]
        ray_start = None
        if not args.no_ray:
            import ray

            start = time.perf_counter()
            ray.init(num_cpus=args.ray_actors, include_dashboard=False, log_to_driver=False)
            ray_start = round(time.perf_counter() - start, 2)
            try:
                runs.append(measure(f"ray ({args.ray_actors} actors)", clips, root / "out-ray", model, engine="ray",
                                    workers=args.ray_actors, chunk=args.chunk_size))
            finally:
                ray.shutdown()
        single, steady = runs[0]["files_per_s"], runs[0]["steady_files_per_s"]
        for run in runs:
            run["efficiency"] = round(run["files_per_s"] / (run["workers"] * single), 2) if single else None
            run["steady_efficiency"] = round(run["steady_files_per_s"] / (run["workers"] * steady), 2) if steady else None
        report = {"n": args.n, "clip_seconds": args.duration, "model": str(args.model or "tiny whisper-tiny.en (trained)"),
                  "chunk_size": args.chunk_size, "cpus": os.cpu_count(), "machine": platform.platform(),
                  "ray_init_seconds": ray_start, "runs": runs}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{args.n} clips of {args.duration:g} s, chunks of {args.chunk_size}, {os.cpu_count()} CPUs")
    print("| engine | workers | seconds | files/s | efficiency | to first part (s) | steady files/s | steady efficiency |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        print(f"| {r['name']} | {r['workers']} | {r['seconds']} | {r['files_per_s']} | {r['efficiency']} "
              f"| {r['startup_seconds']} | {r['steady_files_per_s']} | {r['steady_efficiency']} |")
    if ray_start is not None:
        print(f"(Ray cluster start, not counted above: {ray_start} s)")
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
