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
    # --plot redraws named entries of a results file; an entry it lacks is refused by name
    plot = [sys.executable, str(BENCHMARKS / "bench_generalisation.py"), "--out", str(out), "--plot"]
    drawn = subprocess.run([*plot, str(tmp_path / "d.png"), "--entries", "d"], capture_output=True, text=True,
                           timeout=300)
    assert drawn.returncode == 0 and (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG", drawn.stderr[-2000:]
    missing = subprocess.run([*plot, str(tmp_path / "x.png"), "--entries", "d|nope"], capture_output=True, text=True,
                             timeout=300)
    assert missing.returncode == 2 and "nope" in missing.stderr and not (tmp_path / "x.png").exists()


class _Trained(Exception):
    """Raised by the stand-in trainer: the benchmark's fold has shown what it trains on."""


def test_a_training_only_corpus_trains_only_the_designs_that_name_it_and_is_never_held_out(bench, monkeypatch):
    import dataclasses

    import numpy as np

    from emovox.corpora.manifest import Utterance

    utts = [Utterance(f"/t/{c}{s}{i}.wav", label, label, str(s), c) for c in ("ravdess", "nemo") for s in range(2)
            for i, label in enumerate(("sad", "angry", "happy", "neutral"))]
    utts += [Utterance(f"/t/baved{i}.wav", label, label, "7", "baved") for i, label in enumerate(("sad", "neutral",
                                                                                                  "happy|angry"))]
    X = np.zeros((len(utts), 2, 4), dtype=np.float32)
    trained = []

    def trainer(X_train, train_utts, **_):
        trained.append(sorted({u.corpus for u in train_utts}))
        assert len(X_train) == len(train_utts)
        raise _Trained

    monkeypatch.setattr(bench, "train_ensemble", trainer)
    plain = bench.DESIGNS["all-mixed-level-d0.5-ph-e10"]
    with_baved = bench.DESIGNS["all-mixed-level-d0.5-ph-e10-baved"]
    assert with_baved.extra_training == ("baved-arousal",) and with_baved.config == plain.config
    for design, expected in ((plain, ["nemo"]), (with_baved, ["baved", "nemo"])):
        trained.clear()
        with pytest.raises(_Trained):
            bench.loco(design, X, utts)
        assert trained == [expected]  # ravdess held out first; baved never held out, trained on only when named
    for held in ("baved", "nemo"):
        trained.clear()
        try:
            bench.loco(with_baved, X, utts, held_out=[held])
        except _Trained:
            pass
        assert trained == ([] if held == "baved" else [["baved", "ravdess"]])
    with pytest.raises(ValueError, match="extra_training"):
        dataclasses.replace(plain, extra_training=("banglaser",))


def test_training_only_corpora_load_from_extra_only_when_asked(bench, tmp_path, write_audio):
    shared, extra = tmp_path / "shared", tmp_path / "extra"
    shared.mkdir()
    write_audio(extra / "baved" / "3" / "56-f-40-3-1-884.wav")
    write_audio(extra / "baved" / "3" / "56-f-40-3-2-885.wav")
    assert bench.load_corpora(shared, extra, None) == []  # BAVED's neutral level alone: left out
    utts = bench.load_corpora(shared, extra, None, training_only=["baved-arousal"])
    assert sorted((u.corpus, u.label) for u in utts) == [("baved", "happy|angry|fear|surprise"), ("baved", "neutral")]
    with pytest.raises(SystemExit, match="baved/ under --extra"):
        bench.load_corpora(shared, tmp_path / "nowhere", None, training_only=["baved-arousal"])


def test_kept_fold_models_are_reused_only_for_the_same_config_and_clips(bench, tmp_path):
    import dataclasses

    from emovox.corpora.manifest import Utterance
    from emovox.features.extractor import FeatureSettings
    from emovox.training.checkpoint import save_ensemble
    from emovox.training.head import EmotionHead, Ensemble

    utts = [Utterance(f"/t/c{i}.wav", label, label, str(i), "c") for i, label in enumerate(("sad", "angry"))]
    design = bench.DESIGNS["all-mixed-level-d0.5-ph-e10-pr0.1"]
    save_ensemble(tmp_path / "nemo", Ensemble([EmotionHead(2, 4, 2, hidden=8)], ["angry", "sad"]),
                  FeatureSettings(encoder="whisper-tiny.en"))
    key = bench.fold_key("all-mixed-level-d0.5-ph-e10", design.config, utts)  # written under v6.3's name
    (tmp_path / "nemo" / "fold.json").write_text(json.dumps(key))
    assert bench.reused_fold(tmp_path, "nemo", design, utts).labels == ["angry", "sad"]
    assert bench.reused_fold(tmp_path, "turev", design, utts) is None  # none kept
    assert bench.reused_fold(tmp_path, "nemo", design, utts[:1]) is None  # other training clips
    other = dataclasses.replace(design, config=dataclasses.replace(design.config, ensemble=3))
    assert bench.reused_fold(tmp_path, "nemo", other, utts) is None
    assert bench.reused_fold(None, "nemo", design, utts) is None
    # kept before a config field was added (level_jitter): the design leaving it at its default still matches,
    # one that sets it does not
    del key["config"]["level_jitter"]
    (tmp_path / "nemo" / "fold.json").write_text(json.dumps(key))
    assert bench.reused_fold(tmp_path, "nemo", design, utts) is not None
    jittered = dataclasses.replace(design, config=dataclasses.replace(design.config, level_jitter=(-32.0, -10.0)))
    assert bench.reused_fold(tmp_path, "nemo", jittered, utts) is None
    # a fold model heard its clips through one encoder window: one kept at the clips' own length does not
    # serve a design that pads to 30 s, and the padded design reads its own feature cache
    padded = bench.DESIGNS["all-mixed-level-d0.5-ph-e10-sp0.5-w30"]
    assert padded.config == design.config and bench.reused_fold(tmp_path, "nemo", padded, utts) is None
    assert padded.extractor().settings.window == 30 and design.extractor().settings.window == 0
    # nor one that attends to the silence context
    silence = bench.DESIGNS["all-mixed-level-d0.5-ph-e10-sp0.5-sc"]
    assert silence.config == design.config and bench.reused_fold(tmp_path, "nemo", silence, utts) is None
    assert silence.extractor().settings.silence_context and not design.extractor().settings.silence_context
    assert silence.extractor().settings.key() != design.extractor().settings.key()


def test_the_prosody_rows_standardise_by_the_archive_as_a_profile_does(bench):
    import numpy as np

    from emovox.features.prosody import N_FEATURES
    from emovox.training.prosody import fit_prosody_head

    rng = np.random.default_rng(0)
    P = rng.standard_normal((40, N_FEATURES)).astype(np.float32) * 3 + 7
    head = fit_prosody_head(P, ["a", "b"] * 20, ["c"] * 40, ["a", "b"], weight=0.5)
    archive, rows = np.arange(20), np.arange(20, 40)
    probs = np.full((20, 2), 0.5, np.float32)
    got = bench.with_prosody(head, P, archive, rows, probs)
    want = head.fuse(probs, (P[rows] - P[archive].mean(0)) / P[archive].std(0))
    np.testing.assert_allclose(got, want, atol=1e-5)
    with pytest.raises(ValueError, match="prosody features"):
        bench.loco(bench.DESIGNS["all-mixed-level-d0.5-ph-e10-pr0.1"], np.zeros((1, 2, 4), np.float32), [])


def test_a_design_served_on_a_thinner_context_trains_as_v7_and_tests_on_the_served_features(bench, monkeypatch,
                                                                                            tmp_path):
    """The -serve designs: the fold models of v7's design serve them (same training encoding), the held-out
    corpus's rows come from the served features, the training rows from the trained ones; -sc8 trains anew."""
    import numpy as np

    from emovox.corpora.manifest import Utterance

    v7 = bench.DESIGNS["all-mixed-level-d0.5-ph-e10-sp0.5-sc"]
    served = bench.DESIGNS["all-mixed-level-d0.5-ph-e10-sp0.5-sc-serve8"]
    thinned = bench.DESIGNS["all-mixed-level-d0.5-ph-e10-sp0.5-sc8"]
    assert served.encoding == v7.encoding and served.config == v7.config and v7.serving_extractor() is None
    assert thinned.encoding == {**v7.encoding, "silence_stride": 8} != v7.encoding
    utts = [Utterance(f"/t/{c}{s}{i}.wav", label, label, str(s), c) for c in ("ravdess", "nemo") for s in range(2)
            for i, label in enumerate(("sad", "angry", "happy", "neutral"))]
    key = bench.fold_key("all-mixed-level-d0.5-ph-e10-sp0.5-sc", v7.config, utts[8:], v7.encoding)
    assert key == bench.fold_key("x", served.config, utts[8:], served.encoding) | {"design": key["design"]}
    assert key != bench.fold_key("x", thinned.config, utts[8:], thinned.encoding) | {"design": key["design"]}
    X, X_serve = np.zeros((len(utts), 2, 4), np.float32), np.ones((len(utts), 2, 4), np.float32)
    seen = {}

    class Answers:
        def probabilities(self, rows):
            seen["test"] = rows
            raise _Trained

    def trainer(X_train, train_utts, **_):
        seen["train"] = X_train
        return Answers()

    monkeypatch.setattr(bench, "train_ensemble", trainer)
    monkeypatch.setattr(bench, "fold_spread", lambda design, X_train, utts: seen.setdefault("spread", X_train))
    with pytest.raises(_Trained):
        bench.loco(served, X, utts, X_serve=X_serve)
    assert (seen["train"] == 0).all() and (seen["spread"] == 0).all() and (seen["test"] == 1).all()
    assert len(seen["test"]) == 8 and len(seen["train"]) == 8
    with pytest.raises(ValueError, match="silence stride"):
        bench.Design(v7.config, serve_silence_stride=8)  # without the silence context


def test_level_band_designs_train_and_serve_as_named(bench):
    """-sc-serve8-band: v7's training encoding (so v7's fold models serve it), the held-out corpus encoded at
    stride 8 with the band; -sc8-band trains on banded clips (a fold key of its own)."""
    v7 = bench.DESIGNS["all-mixed-level-d0.5-ph-e10-sp0.5-sc"]
    v72 = bench.DESIGNS["all-mixed-level-d0.5-ph-e10-sp0.5-sc-serve8-band"]
    banded = bench.DESIGNS["all-mixed-level-d0.5-ph-e10-sp0.5-sc8-band"]
    assert v72.encoding == v7.encoding and v72.served == {"served_silence_stride": 8, "served_level_band": [-26.0, -14.0]}
    assert banded.encoding["level_band"] == [-26.0, -14.0] and banded.served == {}
    assert bench.DESIGNS["all-mixed-level-d0.5-ph-e10-sp0.5-sc8-serveband"].served == {"served_level_band": [-26.0, -14.0]}


def test_a_level_copy_design_trains_on_every_clip_and_its_banded_copy(bench, monkeypatch):
    """-sc8-levelcopy: the banded encoding of every clip joins --augment's copies as one more copy (its own
    fold key); a design without it keeps the copies as they were."""
    import numpy as np

    from emovox.corpora.manifest import Utterance

    design = bench.DESIGNS["all-mixed-level-d0.5-ph-e10-sp0.5-sc8-levelcopy"]
    utts = [Utterance(f"/t/{i}.wav", "sad", "sad", "s", "c") for i in range(3)]
    asked = []

    def features(utts_, extractor):
        asked.append(extractor.settings.level_band)
        return np.full((len(utts_), 2, 4), 7.0, np.float32)

    monkeypatch.setattr(bench, "load_features", features)
    monkeypatch.setattr(bench, "_extractor", lambda *a: type("E", (), {"settings": type("S", (), {"level_band": a[-1]})})())
    augmented = np.zeros((2, 3, 2, 4), np.float32)
    copies = bench.training_copies_of(design, utts, augmented)
    assert copies.shape == (3, 3, 2, 4) and (copies[:2] == 0).all() and (copies[2] == 7).all()
    assert asked == [(-26.0, -14.0)] and bench.training_copies_of(design, utts, None).shape == (1, 3, 2, 4)
    plain = bench.DESIGNS["all-mixed-level-d0.5-ph-e10-sp0.5-sc8"]
    assert bench.training_copies_of(plain, utts, augmented) is augmented and bench.training_copies_of(plain, utts, None) is None
    assert design.encoding == {**plain.encoding, "level_copy": [-26.0, -14.0]}


def test_a_linear_design_reuses_v7s_fold_models_and_fits_its_linear_head_on_the_training_rows(bench):
    """-band32-lin0.3: v7.2's encoding and config (so v7's kept fold models serve it), its linear head fitted
    after the heads on the fold's training rows; a design without one leaves the ensemble as it is."""
    import numpy as np

    from emovox.corpora.manifest import Utterance
    from emovox.training.head import EmotionHead, Ensemble

    v72 = bench.DESIGNS["all-mixed-level-d0.5-ph-e10-sp0.5-sc-serve8-band32"]
    lin = bench.DESIGNS["all-mixed-level-d0.5-ph-e10-sp0.5-sc-serve8-band32-lin0.3"]
    assert (lin.config, lin.encoding, lin.served) == (v72.config, v72.encoding, v72.served) and lin.linear_weight == 0.3
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 2, 4)).astype(np.float32)
    utts = [Utterance(f"/t/{i}.wav", label, label, str(i % 4), "ab"[i % 2]) for i, label in
            enumerate(["angry", "sad"] * 20)]
    ensemble = Ensemble([EmotionHead(2, 4, 2, hidden=8)], ["angry", "sad"])
    assert bench.with_linear(v72, ensemble, X, utts).linear is None
    linear = bench.with_linear(lin, ensemble, X, utts).linear
    assert linear is not None and linear.weight == 0.3 and linear.strength == 3e-4 and linear.shape == (2, 4, 2)
    # -plin0.3: the same, and a second one beside the profile heads (each state's mean), as the library fits it
    from emovox.training.head import means_only
    from emovox.training.train import profile_linear_head

    plin = bench.DESIGNS["all-mixed-level-d0.5-ph-e10-sp0.5-sc-serve8-band32-lin0.3-plin0.3"]
    assert (plin.config, plin.encoding, plin.served, plin.linear_weight) == (lin.config, lin.encoding, lin.served, 0.3)
    with pytest.raises(ValueError, match="profile heads"):
        bench.with_linear(plin, Ensemble([EmotionHead(2, 4, 2, hidden=8)], ["angry", "sad"]), X, utts)
    profile = Ensemble([means_only(EmotionHead(2, 2, 2, hidden=8))], ["angry", "sad"])
    both = bench.with_linear(plin, Ensemble([EmotionHead(2, 4, 2, hidden=8)], ["angry", "sad"], profile_heads=profile),
                             X, utts)
    assert both.linear is not None and both.profile_heads.linear is not None
    want = profile_linear_head(X, utts, ["angry", "sad"], weight=0.3)
    assert both.profile_heads.linear.inputs == "mean" and both.profile_heads.linear.weight == 0.3
    np.testing.assert_allclose(both.profile_heads.linear.probabilities(X), want.probabilities(X), atol=1e-6)


