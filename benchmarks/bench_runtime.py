"""Time the whole prediction pipeline: torch fp32 vs ONNX fp32 vs ONNX int8.

Each backend runs in its own process (clean peak RSS and load time). For 1, 3, 10 and 30 s
clips of speech stored as 48 kHz WAV, every stage is timed — decode, resample to 16 kHz,
log-mel, encoder (+ pooling + heads) — and the end-to-end real-time factor, clips/s at
batch 1 and 8, peak RSS, model size on disk and load time are reported as a Markdown table
and JSON. ``--profile`` adds onnxruntime's per-operator breakdown of a 4 s clip;
``--compressions`` also measures fp16 and static-int8 graphs (speed, and UA against fp32 when
``--eval-manifest`` is given). ``--domain-profile P`` times every backend with a domain profile
(``emovox profile``) set, the path ``--profile`` takes (a model's profile heads, if it has them).

Usage:
    python benchmarks/bench_runtime.py --model src/emovox/models/default --out bench.json
    python benchmarks/bench_runtime.py --model M --exported X --threads 2 --profile
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BACKENDS = ("torch-fp32", "onnx-fp32", "onnx-int8")
CLIP_RATE = 48000


def _speech(seconds: float, corpus: Path | None) -> np.ndarray:
    """``seconds`` of speech at 48 kHz: real RAVDESS clips end to end if present, else synthetic."""
    import soundfile as sf
    import soxr

    if corpus and corpus.is_dir():
        parts, total = [], 0
        for path in sorted(corpus.glob("*.flac")):
            audio, rate = sf.read(path, dtype="float32")
            parts.append(soxr.resample(audio, rate, CLIP_RATE))
            total += len(parts[-1])
            if total >= seconds * CLIP_RATE:
                break
        signal = np.concatenate(parts)
        if len(signal) >= seconds * CLIP_RATE:
            return signal[: int(seconds * CLIP_RATE)]
    from emovox.testing import speechlike

    return speechlike(duration=seconds, sampling_rate=CLIP_RATE, seed=int(seconds))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _stages_onnx(model, audio16: np.ndarray) -> dict:
    from emovox.encoder.mel import mel_windows

    t0 = time.perf_counter()
    windows = mel_windows(audio16, n_mels=model.n_mels, window=model.window)
    t1 = time.perf_counter()
    for mel, valid in windows:
        _, features, _ = model.run(mel[None], np.array([valid]))
    t2 = time.perf_counter()
    model.head_probabilities(features)
    t3 = time.perf_counter()
    return {"features": t1 - t0, "encoder": t2 - t1, "head": t3 - t2}


def _stages_torch(model, audio16: np.ndarray) -> dict:
    import torch

    from emovox.encoder.mel import mel_windows

    extractor = model.extractor
    t0 = time.perf_counter()
    windows = mel_windows(audio16, n_mels=extractor.n_mels, window=extractor.settings.window)
    t1 = time.perf_counter()
    with torch.inference_mode():
        features = extractor([audio16])  # log-mel again inside: subtracted below
    t2 = time.perf_counter()
    model.probabilities(features)
    t3 = time.perf_counter()
    assert windows
    return {"features": t1 - t0, "encoder": (t2 - t1) - (t1 - t0), "head": t3 - t2}


def worker(args) -> dict:
    """Runs in a child process: one backend, every clip length."""
    import soundfile as sf

    start = time.perf_counter()
    import emovox
    from emovox.audio.load import decode, resample, to_mono

    if args.backend == "torch-fp32":
        import torch

        torch.set_num_threads(args.threads)
        model = emovox.load(args.model)
        stages = _stages_torch
    else:
        from emovox.runtime import OnnxEmotionModel

        model = OnnxEmotionModel(args.exported, variant=args.backend.split("-")[1], threads=args.threads, device="cpu")
        stages = _stages_onnx
    if args.domain_profile:
        model.use_profile(args.domain_profile)
    load_s = time.perf_counter() - start
    folder = Path(tempfile.mkdtemp(prefix="emovox-bench-"))
    corpus = Path(args.corpus) if args.corpus else None
    rows = []
    for seconds in args.durations:
        path = folder / f"{seconds}s.wav"
        sf.write(path, _speech(seconds, corpus), CLIP_RATE, subtype="PCM_16")
        model.predict_file(path)  # warm-up
        timing = {"decode": [], "resample": [], "features": [], "encoder": [], "head": [], "total": []}
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            audio, rate = decode(path)
            t1 = time.perf_counter()
            audio16 = resample(to_mono(audio), rate, 16000)
            t2 = time.perf_counter()
            timing["decode"].append(t1 - t0)
            timing["resample"].append(t2 - t1)
            for k, v in stages(model, audio16).items():
                timing[k].append(v)
            t3 = time.perf_counter()
            model.predict_file(path)
            timing["total"].append(time.perf_counter() - t3)
        batch_paths = [path] * 8
        t0 = time.perf_counter()
        n = 0
        for _ in range(max(1, args.repeats // 2)):
            n += sum(1 for _ in model.predict_files(batch_paths, batch_size=8))
        batch8 = (time.perf_counter() - t0) / n
        med = {k: float(np.median(v)) for k, v in timing.items()}
        rows.append({"seconds": seconds, **{f"{k}_ms": round(1000 * v, 2) for k, v in med.items()},
                     "rtf": round(med["total"] / seconds, 5), "clips_per_s_b1": round(1 / med["total"], 2),
                     "clips_per_s_b8": round(1 / batch8, 2), "rtf_b8": round(batch8 / seconds, 5)})
    return {"backend": args.backend, "load_s": round(load_s, 2), "peak_rss_mb": round(_rss_mb(), 1), "rows": rows}


def model_size_mb(backend: str, model_dir: Path, exported: Path) -> float:
    if backend == "torch-fp32":
        from emovox.encoder.weights import locate_encoder
        from emovox.features.extractor import FeatureSettings

        settings = FeatureSettings.from_dict(json.loads((model_dir / "config.json").read_text())["features"])
        fmt, path = locate_encoder(settings.encoder)
        weights = path / "model.bin" if path.is_dir() else path
        return round((weights.stat().st_size + (model_dir / "heads.safetensors").stat().st_size) / 1e6, 1)
    config = json.loads((exported / "config.json").read_text())
    name = config["graphs"][backend.split("-")[1]]
    return round(((exported / name).stat().st_size + (exported / config["graphs"]["head"]).stat().st_size) / 1e6, 1)


def profile_ops(exported: Path, variant: str, threads: int, seconds: float = 4.0) -> list[dict]:
    """onnxruntime's per-operator-type time for one clip (mean of 5 runs)."""
    import collections

    import onnxruntime as ort

    from emovox.encoder.mel import log_mel
    from emovox.testing import speechlike

    config = json.loads((exported / "config.json").read_text())
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(tempfile.mkdtemp(), "ort")
    options.log_severity_level = 3
    session = ort.InferenceSession(str(exported / config["graphs"][variant]), options, providers=["CPUExecutionProvider"])
    mel = log_mel(speechlike(duration=seconds), n_mels=config["n_mels"])[None]
    feed = {"mel": mel, "mel_lengths": np.array([mel.shape[2]])}
    runs = 5
    session.run(None, feed)
    for _ in range(runs):
        session.run(None, feed)
    events = json.loads(Path(session.end_profiling()).read_text())
    total = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            total[e["args"]["op_name"]] += e["dur"]
    # the warm-up run is in the profile too: divide by runs + 1
    all_us = sum(total.values())
    return [{"op": op, "ms": round(us / (runs + 1) / 1000, 2), "share": round(us / all_us, 3)}
            for op, us in total.most_common(12)]


