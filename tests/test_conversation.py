"""Conversations: parties by channel and by voice, the speaker encoder, overlaps, the CLI's --parties."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from emovox.batch import run_batch
from emovox.cli import app
from emovox.conversation import conversation_timeline, diarise, load_channels, parse_parties
from emovox.conversation.parties import own_speech
from emovox.errors import ModelError
from emovox.testing import voice, write_wav
from server_support import SR, in_process_server, silence, styled, wav_bytes

# (party, style, start, seconds): the agent speaks in the tiny model's "angry" style, the customer
# in its quiet "sad" one; the customer's second turn starts 0.5 s before the agent's third ends.
CALL = [(0, "angry", 0.5, 3.0), (1, "sad", 4.3, 3.0), (0, "angry", 8.0, 2.5), (1, "sad", 10.0, 3.0),
        (0, "angry", 13.8, 3.0), (1, "sad", 17.5, 2.5)]


def stereo_call(script=CALL, seed: int = 70) -> np.ndarray:
    """``(frames, 2)``: each party on its own channel, the other party's voice leaking in at -30 dB."""
    length = max(start + seconds for _, _, start, seconds in script) + 1.0
    out = np.zeros((int(length * SR), 2), np.float32)
    for k, (party, style, start, seconds) in enumerate(script):
        x = styled(style, seconds, seed + k)
        out[int(start * SR) : int(start * SR) + len(x), party] += x
    return out + 0.0316 * out[:, ::-1]


@pytest.fixture(scope="module")
def call_file(tmp_path_factory):
    return write_wav(tmp_path_factory.mktemp("call") / "call.wav", stereo_call(), SR)