def test_the_v7_5_design_fits_its_linear_head_on_the_clips_and_their_copies_in_rooms(bench, monkeypatch):
    """-lin0.5rooms: v7.4's heads, encoding and profile linear head; the single-clip linear head (weight 0.5) also
    fitted on emovox.training.train.room_copies' copies of the fold's training clips, encoded as its clips."""
    import numpy as np

    from emovox.corpora.manifest import Utterance
    from emovox.training.head import EmotionHead, Ensemble
    from emovox.training.linear_head import fit_linear_head

    v74 = bench.DESIGNS["all-mixed-level-d0.5-ph-e10-sp0.5-sc-serve8-band32-lin0.3-plin0.3"]
    v75 = bench.DESIGNS["all-mixed-level-d0.5-ph-e10-sp0.5-sc-serve8-band32-lin0.5rooms-plin0.3"]
    assert (v75.config, v75.encoding, v75.served, v75.profile_linear_weight) == (
        v74.config, v74.encoding, v74.served, v74.profile_linear_weight)
    assert (v75.linear_weight, v75.linear_room_copies, v74.linear_room_copies) == (0.5, 1, 0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 2, 4)).astype(np.float32)
    room = X + rng.standard_normal(X.shape).astype(np.float32)
    utts = [Utterance(f"/t/{i}.wav", label, label, str(i % 4), "ab"[i % 2]) for i, label in
            enumerate(["angry", "sad"] * 20)]
    calls = []

    def fake_room_copies(train_utts, extractor, copies):
        calls.append((len(train_utts), extractor, copies))
        return room[None]

    monkeypatch.setattr(bench, "room_copies", fake_room_copies)
    monkeypatch.setattr(bench, "_extractor", lambda *args: args)  # no encoder loaded: the copies' encoding, named
    design = bench.dataclasses.replace(v75, profile_linear_weight=0.0)  # no profile heads in this small ensemble
    linear = bench.with_linear(design, Ensemble([EmotionHead(2, 4, 2, hidden=8)], ["angry", "sad"]), X, utts).linear
    # the copies are encoded as the heads' training clips: the whole silence context, as recorded (no band)
    assert calls == [(40, ("whisper-base", "level_mean_std", 0.0, True, 1, None), 1)]
    assert linear is not None and linear.weight == 0.5
    want = fit_linear_head(np.concatenate([X, room]), [u.label for u in utts] * 2, [u.corpus for u in utts] * 2,
                           ["angry", "sad"], weight=0.5)
    np.testing.assert_allclose(linear.probabilities(room), want.probabilities(room), atol=1e-6)


