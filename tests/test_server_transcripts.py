"""``transcribe=true`` on a real ``emovox serve`` (uvicorn) on loopback: the words of each timeline
segment and of a predicted clip, with whisper-tiny.en on real speech from espeak-ng."""

from __future__ import annotations

import threading
import time

import pytest

from server_support import running_server, train_tiny_model, wav_bytes
from test_timeline_transcripts import (
    UTTERANCES,
    has_a_key_word,
    pytestmark,  # noqa: F401  (the same skips: espeak-ng, tiny.en weights)
    spoken,
    two_utterances,
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return train_tiny_model(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("asr-server") / "server.log"
    with running_server(model_dir, log, "--transcribe", "--asr-model", "whisper-tiny.en") as s:
        yield s


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    return wav_bytes(two_utterances(tmp_path_factory.mktemp("speech")))


def test_timeline_transcribe_gives_each_segment_its_words(server, recording):
    status, body, _ = server.post_file("/v1/timeline?transcribe=true", recording, timeout=120)
    assert status == 200, body
    assert len(body["segments"]) == 2
    for segment, (_, words) in zip(body["segments"], UTTERANCES, strict=False):
        assert segment["language"] == "en" and has_a_key_word(segment["text"], words), segment
        assert segment["label"] in ("sad", "angry")
    status, plain, _ = server.post_file("/v1/timeline", recording)
    assert status == 200 and all("text" not in s and "language" not in s for s in plain["segments"])
    assert [s["scores"] for s in plain["segments"]] == [s["scores"] for s in body["segments"]]


def test_predict_transcribe_adds_transcript_and_language(server, tmp_path):
    text, words = UTTERANCES[1]
    data = wav_bytes(spoken(text, tmp_path))
    status, body, _ = server.request("POST", "/v1/predict?transcribe=true", data, {"Content-Type": "audio/wav"})
    assert status == 200, body
    assert body["language"] == "en" and has_a_key_word(body["transcript"], words), body
    status, plain, _ = server.post_file("/v1/predict", data)
    assert status == 200 and "transcript" not in plain and plain["scores"] == pytest.approx(body["scores"], abs=1e-5)


def test_health_answers_while_transcribing(server, recording):
    done = threading.Event()

    def slow():
        try:
            server.post_file("/v1/timeline?transcribe=true", recording, timeout=120)
        finally:
            done.set()

    threading.Thread(target=slow).start()
    latencies = []
    while not done.is_set():
        start = time.perf_counter()
        assert server.healthy()
        latencies.append(time.perf_counter() - start)
        time.sleep(0.05)
    assert latencies and max(latencies) < 1.0, latencies
