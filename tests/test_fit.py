"""The training objective: class weights, label smoothing and per-row (corpus-balance) weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emovox.training.fit import class_weights, compute_objective, group_balance_weights
from emovox.training.head import EmotionHead


def test_row_weights_of_one_give_the_plain_objective_and_zero_drops_a_row():
    torch.manual_seed(0)
    logits, targets = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 1])
    weights = class_weights(targets.numpy(), 3)
    plain = compute_objective(logits, targets, weights, 0.1)
    assert compute_objective(logits, targets, weights, 0.1, torch.ones(6)).item() == pytest.approx(plain.item(), rel=1e-6)
    keep = torch.tensor([1.0, 1, 1, 1, 1, 0])
    dropped = compute_objective(logits[:5], targets[:5], weights, 0.1)
    assert compute_objective(logits, targets, weights, 0.1, keep).item() == pytest.approx(dropped.item(), rel=1e-6)


def test_group_balance_gives_every_group_the_same_total_weight():
    groups = np.array(["ravdess"] * 30 + ["nemo"] * 60 + ["turev"] * 10)
    w = group_balance_weights(groups)
    totals = [w[groups == g].sum() for g in ("ravdess", "nemo", "turev")]
    assert np.allclose(totals, totals[0]) and w.mean() == pytest.approx(1.0)


def test_tempered_balance_grows_a_groups_total_as_a_power_of_its_rows():
    groups = np.array(["tess"] * 400 + ["ravdess"] * 25 + ["koetts"] * 4)
    for power in (0.0, 0.5, 1.0):
        w = group_balance_weights(groups, power)
        totals = np.array([w[groups == g].sum() for g in ("tess", "ravdess", "koetts")])
        expected = np.array([400, 25, 4], dtype=float) ** (1 - power)
        assert np.allclose(totals / totals[-1], expected / expected[-1]) and w.mean() == pytest.approx(1.0)


def test_balanced_speakers_reach_the_heads_loss_as_row_weights(monkeypatch):
    """--balance-speakers: each head's training rows get weights that temper every speaker's total
    (raw and corpus-centred rows alike), validation speakers left out; refused outside [0, 1]."""
    import dataclasses

    import emovox.training.train as train
    from emovox.corpora.manifest import Utterance
    from emovox.training.fit import FitConfig

    labels = ["sad", "angry", "happy"]
    counts = {"big": 60, "s1": 6, "s2": 6, "s3": 6, "s4": 6, "s5": 6}
    utts = [Utterance(f"/t/{s}{i}.wav", labels[i % 3], labels[i % 3], s, "c") for s, n in counts.items() for i in range(n)]
    X = np.random.default_rng(0).standard_normal((len(utts), 2, 4)).astype(np.float32)
    seen = []
    real = train.fit_head
    monkeypatch.setattr(train, "fit_head", lambda *a, **kw: seen.append(kw["sample_weights"]) or real(*a, **kw))
    config = train.TrainConfig(ensemble=1, centre_corpora="both", val_fraction=0.2, fit=FitConfig(epochs=2, hidden=4))
    train.train_ensemble(X, utts, config=dataclasses.replace(config, balance_speakers=1.0))
    train.train_ensemble(X, utts, config=config)
    weights, plain = seen
    assert plain is None
    speakers = np.array([u.speaker_key for u in train.training_rows(X, utts, "both")[1]])
    val = train.validation_rows(speakers, np.array(["c"] * len(speakers)), config, 0)
    kept = speakers[~val]
    assert len(weights) == len(kept) and "c/big" in set(kept)
    totals = {s: weights[kept == s].sum() for s in set(kept)}
    assert np.allclose(list(totals.values()), totals["c/big"])  # every speaker the same total
    with pytest.raises(ValueError, match="balance_speakers"):
        train.TrainConfig(balance_speakers=1.5)


def _noisy_pairs(seed: int):
    """Two classes told apart by dimension 0; the copies add a shift along dimension 1 that
    also correlates with the class in the clean rows, so a head may lean on it."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], 60)
    X = rng.normal(size=(120, 1, 6)).astype("float32")
    X[:, 0, 0] += 2.0 * y
    X[:, 0, 1] += 1.0 * y
    copies = X[None].repeat(2, 0) + np.stack([rng.normal(size=X.shape), rng.normal(size=X.shape)]).astype("float32")
    copies[:, :, 0, 1] += rng.normal(scale=3.0, size=(2, 120)).astype("float32")
    return X, y, copies


