"""Tests for emovox.corpora.labels and emovox.corpora.manifest (and the doctests of the corpus modules)."""

from __future__ import annotations

import doctest
import importlib
import json

import pytest

from emovox.corpora.labels import CORPUS_LABELS, EMOTIONS, FOUR_CLASS, collapse, map_label
from emovox.corpora.manifest import Utterance, read_jsonl, summarize, with_durations, write_jsonl
from emovox.errors import CorpusError

DOCTEST_MODULES = [
    "emovox.corpora.labels", "emovox.corpora.manifest", "emovox.corpora", "emovox.corpora._common",
] + [f"emovox.corpora.{m}" for m in ("ravdess", "nemo", "turev", "emodb", "emovo", "cremad", "tess",
                                    "savee", "urdu", "iemocap", "folder", "csvmanifest")]


@pytest.mark.parametrize("name", DOCTEST_MODULES)
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_every_mapping_targets_the_taxonomy():
    expected = {"ravdess", "nemo", "turev", "emodb", "emovo", "cremad", "tess", "savee", "urdu",
                "iemocap", "koetts", "emospeech", "baved", "banglaser"}
    assert set(CORPUS_LABELS) == expected
    for corpus, table in CORPUS_LABELS.items():
        for native, label in table.items():
            assert native == native.lower(), (corpus, native)
            assert label is None or label in EMOTIONS, (corpus, native, label)


@pytest.mark.parametrize("corpus,native,label", [
    ("ravdess", "06", "fear"), ("ravdess", "08", "surprise"), ("ravdess", "02", "calm"),
    ("nemo", "Happiness", "happy"), ("nemo", "surprised", "surprise"),
    ("turev", "Calm", "calm"), ("emodb", "L", "boredom"), ("emodb", "A", "fear"),
    ("emovo", "pau", "fear"), ("emovo", "rab", "angry"), ("cremad", "FEA", "fear"),
    ("tess", "ps", "surprise"), ("tess", "pleasant_surprised", "surprise"),
    ("savee", "sa", "sad"), ("savee", "su", "surprise"), ("urdu", "Neutral", "neutral"),
    ("iemocap", "exc", "happy"), ("iemocap", "fru", None), ("iemocap", "xxx", None),
    ("iemocap", "oth", None), ("nemo", " anger ", "angry"), ("nemo", "unknown", None),
    ("emospeech", "fearful", "fear"), ("emospeech", "None", None), ("baved", "1", "neutral"),
    ("baved", "2", None), ("banglaser", "06", "disgust"), ("banglaser", "07", "fear"),
])
def test_map_label(corpus, native, label):
    assert map_label(corpus, native) == label


def test_map_label_unknown_corpus():
    with pytest.raises(CorpusError, match="known: banglaser, baved, cremad"):
        map_label("nosuch", "x")


def test_collapse():
    assert FOUR_CLASS == ("neutral", "happy", "sad", "angry")
    assert {e: collapse(e) for e in EMOTIONS} == {
        "neutral": "neutral", "calm": "neutral", "happy": "happy", "sad": "sad",
        "angry": "angry", "fear": None, "disgust": None, "surprise": None, "boredom": None}
    assert [collapse(e, "full") for e in EMOTIONS] == list(EMOTIONS)
    assert collapse("joy") is None
    with pytest.raises(ValueError, match="unknown scheme"):
        collapse("happy", "7class")


def _utts():
    return [
        Utterance("/d/b.flac", "happy", "happiness", "KS0", "nemo", gender="male", language="pl",
                  transcript="Zażółć gęślą jaźń.", duration=1.5),
        Utterance("/d/a.wav", "angry", "05", "01", "ravdess", gender="male", language="en"),
        Utterance("/d/c.wav", "angry", "05", "01", "ravdess"),
    ]


def test_utterance_dict_round_trip_and_speaker_key():
    u = _utts()[0]
    assert u.speaker_key == "nemo/KS0"
    d = u.to_dict()
    assert d["transcript"] == "Zażółć gęślą jaźń." and d["duration"] == 1.5
    assert Utterance.from_dict({**d, "unknown_key": 3}) == u
    with pytest.raises(CorpusError, match="speaker"):
        Utterance.from_dict({"path": "x", "label": "sad", "native_label": "sad", "corpus": "c"})


def test_jsonl_round_trip(tmp_path):
    utts = _utts()
    out = write_jsonl(utts, tmp_path / "sub" / "m.jsonl")
    assert read_jsonl(out) == utts
    text = out.read_text(encoding="utf-8")
    assert "Zażółć" in text  # ensure_ascii=False
    assert len(text.splitlines()) == 3 and all(json.loads(line) for line in text.splitlines())
    assert [p.name for p in out.parent.iterdir()] == ["m.jsonl"]  # no temp file left


def test_write_jsonl_is_atomic(tmp_path):
    path = write_jsonl(_utts(), tmp_path / "m.jsonl")

    def broken():
        yield _utts()[0]
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_jsonl(broken(), path)
    assert read_jsonl(path) == _utts()  # old content intact
    assert [p.name for p in tmp_path.iterdir()] == ["m.jsonl"]


def test_read_jsonl_errors(tmp_path):
    with pytest.raises(CorpusError, match="not found"):
        read_jsonl(tmp_path / "none.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"path": "x"}\n', encoding="utf-8")
    with pytest.raises(CorpusError, match="bad.jsonl:1"):
        read_jsonl(bad)
    bad.write_text("\n[1, 2]\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="bad.jsonl:2: expected a JSON object"):
        read_jsonl(bad)
    bad.write_text("{oops\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="not JSON"):
        read_jsonl(bad)


def test_summarize():
    s = summarize(_utts())
    assert s["utterances"] == 3
    assert s["labels"] == {"happy": 1, "angry": 2}
    assert list(s["labels"]) == ["happy", "angry"]  # taxonomy order
    assert s["speakers"] == {"nemo/KS0": 1, "ravdess/01": 2}
    assert s["corpora"] == {"nemo": 1, "ravdess": 2}
    assert s["hours"] == pytest.approx(1.5 / 3600)
    assert summarize([])["utterances"] == 0


def test_with_durations(tmp_path, write_audio):
    p = write_audio(tmp_path / "x.flac", seconds=0.25)
    u = Utterance(str(p), "sad", "sad", "s", "c")
    assert with_durations([u])[0].duration == pytest.approx(0.25)
    with pytest.raises(CorpusError, match="cannot read"):
        with_durations([Utterance(str(tmp_path / "none.wav"), "sad", "sad", "s", "c")])