def compressions(exported: Path, threads: int, manifest: str | None, seconds: float = 4.0) -> list[dict]:
    """fp16 and static int8 beside fp32 and dynamic int8: ms per 4 s clip, size, UA."""
    from emovox.export.quantize import calibration_windows, convert_fp16, evaluate, quantize_static_int8
    from emovox.runtime import OnnxEmotionModel
    from emovox.runtime.session import make_session
    from emovox.testing import speechlike

    config = json.loads((exported / "config.json").read_text())
    utterances = []
    if manifest:
        from emovox.corpora.manifest import read_jsonl

        utterances = read_jsonl(manifest)
    files = {"fp32": exported / "model.onnx", "int8-dynamic": exported / "model.int8.onnx"}
    files["fp16"] = convert_fp16(files["fp32"], exported / "model.fp16.onnx")
    calib_paths = [u.path for u in utterances[::7]] or []
    if calib_paths:
        windows = calibration_windows(calib_paths, n_mels=config["n_mels"], window=config["features"]["window"])
        files["int8-static"] = quantize_static_int8(files["fp32"], exported / "model.qdq.onnx", windows)
    signal = speechlike(duration=seconds)
    out = []
    for name, path in files.items():
        if not path.is_file():
            continue
        model = OnnxEmotionModel(exported, variant="fp32", threads=threads, device="cpu")
        model.session = make_session(path, threads=threads, device="cpu")
        model.predict_signals([signal])
        t0 = time.perf_counter()
        for _ in range(5):
            model.predict_signals([signal])
        row = {"graph": name, "size_mb": round(path.stat().st_size / 1e6, 1),
               "ms_per_4s_clip": round((time.perf_counter() - t0) / 5 * 1000, 1)}
        if utterances:
            row["ua"] = evaluate(model, utterances)["ua"]
        out.append(row)
    return out


