"""Load benchmark of ``emovox serve``: 3 s clips posted by 1, 4 and 16 concurrent clients.

The server runs in its own process (started here on a free loopback port, or ``--url`` for
one already running); this process is the client: one thread and one keep-alive connection
per simulated client, each posting a 3 s WAV to ``/v1/predict`` as soon as its previous answer
arrived. Every phase is bounded in time (``--duration`` seconds after a warm-up) and in
count (``--max-requests``). Reported per phase: requests/s, latency p50/p95/p99, errors, and the
server's resident memory (RSS, from /proc) sampled every second, the server's CPU time per
request (what the throughput would be on idle cores: cores x 1000 / ms per request) and the
machine's load average (other work on a shared machine slows every number down). ``--soak 300``
adds a 5-minute run at the highest concurrency with RSS over time and its slope.

Usage:
    PYTHONPATH=src python benchmarks/bench_server.py --model runs/my-model
    PYTHONPATH=src python benchmarks/bench_server.py --model runs/my-model --as-shipped   # its int8 export

A model directory given to ``--model`` is served on PyTorch, as ``emovox serve --model DIR`` does;
``--as-shipped`` first exports it the way the shipped model is exported on first use (int8 when its
``config.json`` records passing gate results) and serves that export, so that two models can be
compared on the path that ships without swapping files into the package.
    PYTHONPATH=src python benchmarks/bench_server.py --soak 300 --json bench.json
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

TARGET = {"concurrency": 16, "rps": 40.0, "p99_ms": 300.0}


def make_clips(n: int = 8, seconds: float = 3.0) -> list[bytes]:
    """Distinct 3 s voices (varied pitch and loudness) as 16 kHz 16-bit WAV bytes."""
    import io

    import soundfile as sf

    from emovox.testing import voice

    clips = []
    for i in range(n):
        signal = voice(seconds, f0=110.0 + 25.0 * i, seed=i, amplitude=0.1 + 0.07 * i)
        buffer = io.BytesIO()
        sf.write(buffer, signal, 16000, subtype="PCM_16", format="WAV")
        clips.append(buffer.getvalue())
    return clips


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-c", "from emovox.cli import app; app()", "serve", "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(args.workers), "--log-level", "warning"]
    if args.model:
        command += ["--model", args.model]
    if args.threads:
        command += ["--threads", str(args.threads)]
    if args.max_batch:
        command += ["--max-batch", str(args.max_batch)]
    if getattr(args, "inference_threads", None):
        command += ["--inference-threads", str(args.inference_threads)]
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in [src, os.environ.get("PYTHONPATH")] if p)}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=open(args.server_log, "wb"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the server exited; see {args.server_log}")
        try:
            status, _ = request(url, "GET", "/health")
            if status == 200:
                return process, url
        except OSError:
            pass
        time.sleep(0.3)
    process.kill()
    sys.exit("the server did not start in 180 s")


def request(url: str, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    u = urlparse(url)
    connection = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": "audio/wav"} if body else {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its children (uvicorn workers), from /proc."""
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of ``pid`` and its children (uvicorn workers), from /proc."""
    if not pid:
        return 0.0
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(x) for x in f.read().split()]
    except OSError:
        return []
    return kids + [g for k in kids for g in _children(k)]


class Sampler(threading.Thread):
    """RSS of the server every ``period`` seconds, with the time since start."""

    def __init__(self, pid: int | None, period: float = 1.0):
        super().__init__(daemon=True)
        self.pid, self.period, self.samples, self.stop = pid, period, [], threading.Event()

    def run(self):
        start = time.monotonic()
        while self.pid and not self.stop.is_set():
            self.samples.append((round(time.monotonic() - start, 1), rss_bytes(self.pid)))
            self.stop.wait(self.period)


def run_phase(url: str, clips: list[bytes], concurrency: int, duration: float, warmup: float, max_requests: int,
              pid: int | None) -> dict:
    """``concurrency`` clients post clips back to back for ``warmup + duration`` seconds."""
    u = urlparse(url)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()
    begin = time.monotonic()
    measure_from, stop_at = begin + warmup, begin + warmup + duration
    count = [0]

    def client(k: int):
        connection = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        i = k
        while time.monotonic() < stop_at:
            with lock:
                if count[0] >= max_requests:
                    break
                count[0] += 1
            body = clips[i % len(clips)]
            i += 1
            start = time.monotonic()
            try:
                connection.request("POST", "/v1/predict", body=body, headers={"Content-Type": "audio/wav"})
                response = connection.getresponse()
                response.read()
                failure = None if response.status == 200 else f"HTTP {response.status}"
            except (OSError, http.client.HTTPException) as exc:
                failure = type(exc).__name__
                connection.close()
                connection = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
            end = time.monotonic()
            if start >= measure_from and end <= stop_at:
                with lock:
                    if failure:
                        errors[failure] = errors.get(failure, 0) + 1
                    else:
                        latencies.append(end - start)
        connection.close()

    sampler = Sampler(pid)
    sampler.start()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(concurrency)]
    for t in threads:
        t.start()
    time.sleep(max(0.0, measure_from - time.monotonic()))
    cpu_start, load_start = cpu_seconds(pid), os.getloadavg()[0]
    time.sleep(max(0.0, stop_at - time.monotonic()))
    cpu_used, load = cpu_seconds(pid) - cpu_start, max(load_start, os.getloadavg()[0])
    for t in threads:
        t.join(60)
    sampler.stop.set()
    sampler.join()
    ms = np.array(latencies) * 1000
    rss = [r for _, r in sampler.samples]
    return {
        "concurrency": concurrency, "seconds": duration, "requests": len(latencies),
        "rps": round(len(latencies) / duration, 2),
        "p50_ms": round(float(np.percentile(ms, 50)), 1) if len(ms) else None,
        "p95_ms": round(float(np.percentile(ms, 95)), 1) if len(ms) else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 1) if len(ms) else None,
        "errors": sum(errors.values()), "error_kinds": errors,
        "server_cpu_ms_per_request": round(1000 * cpu_used / len(latencies), 1) if latencies and pid else None,
        "load_average": round(load, 1),
        "rss_mb": {"start": _mb(rss[0]), "end": _mb(rss[-1]), "max": _mb(max(rss))} if rss else None,
        "rss_timeline": [(t, _mb(r)) for t, r in sampler.samples],
    }


def _mb(value: int) -> float:
    return round(value / 2**20, 1)


def slope_mb_per_min(timeline: list[tuple[float, float]]) -> float | None:
    """RSS growth over the second half of a run (the first half includes warm-up allocations)."""
    half = timeline[len(timeline) // 2 :]
    if len(half) < 3:
        return None
    t, r = np.array(half).T
    return round(float(np.polyfit(t / 60, r, 1)[0]), 2)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model directory (default: the shipped model)")
    parser.add_argument("--as-shipped", action="store_true",
                        help="export --model's directory as the shipped model is exported on first use (onnxruntime, "
                        "int8 when its config records gate results) and serve the export instead of PyTorch")
    parser.add_argument("--url", help="benchmark a server that is already running (loopback only)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, help="passed to emovox serve --threads")
    parser.add_argument("--max-batch", type=int, help="passed to emovox serve --max-batch")
    parser.add_argument("--inference-threads", type=int, help="passed to emovox serve --inference-threads")
    parser.add_argument("--concurrency", default="1,4,16", help="comma-separated client counts")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before each phase")
    parser.add_argument("--soak", type=float, default=0.0, help="seconds of a final run at the top concurrency, "
                        "RSS sampled every 10 s (300 for the 5-minute check)")
    parser.add_argument("--max-requests", type=int, default=200_000, help="cap on requests per phase")
    parser.add_argument("--json", help="write all results here")
    parser.add_argument("--server-log", default="/tmp/emovox-bench-server.log")
    args = parser.parse_args(argv)

    clips = make_clips()
    process, url, pid, exported = None, args.url, None, None
    if url:
        host = urlparse(url).hostname
        if not (host == "localhost" or host.startswith("127.") or host == "::1"):
            sys.exit("--url must be a loopback address")
    else:
        if args.as_shipped:
            if not args.model:
                sys.exit("--as-shipped needs --model (the shipped model is served that way already)")
            from emovox.prediction.loading import run_export

            exported = Path(tempfile.mkdtemp(prefix="emovox-bench-export-"))
            print(f"exporting {args.model} into {exported} (as the shipped model is on first use)", flush=True)
            try:
                run_export(Path(args.model), exported)
            except BaseException:
                shutil.rmtree(exported, ignore_errors=True)
                raise
            args.model = str(exported)
        try:
            process, url = start_server(args)
        except BaseException:  # the server did not come up: nothing else will remove the export
            if exported is not None:
                shutil.rmtree(exported, ignore_errors=True)
            raise
        pid = process.pid
    try:
        status, body = request(url, "GET", "/v1/models")
        info = json.loads(body)["models"][0]
        print(f"model {info['id']} ({info['encoder']}, {info['backend']}), server {url}, workers {args.workers}, "
              f"threads {args.threads or 'default'}, max batch {args.max_batch or 'default'}, "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
        results = []
        for c in [int(x) for x in args.concurrency.split(",")]:
            results.append(run_phase(url, clips, c, args.duration, args.warmup, args.max_requests, pid))
            print(_row(results[-1]), flush=True)
        soak = None
        if args.soak:
            top = max(int(x) for x in args.concurrency.split(","))
            soak = run_phase(url, clips, top, args.soak, args.warmup, args.max_requests * 10, pid)
            soak["rss_timeline"] = soak["rss_timeline"][::10]
            soak["rss_slope_mb_per_min"] = slope_mb_per_min(soak["rss_timeline"])
        print()
        print(table(results, soak))
        top = next((r for r in results if r["concurrency"] == TARGET["concurrency"]), None)
        if top:
            ok = top["rps"] >= TARGET["rps"] and (top["p99_ms"] or 1e9) <= TARGET["p99_ms"] and top["errors"] == 0
            print(f"\ntarget at {TARGET['concurrency']} clients (>= {TARGET['rps']} req/s, p99 <= {TARGET['p99_ms']} ms, "
                  f"0 errors): {'met' if ok else 'NOT met'}")
        if args.json:
            Path(args.json).write_text(json.dumps({"model": info, "workers": args.workers, "phases": results,
                                                   "soak": soak, "load_average": os.getloadavg()}, indent=2))
    finally:
        if process:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        if exported is not None:
            shutil.rmtree(exported, ignore_errors=True)
    return 0


def _row(r: dict) -> str:
    rss = r["rss_mb"] or {}
    return (f"| {r['concurrency']} | {r['requests']} | {r['rps']} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | "
            f"{r['errors']} | {rss.get('start')} → {rss.get('end')} (max {rss.get('max')}) | "
            f"{r['server_cpu_ms_per_request']} | {r['load_average']} |")


def table(results: list[dict], soak: dict | None) -> str:
    lines = ["| clients | requests | req/s | p50 ms | p95 ms | p99 ms | errors | server RSS MB | server CPU ms/req "
             "| load avg |", "|---|---|---|---|---|---|---|---|---|---|", *[_row(r) for r in results]]
    if soak:
        lines += ["", f"soak: {soak['seconds']:.0f} s at {soak['concurrency']} clients", _row(soak),
                  "RSS over time (s, MB): " + ", ".join(f"{t:.0f}:{m}" for t, m in soak["rss_timeline"]),
                  f"RSS slope over the second half: {soak['rss_slope_mb_per_min']} MB/min"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
