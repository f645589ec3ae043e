"""Malformed input against a real server: every request gets the right 4xx JSON error (never a
5xx), websocket abuse gets an error message and a close code, and the server stays healthy."""

from __future__ import annotations

import json
import os
import socket
import struct
import time

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from server_support import multipart, running_server, styled, train_tiny_model, wav_bytes

MAX_UPLOAD = 2 * 2**20  # the server below runs with --max-upload-mb 2
GOOD = wav_bytes(styled("angry", 1.0, seed=1))
HEADER = GOOD[:44]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    model = train_tiny_model(tmp_path_factory.getbasetemp())
    log = tmp_path_factory.mktemp("bad-input") / "server.log"
    with running_server(model, log, "--max-upload-mb", "2", "--max-duration", "60",
                        "--max-timeline-duration", "600") as s:
        yield s
    text = log.read_text()
    assert "Traceback" not in text and " 500 " not in text, text[-3000:]


def _wav_with_data_size(seconds: float, rate: int = 16000) -> bytes:
    """A real 1 s WAV whose header claims ``seconds`` of 16-bit mono samples."""
    size = min(int(seconds * rate * 2), 0xFFFFFFF0)
    i = GOOD.find(b"data")
    return GOOD[:4] + struct.pack("<I", min(size + 36, 0xFFFFFFFF)) + GOOD[8:i + 4] + struct.pack("<I", size) + GOOD[i + 8:]


def _flac_declaring(seconds: float) -> bytes:
    """A real 1 s FLAC whose STREAMINFO claims ``seconds`` (total samples is a 36-bit field)."""
    data = bytearray(wav_bytes(styled("sad", 1.0, seed=2), fmt="FLAC"))
    field = int.from_bytes(data[18:26], "big")
    field = (field & ~((1 << 36) - 1)) | int(seconds * 16000)
    data[18:26] = field.to_bytes(8, "big")
    return bytes(data)


def _float_wav(fill: float) -> bytes:
    x = np.full(16000, fill, np.float32)
    return wav_bytes(x, subtype="FLOAT")


def _fmt_patched(offset: int, fmt: str, value: int) -> bytes:
    data = bytearray(GOOD)
    struct.pack_into(fmt, data, offset, value)
    return bytes(data)


RNG = np.random.default_rng(0)
GARBAGE = RNG.integers(0, 256, 4096, dtype=np.uint8).tobytes()
WAV = {"Content-Type": "audio/wav"}
OCTET = {"Content-Type": "application/octet-stream"}


def _mp(files=None, fields=None, boundary=None):
    body, content_type = multipart(files if files is not None else {"file": ("clip.wav", GOOD)}, fields or {}, boundary)
    return body, {"Content-Type": content_type}


