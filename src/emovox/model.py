"""The user-facing model: load a model directory, predict emotions for audio.

Examples:
    >>> import emovox                                    # doctest: +SKIP
    >>> model = emovox.load()                            # doctest: +SKIP
    >>> model.predict(signal, 16000).label               # doctest: +SKIP
    'neutral'
    >>> model.predict_file("clip.wav").scores["angry"]   # doctest: +SKIP
    0.07
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator, Sequence
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from .audio import DEFAULT_MAX_DURATION, SAMPLING_RATE, load_audio
from .checkpoint import ModelBundle, load_model_files
from .decision import restrict, top_label
from .errors import EmovoxError, ModelError
from .features import FeatureExtractor


def default_model_dir() -> Path:
    """The model shipped inside the package."""
    return Path(str(resources.files("emovox") / "models" / "default"))


@dataclasses.dataclass
class Prediction:
    """One clip's result: top label, every label's probability, duration in seconds."""

    label: str
    scores: dict[str, float]
    duration: float
    path: str | None = None

    def to_dict(self) -> dict:
        out = {"path": self.path} if self.path is not None else {}
        return {**out, "label": self.label, "scores": self.scores, "duration": round(self.duration, 3)}


@dataclasses.dataclass
class PredictionError:
    """A clip that could not be processed, with the reason."""

    path: str
    error: str
    kind: str

    def to_dict(self) -> dict:
        return {"path": self.path, "error": self.error, "error_type": self.kind}


class EmotionModel:
    """A trained emotion model: encoder + an ensemble of heads + calibration temperature."""

    def __init__(self, bundle: ModelBundle, *, extractor: FeatureExtractor | None = None,
                 max_duration: float | None = DEFAULT_MAX_DURATION):
        self.bundle = bundle
        self.labels = list(bundle.labels)
        self.max_duration = max_duration
        self.extractor = extractor or FeatureExtractor(bundle.features.encoder)
        if self.extractor.settings.encoder_sha256 != bundle.features.encoder_sha256:
            raise ModelError(
                f"encoder weights differ from the ones the model was trained with "
                f"({self.extractor.settings.encoder_sha256[:12]} vs {bundle.features.encoder_sha256[:12]})"
            )

    @property
    def model_id(self) -> str:
        return self.bundle.config.get("training", {}).get("name", "emovox-model")

    @torch.inference_mode()
    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Calibrated class probabilities ``(n, n_labels)`` from pooled features."""
        x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
        probs = sum(torch.softmax(h(x) / self.bundle.temperature, dim=-1) for h in self.bundle.heads)
        return (probs / len(self.bundle.heads)).numpy()

    def _result(self, probs: np.ndarray, duration: float, labels: Sequence[str] | None, path: str | None) -> Prediction:
        scores = restrict({l: float(p) for l, p in zip(self.labels, probs)}, labels)
        return Prediction(top_label(scores), scores, duration, path)

    def predict_signals(self, signals: Sequence[np.ndarray], *, labels: Sequence[str] | None = None) -> list[Prediction]:
        """Predict for 16 kHz mono float32 signals (already loaded)."""
        probs = self.probabilities(self.extractor(signals))
        return [self._result(p, len(s) / SAMPLING_RATE, labels, None) for p, s in zip(probs, signals)]

    def predict(self, signal: np.ndarray, sampling_rate: int, *, labels: Sequence[str] | None = None) -> Prediction:
        """Predict for one signal at ``sampling_rate`` (any rate, mono or multichannel)."""
        audio = load_audio(signal, sampling_rate, max_duration=self.max_duration)
        return self.predict_signals([audio], labels=labels)[0]

    def predict_file(self, path: str | os.PathLike, *, labels: Sequence[str] | None = None) -> Prediction:
        """Predict for one audio file."""
        audio = load_audio(path, max_duration=self.max_duration)
        result = self.predict_signals([audio], labels=labels)[0]
        result.path = os.fspath(path)
        return result

    def predict_files(self, paths: Iterable[str | os.PathLike], *, labels: Sequence[str] | None = None,
                      batch_size: int = 16) -> Iterator[Prediction | PredictionError]:
        """Predict for many files in batches, in input order; a bad file yields a PredictionError."""
        batch: list[tuple[str, np.ndarray | EmovoxError]] = []

        def flush():
            good = [(p, a) for p, a in batch if isinstance(a, np.ndarray)]
            results = iter(self.predict_signals([a for _, a in good], labels=labels)) if good else iter(())
            for path, audio in batch:
                if isinstance(audio, np.ndarray):
                    result = next(results)
                    result.path = path
                    yield result
                else:
                    yield PredictionError(path, str(audio), type(audio).__name__)
            batch.clear()

        for path in paths:
            path = os.fspath(path)
            try:
                batch.append((path, load_audio(path, max_duration=self.max_duration)))
            except EmovoxError as exc:
                batch.append((path, exc))
            if len(batch) >= batch_size:
                yield from flush()
        yield from flush()


def load(model_dir: str | os.PathLike | None = None, **kwargs) -> EmotionModel:
    """Load a model directory (default: the model shipped with emovox)."""
    return EmotionModel(load_model_files(model_dir or default_model_dir()), **kwargs)
