"""`emovox evaluate` on synthetic corpora: protocols, metrics, report files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from emovox.cli import app
from emovox.corpora.manifest import Utterance
from emovox.evaluation.metrics import classification_metrics, expected_calibration_error
from emovox.evaluation.protocols import Outcome, cross_corpus, speaker_kfold
from emovox.evaluation.splits import speaker_folds, speaker_holdout
from emovox.testing import make_synthetic_corpus
from emovox.training.train import Ensemble


@pytest.fixture(scope="module")
def two_corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpora")
    a = make_synthetic_corpus(root / "alpha", speakers=3, takes=4, prefix="a")
    b = make_synthetic_corpus(root / "beta", speakers=3, takes=4, prefix="b")
    return a, b


def test_kfold_cli_writes_report_with_protocol(two_corpora, tmp_path):
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["evaluate", f"folder:{two_corpora[0]}", "--folds", "3", "--encoder", "whisper-tiny.en",
                                      "--ensemble", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    (res,) = report["results"]
    assert "speaker-independent 3-fold" in res["split"]
    assert res["metrics"]["n"] == 24 and res["metrics"]["ua"] > 0.8
    md = (out / "report.md").read_text()
    assert "speaker-independent" in md and "UA" in md
    for kind in ("confusion", "reliability", "per_class"):
        assert (out / f"alpha_{kind}.png").stat().st_size > 1000


def test_cross_corpus_cli(two_corpora, tmp_path):
    result = CliRunner().invoke(app, ["evaluate", f"folder:{two_corpora[0]}", f"folder:{two_corpora[1]}", "--protocol",
                                      "cross-corpus", "--encoder", "whisper-tiny.en", "--ensemble", "1", "--out",
                                      str(tmp_path), "--no-plots"])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "report.json").read_text())["results"]
    assert [r["name"] for r in results] == ["alpha", "beta"]
    assert "train on beta; test on all of alpha" in results[0]["split"]


def test_folds_never_share_speakers():
    speakers = np.array([f"c/{i % 7}" for i in range(70)])
    folds = speaker_folds(speakers, 3)
    assert sum(f.sum() for f in folds) == 70
    for i, f in enumerate(folds):
        for g in folds[i + 1:]:
            assert not set(speakers[f]) & set(speakers[g])
    val = speaker_holdout(speakers, np.array(["c"] * 70), fraction=0.3, seed=1)
    assert 0 < val.sum() < 70 and not set(speakers[val]) & set(speakers[~val])


def test_metrics_match_hand_computed_values():
    m = classification_metrics(["a", "a", "a", "b"], ["a", "a", "b", "b"], labels=["a", "b"],
                               probs=np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.3, 0.7]]))
    assert m["wa"] == 0.75
    assert m["ua"] == pytest.approx((2 / 3 + 1) / 2)
    assert m["confusion"] == [[2, 1], [0, 1]]
    # confidences 0.9, 0.8, 0.6, 0.7 with correctness 1, 1, 0, 1
    assert m["ece"] == pytest.approx(expected_calibration_error(np.array([[0.9], [0.8], [0.6], [0.7]]),
                                                                np.array([1, 1, 0, 1], dtype=bool)))
    assert expected_calibration_error(np.array([[1.0], [1.0]]), np.array([True, True])) == 0.0


class _Constant:
    """A stand-in trainer whose ensemble predicts fixed probabilities."""

    def __init__(self, labels, row):
        self.labels, self.row = labels, np.array(row)

    def __call__(self, X, utts):
        ens = Ensemble([], self.labels, 1.0, [])
        ens.probabilities = lambda X, calibrated=True, adapted=False: np.tile(self.row, (len(X), 1))
        return ens


def _utts(corpus, labels, speakers):
    return [Utterance(f"/{corpus}/{i}.wav", l, l, s, corpus) for i, (l, s) in enumerate(zip(labels, speakers, strict=True))]


def test_four_class_scheme_merges_calm_and_drops_others():
    utts = _utts("x", ["calm", "neutral", "fear", "angry"], ["1", "1", "2", "2"]) + _utts("y", ["sad", "happy"], ["3", "3"])
    trainer = _Constant(["neutral", "calm", "happy", "sad", "angry", "fear"], [0.1, 0.3, 0.1, 0.1, 0.2, 0.2])
    outcomes = cross_corpus(np.zeros((6, 1, 1)), utts, trainer=trainer, scheme="4class")
    x = outcomes[0]
    assert x.truth == ["neutral", "neutral", "angry"]  # calm counted as neutral, fear dropped
    assert x.labels == ["neutral", "happy", "sad", "angry"]
    assert x.predicted == ["neutral"] * 3  # 0.1 + 0.3 calm merged beats angry 0.2
    assert np.allclose(x.probs.sum(1), 1)


def test_kfold_outcome_covers_every_utterance_once():
    utts = _utts("x", ["sad", "angry"] * 6, [str(i // 2) for i in range(12)])
    o = speaker_kfold(np.zeros((12, 1, 1)), utts, 3, trainer=_Constant(["sad", "angry"], [0.4, 0.6]))
    assert len(o.truth) == 12 and isinstance(o, Outcome) and set(o.predicted) == {"angry"}


def test_train_and_evaluate_take_the_same_recipe_options(two_corpora, tmp_path):
    recipe = ["--layers", "all", "--dropout", "0.4", "--label-smoothing", "0.05", "--balance-corpora",
              "--pooling", "level_mean_std", "--centre-corpora", "both", "--mixup", "0.2",
              "--voice-swap", "0.3", "--voice-spread", "1.5"]
    corpora = [f"folder:{two_corpora[0]}"]
    out = tmp_path / "model"
    trained = CliRunner().invoke(app, ["train", *corpora, "--out", str(out), "--encoder", "whisper-tiny.en",
                                       "--ensemble", "1", "--epochs", "5", "--hidden", "16", *recipe])
    assert trained.exit_code == 0, trained.output
    saved = json.loads((out / "config.json").read_text())
    config = saved["training"]["config"]
    assert saved["features"]["pooling"] == "level_mean_std"
    assert config["balance_corpora"] is True and config["fit"]["layers"] is None
    assert config["fit"]["dropout"] == 0.4 and config["fit"]["label_smoothing"] == 0.05
    assert config["centre_corpora"] == "both" and config["fit"]["mixup"] == 0.2
    assert config["fit"]["voice_swap"] == 0.3 and config["fit"]["voice_spread"] == 1.5
    assert config["fit"]["nuisance_dims"] == 0
    # the projection needs voices: this corpus's speakers have too few clips each, and training says so
    refused = CliRunner().invoke(app, ["train", *corpora, "--out", str(tmp_path / "nap"), "--encoder", "whisper-tiny.en",
                                       "--ensemble", "1", "--epochs", "5", "--hidden", "16", "--nuisance-dims", "2"])
    assert refused.exit_code != 0 and "usable voices" in refused.output, refused.output
    evaluated = CliRunner().invoke(app, ["evaluate", *corpora, "--folds", "3", "--encoder", "whisper-tiny.en",
                                         "--ensemble", "1", "--hidden", "16", "--out", str(tmp_path / "r"), "--no-plots",
                                         *recipe])
    assert evaluated.exit_code == 0, evaluated.output
    bad = CliRunner().invoke(app, ["evaluate", *corpora, "--encoder", "whisper-tiny.en", "--pooling", "median"])
    assert bad.exit_code == 2 and "unknown pooling 'median'" in bad.output
    bad = CliRunner().invoke(app, ["train", *corpora, "--out", str(tmp_path / "m2"), "--encoder", "whisper-tiny.en",
                                   "--validation", "folds"])
    assert bad.exit_code == 2 and "validation must be one of" in bad.output
    # one corpus gives the adversary nothing to tell apart: a clear error, not a silent no-op
    bad = CliRunner().invoke(app, ["train", *corpora, "--out", str(tmp_path / "m3"), "--encoder", "whisper-tiny.en",
                                   "--ensemble", "1", "--epochs", "2", "--hidden", "16", "--adversary", "0.5"])
    assert bad.exit_code == 2 and "needs at least two training corpora" in bad.output, bad.output
