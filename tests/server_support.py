"""Shared by the server, timeline and web tests: a tiny model trained on synthetic voices that a
VAD takes for speech, recordings made of them, and a real ``emovox serve`` on loopback.

Not a conftest: imported by name (pytest puts tests/ on sys.path) so that each module asks
for what it needs. The model is trained once per test session (cached under pytest's base
temp folder) with the fast tiny.en encoder.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

import emovox
from emovox.testing import voice, write_wav

# Two "emotions" a tiny model can tell apart: low and quiet vs high and loud.
STYLES = {"sad": dict(f0=110.0, amplitude=0.1), "angry": dict(f0=260.0, amplitude=0.6)}
SR = 16000
REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"


def styled(label: str, duration: float, seed: int, *, sampling_rate: int = SR) -> np.ndarray:
    style = STYLES[label]
    return voice(duration, sampling_rate, f0=style["f0"] * 1.02, seed=seed, amplitude=style["amplitude"])


def silence(duration: float, sampling_rate: int = SR) -> np.ndarray:
    return np.zeros(int(round(duration * sampling_rate)), np.float32)


# (label or None for silence, seconds): a recording with three stretches of speech.
SCRIPT = [(None, 1.0), ("sad", 3.0), (None, 1.5), ("angry", 4.0), (None, 1.0), ("sad", 13.0), (None, 1.5)]


def scripted_recording(script=SCRIPT, seed: int = 50) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """The signal of ``script`` and its speech stretches ``(start, end, label)``."""
    parts, truth, t = [], [], 0.0
    for k, (label, seconds) in enumerate(script):
        parts.append(silence(seconds) if label is None else styled(label, seconds, seed + k))
        if label is not None:
            truth.append((t, t + seconds, label))
        t += seconds
    return np.concatenate(parts), truth


def train_tiny_model(base: Path, *, dimensions: bool = False) -> Path:
    """Train (once per session) a tiny.en model on 2 styles x 3 speakers x 4 takes of ``voice``;
    ``dimensions``: with the arousal/valence output too (``emovox train --dimensions``)."""
    out = base / ("tiny-voice-model-dims" if dimensions else "tiny-voice-model")
    if (out / "config.json").exists():
        return out
    corpus = base / "tiny-voice-corpus"
    for label in STYLES:
        (corpus / label).mkdir(parents=True, exist_ok=True)
        for speaker in range(3):
            for take in range(4):
                style = STYLES[label]
                signal = voice(1.0 + 0.25 * take, f0=style["f0"] * (1 + 0.05 * speaker), seed=100 * speaker + take,
                               amplitude=style["amplitude"])
                write_wav(corpus / label / f"spk{speaker}_{take}.wav", signal, SR)
    from emovox.cli import app

    result = CliRunner().invoke(app, ["train", f"folder:{corpus}", "--out", str(out), "--encoder", "whisper-tiny.en",
                                      "--ensemble", "1", "--epochs", "30", "--hidden", "16",
                                      *(["--dimensions"] if dimensions else [])])
    assert result.exit_code == 0, result.output
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running ``emovox serve`` subprocess on 127.0.0.1."""

    def __init__(self, port: int, process: subprocess.Popen, log: Path):
        self.host, self.port, self.process, self.log = "127.0.0.1", port, process, log

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                timeout: float = 60.0, source: str | None = None) -> tuple[int, dict | None, dict]:
        """One request on a fresh connection (from the loopback address ``source`` if given):
        (status, JSON body or None, headers)."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout,
                                                source_address=(source, 0) if source else None)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            raw = response.read()
            try:
                data = json.loads(raw)
            except ValueError:
                data = None
            return response.status, data, {k.lower(): v for k, v in response.getheaders()}
        finally:
            connection.close()

    def post_file(self, path: str, data: bytes, *, filename: str = "clip.wav", fields: dict | None = None,
                  field: str = "file", **kw) -> tuple[int, dict | None, dict]:
        body, content_type = multipart({field: (filename, data)}, fields or {})
        return self.request("POST", path, body, {"Content-Type": content_type}, **kw)

    def healthy(self) -> bool:
        try:
            status, body, _ = self.request("GET", "/health", timeout=5)
        except OSError:
            return False
        return status == 200 and body["status"] == "ok"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def multipart(files: dict[str, tuple[str, bytes]], fields: dict[str, str], boundary: str | None = None) -> tuple[bytes, str]:
    """A multipart/form-data body and its content type."""
    boundary = boundary or uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, data) in files.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                     f"Content-Type: audio/wav\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@contextlib.contextmanager
def running_server(model_dir: Path, log: Path, *args: str, startup: float = 120.0, cwd: Path | None = None):
    """Start ``emovox serve`` on a free loopback port (from ``cwd`` if given); yield a
    :class:`Server`; stop it after."""
    port = free_port()
    src = str(Path(emovox.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", "from emovox.cli import app; app()", "serve", "--model", str(model_dir),
             "--host", "127.0.0.1", "--port", str(port), *args],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    server = Server(port, process, log)
    try:
        deadline = time.monotonic() + startup
        while not server.healthy():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{server.log_text()[-3000:]}")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def wav_bytes(signal: np.ndarray, sampling_rate: int = SR, subtype: str = "PCM_16", fmt: str = "WAV") -> bytes:
    import io

    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, signal, sampling_rate, subtype=subtype, format=fmt)
    return buffer.getvalue()


@contextlib.contextmanager
def in_process_server(model_dir: Path, settings):
    """Uvicorn in a thread of this process, serving ``model_dir`` with the ``ServerSettings``
    given (limits too small for the CLI); yield a :class:`Server`; stop it after."""
    import threading

    import uvicorn

    from emovox.serving import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, model=emovox.load(model_dir)), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield Server(port, None, None)
    finally:
        server.should_exit = True
        thread.join(10)
