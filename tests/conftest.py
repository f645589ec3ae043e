"""Shared test fixtures: the real development corpora, a tiny audio-file writer, and the tiny
model trained on synthetic voices (``model_path``, loaded as ``model``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import emovox
from server_support import train_tiny_model


@pytest.fixture(scope="session")
def corpora_root() -> Path:
    """The real corpora (``$EMOVOX_CORPORA`` or ``../shared/corpora``); skips when absent."""
    root = Path(os.environ.get("EMOVOX_CORPORA")
                or Path(__file__).resolve().parents[2] / "shared" / "corpora")
    if not root.is_dir():
        pytest.skip(f"real corpora not available at {root}")
    return root


@pytest.fixture(scope="session")
def extra_corpora_root() -> Path:
    """The fetched corpora (``$EMOVOX_EXTRA_CORPORA`` or ``~/.cache/emovox-corpora``, where
    ``../shared/corpora/extract-more.sh`` puts them); skips when absent."""
    root = Path(os.environ.get("EMOVOX_EXTRA_CORPORA") or Path.home() / ".cache" / "emovox-corpora")
    if not root.is_dir():
        pytest.skip(f"fetched corpora not available at {root}")
    return root


@pytest.fixture
def write_audio():
    """``write_audio(path, seconds=0.2, sr=16000, seed=0)``: write quiet noise (.wav/.flac)."""

    def write(path: Path, seconds: float = 0.2, sr: int = 16000, seed: int = 0) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        signal = 0.01 * np.random.default_rng(seed).standard_normal(int(seconds * sr))
        sf.write(path, signal.astype(np.float32), sr, subtype="PCM_16")
        return path

    return write


@pytest.fixture
def retrain_plain(tmp_path):
    """``retrain_plain(corpus, model_dir)``: a copy of ``model_dir`` retrained on ``corpus`` with no add-on
    (one small head, no prosody or linear head), returned; what a retrain must leave of the add-ons."""

    def retrain(corpus: Path, model_dir: Path) -> Path:
        import shutil

        from typer.testing import CliRunner

        from emovox.cli import app

        copy = tmp_path / "retrained"
        shutil.copytree(model_dir, copy)
        result = CliRunner().invoke(app, ["train", f"folder:{corpus}", "--out", str(copy), "--encoder", "whisper-tiny.en",
                                          "--ensemble", "1", "--epochs", "5", "--hidden", "16", "--layers", "all"])
        assert result.exit_code == 0, result.output
        return copy

    return retrain


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    """The tiny model trained on synthetic voices (``server_support.train_tiny_model``, once per session)."""
    return train_tiny_model(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def model(model_path):
    """``model_path`` loaded; one instance per test module, so a module's settings never leak."""
    return emovox.load(model_path)
