"""``emovox batch``: inputs, the local pool on good and corrupt clips, resume after SIGKILL, Ray == local."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import emovox
import emovox.prediction.loading
from emovox.batch import PartStore, read_inputs, result_schema, run_batch
from emovox.cli import app
from emovox.errors import CorpusError
from emovox.testing import write_wav
from server_support import SR, scripted_recording, silence, styled, train_tiny_model

LABELS = ("sad", "angry")
N_BAD = 4


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    out = base / "tiny-voice-exported"
    if not (out / "config.json").exists():
        result = CliRunner().invoke(app, ["export", str(train_tiny_model(base)), str(out)])
        assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """36 good clips of two styles, 3 corrupt files and one missing path, listed in a manifest."""
    root = tmp_path_factory.mktemp("archive")
    paths = []
    for label in (*LABELS, "bad"):
        (root / label).mkdir()
    for k in range(36):
        label = LABELS[k % 2]
        paths.append(str(write_wav(root / label / f"clip{k:02d}.wav", styled(label, 0.8 + 0.05 * (k % 5), 300 + k), SR)))
    (root / "bad" / "junk.wav").write_bytes(b"not audio at all")
    (root / "bad" / "empty.wav").write_bytes(b"")
    write_wav(root / "bad" / "short.wav", silence(0.01), SR)
    paths += [str(root / "bad" / n) for n in ("junk.wav", "empty.wav", "short.wav")]
    paths.append(str(root / "bad" / "missing.wav"))
    manifest = root / "manifest.jsonl"
    manifest.write_text("".join(json.dumps({"path": p, "n": i}) + "\n" for i, p in enumerate(paths)))
    return manifest, paths


def rows(folder) -> list[dict]:
    return pq.read_table(folder).sort_by("path").to_pylist()


def assert_same_rows(got: list[dict], want: list[dict]) -> None:
    """Equal, scores within 1e-6 (batches of other sizes pad clips differently)."""
    assert [r["path"] for r in got] == [r["path"] for r in want]
    for a, b in zip(got, want, strict=True):
        assert {k: v for k, v in a.items() if not k.startswith("score_")} == \
               {k: v for k, v in b.items() if not k.startswith("score_")}
        assert all(a[k] == pytest.approx(b[k], abs=1e-6) for k in a if k.startswith("score_"))


def invoke(*args: str):
    result = CliRunner().invoke(app, ["batch", *args, "--no-progress"])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def reference(exported, archive, tmp_path_factory):
    """The local pool (2 processes) over the archive: the rows every other run must equal."""
    out = tmp_path_factory.mktemp("reference") / "out"
    result = invoke(str(archive[0]), str(out), "--model", str(exported), "--workers", "2", "--chunk-size", "5")
    assert "40 files: 0 already done, 40 annotated (4 failed)" in result.output
    return out


def test_read_inputs_folder_glob_and_manifests(tmp_path):
    for name in ("b.wav", "a.flac", "notes.txt"):
        (tmp_path / "d" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "d" / name).write_bytes(b"")
    assert read_inputs(tmp_path / "d") == [str(tmp_path / "d" / "a.flac"), str(tmp_path / "d" / "b.wav")]
    assert read_inputs(str(tmp_path / "d" / "*.wav")) == [str(tmp_path / "d" / "b.wav")]
    pq.write_table(pa.table({"path": ["x.wav", "/abs/y.wav", "x.wav"]}), tmp_path / "m.parquet")
    assert read_inputs(tmp_path / "m.parquet") == [str(tmp_path / "x.wav"), "/abs/y.wav"]
    (tmp_path / "m.csv").write_text("file,label\nx.wav,sad\n")
    with pytest.raises(CorpusError, match="no 'path' column"):
        read_inputs(tmp_path / "m.csv")
    with pytest.raises(CorpusError, match="no such"):
        read_inputs(tmp_path / "nowhere")


def test_local_pool_rows_match_the_model_and_record_bad_files(reference, archive, exported):
    _, paths = archive
    got = rows(reference)
    assert sorted(r["path"] for r in got) == sorted(paths)  # each file exactly once
    assert pq.read_schema(reference / "part-00000.parquet").names == result_schema(LABELS).names
    assert len(list(reference.glob("part-*.parquet"))) == 8  # 40 files in chunks of 5
    good = [r for r in got if r["error"] is None]
    assert sum(r["label"] == Path(r["path"]).parent.name for r in good) >= 0.75 * len(good)
    expected = {r.path: r for r in emovox.load(exported).predict_files(paths)}
    for row in got:
        want = expected[row["path"]]
        if "bad" in row["path"]:
            assert row["label"] is None and row["duration"] is None
            assert row["error"] == want.error and row["error_type"] == want.kind
            continue
        assert row["error"] is None and row["model_id"] == "tiny-voice-model"
        assert row["label"] == want.label
        assert row["duration"] == pytest.approx(want.duration, abs=1e-3)
        for label in LABELS:
            assert row[f"score_{label}"] == pytest.approx(want.scores[label], abs=1e-6)


def test_rerun_is_a_no_op_and_other_columns_are_refused(reference, archive, exported):
    before = sorted(p.name for p in reference.iterdir())
    result = invoke(str(archive[0]), str(reference), "--model", str(exported), "--workers", "1")
    assert "40 already done, 0 annotated" in result.output
    assert sorted(p.name for p in reference.iterdir()) == before
    result = CliRunner().invoke(app, ["batch", str(archive[0]), str(reference), "--model", str(exported), "--timeline"])
    assert result.exit_code == 2 and "other columns" in " ".join(result.output.split())


def test_second_writer_is_locked_out(tmp_path):
    schema = pa.schema([("path", pa.string())])
    with PartStore(tmp_path, schema):
        with pytest.raises(Exception, match="another emovox batch run"):
            PartStore(tmp_path, schema)
    PartStore(tmp_path, schema).close()  # released


def test_resume_after_sigkill_completes_without_duplicates(reference, archive, exported, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-c", "from emovox.cli import app; app()", "batch", str(archive[0]), str(out),
               "--model", str(exported), "--workers", "1", "--chunk-size", "2", "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (out / "part-00002.parquet").exists():
            assert process.poll() is None and time.monotonic() < deadline, "batch ended before it was killed"
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    first = rows(out)
    assert 6 <= len(first) < 40  # killed part-way
    (out / ".part-00099.parquet.tmp").write_bytes(b"half a part")  # as if killed mid-write
    result = invoke(str(archive[0]), str(out), "--model", str(exported), "--workers", "2", "--chunk-size", "4")
    assert f"{len(first)} already done, {40 - len(first)} annotated" in result.output
    assert not list(out.glob(".*.tmp"))
    got = rows(out)
    assert len({r["path"] for r in got}) == len(got) == 40
    assert_same_rows(got, rows(reference))


def test_timeline_rows_per_segment(exported, tmp_path):
    signal, truth = scripted_recording()
    (tmp_path / "in").mkdir()
    speech = write_wav(tmp_path / "in" / "speech.wav", signal, SR)
    write_wav(tmp_path / "in" / "quiet.wav", silence(1.0), SR)
    (tmp_path / "in" / "junk.wav").write_bytes(b"junk")
    summary = run_batch(tmp_path / "in", tmp_path / "out", model_dir=exported, timeline=True, progress=False)
    assert summary.processed == 3 and summary.failed == 1
    got = pq.read_table(tmp_path / "out").to_pylist()
    segments = [r for r in got if r["path"] == str(speech)]
    assert len(segments) >= len(truth) and [r["segment"] for r in segments] == list(range(len(segments)))
    assert all(r["label"] in LABELS and r["start"] < r["end"] for r in segments)
    quiet = [r for r in got if r["path"].endswith("quiet.wav")]
    assert len(quiet) == 1 and quiet[0]["segment"] is None and quiet[0]["error"] is None
    assert run_batch(tmp_path / "in", tmp_path / "out", model_dir=exported, timeline=True, progress=False).processed == 0


@pytest.fixture
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, object_store_memory=100 * 2**20, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def test_ray_engine_on_a_local_cluster_equals_local(ray_cluster, reference, archive, exported, tmp_path):
    summary = run_batch(archive[0], tmp_path / "out", engine="ray", workers=2, model_dir=exported, chunk_size=5,
                        progress=False)
    assert (summary.processed, summary.failed) == (40, N_BAD)
    assert ray_cluster.is_initialized()  # the engine used this cluster and left it running
    assert rows(tmp_path / "out") == rows(reference)  # same chunks, same batches: identical


def test_resume_matches_files_however_the_input_path_is_spelled(tmp_path, monkeypatch):
    """``batch in out`` then ``batch /abs/path/in out`` (or ``./in``, or through a linked folder)
    annotated every file twice: done files were matched on the raw string."""
    from emovox.prediction.predictor import Predictor

    class Stub(Predictor):
        labels = list(LABELS)
        model_id = "stub"

        def probabilities_for_signals(self, signals):
            return np.array([[0.25, 0.75]] * len(signals))

    model_dir = tmp_path / "stub-model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps({"format": "emovox-onnx", "labels": list(LABELS)}))
    monkeypatch.setattr(emovox.prediction.loading, "load", lambda *a, **k: Stub())
    (tmp_path / "in").mkdir()
    for k in range(3):
        write_wav(tmp_path / "in" / f"clip{k}.wav", styled("sad", 0.5, k), SR)
    (tmp_path / "link").symlink_to(tmp_path / "in")
    monkeypatch.chdir(tmp_path)
    first = run_batch("in", "out", model_dir=model_dir, progress=False)
    assert (first.processed, first.skipped) == (3, 0)
    for spelling in (str(tmp_path / "in"), "./in/", str(tmp_path / "link"), "in/../in"):
        again = run_batch(spelling, "out", model_dir=model_dir, progress=False)
        assert (again.processed, again.skipped) == (0, 3), spelling
    got = pq.read_table(tmp_path / "out").to_pylist()
    assert sorted(r["path"] for r in got) == [f"in/clip{k}.wav" for k in range(3)]  # old rows stay as written
    manifest = tmp_path / "list.csv"
    manifest.write_text("path\nin/clip0.wav\n./in/clip0.wav\n" + str(tmp_path / "in" / "clip0.wav") + "\n")
    assert read_inputs(manifest) == [str(tmp_path / "in" / "clip0.wav")]  # one file, listed three ways
