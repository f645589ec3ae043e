"""Candidate-set labels: a clip known only to be one of several emotions (BAVED's high arousal
level: happy, angry, fear or surprise) trains a head through the probability its candidates hold
together, never validates it, and leaves single-label training exactly as it was."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from emovox.corpora.labels import candidate_label, candidates
from emovox.corpora.manifest import Utterance
from emovox.errors import CorpusError, EmovoxError
from emovox.training import train as train_module
from emovox.training.fit import FitConfig, class_weights, compute_objective, fit_head
from emovox.training.train import TrainConfig, label_set, label_targets, train_ensemble


def test_a_candidate_label_names_taxonomy_emotions_in_taxonomy_order():
    assert candidate_label(["surprise", "angry", "happy"]) == "happy|angry|surprise"
    assert candidates("happy|angry|surprise") == ("happy", "angry", "surprise")
    assert candidates("sad") == ("sad",)
    with pytest.raises(CorpusError, match="outside the taxonomy"):
        candidates("happy|elated")


def test_one_hot_candidates_give_the_weighted_cross_entropy_exactly():
    torch.manual_seed(0)
    logits, targets = torch.randn(8, 4), torch.tensor([0, 1, 2, 3, 0, 1, 1, 2])
    weights = class_weights(targets.numpy(), 4)
    one_hot = torch.nn.functional.one_hot(targets, 4).bool()
    rows = torch.rand(8)
    for row_weights in (None, rows):
        plain = compute_objective(logits, targets, weights, 0.0, row_weights)
        with_sets = compute_objective(logits, targets, weights, 0.0, row_weights, one_hot)
        assert with_sets.item() == pytest.approx(plain.item(), rel=1e-6)


def test_a_candidate_row_is_satisfied_by_any_of_its_candidates_and_weighs_their_mean_class_weight():
    weights = torch.tensor([1.0, 3.0, 0.5])
    sets = torch.tensor([[True, True, False]])
    first = compute_objective(torch.tensor([[9.0, -9.0, -9.0]]), torch.tensor([-1]), weights, 0.0, candidates=sets)
    second = compute_objective(torch.tensor([[-9.0, 9.0, -9.0]]), torch.tensor([-1]), weights, 0.0, candidates=sets)
    outside = compute_objective(torch.tensor([[-9.0, -9.0, 9.0]]), torch.tensor([-1]), weights, 0.0, candidates=sets)
    assert first.item() == pytest.approx(second.item(), abs=1e-6) and first.item() < 1e-6 < outside.item()
    # two rows: a set row (mean class weight 2) counts twice as much as a class-0 row (weight 1)
    logits = torch.tensor([[0.0, 0.0, 2.0], [0.0, 0.0, 2.0]])
    both = compute_objective(logits, torch.tensor([-1, 0]), weights,
                             0.0, candidates=torch.tensor([[True, True, False], [True, False, False]]))
    set_loss = float(torch.logsumexp(logits[0], 0) - torch.logsumexp(logits[0, :2], 0))
    single_loss = float(torch.logsumexp(logits[1], 0) - logits[1, 0])
    assert both.item() == pytest.approx((2 * set_loss + 1 * single_loss) / 3, rel=1e-5)


def _arousal_data(seed: int):
    """Three classes along three dimensions; class 1 and 2 rows of the "z" group are labelled
    only as the set {1, 2} (as BAVED's high level), class 0 rows singly."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1, 2], 80)
    X = rng.normal(size=(240, 1, 6)).astype(np.float32)
    X[np.arange(240), 0, y] += 3.0
    return X, y


def test_a_head_learns_a_set_row_s_candidates_and_the_single_labels_classes():
    X, y = _arousal_data(0)
    sets = np.eye(3, dtype=bool)[y]
    partial = (y > 0) & (np.arange(240) % 2 == 0)  # half of classes 1 and 2 known only as "1 or 2"
    sets[partial] = [False, True, True]
    y_fit = np.where(partial, -1, y)
    config = FitConfig(epochs=30, hidden=16, lr=1e-2, dropout=0.0)
    head = fit_head(X, y_fit, None, None, n_classes=3, config=config, candidates=sets).head
    X_test, y_test = _arousal_data(1)
    with torch.no_grad():
        probs = torch.softmax(head(torch.from_numpy(X_test)), -1).numpy()
    assert (probs.argmax(1) == y_test).mean() > 0.9  # the single labels still tell 1 from 2
    # rows of the set's classes put their probability in the set, class 0 rows outside it
    assert probs[y_test > 0][:, 1:].sum(1).mean() > 0.9 and probs[y_test == 0][:, 1:].sum(1).mean() < 0.1


def test_fit_head_checks_candidates_and_refuses_options_that_need_one_label_a_row():
    X, y = _arousal_data(0)
    sets = np.eye(3, dtype=bool)[y]
    with pytest.raises(ValueError, match="training rows, classes"):
        fit_head(X, y, None, None, n_classes=3, config=FitConfig(epochs=1), candidates=sets[:, :2])
    wrong = sets.copy()
    wrong[0] = [False, True, False]  # row 0 is class 0
    with pytest.raises(ValueError, match="single-label row"):
        fit_head(X, y, None, None, n_classes=3, config=FitConfig(epochs=1), candidates=wrong)
    for option in ({"mixup": 0.4}, {"label_smoothing": 0.1}, {"dimensions_weight": 0.5}):
        with pytest.raises(ValueError, match="candidate-set labels do not combine"):
            fit_head(X, y, None, None, n_classes=3, config=FitConfig(epochs=1, **option), candidates=sets,
                     points=np.zeros((3, 2)))


def _corpora_with_a_level_corpus():
    """Two corpora with single labels and a third ("z") with sad, neutral and a high-arousal set."""
    rng = np.random.default_rng(0)
    utts, rows = [], []
    centre = {"neutral": 0, "happy": 1, "sad": 2, "angry": 3}
    for corpus in ("a", "b"):
        for speaker in range(5):
            for i in range(12):
                label = list(centre)[i % 4]
                utts.append(Utterance(f"/t/{corpus}{speaker}_{i}.wav", label, label, str(speaker), corpus))
                rows.append(centre[label])
    for speaker in range(5):
        for i in range(12):
            label = ("sad", "neutral", "happy|angry|fear|surprise")[i % 3]
            utts.append(Utterance(f"/t/z{speaker}_{i}.wav", label, f"level{i % 3}", str(speaker), "z"))
            rows.append((2, 0, 1 + 2 * (i % 2))[i % 3])  # the set's rows are happy or angry
    X = rng.normal(size=(len(utts), 2, 8)).astype(np.float32)
    X[np.arange(len(utts)), :, rows] += 3.0
    return X, utts


def test_label_targets_mark_set_rows_and_the_label_set_counts_their_members():
    X, utts = _corpora_with_a_level_corpus()
    labels = label_set(utts)
    assert labels == ["neutral", "happy", "sad", "angry", "fear", "surprise"]
    y, sets = label_targets(utts, labels)
    partial = np.array([u.label.count("|") > 0 for u in utts])
    assert (y[partial] == -1).all() and (y[~partial] >= 0).all()
    assert sets[partial].sum(1).tolist() == [4] * int(partial.sum()) and (sets[~partial].sum(1) == 1).all()
    assert label_targets(utts[:60], labels)[1] is None  # single labels only: no candidates at all
    with pytest.raises(EmovoxError, match="not among"):
        label_targets(utts, ["neutral", "sad"])


def test_a_held_out_speaker_s_set_rows_neither_train_nor_validate(monkeypatch):
    X, utts = _corpora_with_a_level_corpus()
    seen = []
    real = train_module.fit_head
    monkeypatch.setattr(train_module, "fit_head", lambda *a, **kw: seen.append((a, kw)) or real(*a, **kw))
    config = TrainConfig(ensemble=1, val_fraction=0.2, fit=FitConfig(epochs=3, hidden=8))
    ensemble = train_ensemble(X, utts, config=config)
    (X_fit, y_fit, X_val, y_val), kw = seen[0][0], seen[0][1]
    speakers = np.array([u.speaker_key for u in utts])
    held = train_module.validation_rows(speakers, np.array([u.corpus for u in utts]), config, 0)
    assert {s.split("/")[0] for s in speakers[held]} == {"a", "b", "z"}  # "z" has a validation speaker
    partial = np.array(["|" in u.label for u in utts])
    assert len(X_fit) == int((~held).sum()) and len(X_val) == int((held & ~partial).sum())
    assert (y_val >= 0).all() and kw["candidates"].shape == (len(X_fit), len(ensemble.labels))
    assert (y_fit == -1).sum() == int((partial & ~held).sum())
    # no candidate sets: fit_head is called as before (no candidates)
    seen.clear()
    single = [u for u in utts if "|" not in u.label]
    train_ensemble(X[~partial], single, config=config)
    assert seen[0][1]["candidates"] is None


def test_options_that_need_one_label_a_row_are_refused_with_candidate_sets():
    X, utts = _corpora_with_a_level_corpus()
    config = TrainConfig(ensemble=1, fit=FitConfig(epochs=1, hidden=8, voice_swap=1.0))
    with pytest.raises(EmovoxError, match="candidate-set labels"):
        train_ensemble(X, utts, config=config)
    with pytest.raises(EmovoxError, match="needs one label a clip"):
        train_module.tune_encoder(utts, X, extractor=None,
                                  config=dataclasses.replace(TrainConfig(), fit=FitConfig()), frames=[])