def test_a_jitter_design_trains_on_the_library_s_jittered_copies(bench, monkeypatch):
    """-sc8-jitter32: its copies are emovox.training.level_jitter's (what `emovox train --level-jitter` adds), served
    with the band."""
    import numpy as np

    design = bench.DESIGNS["all-mixed-level-d0.5-ph-e10-sp0.5-sc8-jitter32"]
    assert design.encoding["level_jitter"] == [-32.0, -10.0] and design.served == {"served_level_band": [-32.0, -10.0]}
    calls = []
    monkeypatch.setattr(bench, "jittered_features",
                        lambda utts, extractor, band: calls.append(band) or np.ones((len(utts), 7, 4), np.float32))
    copies = bench.training_copies_of(design, ["a", "b", "c"], None)
    assert calls == [(-32.0, -10.0)] and copies.shape == (1, 3, 7, 4)


def test_profile_rows_average_over_the_draws_of_random_halves(bench, monkeypatch):
    """--profile-seeds: each held-out corpus's profile rows (and ``half``) are the mean of profile_rows over the
    seeds' halves, each seed's rows kept under per_seed (left out of the summary); one seed is the rows as before."""
    import numpy as np
    import torch

    from emovox.corpora.manifest import Utterance
    from emovox.training.head import EmotionHead, Ensemble

    labels = ["neutral", "happy", "sad", "angry"]
    utts = [Utterance(f"/t/{c}{s}{i}.wav", label, label, str(s), c) for c in ("ravdess", "nemo") for s in range(2)
            for i, label in enumerate(labels * 6)]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((len(utts), 2, 4)).astype(np.float32)
    torch.manual_seed(0)
    ensemble = Ensemble([EmotionHead(2, 4, 4, hidden=8).eval()], labels)
    monkeypatch.setattr(bench, "train_ensemble", lambda *a, **k: ensemble)
    monkeypatch.setattr(bench, "fold_spread", lambda *a: None)
    design = bench.DESIGNS["all-mixed-level-d0.5-ph-e10"]
    one = bench.loco(design, X, utts, held_out=["nemo"])["nemo"]
    two = bench.loco(design, X, utts, held_out=["nemo"], profile_seeds=(0, 1))["nemo"]
    nemo = np.array([u.corpus == "nemo" for u in utts])
    direct = [bench.profile_rows(ensemble, X[nemo], [u.label for u in utts if u.corpus == "nemo"], None, seed)
              for seed in (0, 1)]
    assert direct[0] != direct[1]  # two draws of the halves differ
    for key in ("half", "profile_neutral", "skewed_neutral", "skewedangry_b0.5"):
        assert one[key] == direct[0][key]
        assert two[key] == pytest.approx((direct[0][key] + direct[1][key]) / 2)
    assert "per_seed" not in one and two["per_seed"] == {"seeds": [0, 1], "rows": direct}
    assert two["single"] == one["single"] and "per_seed" not in bench.summary({"nemo": two})