def test_consistency_makes_predictions_on_copies_agree_with_the_clips():
    from emovox.training.fit import FitConfig, fit_head
    from emovox.training.head import predict_logits

    X, y, copies = _noisy_pairs(0)
    X_test, _, copies_test = _noisy_pairs(1)
    disagreement = {}
    for weight in (0.0, 10.0):
        config = FitConfig(epochs=30, hidden=16, lr=1e-2, dropout=0.0, consistency=weight)
        head = fit_head(X, y, None, None, n_classes=2, config=config, copies=copies).head
        clean = torch.log_softmax(torch.from_numpy(predict_logits(head, X_test)), -1)
        noisy = torch.log_softmax(torch.from_numpy(predict_logits(head, copies_test[0])), -1)
        disagreement[weight] = float(torch.nn.functional.kl_div(noisy, clean, log_target=True, reduction="batchmean"))
    assert disagreement[10.0] < 0.5 * disagreement[0.0], disagreement


def test_copies_must_pair_with_the_training_rows():
    from emovox.training.fit import FitConfig, fit_head

    X, y, copies = _noisy_pairs(0)
    with pytest.raises(ValueError, match="do not pair"):
        fit_head(X, y, None, None, n_classes=2, config=FitConfig(epochs=1), copies=copies[:, :10])


def _shortcut(seed: int, share: float, groups: int = 2):
    """Dimension 0 carries the class weakly, dimension 1 the group strongly (odd groups sit 4
    higher); in ``share`` of each group's rows the class is its side's (odd: 1), so the group is a
    shortcut where share is high. Groups: two corpora, or eight speakers (``groups=8``)."""
    rng = np.random.default_rng(seed)
    group = np.repeat(np.arange(groups), 400 // groups)
    side = group % 2
    y = np.where(rng.random(400) < share, side, 1 - side)
    X = rng.normal(size=(400, 1, 8)).astype("float32")
    X[:, 0, 0] += 1.5 * y
    X[:, 0, 1] += 4.0 * side
    return X, y, group


def _shortcut_accuracy(X, y, X_test, y_test, options: dict, **fit_kw) -> float:
    """Test accuracy of a small head trained on ``(X, y)`` with ``FitConfig(**options)``
    (``fit_kw``: what ``fit_head`` needs for those options, e.g. ``domains`` or ``voices``)."""
    from emovox.training.fit import FitConfig, fit_head

    config = FitConfig(epochs=40, hidden=16, lr=1e-2, dropout=0.0, **options)
    head = fit_head(X, y, None, None, n_classes=2, config=config, **fit_kw).head
    return float((head(torch.from_numpy(X_test)).argmax(1).numpy() == y_test).mean())


def test_the_corpus_adversary_keeps_a_head_off_a_corpus_shortcut():
    X, y, corpus = _shortcut(0, 0.85)
    X_test, y_test, _ = _shortcut(1, 0.15)  # the shortcut now points the wrong way
    accuracy = {w: _shortcut_accuracy(X, y, X_test, y_test, {"adversary": w}, domains=corpus) for w in (0.0, 3.0)}
    assert accuracy[0.0] < 0.6 and accuracy[3.0] > accuracy[0.0] + 0.1, accuracy


def test_mixup_teaches_an_even_answer_halfway_between_two_classes():
    from emovox.training.fit import FitConfig, fit_head

    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 100)
    X = rng.normal(size=(200, 1, 8)).astype("float32")
    X[:, 0, 0] += 4.0 * y
    halfway = 0.5 * (X[y == 0] + X[y == 1])
    doubt = {}
    for alpha in (0.0, 1.0):
        config = FitConfig(epochs=40, hidden=16, lr=1e-2, dropout=0.0, mixup=alpha)
        head = fit_head(X, y, None, None, n_classes=2, config=config).head
        with torch.no_grad():
            p = torch.softmax(head(torch.from_numpy(halfway)), -1)[:, 1].numpy()
        doubt[alpha] = float(np.abs(p - 0.5).mean())
    assert doubt[1.0] < 0.8 * doubt[0.0], doubt


def test_the_adversary_needs_domains_and_mixup_refuses_what_it_cannot_mix():
    from emovox.training.fit import FitConfig, fit_head

    X, y, corpus = _shortcut(0, 0.5)
    with pytest.raises(ValueError, match="one domain per training row"):
        fit_head(X, y, None, None, n_classes=2, config=FitConfig(epochs=1, adversary=0.1))
    with pytest.raises(ValueError, match="at least two training corpora"):
        fit_head(X, y, None, None, n_classes=2, config=FitConfig(epochs=1, adversary=0.1), domains=np.zeros(len(y)))
    with pytest.raises(ValueError, match="non-negative"):
        FitConfig(mixup=-0.1)
    with pytest.raises(ValueError, match="arousal/valence"):
        FitConfig(mixup=0.2, dimensions_weight=0.5)


