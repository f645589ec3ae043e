"""Issue 15 against a real ``emovox serve`` on loopback: slow or stalled clients are timed out,
uploads are bounded in number and bytes, abandoned timelines stop, websocket streams count
from their start and time out, logs cannot be forged, the working directory cannot change
decoding, odd codecs and extreme samples are 4xx (never 5xx), and transcription is an option."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from websockets.sync.client import connect

from server_support import in_process_server, running_server, styled, train_tiny_model, wav_bytes

MiB = 2**20
GOOD = wav_bytes(styled("angry", 1.0, seed=1))
START = json.dumps({"type": "start", "sample_rate": 16000})


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return train_tiny_model(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    """Short timeouts, two uploads at once, 40 MiB buffered, two engine threads taking one clip
    each; started from a folder holding Mac resource-fork junk (issue 15 #12)."""
    junk = tmp_path_factory.mktemp("junk-cwd")
    (junk / "._").write_bytes(bytes(range(256)) * 4)
    (junk / "._upload.mp3").write_bytes(bytes(range(256)) * 4)
    (junk / ".AppleDouble").mkdir()
    (junk / ".AppleDouble" / "upload.mp3").write_bytes(bytes(512))
    log = tmp_path_factory.mktemp("hardening") / "server.log"
    with running_server(model_dir, log, "--header-timeout", "1", "--body-timeout", "3", "--max-uploads", "2",
                        "--max-upload-mb", "32", "--max-buffered-mb", "40", "--inference-threads", "2",
                        "--max-batch", "1", cwd=junk) as s:  # two engine threads, one clip each: the race of #1
        yield s
    text = log.read_text()
    assert "Traceback" not in text and " 500 " not in text, text[-3000:]


def _connect(server, source: str | None = None) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=10,
                                    source_address=(source, 0) if source else None)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    with contextlib.suppress(ConnectionResetError, socket.timeout):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def _post_head(length: int, path: str = "/v1/predict") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: audio/wav\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


# ---- 1: engine threads survive bursts ----------------------------------------------------------


def test_engine_threads_survive_bursts_of_timelines_and_clips(server):
    import concurrent.futures

    # a timeline submits up to 8 windows at once: with one clip per batch, both threads wake for them
    recording = wav_bytes(np.concatenate([styled("sad", 2.0, seed=k) for k in range(6)]))
    jobs = [("/v1/timeline?window=1", recording), ("/v1/predict", GOOD)]  # two at a time: --max-uploads 2
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for _ in range(4):
            answers = list(pool.map(lambda j: server.request("POST", j[0], j[1], {"Content-Type": "audio/wav"})[0], jobs))
            assert answers == [200, 200]
    status, body, _ = server.request("GET", "/health")
    assert status == 200 and body["workers_alive"] == body["workers"] == 2 and body["worker_restarts"] == 0


# ---- 5: timeouts and the upload budget -------------------------------------------------------


def test_stalled_headers_are_cut_off(server):
    start = time.monotonic()
    with _connect(server) as sock:
        sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and nothing more
        data = _read_all(sock)
    assert time.monotonic() - start < 5  # --header-timeout 1
    assert data == b"" or data.startswith(b"HTTP/1.1 408")


def test_silent_connection_is_cut_off(server):
    start = time.monotonic()
    with _connect(server) as sock:
        _read_all(sock)
    assert time.monotonic() - start < 5