def test_a_design_on_another_encoder_reads_that_encoders_features_and_keeps_its_own_folds(bench):
    """The tiny.en design (experiments/exp_encoder_ensemble.py): its training and served features come from
    whisper-tiny.en, never from whisper-base's cache, and a base fold model never serves it."""
    import dataclasses

    from emovox.corpora.manifest import Utterance

    tiny = bench.DESIGNS["tiny.en-all-mixed-level-d0.5-e10-sp0.5-sc8-serveband32-lin0.3"]
    base = bench.DESIGNS["all-mixed-level-d0.5-ph-e10-sp0.5-sc8-serveband32"]
    for design, encoder in ((tiny, "whisper-tiny.en"), (base, "whisper-base")):
        assert design.extractor().settings.encoder == encoder
        assert design.serving_extractor().settings.encoder == encoder
        assert design.serving_extractor().settings.level_band == (-32.0, -10.0)
    assert tiny.extractor().settings.key() != base.extractor().settings.key()
    assert tiny.extractor().feature_shape == (5, 768) and base.extractor().feature_shape == (7, 1024)
    utts = [Utterance(f"/t/nemo{i}.wav", "sad", "sad", "s", "nemo") for i in range(4)]
    on_base = dataclasses.replace(tiny.config, encoder="whisper-base")  # the same recipe on whisper-base
    assert bench.fold_key("x", tiny.config, utts, tiny.encoding) != bench.fold_key("x", on_base, utts, tiny.encoding)