def test_voice_swapping_keeps_a_head_off_a_speaker_shortcut():
    from emovox.training.voices import VoiceTable

    X, y, speaker = _shortcut(0, 0.85, groups=8)
    X_test, y_test, _ = _shortcut(1, 0.15, groups=8)  # the voices now point the wrong way
    voices = VoiceTable.build(X, speaker.astype(str), y.astype(str), min_clips=10, min_labels=2)
    assert (voices.rows >= 0).all() and len(voices.means) == 8
    accuracy = {p: _shortcut_accuracy(X, y, X_test, y_test, {"voice_swap": p}, voices=voices) for p in (0.0, 1.0)}
    assert accuracy[0.0] < 0.6 and accuracy[1.0] > accuracy[0.0] + 0.1, accuracy
    # new voices drawn from the training voices' spread keep it off the shortcut as well
    drawn = _shortcut_accuracy(X, y, X_test, y_test, {"voice_swap": 1.0, "voice_spread": 1.0}, voices=voices)
    assert drawn > accuracy[0.0] + 0.1, (drawn, accuracy)


def test_projecting_out_the_voices_spread_keeps_a_head_off_a_speaker_shortcut():
    from emovox.training.fit import FitConfig, fit_head, nuisance_directions
    from emovox.training.voices import VoiceTable

    X, y, speaker = _shortcut(0, 0.85, groups=8)
    X_test, y_test, _ = _shortcut(1, 0.15, groups=8)  # the voices now point the wrong way
    voices = VoiceTable.build(X, speaker.astype(str), y.astype(str), min_clips=10, min_labels=2)
    accuracy = {k: _shortcut_accuracy(X, y, X_test, y_test, {"nuisance_dims": k}, voices=voices) for k in (0, 1)}
    assert accuracy[0] < 0.6 and accuracy[1] > accuracy[0] + 0.1, accuracy
    # the projection is folded into the first layer: the head saves as any head and has no projection left
    head = fit_head(X, y, None, None, n_classes=2, config=FitConfig(epochs=3, hidden=16, nuisance_dims=1),
                    voices=voices).head
    assert head.nuisance is None and set(head.state_dict()) == set(EmotionHead(1, 8, 2, hidden=16).state_dict())
    # the voices' direction is (mostly) dimension 1, and along it the folded head no longer looks
    direction = nuisance_directions(head, voices.means, 1)[:, 0]
    assert abs(float(direction[1])) > 0.9
    assert float((head.mlp[1].weight @ direction).abs().max()) < 1e-5 * float(head.mlp[1].weight.abs().max())
    with pytest.raises(ValueError, match="training rows' voices"):
        fit_head(X, y, None, None, n_classes=2, config=FitConfig(epochs=1, nuisance_dims=2))
    with pytest.raises(ValueError, match="non-negative"):
        FitConfig(nuisance_dims=-1)


def test_folding_the_projection_keeps_every_answer():
    from emovox.training.fit import nuisance_directions

    torch.manual_seed(0)
    head = EmotionHead(3, 16, 4, hidden=8).eval()
    features = torch.randn(5, 3, 16)
    head.nuisance = nuisance_directions(head, np.random.default_rng(0).normal(size=(6, 3, 16)), 3)
    assert torch.allclose(head.nuisance.T @ head.nuisance, torch.eye(3), atol=1e-5)  # orthonormal
    projected = head(features)
    head.fold_nuisance()
    assert head.nuisance is None and torch.allclose(head(features), projected, atol=1e-5)
    with pytest.raises(ValueError, match="two voices"):
        nuisance_directions(head, np.zeros((1, 3, 16)), 1)


def test_drawn_voices_have_the_voices_mean_and_scaled_covariance():
    from emovox.training.fit import FitConfig
    from emovox.training.voices import VoiceTable

    rng = np.random.default_rng(0)
    means = (rng.normal(size=(6, 1, 2)) @ np.array([[2.0, 1.0], [0.0, 0.5]])).astype("float32")  # correlated
    voices = VoiceTable(means, np.arange(6))
    drawn = voices.draw(200_000, spread=1.5, rng=rng)
    assert drawn.shape == (200_000, 1, 2)
    assert np.allclose(drawn.mean(0), means.mean(0), atol=0.03)
    assert np.allclose(np.cov(drawn[:, 0].T), 1.5**2 * np.cov(means[:, 0].T), rtol=0.03, atol=0.02)
    # every swapped row is moved into a voice of its own
    X = means + np.float32(0.25)
    moved = voices.swap(X, np.arange(6), p=1.0, rng=np.random.default_rng(1), spread=1.0)
    assert not np.allclose(moved, X) and len(np.unique(moved[:, 0, 0])) == 6
    with pytest.raises(ValueError, match="non-negative"):
        voices.swap(X, np.arange(6), p=1.0, rng=rng, spread=-1.0)
    with pytest.raises(ValueError, match="voice_spread"):
        FitConfig(voice_spread=1.0)  # nothing is swapped
    with pytest.raises(ValueError, match="at least two usable voices"):
        VoiceTable(means[:1], np.zeros(1, dtype=np.int64)).draw(3, spread=1.0, rng=rng)