def test_stereo_call_gives_a_lane_per_party_with_its_emotion(model_path, call_file):
    """The issue's bar: one party's angry-like turns and the other's calm ones give two lanes."""
    result = CliRunner().invoke(app, ["timeline", str(call_file), "--model", str(model_path), "--parties", "channels",
                                      "--party-names", "agent,customer", "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["parties"] == ["agent", "customer"]
    assert all(s["party"] in ("agent", "customer") for s in data["segments"])
    lanes = data["summary"]["parties"]
    assert lanes["agent"]["dominant"] == "angry" and lanes["customer"]["dominant"] == "sad"
    assert abs(lanes["agent"]["speech"] - 8.5) < 1.0 and abs(lanes["customer"]["speech"] - 8.5) < 1.0
    assert [s["party"] for s in data["segments"]] == ["agent", "customer"] * 3  # crosstalk is no one's turn
    starts = [s["start"] for s in data["segments"]]
    assert starts == sorted(starts)
    overlapping = [s for s in data["segments"] if s["overlap"]]
    assert {s["party"] for s in overlapping} == {"agent", "customer"} and len(overlapping) == 2
    assert all(-1.0 <= s["arousal"] <= 1.0 and -1.0 <= s["valence"] <= 1.0 for s in data["segments"])


def test_conversation_csv_and_table_carry_the_parties(model_path, call_file, tmp_path):
    out = tmp_path / "call.csv"
    result = CliRunner().invoke(app, ["timeline", str(call_file), "--model", str(model_path), "--parties", "channels",
                                      "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "channel1: " in result.stdout and "mostly angry" in result.stdout and "(overlap)" in result.stdout
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert {r["party"] for r in rows} == {"channel1", "channel2"}
    assert sum(r["overlap"] == "1" for r in rows) == 2


@pytest.mark.parametrize("args, message", [
    (["--parties", "voices"], "--parties takes channels, speakers"),
    (["--parties", "speakers:9"], "N from 1 to 6"),
    (["--party-names", "a,b"], "--party-names needs --parties"),
    (["--parties", "channels", "--party-names", "a,a"], "party names must differ"),
])
def test_parties_option_errors(model_path, call_file, args, message):
    result = CliRunner().invoke(app, ["timeline", str(call_file), "--model", str(model_path), *args])
    assert result.exit_code == 2 and message in result.output


def test_mono_call_is_diarised_into_two_speakers(model):
    call = stereo_call()
    mono = call.sum(axis=1)
    timeline = conversation_timeline(model, [mono], parties="speakers:2", names=["first"])
    assert timeline.parties == ["first", "speaker2"]
    lanes = timeline.summary()["parties"]
    assert lanes["first"]["dominant"] == "angry" and lanes["speaker2"]["dominant"] == "sad"
    mixed = conversation_timeline(model, [call[:, 0], call[:, 1]], parties=parse_parties("speakers"))  # mixed down
    assert [s.party for s in mixed.segments][:2] == ["speaker1", "speaker2"]


def test_diarise_finds_the_turns_of_two_voices():
    low = [voice(2.0, f0=110, seed=i) for i in range(3)]
    high = [voice(2.0, f0=240, seed=10 + i) for i in range(3)]
    gap = silence(0.5)
    signal = np.concatenate([gap, low[0], gap, high[0], gap, low[1], gap, high[1], gap, low[2], gap, high[2], gap])
    turns = diarise(signal)
    assert [t.speaker for t in turns] == [0, 1, 0, 1, 0, 1]
    for k, t in enumerate(turns):
        assert abs(t.start - (0.5 + 2.5 * k)) < 0.3 and abs(t.end - (2.5 + 2.5 * k)) < 0.3
    assert {t.speaker for t in diarise(signal, speakers=1)} == {0}
    assert diarise(silence(2.0)) == []


def test_speaker_embeddings_tell_voices_apart():
    from emovox.conversation.speaker import embed_windows

    e = embed_windows([voice(1.5, f0=110, seed=1), voice(1.5, f0=110, seed=2, amplitude=0.05), voice(1.5, f0=240, seed=3)])
    assert e.shape == (3, 256) and np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.1  # loudness does not matter, pitch and timbre do


def test_mel_frames_match_librosa():
    librosa = pytest.importorskip("librosa")
    from emovox.conversation.speaker import mel_frames

    x = voice(1.0, seed=4)
    reference = librosa.feature.melspectrogram(y=x, sr=SR, n_fft=400, hop_length=160, n_mels=40).T
    assert np.allclose(mel_frames(x), reference, rtol=1e-4, atol=1e-6 * reference.max())


def test_speaker_weights_are_checked(monkeypatch):
    from emovox.conversation import speaker

    monkeypatch.setattr(speaker, "WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(ModelError, match="not the expected GE2E weight file"):
        speaker.weights_path()


def test_channels_of_a_file_and_crosstalk(call_file):
    left, right = load_channels(call_file)
    assert len(left) == len(right) == len(stereo_call())
    only_left = own_speech([left, right], 0, [(0.0, 4.0)])
    assert only_left and only_left[0][0] < 0.6 and own_speech([left, right], 1, [(0.5, 3.5)]) == []
    (mono,) = load_channels(np.zeros(16000, np.float32), 16000)
    assert mono.shape == (16000,)


@pytest.mark.corpora
def test_diarise_two_corpus_speakers(corpora_root):
    from emovox.audio.load import load_audio
    from emovox.corpora import scan_corpus

    if not (corpora_root / "ravdess").is_dir():
        pytest.skip("RAVDESS is not there")
    utterances = scan_corpus("ravdess", corpora_root / "ravdess")
    a = [u for u in utterances if u.speaker == sorted({u.speaker for u in utterances})[0]][:4]
    b = [u for u in utterances if u.speaker == sorted({u.speaker for u in utterances})[1]][:4]
    parts, truth, t = [], [], 0.0
    for ua, ub in zip(a, b, strict=True):
        for who, u in ((0, ua), (1, ub)):
            x = load_audio(u.path)
            parts += [x, silence(0.4)]
            truth.append((t, t + len(x) / SR, who))
            t += len(x) / SR + 0.4
    signal = np.concatenate(parts)
    turns = diarise(signal, speakers=2)
    right = sum(max(0.0, min(e, te) - max(s, ts)) for s, e, who in truth for ts, te, sp in
                [(x.start, x.end, x.speaker) for x in turns] if sp == who)
    speech = sum(x.end - x.start for x in turns)
    assert right / speech > 0.85


def test_an_escalation_and_its_recovery_are_moments(model):
    """The customer is calm (the tiny model's "sad" style) for two turns, heated for one, calm again."""
    script = [(0, "sad", 0.5, 2.5), (1, "sad", 3.5, 3.0), (0, "sad", 7.0, 2.5), (1, "sad", 10.0, 3.0),
              (0, "sad", 13.5, 2.0), (1, "angry", 16.0, 4.0), (0, "sad", 20.5, 2.0), (1, "sad", 23.0, 3.0)]
    call = stereo_call(script)
    timeline = conversation_timeline(model, [call[:, 0], call[:, 1]], names="agent,customer")
    moments = [(m["kind"], m["party"]) for m in timeline.moments]
    assert moments == [("escalation", "customer"), ("recovery", "customer")]
    escalation, recovery = timeline.moments
    assert abs(escalation["start"] - 16.0) < 0.5 and abs(recovery["start"] - 23.0) < 0.5
    assert escalation["peak_arousal"] > escalation["baseline"]["arousal"] + 0.3
    assert timeline.to_dict()["moments"] == timeline.moments


def test_server_timeline_takes_parties(model_path):
    from emovox.serving import ServerSettings

    with in_process_server(model_path, ServerSettings()) as server:
        status, body, _ = server.post_file("/v1/timeline?parties=channels&party_names=agent,customer",
                                           wav_bytes(stereo_call()), filename="call.wav")
        assert status == 200, body
        assert body["parties"] == ["agent", "customer"] and body["moments"] == []
        assert body["summary"]["parties"]["agent"]["dominant"] == "angry"
        assert body["summary"]["parties"]["customer"]["dominant"] == "sad"
        assert sum(s["overlap"] for s in body["segments"]) == 2 and all("arousal" in s for s in body["segments"])
        status, body, _ = server.post_file("/v1/timeline?parties=speakers:2", wav_bytes(stereo_call().sum(axis=1)))
        assert status == 200 and body["parties"] == ["speaker1", "speaker2"]
        for query, message in [("parties=everyone", "parties takes channels"), ("party_names=a,b", "needs parties")]:
            status, body, _ = server.post_file(f"/v1/timeline?{query}", wav_bytes(stereo_call()))
            assert status == 400 and message in body["error"]["message"]


def test_batch_timeline_takes_parties(model_path, call_file, tmp_path):
    import pyarrow.dataset as ds

    out = tmp_path / "out"
    args = ["batch", str(call_file.parent), str(out), "--model", str(model_path), "--workers", "1", "--no-progress"]
    result = CliRunner().invoke(app, [*args, "--timeline", "--parties", "channels"])
    assert result.exit_code == 0, result.output
    rows = ds.dataset(out, format="parquet").to_table().to_pylist()
    assert {r["party"] for r in rows} == {"channel1", "channel2"} and sum(r["overlap"] for r in rows) == 2
    for party, label in (("channel1", "angry"), ("channel2", "sad")):
        assert {r["label"] for r in rows if r["party"] == party} == {label}
    assert all(-1 <= r["arousal"] <= 1 for r in rows)
    result = CliRunner().invoke(app, [*args, "--parties", "channels"])
    assert result.exit_code == 2 and "--parties needs --timeline" in result.output


def test_batch_rows_carry_the_party_names(model_path, call_file, tmp_path):
    """--party-names reaches the rows, through a pool of worker processes too."""
    import pyarrow.dataset as ds

    out = tmp_path / "out"
    args = ["batch", str(call_file.parent), str(out), "--model", str(model_path), "--no-progress", "--timeline"]
    result = CliRunner().invoke(app, [*args, "--workers", "2", "--parties", "channels", "--party-names", "agent,customer"])
    assert result.exit_code == 0, result.output
    rows = ds.dataset(out, format="parquet").to_table().to_pylist()
    assert {r["party"] for r in rows} == {"agent", "customer"}
    for party, label in (("agent", "angry"), ("customer", "sad")):
        assert {r["label"] for r in rows if r["party"] == party} == {label}
    for extra, message in [(["--party-names", "a,b"], "--party-names needs --parties"),
                           (["--parties", "channels", "--party-names", "a,a"], "party names must differ")]:
        result = CliRunner().invoke(app, [*args, *extra])
        assert result.exit_code == 2 and message in result.output
    with pytest.raises(ValueError, match="needs a --parties"):
        run_batch(call_file.parent, tmp_path / "other", timeline=True, party_names="a,b")


def test_conversation_plot_has_a_lane_per_party(model, tmp_path):
    pytest.importorskip("matplotlib")
    call = stereo_call()
    timeline = conversation_timeline(model, [call[:, 0], call[:, 1]], names="agent,customer")
    path = timeline.write(tmp_path / "call.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
