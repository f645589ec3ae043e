"""The generalisation benchmark's bookkeeping: runs split over cores merge into one entry."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import bench_generalisation

        yield bench_generalisation
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_held_out_runs_merge_into_one_entry_with_its_summary_recomputed(bench):
    earlier = {"d": {"loco": {"nemo": {"single": 0.4, "n": 10}}, "seconds": 5.0}}
    core_a = {"d": {"loco": {"nemo": {"single": 0.6, "n": 10}, "turev": {"single": 0.3, "n": 7}}, "seconds": 10.0}}
    core_b = {"d": {"loco": {"tess": {"single": 0.9, "n": 4}}, "seconds": 20.0},
              "new": {"loco": {"tess": {"single": 0.5}}, "seconds": 1.0}}
    merged = bench.merge_runs(earlier, [core_a, core_b])
    d = merged["d"]
    assert sorted(d["loco"]) == ["nemo", "tess", "turev"] and d["loco"]["nemo"]["single"] == 0.6  # a part replaces
    assert d["summary"]["single"]["mean"] == pytest.approx(0.6) and d["summary"]["single"]["worst_corpus"] == "turev"
    assert "n" not in d["summary"] and d["seconds"] == 35.0
    assert merged["new"]["summary"]["single"]["mean"] == 0.5
    assert earlier["d"]["loco"]["nemo"]["single"] == 0.4  # the inputs are not changed


def test_the_merge_command_writes_the_table_and_the_plot(tmp_path):
    parts = []
    for i, corpus in enumerate(("nemo", "turev")):
        path = tmp_path / f"part{i}.json"
        rows = {corpus: {"single": 0.5 + i / 10, "half": 0.5, "profile_neutral": 0.6, "skewed_neutral": 0.6, "n": 5}}
        path.write_text(json.dumps({"d": {"note": "", "loco": rows, "summary": {}, "seconds": 1.0}}))
        parts.append(path)
    out = tmp_path / "merged.json"
    done = subprocess.run([sys.executable, str(BENCHMARKS / "bench_generalisation.py"), "--merge", *map(str, parts),
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(json.loads(out.read_text())["d"]["loco"]) == ["nemo", "turev"]
    assert "| d | 50.0 | 60.0 | **55.0**" in done.stdout and out.with_suffix(".png").is_file()
