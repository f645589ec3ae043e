"""Streaming lag of ``WS /v1/stream``: how soon the updates follow a change of emotion.

The input is a synthetic voice in a baseline style A, then an emotional stretch in style B,
then A again, then silence (A and B are picked among a few pitch/loudness styles so that the
served model gives them different labels). It is sent in real time as 100 ms chunks of 16-bit
PCM. Measured, from the wall-clock time at which the relevant sample was sent to the time the
message arrived:

* onset lag: start of the emotional stretch → first update labelled B;
* offset lag: end of the emotional stretch → first update labelled A again (the update that
  reflects its end);
* update latency: the last sample of an update's window → that update (pure processing);
* segment latency: the end of speech → its ``segment`` message (includes the VAD's 0.3 s of
  silence needed to call the end).

A window of W seconds must be about half filled by the new emotion before its label flips, so
the bar for the onset and offset lags is ``W + 0.25 s``; the update latency bar is 0.25 s.
Bounded: ``--trials`` x 19.5 s of audio per stream.

Usage:
    PYTHONPATH=src python benchmarks/bench_stream.py --model runs/my-model [--streams 4]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_server import request, start_server  # noqa: E402

from emovox.testing import voice  # noqa: E402

SR = 16000
CHUNK = 0.1
STYLES = [(90.0, 0.3), (110.0, 0.1), (260.0, 0.6), (300.0, 0.7), (240.0, 0.15), (150.0, 0.25), (200.0, 0.45), (125.0, 0.5)]
PLAN = [("A", 6.0), ("B", 6.0), ("A", 6.0), (None, 1.5)]


def wav(signal: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, signal, SR, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def pick_styles(url: str, window: float = 3.0) -> tuple[tuple, str, tuple, str]:
    """Two styles the model labels differently, judged on clips of one update window each (3
    seeds; a style whose label changes with the seed is not used), most confident pair first."""
    labelled = []
    for f0, amplitude in STYLES:
        results = []
        for seed in (7, 8, 9):
            _, body = request(url, "POST", "/v1/predict", wav(voice(window, f0=f0, seed=seed, amplitude=amplitude)))
            results.append(json.loads(body))
        if len({r["label"] for r in results}) == 1:
            labelled.append(((f0, amplitude), results[0]["label"], min(max(r["scores"].values()) for r in results)))
    pairs = [(a, b) for a in labelled for b in labelled if a[1] != b[1]]
    if not pairs:
        sys.exit("the model gives every synthetic style the same label: no change of emotion to measure")
    a, b = max(pairs, key=lambda p: min(p[0][2], p[1][2]))
    return a[0], a[1], b[0], b[1]


def build_input(style_a, style_b, seed: int) -> tuple[np.ndarray, dict]:
    parts, marks, t = [], {}, 0.0
    for k, (name, seconds) in enumerate(PLAN):
        if name is None:
            parts.append(np.zeros(int(seconds * SR), np.float32))
        else:
            f0, amplitude = style_a if name == "A" else style_b
            parts.append(voice(seconds, f0=f0, seed=seed + k, amplitude=amplitude))
        marks.setdefault(f"{name}_start", []).append(t)
        t += seconds
        marks.setdefault(f"{name}_end", []).append(t)
    return np.concatenate(parts), {"B_start": marks["B_start"][0], "B_end": marks["B_end"][0],
                                   "speech_end": marks["A_end"][-1]}


async def stream_once(url: str, signal: np.ndarray) -> tuple[list, list]:
    """Send ``signal`` in real time; return (send log [(audio time, wall)], received [(wall, msg)])."""
    from websockets.asyncio.client import connect

    ws_url = url.replace("http://", "ws://") + "/v1/stream"
    pcm = (np.clip(signal, -1, 1) * 32767).astype("<i2")
    sent, received = [], []
    async with connect(ws_url, max_size=2**22) as ws:
        await ws.send(json.dumps({"type": "start", "sample_rate": SR}))
        ready = json.loads(await ws.recv())
        assert ready["type"] == "ready", ready

        async def reader():
            async for message in ws:
                received.append((time.perf_counter(), json.loads(message)))
                if received[-1][1]["type"] in ("end", "error"):
                    return

        task = asyncio.create_task(reader())
        step = int(CHUNK * SR)
        start = time.perf_counter()
        for i in range(0, len(pcm), step):
            await ws.send(pcm[i : i + step].tobytes())
            sent.append(((i + len(pcm[i : i + step])) / SR, time.perf_counter()))
            await asyncio.sleep(max(0.0, start + (i + step) / SR - time.perf_counter()))
        await ws.send(json.dumps({"type": "stop"}))
        await asyncio.wait_for(task, 30)
    return sent, received, ready


def wall_of(sent: list, audio_time: float) -> float:
    """Wall-clock time at which the sample at ``audio_time`` had been sent."""
    for t, wall in sent:
        if t >= audio_time - 1e-6:
            return wall
    return sent[-1][1]


def measure(sent, received, marks, label_a, label_b) -> dict:
    updates = [(w, m) for w, m in received if m["type"] == "update"]
    segments = [(w, m) for w, m in received if m["type"] == "segment"]
    onset = next((w for w, m in updates if m["time"] > marks["B_start"] and m["label"] == label_b), None)
    offset = next((w for w, m in updates if m["time"] > marks["B_end"] and m["label"] == label_a), None)
    latency = [w - wall_of(sent, m["end"]) for w, m in updates]
    last_segment = segments[-1] if segments else None
    return {
        "onset_lag": onset - wall_of(sent, marks["B_start"]) if onset else None,
        "offset_lag": offset - wall_of(sent, marks["B_end"]) if offset else None,
        "update_latency_p50": float(np.percentile(latency, 50)) if latency else None,
        "update_latency_max": float(np.max(latency)) if latency else None,
        "segment_latency": (last_segment[0] - wall_of(sent, marks["speech_end"])) if last_segment else None,
        "updates": len(updates),
        "labels": [m["label"] for _, m in updates],
    }


async def run(url: str, trials: int, streams: int, style_a, style_b, label_a, label_b) -> list[dict]:
    results = []
    for trial in range(trials):
        inputs = [build_input(style_a, style_b, seed=1000 * trial + 10 * s) for s in range(streams)]
        outcomes = await asyncio.gather(*(stream_once(url, signal) for signal, _ in inputs))
        for (_signal, marks), (sent, received, ready) in zip(inputs, outcomes, strict=True):
            results.append({**measure(sent, received, marks, label_a, label_b), "window": ready["window"],
                            "interval": ready["interval"]})
    return results


def _fmt(values: list, unit: float = 1000.0) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    return f"{np.median(values) * unit:.0f} (max {np.max(values) * unit:.0f})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model directory (default: the shipped model)")
    parser.add_argument("--url", help="a server already running on loopback")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--streams", type=int, default=1, help="concurrent streams per trial")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--max-batch", type=int)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--server-log", default="/tmp/emovox-bench-stream-server.log")
    args = parser.parse_args(argv)

    process, url = (None, args.url) if args.url else start_server(args)
    if args.url and not any(h in args.url for h in ("//127.", "//localhost", "//[::1]")):
        sys.exit("--url must be a loopback address")
    try:
        info = json.loads(request(url, "GET", "/v1/models")[1])["models"][0]
        style_a, label_a, style_b, label_b = pick_styles(url)
        print(f"model {info['id']} ({info['encoder']}, {info['backend']}); baseline A = f0 {style_a[0]:.0f} Hz "
              f"amplitude {style_a[1]} → {label_a!r}; emotional stretch B = f0 {style_b[0]:.0f} Hz amplitude "
              f"{style_b[1]} → {label_b!r}; {args.streams} stream(s), {args.trials} trial(s); "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
        results = asyncio.run(run(url, args.trials, args.streams, style_a, style_b, label_a, label_b))
    finally:
        if process:
            process.terminate()
            process.wait(15)
    window, interval = results[0]["window"], results[0]["interval"]
    bar = window + 0.25
    rows = [
        ("onset lag: stretch starts → update shows it", _fmt([r["onset_lag"] for r in results]), f"≤ {bar * 1000:.0f}"),
        ("offset lag: stretch ends → update reflects it", _fmt([r["offset_lag"] for r in results]), f"≤ {bar * 1000:.0f}"),
        ("update latency: window's last sample → update", _fmt([r["update_latency_p50"] for r in results]), "≤ 250"),
        ("update latency, worst update", _fmt([r["update_latency_max"] for r in results]), "≤ 250"),
        ("segment latency: end of speech → segment", _fmt([r["segment_latency"] for r in results]),
         "(0.3 s of silence + classification)"),
    ]
    print(f"\nwindow {window} s, an update every {interval} s; ms, median over {len(results)} stream(s) (max)\n")
    print("| measure | ms | bar |\n|---|---|---|")
    for name, value, target in rows:
        print(f"| {name} | {value} | {target} |")
    lags = [r[k] for r in results for k in ("onset_lag", "offset_lag")]
    ok = all(v is not None and v <= bar for v in lags)
    print(f"\nbar (lags ≤ window + 250 ms = {bar * 1000:.0f} ms in every stream): {'met' if ok else 'NOT met'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": info, "label_a": label_a, "label_b": label_b,
                                               "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
