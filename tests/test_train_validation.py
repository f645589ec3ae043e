"""What each head of an ensemble validates on: held-out speakers of every corpus, or one whole
training corpus (``TrainConfig.validation``), and the corpus adversary reaching fit_head."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.corpora.manifest import Utterance
from emovox.errors import EmovoxError
from emovox.training import train as train_module
from emovox.training.fit import FitConfig
from emovox.training.train import TrainConfig, train_ensemble


def _corpora(names=("a", "b", "c"), clips=24, labels=("sad", "angry")):
    rng = np.random.default_rng(0)
    utts, X = [], []
    for c, corpus in enumerate(names):
        for i in range(clips):
            label = labels[i % len(labels)]
            utts.append(Utterance(f"/{corpus}/{i}.wav", label, label, f"s{i % 4}", corpus))
            X.append(rng.normal(size=(1, 6)) + (2.0 if label == "angry" else 0.0) + c)
    return np.array(X, np.float32), utts


def test_corpus_validation_holds_out_one_whole_corpus_per_head_in_turn():
    X, utts = _corpora()
    config = TrainConfig(ensemble=4, validation="corpus", fit=FitConfig(epochs=3, hidden=8))
    ensemble = train_ensemble(X, utts, config=config)
    held = [member["val_speakers"] for member in ensemble.members]
    assert held == [[f"{c}/s{i}" for i in range(4)] for c in ("a", "b", "c", "a")], held


def test_speaker_validation_takes_some_speakers_of_every_corpus():
    X, utts = _corpora()
    ensemble = train_ensemble(X, utts, config=TrainConfig(ensemble=1, fit=FitConfig(epochs=3, hidden=8)))
    assert {name.split("/")[0] for name in ensemble.members[0]["val_speakers"]} == {"a", "b", "c"}


def test_corpus_validation_needs_two_corpora_and_unknown_modes_are_refused():
    X, utts = _corpora(("a",))
    with pytest.raises(EmovoxError, match="at least two training corpora"):
        train_ensemble(X, utts, config=TrainConfig(ensemble=1, validation="corpus", fit=FitConfig(epochs=1, hidden=8)))
    with pytest.raises(ValueError, match="validation must be one of"):
        TrainConfig(validation="folds")


def _spy_on_fit_head(monkeypatch, keyword: str) -> list:
    """What train_ensemble passes fit_head as ``keyword``, one entry per head, in order."""
    seen = []
    real = train_module.fit_head

    def spy(*args, **kw):
        seen.append(kw.get(keyword))
        return real(*args, **kw)

    monkeypatch.setattr(train_module, "fit_head", spy)
    return seen


def test_the_adversary_is_given_each_training_row_s_corpus(monkeypatch):
    X, utts = _corpora()
    seen = _spy_on_fit_head(monkeypatch, "domains")
    train_ensemble(X, utts, config=TrainConfig(ensemble=1, fit=FitConfig(epochs=1, hidden=8, adversary=0.5)))
    train_ensemble(X, utts, config=TrainConfig(ensemble=1, fit=FitConfig(epochs=1, hidden=8)))
    # one of each corpus's four speakers (six clips) validates; the rest train, each with its corpus
    assert sorted(set(seen[0])) == ["a", "b", "c"] and len(seen[0]) == 3 * (24 - 6) and seen[1] is None


def test_voice_swapping_uses_each_head_s_training_speakers_per_view_and_never_moves_copies(monkeypatch):
    # 12 clips and three labels a speaker: enough for a voice (VoiceTable.build: 10 and 3)
    X, utts = _corpora(clips=48, labels=("sad", "angry", "happy"))
    seen = _spy_on_fit_head(monkeypatch, "voices")
    copies = X[None] + 0.1
    config = TrainConfig(ensemble=1, centre_corpora="both", augment=1,
                         fit=FitConfig(epochs=1, hidden=8, voice_swap=0.5))
    train_ensemble(X, utts, config=config, augmented=copies)
    train_ensemble(X, utts, config=TrainConfig(ensemble=1, fit=FitConfig(epochs=1, hidden=8)))
    voices = seen[0]
    clean = 2 * 3 * (48 - 12)  # raw and centred rows of the three speakers per corpus that train
    # each training speaker is two voices (raw, centred); the copies (raw and centred too) stay put
    assert len(voices.means) == 2 * 3 * 3 and len(voices.rows) == 2 * clean
    assert (voices.rows[:clean] >= 0).all() and (voices.rows[clean:] == -1).all()
    assert seen[1] is None
