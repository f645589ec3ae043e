"""A tiny train → predict run on synthetic voices with the tiny.en encoder, through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
import soundfile as sf
from safetensors import safe_open
from typer.testing import CliRunner

import emovox
from emovox.cli import app
from emovox.testing import SYNTHETIC_STYLES, make_synthetic_corpus, speechlike, write_wav

STYLES = SYNTHETIC_STYLES
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_synthetic_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    result = CliRunner().invoke(app, ["train", f"folder:{corpus}", "--out", str(out), "--encoder", "whisper-tiny.en",
                                      "--ensemble", "2", "--epochs", "30", "--hidden", "16"])
    assert result.exit_code == 0, result.output
    return out


def test_model_directory_describes_itself(trained):
    config = json.loads((trained / "config.json").read_text())
    assert config["labels"] == ["sad", "angry"]
    assert config["features"]["encoder"] == "whisper-tiny.en"
    assert len(config["features"]["encoder_sha256"]) == 64
    assert config["n_heads"] == 2 and config["versions"]["emovox"] == emovox.__version__
    assert "held-out speakers" in config["training"]["split"]
    assert (trained / "heads.safetensors").stat().st_size < 200_000


def test_float16_heads_halve_the_file_and_answer_as_the_float32_ones(corpus, trained, tmp_path):
    out = tmp_path / "half"
    result = CliRunner().invoke(app, ["train", f"folder:{corpus}", "--out", str(out), "--encoder", "whisper-tiny.en",
                                      "--ensemble", "2", "--epochs", "30", "--hidden", "16", "--heads-dtype", "float16"])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["heads_dtype"] == "float16" and json.loads((trained / "config.json").read_text())["heads_dtype"] == "float32"
    with safe_open(out / "heads.safetensors", "np") as stored:
        dtypes = {stored.get_tensor(k).dtype for k in stored.keys()}
    assert np.dtype("float16") in dtypes and not dtypes & {np.dtype("float32"), np.dtype("float64")}  # indices stay int
    assert (out / "heads.safetensors").stat().st_size < 0.55 * (trained / "heads.safetensors").stat().st_size
    clip = speechlike(duration=1.0, sampling_rate=16000, f0=STYLES["angry"]["f0"], seed=7)
    full, half = emovox.load(trained).predict(clip, sampling_rate=16000), emovox.load(out).predict(clip, sampling_rate=16000)
    assert full.label == half.label  # the same seeds: the same heads, rounded
    assert max(abs(full.scores[k] - half.scores[k]) for k in full.scores) < 5e-3
    bad = CliRunner().invoke(app, ["train", f"folder:{corpus}", "--out", str(tmp_path / "x"), "--heads-dtype", "int8"])
    assert bad.exit_code == 2
    # scripts/resave_heads.py makes the same file from the float32 model
    resaved = tmp_path / "resaved"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "resave_heads.py"), str(trained), str(resaved)], check=True)
    assert json.loads((resaved / "config.json").read_text())["heads_dtype"] == "float16"
    a, b = safetensors.numpy.load_file(out / "heads.safetensors"), safetensors.numpy.load_file(resaved / "heads.safetensors")
    full32 = safetensors.numpy.load_file(trained / "heads.safetensors")
    assert a.keys() == b.keys() == full32.keys()
    assert all(np.array_equal(b[k], full32[k].astype(b[k].dtype)) for k in b)  # resaving rounds, and nothing else
    # the same seeds train the same heads, but the two trainings may differ in the last bits of float32 (the
    # encoder's arithmetic depends on the thread count an earlier test left), and over 30 epochs that can move
    # weights by more than a float16 step (a weight-by-weight comparison failed once in CI): the resaved file and
    # the one trained in float16 must hold the same tensors and answer alike
    assert all(a[k].dtype == b[k].dtype and a[k].shape == b[k].shape for k in a)
    resaved_answer = emovox.load(resaved).predict(clip, sampling_rate=16000)
    assert resaved_answer.label == half.label
    assert max(abs(resaved_answer.scores[k] - half.scores[k]) for k in half.scores) < 5e-3


def test_predict_cli_jsonl_on_unseen_48k_stereo(trained, tmp_path):
    # unseen speakers, 48 kHz stereo files
    paths = []
    for label, style in STYLES.items():
        mono = speechlike(duration=1.0, sampling_rate=48000, f0=style["f0"] * 1.02, seed=999, amplitude=style["amplitude"])
        path = tmp_path / f"{label}.wav"
        sf.write(path, np.stack([mono, mono], axis=1), 48000)
        paths.append(str(path))
    result = CliRunner().invoke(app, ["predict", *paths, "--model", str(trained), "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(l) for l in result.stdout.splitlines() if l.startswith("{")]
    assert [l["path"] for l in lines] == paths
    for line, label in zip(lines, STYLES, strict=False):
        assert abs(sum(line["scores"].values()) - 1) < 1e-5
        assert abs(line["duration"] - 1.0) < 0.01
        assert line["label"] == label


def test_bad_file_gives_error_line_and_nonzero_exit(trained, tmp_path):
    good = write_wav(tmp_path / "good.wav", speechlike(duration=1.0), 16000)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    result = CliRunner().invoke(app, ["predict", str(bad), str(good), str(tmp_path / "missing.wav"),
                                      "--model", str(trained), "--format", "jsonl"])
    assert result.exit_code == 1
    lines = [json.loads(l) for l in result.stdout.splitlines() if l.startswith("{")]
    assert [("error" in l) for l in lines] == [True, False, True]
    assert lines[1]["label"] in ("sad", "angry")


def test_directory_and_glob_inputs_and_label_subset(trained, corpus):
    result = CliRunner().invoke(app, ["predict", str(corpus / "sad"), str(corpus / "angry" / "spk0_*.wav"),
                                      "--model", str(trained), "--format", "json", "--labels", "angry"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 24 + 6
    assert all(r["scores"] == {"angry": 1.0} for r in rows)


def test_unknown_label_subset_is_an_error(trained, corpus):
    result = CliRunner().invoke(app, ["predict", str(corpus / "sad"), "--model", str(trained), "--labels", "joy"])
    assert result.exit_code == 2


def test_python_api_batched_equals_one_by_one(trained):
    model = emovox.load(trained)
    signals = [speechlike(duration=d, f0=f, seed=i) for i, (d, f) in enumerate([(0.5, 120), (2.5, 240), (1.1, 180)])]
    batched = model.predict_signals(signals)
    for signal, b in zip(signals, batched, strict=True):
        single = model.predict(signal, 16000)
        assert single.label == b.label
        for label in model.labels:
            assert abs(single.scores[label] - b.scores[label]) < 1e-4
    assert model.predict(signals[0].astype(np.float64), 16000).duration == pytest.approx(0.5)


def test_table_output(trained, corpus):
    path = corpus / "sad" / "spk0_0.wav"
    wide = CliRunner().invoke(app, ["predict", str(path), "--model", str(trained)], env={"COLUMNS": "200"})
    assert wide.exit_code == 0
    assert "sad" in wide.stdout and str(path) in wide.stdout
    narrow = CliRunner().invoke(app, ["predict", str(path), "--model", str(trained)], env={"COLUMNS": "60"})
    row = next(line for line in narrow.stdout.splitlines() if "0." in line)  # the first line of the file's row
    assert narrow.exit_code == 0 and max(map(len, narrow.stdout.splitlines())) <= 60
    label = json.loads(CliRunner().invoke(app, ["predict", str(path), "--model", str(trained), "--format", "json"]).stdout)
    assert label[0]["label"] in row  # a narrow terminal folds the path but never cuts the predicted label


def test_table_shows_a_readable_file_name_at_80_columns(trained, corpus, tmp_path):
    """A deep path at 80 columns: the row shows the file name whole on one line (it was squeezed
    to 4 characters per line before), shortened from the left when the folders do not fit."""
    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 6)
    deep.mkdir(parents=True)
    path = deep / "spk0_0.wav"
    path.write_bytes((corpus / "sad" / "spk0_0.wav").read_bytes())
    result = CliRunner().invoke(app, ["predict", str(path), "--model", str(trained)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if "spk0_0.wav" in line]
    assert len(rows) == 1 and "0." in rows[0], result.stdout
    assert max(map(len, result.stdout.splitlines())) <= 80


def test_abstain_threshold_gives_unknown(trained, corpus):
    path = str(corpus / "sad" / "spk0_0.wav")
    result = CliRunner().invoke(app, ["predict", path, "--model", str(trained), "--format", "jsonl", "--abstain", "0.999999"])
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout.splitlines()[0])
    assert line["label"] == "unknown" and abs(sum(line["scores"].values()) - 1) < 1e-5
    result = CliRunner().invoke(app, ["predict", path, "--model", str(trained), "--format", "jsonl", "--abstain", "0.0"])
    assert json.loads(result.stdout.splitlines()[0])["label"] == "sad"


def test_train_with_the_silence_context(corpus, tmp_path):
    """--silence-context: the model records it and its predictions attend to the silence context (a model
    loaded with the setting switched off answers otherwise); with a padded window it is refused clearly."""
    out = tmp_path / "sc"
    result = CliRunner().invoke(app, ["train", f"folder:{corpus}", "--out", str(out), "--encoder", "whisper-tiny.en",
                                      "--ensemble", "1", "--epochs", "20", "--hidden", "16", "--silence-context"])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["features"]["silence_context"] is True
    clip = speechlike(duration=1.0, sampling_rate=16000, f0=STYLES["angry"]["f0"], seed=7)
    model = emovox.load(out)
    assert model.predict(clip, sampling_rate=16000).label in ("sad", "angry")
    with_context = model.extractor([clip])[0, -1]
    config["features"]["silence_context"] = False
    (out / "config.json").write_text(json.dumps(config))
    without = emovox.load(out).extractor([clip])[0, -1]
    assert np.linalg.norm(with_context - without) > 0.05 * np.linalg.norm(without)
    refused = CliRunner().invoke(app, ["train", f"folder:{corpus}", "--out", str(tmp_path / "x"), "--encoder",
                                       "whisper-tiny.en", "--silence-context", "--window", "30"])
    assert refused.exit_code != 0 and "silence" in refused.output
    refused = CliRunner().invoke(app, ["train", f"folder:{corpus}", "--out", str(tmp_path / "y"), "--encoder",
                                       "whisper-tiny.en", "--silence-stride", "8"])  # a stride without the context
    assert refused.exit_code != 0 and "silence_stride" in refused.output
    refused = CliRunner().invoke(app, ["train", f"folder:{corpus}", "--out", str(tmp_path / "z"), "--encoder",
                                       "whisper-tiny.en", "--level-band", "-14:-26"])
    assert refused.exit_code != 0 and "level band" in refused.output