def table(results: list[dict], sizes: dict) -> str:
    lines = ["| backend | clip s | decode ms | resample ms | features ms | encoder+pool ms | head ms | total ms | RTF "
             "| clips/s b1 | clips/s b8 | peak RSS MB | size MB | load s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        for row in r["rows"]:
            lines.append(f"| {r['backend']} | {row['seconds']} | {row['decode_ms']} | {row['resample_ms']} "
                         f"| {row['features_ms']} | {row['encoder_ms']} | {row['head_ms']} | {row['total_ms']} "
                         f"| {row['rtf']:.4f} | {row['clips_per_s_b1']} | "
                         f"{row['clips_per_s_b8']} | {r['peak_rss_mb']} | {sizes[r['backend']]} | {r['load_s']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model directory (default: the shipped model)")
    parser.add_argument("--exported", help="exported folder (default: export --model with int8 into a temp folder)")
    parser.add_argument("--durations", type=float, nargs="+", default=[1, 3, 10, 30])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--corpus", default=str(Path(__file__).resolve().parents[2] / "shared/corpora/ravdess/Actor_01"),
                        help="folder of FLAC speech to build the clips from (synthetic voices if absent)")
    parser.add_argument("--profile", action="store_true", help="per-operator time of the int8 graph")
    parser.add_argument("--domain-profile", help="a domain profile (emovox profile) set on every backend: times the "
                        "path of --profile (its totals; the stage columns stay those of a single clip)")
    parser.add_argument("--compressions", action="store_true", help="also time fp16 and static int8 graphs")
    parser.add_argument("--eval-manifest", help="JSONL manifest: UA of every compression (with --compressions)")
    parser.add_argument("--out", help="write the JSON here")
    parser.add_argument("--backend", help=argparse.SUPPRESS)  # worker mode
    args = parser.parse_args()
    if args.backend:
        print(json.dumps(worker(args)))
        return
    from emovox.prediction.loading import default_model_dir

    model_dir = Path(args.model) if args.model else default_model_dir()
    exported = Path(args.exported) if args.exported else None
    if exported is None:
        from emovox.export.onnx import export_model

        exported = Path(tempfile.mkdtemp(prefix="emovox-exported-"))
        export_model(model_dir, exported, int8=True)
    results = []
    for backend in args.backends:
        command = [sys.executable, __file__, "--backend", backend, "--model", str(model_dir), "--exported", str(exported),
                   "--threads", str(args.threads), "--repeats", str(args.repeats), "--corpus", args.corpus,
                   "--durations", *map(str, args.durations),
                   *(["--domain-profile", args.domain_profile] if args.domain_profile else [])]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode:
            sys.exit(f"{backend} failed:\n{done.stderr}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"{backend}: done", file=sys.stderr)
    sizes = {b: model_size_mb(b, model_dir, exported) for b in args.backends}
    report = {"model": str(model_dir), "exported": str(exported), "domain_profile": args.domain_profile,
              "threads": args.threads, "cpu_count": os.cpu_count(),
              "load_average": os.getloadavg(), "results": results, "size_mb": sizes}
    if args.profile:
        report["int8_profile"] = profile_ops(exported, "int8", args.threads)
    if args.compressions:
        report["compressions"] = compressions(exported, args.threads, args.eval_manifest)
    print(table(results, sizes))
    if args.profile:
        print("\nint8 graph, 4 s clip, time per operator type:")
        print("\n".join(f"  {p['op']:28s} {p['ms']:7.2f} ms  {100 * p['share']:4.1f} %" for p in report["int8_profile"]))
    if args.compressions:
        print("\n| graph | size MB | ms per 4 s clip | UA |\n|---|---|---|---|")
        print("\n".join(f"| {c['graph']} | {c['size_mb']} | {c['ms_per_4s_clip']} | {c.get('ua', '')} |"
                        for c in report["compressions"]))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
