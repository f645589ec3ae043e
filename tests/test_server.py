"""The API against a real ``emovox serve`` (uvicorn) on loopback, with a tiny model trained on
synthetic voices: predict, timeline, stream, health, models, docs, request ids, workers."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import threading
import time

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from server_support import SR, STYLES, running_server, scripted_recording, styled, train_tiny_model, wav_bytes


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return train_tiny_model(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    with running_server(model_dir, tmp_path_factory.mktemp("server") / "server.log") as s:
        yield s


@pytest.fixture(scope="module")
def recording():
    return scripted_recording()


def test_health_models_and_request_ids(server):
    status, body, headers = server.request("GET", "/health")
    assert status == 200 and body["status"] == "ok" and body["model"] == "tiny-voice-model"
    assert body["ok"] and body["workers_alive"] == body["workers"] >= 1 and body["worker_restarts"] == 0
    assert len(headers["x-request-id"]) == 16
    status, body, _ = server.request("GET", "/v1/models")
    assert status == 200
    (info,) = body["models"]
    assert info["labels"] == ["sad", "angry"] and info["encoder"] == "whisper-tiny.en"
    assert info["version"] and info["id"] == "tiny-voice-model"
    # a client's request id is kept, answered and logged
    _, _, headers = server.request("GET", "/v1/models", headers={"X-Request-ID": "client-id-42"})
    assert headers["x-request-id"] == "client-id-42"
    time.sleep(0.2)
    assert "[client-id-42]" in server.log_text()
    # an unsafe one is replaced
    _, _, headers = server.request("GET", "/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert headers["x-request-id"] != "bad id\twith spaces"


@pytest.mark.parametrize("label", list(STYLES))
def test_predict_multipart_and_raw_body(server, label):
    data = wav_bytes(styled(label, 2.0, seed=11))
    status, body, headers = server.post_file("/v1/predict", data)
    assert status == 200, body
    assert body["label"] == label and body["model"] == "tiny-voice-model"
    assert body["duration"] == pytest.approx(2.0) and sum(body["scores"].values()) == pytest.approx(1.0)
    assert body["request_id"] == headers["x-request-id"]
    assert -1 <= body["arousal"] <= 1 and -1 <= body["valence"] <= 1  # read off the scores (test_dimensions.py)
    status, raw, _ = server.request("POST", "/v1/predict", data, {"Content-Type": "audio/wav"})
    assert status == 200 and raw["scores"] == pytest.approx(body["scores"], abs=1e-5)


def test_predict_48k_stereo_flac_and_label_subset(server):
    mono = styled("angry", 1.5, seed=12, sampling_rate=48000)
    data = wav_bytes(np.stack([mono, mono], axis=1), 48000, subtype="PCM_16", fmt="FLAC")
    status, body, _ = server.request("POST", "/v1/predict?labels=sad", data, {"Content-Type": "audio/flac"})
    assert status == 200 and body["scores"] == {"sad": 1.0} and body["label"] == "sad"
    assert (body["arousal"], body["valence"]) == (-0.6, -0.7)  # the subset's scores: all sad
    status, body, _ = server.post_file("/v1/predict", data, filename="x.flac", fields={"labels": "angry,sad"})
    assert status == 200 and list(body["scores"]) == ["angry", "sad"] and body["label"] == "angry"
    assert body["duration"] == pytest.approx(1.5)


def test_concurrent_requests_are_batched_like_one_by_one(server):
    clips = [(label, wav_bytes(styled(label, 1.0 + 0.1 * i, seed=20 + i))) for i, label in enumerate(list(STYLES) * 8)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        together = list(pool.map(lambda c: server.post_file("/v1/predict", c[1]), clips))
    alone = [server.post_file("/v1/predict", data) for _, data in clips]
    assert [r[0] for r in together] == [200] * len(clips)
    for t, a in zip(together, alone, strict=True):
        assert t[1]["scores"] == pytest.approx(a[1]["scores"], abs=1e-4)
    assert sum(r[1]["label"] == label for r, (label, _) in zip(together, clips, strict=True)) >= 14


def test_timeline_finds_segments_with_labels(server, recording):
    signal, truth = recording
    status, body, _ = server.post_file("/v1/timeline", wav_bytes(signal), filename="long.wav")
    assert status == 200, body
    assert body["duration"] == pytest.approx(len(signal) / SR)
    segments = body["segments"]
    assert sorted({s["speech_segment"] for s in segments}) == [0, 1, 2]
    assert [s["speech_segment"] for s in segments].count(2) == 2  # 13 s of speech: two windows of <= 10 s
    for s in segments:
        start, end, label = truth[s["speech_segment"]]
        assert start - 0.3 <= s["start"] and s["end"] <= end + 0.4 and s["label"] == label
    shares = body["summary"]["shares"]
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-3) and shares["sad"] > shares["angry"] > 0.1
    assert body["summary"]["dominant"] == "sad"
    assert all(-1 <= s["arousal"] <= 1 and -1 <= s["valence"] <= 1 for s in segments)  # without ?parties= too
    status, body, _ = server.post_file("/v1/timeline?labels=angry&window=5", wav_bytes(signal))
    assert status == 200 and {s["label"] for s in body["segments"]} == {"angry"}
    assert [s["speech_segment"] for s in body["segments"]].count(2) == 3


def test_health_answers_while_a_slow_request_runs(server):
    # 5 min of speech: seconds of work even on an idle machine (76 s once finished before three polls)
    signal = np.concatenate([styled("sad", 9.5, seed=s % 8) for s in range(32)])
    done = threading.Event()
    outcome = {}

    def slow():
        outcome["result"] = server.post_file("/v1/timeline?window=2", wav_bytes(signal), timeout=120)
        done.set()

    worker = threading.Thread(target=slow)
    worker.start()
    time.sleep(0.2)  # the upload is under way
    latencies = []
    while not done.is_set() and len(latencies) < 20:
        start = time.perf_counter()
        status, body, _ = server.request("GET", "/health", timeout=5)
        latencies.append(time.perf_counter() - start)
        assert status == 200
        time.sleep(0.05)
    worker.join(120)
    assert outcome["result"][0] == 200 and len(outcome["result"][1]["segments"]) >= 30
    assert len(latencies) >= 3, "the slow request was not slow enough to overlap"
    assert max(latencies) < 1.0, latencies  # the timeline takes seconds: health never waited for it


def _stream(server, signal, rate, chunk_seconds=0.1, start=None, pace=0.0):
    """Send ``signal`` (float, at ``rate``) over the websocket; return all server messages."""
    pcm = (np.clip(signal, -1, 1) * 32767).astype("<i2")
    messages = []
    with connect(server.ws_url + "/v1/stream", open_timeout=10, close_timeout=10) as ws:
        ws.send(json.dumps({"type": "start", "sample_rate": rate, **(start or {})}))
        messages.append(json.loads(ws.recv(timeout=10)))
        step = int(chunk_seconds * rate)
        for i in range(0, len(pcm), step):
            ws.send(pcm[i : i + step].tobytes())
            if pace:
                time.sleep(pace)
        ws.send(json.dumps({"type": "stop"}))
        while True:
            message = json.loads(ws.recv(timeout=60))
            messages.append(message)
            if message["type"] in ("end", "error"):
                break
    return messages


def test_stream_updates_and_segments(server, recording):
    signal, truth = recording
    messages = _stream(server, signal, SR, pace=0.02)  # 5x real time
    assert messages[0]["type"] == "ready" and messages[0]["labels"] == ["sad", "angry"]
    assert messages[-1] == {"type": "end", "duration": pytest.approx(len(signal) / SR), "segments": 3}
    updates = [m for m in messages if m["type"] == "update"]
    assert len(updates) >= 20
    assert [u["time"] for u in updates] == sorted(u["time"] for u in updates)
    for u in updates:
        assert u["end"] - u["start"] <= 3.0 + 1e-6
        inside = [label for a, b, label in truth if a + 0.5 <= u["start"] and u["end"] <= b]
        if inside:  # a window wholly inside one stretch of speech has its label
            assert u["label"] == inside[0], u
        if u["label"] is None:
            assert u["scores"] is None and u["speech"] < 0.2 and u["arousal"] is u["valence"] is None
        else:
            assert -1 <= u["arousal"] <= 1 and -1 <= u["valence"] <= 1
    segments = [m for m in messages if m["type"] == "segment"]
    assert [s["label"] for s in segments] == [label for _, _, label in truth]
    assert all(-1 <= s["arousal"] <= 1 and -1 <= s["valence"] <= 1 for s in segments)
    for s, (a, b, _) in zip(segments, truth, strict=True):
        assert abs(s["start"] - a) < 0.3 and abs(s["end"] - b) < 0.4


def test_stream_48k_with_options(server):
    signal = np.concatenate([styled("angry", 3.0, seed=31, sampling_rate=48000), np.zeros(48000, np.float32)])
    messages = _stream(server, signal, 48000, start={"interval": 1.0, "window": 2.0, "labels": ["angry", "sad"]})
    ready = messages[0]
    assert (ready["sample_rate"], ready["interval"], ready["window"], ready["labels"]) == (48000, 1.0, 2.0, ["angry", "sad"])
    updates = [m for m in messages if m["type"] == "update"]
    assert updates and all(u["end"] - u["start"] <= 2.0 + 1e-6 for u in updates)
    assert any(u["label"] == "angry" and list(u["scores"]) == ["angry", "sad"] for u in updates)
    (segment,) = [m for m in messages if m["type"] == "segment"]
    assert segment["label"] == "angry" and segment["end"] == pytest.approx(3.0, abs=0.4)


def test_openapi_docs_and_web_page(server):
    status, spec, _ = server.request("GET", "/openapi.json")
    assert status == 200
    assert {"/v1/predict", "/v1/timeline", "/v1/models", "/health"} <= set(spec["paths"])
    assert "multipart/form-data" in spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    for path, kind in [("/docs", "text/html"), ("/docs/assets/swagger-ui-bundle.js", "javascript"),
                       ("/", "text/html"), ("/static/app.js", "javascript"), ("/static/pcm-worklet.js", "javascript"),
                       ("/static/style.css", "text/css")]:
        status, _, headers = server.request("GET", path)
        assert status == 200 and kind in headers["content-type"], path
    status, body, _ = server.request("GET", "/v1/stream")
    assert status == 426 and body["error"]["code"] == "upgrade_required"


def test_two_workers(model_dir, tmp_path):
    with running_server(model_dir, tmp_path / "workers.log", "--workers", "2", "--max-duration", "5") as server:
        data = wav_bytes(styled("angry", 1.0, seed=40))
        results = [server.post_file("/v1/predict", data) for _ in range(4)]
        assert all(r[0] == 200 and r[1]["label"] == "angry" for r in results)
        status, body, _ = server.post_file("/v1/predict", wav_bytes(styled("sad", 6.0, seed=41)))
        assert status == 422 and body["error"]["code"] == "audio_too_long"  # settings reach the workers


def test_serve_with_a_missing_model_exits_2(tmp_path):
    from typer.testing import CliRunner

    from emovox.cli import app

    result = CliRunner().invoke(app, ["serve", "--model", str(tmp_path / "nope"), "--port", "1"])
    assert result.exit_code == 2, result.output


@pytest.fixture(scope="module")
def limited_server(model_dir):
    """Uvicorn in a thread of this process, with tiny limits: one stream, 0.5 s idle timeout,
    2 s of streamed audio, and a model queue of 0 (every clip is refused as busy)."""
    from emovox.serving import ServerSettings
    from server_support import in_process_server

    settings = ServerSettings(max_streams=1, stream_idle_timeout=0.5, stream_max_duration=2.0, max_queue=0)
    with in_process_server(model_dir, settings) as server:
        yield server


def _first_error(ws) -> dict:
    while (message := json.loads(ws.recv(timeout=10)))["type"] != "error":
        pass
    return message


def test_overload_is_429_with_retry_after(limited_server):
    status, body, headers = limited_server.post_file("/v1/predict", wav_bytes(styled("sad", 1.0, seed=50)))
    assert status == 429 and body["error"]["code"] == "busy" and headers["retry-after"] == "1"


def test_stream_limits_idle_duration_and_count(limited_server):
    url = limited_server.ws_url + "/v1/stream"
    with connect(url, open_timeout=10) as ws:
        ws.send(json.dumps({"type": "start", "sample_rate": 16000}))
        assert json.loads(ws.recv(timeout=10))["type"] == "ready"
        with connect(url, open_timeout=10) as second:  # only one stream allowed, counted from its start
            second.send(json.dumps({"type": "start", "sample_rate": 16000}))
            assert _first_error(second)["code"] == "too_many_streams"
            with pytest.raises(ConnectionClosed):
                second.recv(timeout=5)
            assert second.protocol.close_code == 1013
        assert _first_error(ws)["code"] == "idle_timeout"  # nothing sent for 0.5 s
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
        assert ws.protocol.close_code == 1008
    with connect(url, open_timeout=10) as ws:
        ws.send(json.dumps({"type": "start", "sample_rate": 16000}))
        ws.recv(timeout=10)
        with contextlib.suppress(Exception):  # the server may close before the last chunks
            for _ in range(6):  # 3 s of silence, over the 2 s limit
                ws.send(np.zeros(8000, "<i2").tobytes())
        assert _first_error(ws)["code"] == "stream_too_long"
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
        assert ws.protocol.close_code == 1008