# (id, method, path, body, headers, status, code)
HTTP_CASES = [
    ("empty-wav", "POST", "/v1/predict", b"", WAV, 400, "empty_body"),
    ("empty-octet", "POST", "/v1/predict", b"", OCTET, 400, "empty_body"),
    ("no-content-type", "POST", "/v1/predict", GOOD, {}, 415, "unsupported_media_type"),
    ("text-plain", "POST", "/v1/predict", GOOD, {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
    ("json", "POST", "/v1/predict", b'{"audio": "x"}', {"Content-Type": "application/json"}, 415, "unsupported_media_type"),
    ("form-urlencoded", "POST", "/v1/predict", GOOD, {"Content-Type": "application/x-www-form-urlencoded"}, 415,
     "unsupported_media_type"),
    ("image-png", "POST", "/v1/predict", b"\x89PNG\r\n\x1a\n" + GARBAGE, {"Content-Type": "image/png"}, 415,
     "unsupported_media_type"),
    ("html", "POST", "/v1/predict", b"<html></html>", {"Content-Type": "text/html"}, 415, "unsupported_media_type"),
    ("garbage-wav", "POST", "/v1/predict", GARBAGE, WAV, 415, "not_audio"),
    ("garbage-octet-100k", "POST", "/v1/predict", GARBAGE * 25, OCTET, 415, "not_audio"),
    ("zeros-1k", "POST", "/v1/predict", bytes(1024), WAV, 415, "not_audio"),
    ("text-as-wav", "POST", "/v1/predict", b"hello, this is not audio", WAV, 415, "not_audio"),
    ("riff-only", "POST", "/v1/predict", b"RIFF", WAV, 415, "not_audio"),
    ("wav-cut-at-12", "POST", "/v1/predict", GOOD[:12], WAV, 415, "not_audio"),
    ("wav-cut-at-20", "POST", "/v1/predict", GOOD[:20], WAV, 415, "not_audio"),
    ("wav-cut-at-36", "POST", "/v1/predict", GOOD[:36], WAV, 415, "not_audio"),
    ("wav-header-only", "POST", "/v1/predict", HEADER, WAV, 422, "empty_audio"),
    ("wav-100-samples", "POST", "/v1/predict", GOOD[:44 + 200], WAV, 422, "audio_too_short"),
    ("wav-zero-channels", "POST", "/v1/predict", _fmt_patched(22, "<H", 0), WAV, 415, "not_audio"),
    ("wav-zero-rate", "POST", "/v1/predict", _fmt_patched(24, "<I", 0), WAV, 415, "not_audio"),
    ("wav-bad-format-tag", "POST", "/v1/predict", _fmt_patched(20, "<H", 0x7777), WAV, 415, "not_audio"),
    ("nan-float-wav", "POST", "/v1/predict", _float_wav(np.nan), WAV, 422, "invalid_audio"),
    ("inf-float-wav", "POST", "/v1/predict", _float_wav(np.inf), WAV, 422, "invalid_audio"),
    ("wav-declares-10-hours", "POST", "/v1/predict", _wav_with_data_size(36000), WAV, 422, "audio_too_long"),
    ("flac-declares-10-hours", "POST", "/v1/predict", _flac_declaring(36000), {"Content-Type": "audio/flac"}, 422,
     "audio_too_long"),
    ("wav-61-seconds", "POST", "/v1/predict", wav_bytes(np.zeros(61 * 8000, np.float32), 8000, "PCM_U8"), WAV, 422,
     "audio_too_long"),
    ("flac-magic-garbage", "POST", "/v1/predict", b"fLaC" + GARBAGE, {"Content-Type": "audio/flac"}, 415, "not_audio"),
    ("ogg-magic-garbage", "POST", "/v1/predict", b"OggS" + GARBAGE, {"Content-Type": "audio/ogg"}, 415, "not_audio"),
    ("mp3-id3-garbage", "POST", "/v1/predict", b"ID3\x03\x00\x00\x00\x00\x00\x00" + GARBAGE, {"Content-Type": "audio/mpeg"},
     415, "not_audio"),
    ("aiff-magic-garbage", "POST", "/v1/predict", b"FORM\x00\x00\x10\x00AIFF" + GARBAGE, {"Content-Type": "audio/aiff"},
     415, "not_audio"),
    ("multipart-no-file", "POST", "/v1/predict", *_mp(files={}, fields={"labels": "sad"}), 400, "bad_multipart"),
    ("multipart-wrong-field", "POST", "/v1/predict", *_mp(files={"audio": ("a.wav", GOOD)}), 400, "bad_multipart"),
    ("multipart-empty-file", "POST", "/v1/predict", *_mp(files={"file": ("a.wav", b"")}), 400, "empty_body"),
    ("multipart-garbage-file", "POST", "/v1/predict", *_mp(files={"file": ("a.wav", GARBAGE)}), 415, "not_audio"),
    ("multipart-truncated-wav", "POST", "/v1/predict", *_mp(files={"file": ("a.wav", GOOD[:30])}), 415, "not_audio"),
    ("multipart-two-files", "POST", "/v1/predict", *_mp(files={"file": ("a.wav", GOOD), "other": ("b.wav", GOOD)}), 400,
     "bad_multipart"),
    ("multipart-no-boundary", "POST", "/v1/predict", _mp()[0], {"Content-Type": "multipart/form-data"}, 400,
     "bad_multipart"),
    ("multipart-wrong-boundary", "POST", "/v1/predict", _mp(boundary="aaaa")[0],
     {"Content-Type": "multipart/form-data; boundary=bbbb"}, 400, "bad_multipart"),
    ("multipart-cut-short", "POST", "/v1/predict", _mp()[0][:300], _mp()[1], 400, "bad_multipart"),
    ("labels-empty", "POST", "/v1/predict?labels=", GOOD, WAV, 400, "bad_request"),
    ("labels-unknown", "POST", "/v1/predict?labels=joy", GOOD, WAV, 422, "unknown_label"),
    ("labels-duplicate", "POST", "/v1/predict?labels=sad,sad", GOOD, WAV, 400, "bad_request"),
    ("form-labels-unknown", "POST", "/v1/predict", *_mp(fields={"labels": "sad,calm"}), 422, "unknown_label"),
    ("get-predict", "GET", "/v1/predict", None, {}, 405, "method_not_allowed"),
    ("put-predict", "PUT", "/v1/predict", GOOD, WAV, 405, "method_not_allowed"),
    ("unknown-path", "POST", "/v1/nope", GOOD, WAV, 404, "not_found"),
    ("over-limit-body", "POST", "/v1/predict", bytes(MAX_UPLOAD + 1), OCTET, 413, "upload_too_large"),
    ("timeline-empty", "POST", "/v1/timeline", b"", WAV, 400, "empty_body"),
    ("timeline-garbage", "POST", "/v1/timeline", GARBAGE, WAV, 415, "not_audio"),
    ("timeline-nan", "POST", "/v1/timeline", _float_wav(np.nan), WAV, 422, "invalid_audio"),
    ("timeline-flac-10-hours", "POST", "/v1/timeline", _flac_declaring(36000), {"Content-Type": "audio/flac"}, 422,
     "audio_too_long"),
    ("timeline-wav-10-hours", "POST", "/v1/timeline", _wav_with_data_size(36000), WAV, 422, "audio_too_long"),
    ("timeline-window-zero", "POST", "/v1/timeline?window=0", GOOD, WAV, 400, "bad_request"),
    ("timeline-window-text", "POST", "/v1/timeline?window=abc", GOOD, WAV, 400, "bad_request"),
    ("timeline-json", "POST", "/v1/timeline", b"{}", {"Content-Type": "application/json"}, 415, "unsupported_media_type"),
    ("stream-over-http", "GET", "/v1/stream", None, {}, 426, "upgrade_required"),
]


@pytest.mark.parametrize("case", HTTP_CASES, ids=[c[0] for c in HTTP_CASES])
def test_malformed_http_request(server, case):
    _, method, path, body, headers, status, code = case
    got, data, response_headers = server.request(method, path, body, headers)
    assert (got, data["error"]["code"] if data else None) == (status, code), data
    assert data["request_id"] == response_headers["x-request-id"] and data["error"]["message"]


def _raw_http(server, head: bytes, body_chunks=(), read_timeout: float = 10.0) -> tuple[int, dict | None]:
    """Send a hand-made request; tolerate the server hanging up mid-body; parse the response."""
    with socket.create_connection((server.host, server.port), timeout=read_timeout) as sock:
        sock.sendall(head)
        try:
            for chunk in body_chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = b""
        try:
            while chunk := sock.recv(65536):
                response += chunk
                if b"\r\n\r\n" in response and _complete(response):
                    break
        except (TimeoutError, ConnectionResetError):
            pass
    status = int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1") else 0
    body = response.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in response else b""
    try:
        return status, json.loads(body)
    except ValueError:
        return status, None


def _complete(response: bytes) -> bool:
    head, body = response.split(b"\r\n\r\n", 1)
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return True


def test_huge_declared_content_length_is_refused_before_the_body(server):
    head = (f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: audio/wav\r\n"
            f"Content-Length: {10 * 2**30}\r\n\r\n").encode()
    status, body = _raw_http(server, head)  # no body sent at all: the answer comes from the header
    assert status == 413 and body["error"]["code"] == "upload_too_large"


def test_huge_chunked_upload_is_cut_off(server):
    head = b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: audio/wav\r\nTransfer-Encoding: chunked\r\n\r\n"
    block = os.urandom(256 * 1024)
    chunks = (b"%x\r\n" % len(block) + block + b"\r\n" for _ in range(64))  # 16 MiB offered, 2 MiB allowed
    status, body = _raw_http(server, head, chunks)
    assert status == 413 and body["error"]["code"] == "upload_too_large"


def test_bad_content_length_header(server):
    head = b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: audio/wav\r\nContent-Length: abc\r\n\r\n"
    status, _ = _raw_http(server, head)
    assert status == 400


def test_garbage_http_request_line(server):
    status, _ = _raw_http(server, b"\x16\x03\x01\x02\x00 garbage that is not HTTP\r\n\r\n")
    assert status == 400 or status == 0  # refused by the HTTP parser, connection closed


# ---- websocket ----------------------------------------------------------------------------------

START = json.dumps({"type": "start", "sample_rate": 16000})

# (id, messages to send after connecting, expected error code, expected close code)
WS_CASES = [
    ("audio-before-start", [b"\x00\x00" * 100], "bad_start", 1008),
    ("text-not-json", ["hello"], "bad_message", 1008),
    ("json-array", ["[1, 2, 3]"], "bad_message", 1008),
    ("wrong-first-type", [json.dumps({"type": "stop"})], "bad_start", 1008),
    ("rate-missing", [json.dumps({"type": "start"})], "bad_start", 1008),
    ("rate-zero", [json.dumps({"type": "start", "sample_rate": 0})], "bad_start", 1008),
    ("rate-string", [json.dumps({"type": "start", "sample_rate": "16000"})], "bad_start", 1008),
    ("rate-huge", [json.dumps({"type": "start", "sample_rate": 10**9})], "bad_start", 1008),
    ("rate-float", [json.dumps({"type": "start", "sample_rate": 16000.5})], "bad_start", 1008),
    ("format-f32", [json.dumps({"type": "start", "sample_rate": 16000, "format": "f32le"})], "bad_start", 1008),
    ("stereo", [json.dumps({"type": "start", "sample_rate": 16000, "channels": 2})], "bad_start", 1008),
    ("labels-unknown", [json.dumps({"type": "start", "sample_rate": 16000, "labels": ["joy"]})], "bad_start", 1008),
    ("labels-not-list", [json.dumps({"type": "start", "sample_rate": 16000, "labels": "sad"})], "bad_start", 1008),
    ("interval-zero", [json.dumps({"type": "start", "sample_rate": 16000, "interval": 0})], "bad_start", 1008),
    ("window-huge", [json.dumps({"type": "start", "sample_rate": 16000, "window": 1e6})], "bad_start", 1008),
    ("odd-byte-chunk", [START, b"\x00" * 101], "bad_audio", 1007),
    ("unknown-type-after-start", [START, json.dumps({"type": "pause"})], "bad_message", 1008),
    ("text-garbage-after-start", [START, "{not json"], "bad_message", 1008),
    ("message-over-limit", [START, b"\x00" * (1536 * 1024)], "message_too_large", 1009),
]


@pytest.mark.parametrize("case", WS_CASES, ids=[c[0] for c in WS_CASES])
def test_malformed_websocket_stream(server, case):
    _, messages, code, close_code = case
    with connect(server.ws_url + "/v1/stream", open_timeout=10, close_timeout=5) as ws:
        received = []
        try:
            for message in messages:
                ws.send(message)
            while True:
                received.append(json.loads(ws.recv(timeout=10)))
        except Exception:  # the server closed the connection
            pass
        errors = [m for m in received if m["type"] == "error"]
        assert errors and errors[0]["code"] == code, received
        assert ws.protocol.close_code == close_code


def test_websocket_frame_over_protocol_limit_is_closed(server):
    with connect(server.ws_url + "/v1/stream", open_timeout=10, close_timeout=5, max_size=None) as ws:
        ws.send(START)
        assert json.loads(ws.recv(timeout=10))["type"] == "ready"
        with pytest.raises(ConnectionClosed):
            ws.send(b"\x00" * (4 * 2**20))  # over uvicorn's ws_max_size: the protocol layer closes
            ws.recv(timeout=10)
        assert ws.protocol.close_code == 1009


def _handshake(server) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=10)
    sock.sendall(b"GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(4096)
    assert response.startswith(b"HTTP/1.1 101")
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


@pytest.mark.parametrize("frame", [
    b"\x81\x05hello",  # an unmasked client frame (clients must mask)
    b"\x8f\x80\x00\x00\x00\x00",  # a reserved opcode
    b"\xf1\x80\x00\x00\x00\x00",  # reserved bits set
    b"\x09\x85" + b"\x00" * 4 + b"hello",  # a fragmented control frame (a ping without FIN)
    bytes(RNG.integers(0, 256, 512, dtype=np.uint8)),  # noise
], ids=["unmasked", "reserved-opcode", "reserved-bits", "fragmented-control", "noise"])
def test_broken_websocket_frames(server, frame):
    with _handshake(server) as sock:
        sock.sendall(frame)
        data = _read_until_closed(sock)
    # the server answers with a close frame (opcode 8) or simply drops the connection
    assert data == b"" or data[0] & 0x0F == 0x8


def test_websocket_truncated_frame_then_hangup(server):
    with _handshake(server) as sock:
        sock.sendall(b"\x82\xfe\x10\x00\x01\x02\x03\x04" + b"\x00" * 100)  # promises 4096 bytes, sends 100
    time.sleep(0.2)


def test_websocket_handshake_with_bad_version(server):
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b"GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 7\r\n\r\n")
        response = _read_until_closed(sock)
    status = int(response.split(b" ", 2)[1])
    assert 400 <= status < 500


def test_server_is_healthy_and_correct_after_all_that(server):
    assert server.healthy()
    status, body, _ = server.request("POST", "/v1/predict", GOOD, WAV)
    assert status == 200 and body["label"] == "angry"
    with connect(server.ws_url + "/v1/stream", open_timeout=10) as ws:
        ws.send(START)
        assert json.loads(ws.recv(timeout=10))["type"] == "ready"
        ws.send(json.dumps({"type": "stop"}))
        messages = [json.loads(ws.recv(timeout=10)) for _ in range(1)]
        assert messages[-1]["type"] in ("end", "update")
    status, body, _ = server.request("GET", "/health")
    assert body["streams"] == 0 and body["queue"] == 0


def test_count_of_malformed_inputs():
    frames = 5 + 1 + 1  # broken frames, truncated frame, bad handshake version
    raw = 4  # huge declared length, huge chunked upload, bad content-length, garbage request line
    assert len(HTTP_CASES) + len(WS_CASES) + 1 + frames + raw >= 50
