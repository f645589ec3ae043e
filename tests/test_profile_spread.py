"""Profile spreads (emovox.training.profile_spread): the training corpora's spread, the domain's, the scale a
profile stores and applies, and the file."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.errors import ModelError
from emovox.training.profile_spread import FILE, ProfileSpread, domain_spread, within_corpus_spread
from emovox.training.profiles import DomainProfile, ProfileError, profile_scale


def test_within_corpus_spread_pools_corpora_equally_and_ignores_their_offsets():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1.0, (2000, 2, 3))
    b = rng.normal(50, 3.0, (200, 2, 3))  # a small corpus far away, spread 3
    spread = within_corpus_spread(np.concatenate([a, b]), ["a"] * 2000 + ["b"] * 200)
    np.testing.assert_allclose(spread, np.sqrt((1 + 9) / 2), rtol=0.08)  # not the pooled rows' std (~15)
    with pytest.raises(ValueError, match="corpus names"):
        within_corpus_spread(a, ["a"] * 3)


def test_domain_spread_is_shrunk_toward_the_reference_like_a_profile_mean():
    X = np.array([[[1.0]], [[3.0]], [[5.0]], [[7.0]]])
    mean = X.mean(0)
    assert domain_spread(X, mean, np.array([[9.0]]), shrink_clips=0)[0, 0] == pytest.approx(np.sqrt(5))
    shrunk = domain_spread(X, mean, np.array([[9.0]]), shrink_clips=4)[0, 0]
    assert shrunk == pytest.approx(np.sqrt((20 + 4 * 81) / 8))
    assert domain_spread(X[:1], X[0], np.array([[2.0]]), shrink_clips=10)[0, 0] == pytest.approx(2 * np.sqrt(10 / 11))


def test_a_profile_moves_a_stretched_domain_to_the_training_spread_by_its_power():
    rng = np.random.default_rng(1)
    train = rng.normal(0, 1.0, (3000, 2, 4))
    reference = train.mean(0).astype(np.float32)
    stretch = np.array([3.0, 0.5, 1.0, 2.0])
    domain = (rng.normal(0, 1.0, (3000, 2, 4)) * stretch + 7.0).astype(np.float32)
    for power in (1.0, 0.5):
        spread = ProfileSpread(within_corpus_spread(train, ["t"] * len(train)), power)
        mean = domain.mean(0)
        profile = DomainProfile(mean, len(domain), "m", "s", "e", scale=profile_scale(domain, mean, spread))
        moved = profile.apply(domain, reference)
        np.testing.assert_allclose(moved.mean(0), reference, atol=0.05)
        want = np.broadcast_to(stretch ** (1 - power), (2, 4))  # power 1: the training spread
        np.testing.assert_allclose(moved.std(0), want, rtol=0.05)
    # centring alone (a profile without a scale, as every profile before v6.5) leaves the spread as it was
    centred = DomainProfile(domain.mean(0), len(domain), "m", "s", "e").apply(domain, reference)
    np.testing.assert_allclose(centred.std(0), np.broadcast_to(stretch, (2, 4)), rtol=0.05)


def test_states_no_head_reads_keep_a_scale_of_one_and_shapes_must_fit():
    spread = ProfileSpread(np.ones((3, 2), np.float32), 1.0)
    X = np.random.default_rng(2).normal(0, 2.0, (50, 2, 2)).astype(np.float32)
    mean = np.array([[0.0, 0.0], [np.nan, np.nan]], np.float32)  # the model reads 2 of the spread's 3 states
    scale = profile_scale(X, mean, spread)
    assert scale.shape == (2, 2) and (scale[1] == 1).all() and (scale[0] < 0.8).all()
    with pytest.raises(ProfileError, match="does not fit"):
        profile_scale(X, np.zeros((2, 3), np.float32), spread)


def test_the_spread_file_round_trips_and_is_checked(tmp_path):
    spread = ProfileSpread(np.abs(np.random.default_rng(3).normal(size=(7, 8))).astype(np.float32), 0.5)
    entry = spread.save(tmp_path)
    assert entry["file"] == FILE and entry["power"] == 0.5 and entry["shape"] == [7, 8]
    back = ProfileSpread.load(tmp_path, entry)
    assert back.power == 0.5 and np.array_equal(back.spread, spread.spread)
    with pytest.raises(ModelError, match="sha256"):
        ProfileSpread.load(tmp_path, {**entry, "sha256": "0" * 64})
    with pytest.raises(ModelError, match="missing"):
        ProfileSpread.load(tmp_path, {**entry, "file": "absent.safetensors"})
    with pytest.raises(ModelError, match="non-negative"):
        ProfileSpread(-np.ones((2, 2)), 0.5)
    with pytest.raises(ModelError, match="power"):
        ProfileSpread(np.ones((2, 2)), 1.5)


def test_profile_files_keep_the_scale_and_refuse_a_malformed_one(tmp_path):
    mean = np.zeros((2, 3), np.float32)
    scale = np.full((2, 3), 0.7, np.float32)
    DomainProfile(mean, 80, "m", "s", "e", scale=scale, spread_power=0.5).save(tmp_path / "p.npz")
    back = DomainProfile.load(tmp_path / "p.npz")
    assert np.array_equal(back.scale, scale) and back.spread_power == 0.5
    DomainProfile(mean, 80, "m", "s", "e").save(tmp_path / "old.npz")
    assert DomainProfile.load(tmp_path / "old.npz").scale is None
    for bad in (np.zeros((2, 3), np.float32), np.ones((3, 3), np.float32), np.full((2, 3), np.inf, np.float32)):
        DomainProfile(mean, 80, "m", "s", "e", scale=bad).save(tmp_path / "bad.npz")
        with pytest.raises(ProfileError, match="malformed scale"):
            DomainProfile.load(tmp_path / "bad.npz")