def test_voice_tables_leave_out_thin_voices_and_never_move_them():
    from emovox.training.fit import FitConfig, fit_head
    from emovox.training.voices import VoiceTable

    X = np.arange(12, dtype="float32").reshape(12, 1, 1)
    speakers = ["a"] * 4 + ["b"] * 4 + ["c"] * 4
    labels = ["sad", "sad", "sad", "happy", "sad", "happy", "sad", "happy", "sad"] + ["sad"] * 3  # c: one label
    voices = VoiceTable.build(X, speakers, labels, min_clips=3, min_labels=2)
    assert voices.rows.tolist() == [0] * 4 + [1] * 4 + [-1] * 4
    # class-balanced: a's mean is the mean of its sad mean (1) and its happy clip (3)
    assert voices.means[:, 0, 0].tolist() == [2.0, 5.5]
    rng = np.random.default_rng(0)
    moved = voices.swap(X, np.arange(12), p=1.0, rng=rng)
    assert np.allclose(moved[:4] - X[:4], 3.5) and np.allclose(moved[4:8] - X[4:8], -3.5)
    assert np.array_equal(moved[8:], X[8:])
    assert np.array_equal(voices.swap(X, np.arange(12), p=0.0, rng=rng), X)
    with pytest.raises(ValueError, match="one voice and one label per row"):
        VoiceTable.build(X, speakers[:5], labels)
    with pytest.raises(ValueError, match="VoiceTable"):
        fit_head(X, np.zeros(12, dtype=int), None, None, n_classes=2, config=FitConfig(epochs=1, voice_swap=0.5))
    with pytest.raises(ValueError, match="probability"):
        FitConfig(voice_swap=1.5)


def test_balancing_labels_per_corpus_evens_every_corpus_s_labels_and_every_label(monkeypatch):
    """--balance-labels-per-corpus: times the class weights, each label has the same total over the
    corpora and every corpus the same mix of the labels it shares with another (no corpus leans to
    a label); the rows reach the heads' loss; refused with candidate-set labels."""
    import emovox.training.train as train
    from emovox.corpora.manifest import Utterance
    from emovox.training.fit import FitConfig, corpus_label_weights

    rng = np.random.default_rng(0)
    plan = {"wild": {"calm": 40, "angry": 10, "happy": 10}, "acted": {"calm": 5, "angry": 5, "happy": 5, "sad": 5}}
    labels = ["calm", "happy", "sad", "angry"]
    y = np.array([labels.index(k) for spec in plan.values() for k, n in spec.items() for _ in range(n)])
    corpora = np.array([c for c, spec in plan.items() for n in spec.values() for _ in range(n)])
    rows = corpus_label_weights(y, corpora, 4) * class_weights(y, 4).numpy()[y]
    mix = {c: np.array([rows[(corpora == c) & (y == labels.index(k))].sum() for k in ("calm", "angry", "happy")])
           for c in plan}
    assert np.allclose(mix["wild"] / mix["wild"].sum(), mix["acted"] / mix["acted"].sum())  # the same mix
    plain = class_weights(y, 4).numpy()[y]  # without it the wild corpus leans to calm
    plain_mix = {c: np.array([plain[(corpora == c) & (y == labels.index(k))].sum() for k in ("calm", "angry", "happy")])
                 for c in plan}
    assert plain_mix["wild"][0] / plain_mix["wild"].sum() > 2 * plain_mix["acted"][0] / plain_mix["acted"].sum()
    label_totals = [rows[y == k].sum() for k in range(4)]
    assert np.allclose(label_totals, label_totals[0]) and np.isfinite(rows).all()

    utts = [Utterance(f"/t/{c}{i}.wav", labels[k], labels[k], str(i % 4), c)
            for i, (c, k) in enumerate(zip(corpora, y, strict=True))]
    X = rng.standard_normal((len(utts), 2, 4)).astype(np.float32)
    seen = []
    real = train.fit_head
    monkeypatch.setattr(train, "fit_head", lambda *a, **kw: seen.append((a[1], kw)) or real(*a, **kw))
    config = train.TrainConfig(ensemble=1, balance_labels_per_corpus=True, fit=FitConfig(epochs=1, hidden=4))
    train.train_ensemble(X, utts, config=config)
    (y_fit, kw), = seen
    held = train.validation_rows(np.array([u.speaker_key for u in utts]), corpora, config, 0)
    assert np.allclose(kw["sample_weights"], corpus_label_weights(y_fit, corpora[~held], 4))
    sets = [Utterance("/t/z.wav", "happy|angry", "level2", "9", "acted"), *utts]
    with pytest.raises(Exception, match="balance-labels-per-corpus"):
        train.train_ensemble(np.concatenate([X[:1], X]), sets, config=config)