def test_stalled_body_gets_408(server):
    start = time.monotonic()
    with _connect(server) as sock:
        sock.sendall(_post_head(100_000) + GOOD[:1000])  # promises 100 kB, sends 1 kB
        data = _read_all(sock)
    assert time.monotonic() - start < 8  # --body-timeout 3
    assert data.startswith(b"HTTP/1.1 408"), data[:200]
    assert json.loads(data.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "request_timeout"


def test_uploads_are_bounded_in_number_and_bytes(server):
    with _connect(server) as first, _connect(server) as second:
        first.sendall(_post_head(1000) + GOOD[:100])  # two stalled uploads: the most allowed at once
        second.sendall(_post_head(1000) + GOOD[:100])
        time.sleep(0.6)
        status, body, headers = server.request("POST", "/v1/predict", GOOD, {"Content-Type": "audio/wav"})
        assert status == 503 and body["error"]["code"] == "too_many_uploads" and headers["retry-after"]
    assert server.request("POST", "/v1/predict", GOOD, {"Content-Type": "audio/wav"})[0] == 200
    with _connect(server) as big:
        big.sendall(_post_head(30 * MiB) + GOOD[:100])  # declares 30 of the 40 MiB the server may hold
        time.sleep(0.6)
        status, body, _ = server.request("POST", "/v1/predict", b"\0" * 100, {"Content-Type": "audio/wav",
                                                                              "Content-Length": str(20 * MiB)})
        assert status == 503 and body["error"]["code"] == "too_many_uploads"
    time.sleep(0.3)
    assert server.request("POST", "/v1/predict", GOOD, {"Content-Type": "audio/wav"})[0] == 200


# ---- 6: abandoned timelines stop; transcription is an option -----------------------------------


def test_timeline_stops_when_its_client_leaves(server):
    signal = np.concatenate([styled("sad", 9.5, seed=s % 8) for s in range(32)])  # 5 min of speech
    data = wav_bytes(signal)
    start = time.monotonic()
    with _connect(server) as sock:
        sock.sendall(_post_head(len(data), "/v1/timeline?window=1") + data)
        time.sleep(1.0)  # decoding and classifying
    deadline = time.monotonic() + 30
    while "POST /v1/timeline 499" not in server.log_text():
        assert time.monotonic() < deadline, server.log_text()[-2000:]
        time.sleep(0.1)
    stopped = time.monotonic() - start
    # the whole timeline takes several times longer: the same upload answered in full
    full_start = time.monotonic()
    status, body, _ = server.request("POST", "/v1/timeline?window=1", data, {"Content-Type": "audio/wav"}, timeout=120)
    assert status == 200 and len(body["segments"]) > 200
    assert stopped < time.monotonic() - full_start + 1.0
    assert server.healthy()


def test_transcribe_without_the_option_is_a_400(server):
    for path in ("/v1/predict?transcribe=true", "/v1/timeline?transcribe=true"):
        status, body, _ = server.request("POST", path, GOOD, {"Content-Type": "audio/wav"})
        assert status == 400 and body["error"]["code"] == "asr_disabled" and "--transcribe" in body["error"]["message"]


def test_transcribe_option_without_faster_whisper_refuses_to_start(model_dir, tmp_path, monkeypatch):
    spec = importlib.util.find_spec("faster_whisper")
    if spec is None:
        pytest.skip("faster-whisper is not installed")
    blocked = tmp_path / "blocked"
    (blocked / "faster_whisper").mkdir(parents=True)
    (blocked / "faster_whisper" / "__init__.py").write_text("raise ImportError('faster_whisper is blocked here')\n")
    # emovox's log-mel front end reads this one file of the package without importing it
    shutil.copy(Path(spec.submodule_search_locations[0]) / "feature_extractor.py", blocked / "faster_whisper")
    monkeypatch.setenv("PYTHONPATH", str(blocked))
    with pytest.raises(RuntimeError, match="faster-whisper"):  # --transcribe loads Whisper at start, or exits 2
        with running_server(model_dir, tmp_path / "server.log", "--transcribe", "--asr-model", "whisper-tiny.en"):
            pass


# ---- 12 and the codecs: decoding does not depend on the working directory; never a 5xx ----------


def _encoded(fmt: str, subtype: str | None = None, rate: int = 16000) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, styled("angry", 1.5, seed=3, sampling_rate=rate), rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def test_mp3_upload_with_resource_fork_junk_in_the_server_cwd(server):
    status, body, _ = server.post_file("/v1/predict", _encoded("MP3"), filename="upload.mp3")
    assert status == 200, body
    assert body["duration"] == pytest.approx(1.5, abs=0.1)


@pytest.mark.parametrize("fmt,subtype", [("WAV", "GSM610"), ("WAV", "G721_32"), ("AU", "G723_24"),
                                         ("WAV", "IMA_ADPCM"), ("AIFF", "GSM610")])
def test_telephony_codecs_are_decoded_or_415(server, fmt, subtype):
    data = _encoded(fmt, subtype, rate=8000)
    status, body, _ = server.request("POST", "/v1/predict", data, {"Content-Type": "application/octet-stream"})
    assert status == 200 or (status == 415 and body["error"]["code"] in ("unsupported_audio", "not_audio")), body


def test_huge_float_samples_never_give_nan(server):
    x = (1e30 * np.sin(np.arange(16000) / 10)).astype(np.float32)
    for path in ("/v1/predict", "/v1/timeline"):
        status, body, _ = server.request("POST", path, wav_bytes(x, subtype="FLOAT"), {"Content-Type": "audio/wav"})
        assert status in (200, 422), body  # normalised, or refused; the body parsed as strict JSON
        if status == 200:
            text = json.dumps(body, allow_nan=False)  # raises on NaN
            assert "NaN" not in text


# ---- 11: log forging ---------------------------------------------------------------------------


def test_log_lines_cannot_be_forged(server):
    server.request("GET", "/v1/x%0a2030-01-01%2000:00:00,000%20INFO%20[forged]%20fake%20line%0d%0b")
    _, _, headers = server.request("GET", "/health", headers={"X-Request-ID": "a:b"})
    assert headers["x-request-id"] != "a:b"
    _, _, headers = server.request("GET", "/health", headers={"X-Request-ID": "x" * 65})
    assert headers["x-request-id"] != "x" * 65
    _, _, headers = server.request("GET", "/health", headers={"X-Request-ID": "ok-id_1.2"})
    assert headers["x-request-id"] == "ok-id_1.2"
    time.sleep(0.2)
    lines = server.log_text().splitlines()
    assert not any(line.startswith("2030-01-01") or "\x0b" in line for line in lines)
    assert any("/v1/x\\n2030-01-01" in line for line in lines)


# ---- 7 and 9: websocket streams ----------------------------------------------------------------


@pytest.fixture(scope="module")
def stream_server(model_dir):
    """Uvicorn in this process: start within 0.8 s, idle 0.8 s, 2 streams, 1 per client address."""
    from emovox.serving import ServerSettings

    settings = ServerSettings(stream_start_timeout=0.8, stream_idle_timeout=0.8, max_streams=2,
                              max_streams_per_client=1)
    with in_process_server(model_dir, settings) as server:
        yield server


def _ws(server, source: str = "127.0.0.1", **kw):
    sock = socket.create_connection((server.host, server.port), timeout=10, source_address=(source, 0))
    return connect(server.ws_url + "/v1/stream", sock=sock, open_timeout=10, close_timeout=5, **kw)


def _messages(ws, timeout: float = 10) -> list[dict]:
    out = []
    with contextlib.suppress(Exception):
        while True:
            out.append(json.loads(ws.recv(timeout=timeout)))
    return out


def test_stream_without_start_is_closed(stream_server):
    start = time.monotonic()
    with _ws(stream_server) as ws:
        messages = _messages(ws)
    assert messages[0]["code"] == "start_timeout" and ws.protocol.close_code == 1008
    assert time.monotonic() - start < 4


def test_streams_count_from_their_start_and_per_client(stream_server):
    with _ws(stream_server) as idle_a, _ws(stream_server, "127.0.0.2") as idle_b, _ws(stream_server, "127.0.0.3") as ws:
        # two connections without a start do not take the two slots
        ws.send(START)
        assert json.loads(ws.recv(timeout=5))["type"] == "ready"
        with _ws(stream_server, "127.0.0.3") as same_client:  # one stream per address
            same_client.send(START)
            messages = _messages(same_client)
            assert messages[0]["code"] == "too_many_streams" and same_client.protocol.close_code == 1013
        with _ws(stream_server, "127.0.0.4") as other:
            other.send(START)
            assert json.loads(other.recv(timeout=5))["type"] == "ready"
            other.send(json.dumps({"type": "stop"}))
            assert _messages(other)[-1]["type"] == "end"
        ws.send(json.dumps({"type": "stop"}))
        assert _messages(ws)[-1]["type"] == "end"
        del idle_a, idle_b


def test_empty_frames_do_not_keep_a_stream_alive(stream_server):
    with _ws(stream_server, "127.0.0.5") as ws:
        ws.send(START)
        assert json.loads(ws.recv(timeout=5))["type"] == "ready"
        start = time.monotonic()
        with contextlib.suppress(Exception):
            while time.monotonic() - start < 4:
                ws.send(b"")
                time.sleep(0.1)
        messages = _messages(ws)
    assert any(m.get("code") == "idle_timeout" for m in messages), messages
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("depth,code,close", [(100_000, "message_too_large", 1009), (60_000, "bad_message", 1008)])
def test_deeply_nested_json_is_bad_input(server, depth, code, close):
    for first in (True, False):  # as the start message, and after it
        with connect(server.ws_url + "/v1/stream", open_timeout=10, close_timeout=5) as ws:
            if not first:
                ws.send(START)
                assert json.loads(ws.recv(timeout=10))["type"] == "ready"
            ws.send("[" * depth)
            messages = _messages(ws)
        assert messages[-1]["code"] == code and ws.protocol.close_code == close, messages


# ---- security options ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def locked_server(model_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("locked") / "server.log"
    with running_server(model_dir, log, "--api-key", "s3cret-key", "--allowed-origins", "https://app.example",
                        "--rate-limit", "2", "--rate-burst", "3") as s:
        yield s


KEY = {"Authorization": "Bearer s3cret-key"}


def test_api_key(locked_server):
    assert locked_server.request("GET", "/health")[0] == 200  # open
    status, body, headers = locked_server.request("GET", "/v1/models")
    assert status == 401 and body["error"]["code"] == "unauthorized" and "bearer" in headers["www-authenticate"].lower()
    assert locked_server.request("GET", "/v1/models", headers={"Authorization": "Bearer wrong"})[0] == 401
    assert locked_server.request("GET", "/v1/models", headers=KEY)[0] == 200
    assert locked_server.request("GET", "/v1/models", headers={"X-API-Key": "s3cret-key"}, source="127.0.0.6")[0] == 200
    status, body, _ = locked_server.request("POST", "/v1/predict", GOOD, {"Content-Type": "audio/wav", **KEY},
                                            source="127.0.0.6")
    assert status == 200 and body["label"] == "angry"


def test_host_allow_list(locked_server):
    status, body, _ = locked_server.request("GET", "/health", headers={"Host": "rebound.attacker.example"})
    assert status == 400 and body["error"]["code"] == "bad_host"
    assert locked_server.request("GET", "/health", headers={"Host": f"localhost:{locked_server.port}"})[0] == 200


def test_browser_origins(locked_server):
    def post(origin, source):
        return locked_server.request("POST", "/v1/predict", GOOD, {"Content-Type": "audio/wav", "Origin": origin,
                                                                   **KEY}, source=source)[:2]

    status, body = post("https://evil.example", "127.0.0.7")
    assert status == 403 and body["error"]["code"] == "origin_not_allowed"
    assert post("https://app.example", "127.0.0.7")[0] == 200
    assert post(f"http://127.0.0.1:{locked_server.port}", "127.0.0.8")[0] == 200  # the server's own page


def test_websocket_needs_key_and_allowed_origin(locked_server):
    url = locked_server.ws_url + "/v1/stream"
    for headers in ({}, {**KEY, "Origin": "https://evil.example"}):
        with pytest.raises(Exception, match="403"):
            connect(url, additional_headers=headers, open_timeout=10)
    with connect(url, additional_headers={**KEY, "Origin": "https://app.example"}, open_timeout=10) as ws:
        ws.send(START)
        assert json.loads(ws.recv(timeout=10))["type"] == "ready"


def test_rate_limit_per_client(locked_server):
    answers = [locked_server.request("GET", "/v1/models", headers=KEY, source="127.0.0.9") for _ in range(8)]
    statuses = [a[0] for a in answers]
    assert statuses[:3] == [200, 200, 200] and 429 in statuses, statuses
    limited = next(a for a in answers if a[0] == 429)
    assert limited[1]["error"]["code"] == "rate_limited" and int(limited[2]["retry-after"]) >= 1
    assert locked_server.request("GET", "/v1/models", headers=KEY, source="127.0.0.10")[0] == 200  # others unaffected
    assert re.fullmatch(r"[0-9a-f]{16}", limited[2]["x-request-id"])


def test_stoppable_transcriber_detects_the_language_once_and_stops_between_clips():
    from emovox.serving.routes import ClientGone, Stoppable
    from emovox.text.transcribe import Transcript

    calls = []

    class Fake:
        def transcribe_clips(self, clips, *, language=None):
            calls.append((len(clips), language))
            return [Transcript("words", language or "de", 1.0 if language else 0.9, []) for _ in clips]

    gone = threading.Event()
    clips = [np.zeros(10 * 16000, np.float32)] * 5  # the first three make the 30 s the language is detected on
    said = Stoppable(Fake(), gone).transcribe_clips(clips)
    assert calls == [(3, None), (1, "de"), (1, "de")]
    assert [(t.language, t.language_probability) for t in said] == [("de", 0.9)] * 5
    calls.clear()

    class Leaving(Fake):
        def transcribe_clips(self, clips, *, language=None):
            gone.set()  # the client leaves during the first clips
            return super().transcribe_clips(clips, language=language)

    with pytest.raises(ClientGone):
        Stoppable(Leaving(), gone).transcribe_clips(clips)
    assert calls == [(3, None)]
