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

from collections.abc import Sequence

import numpy as np
import torch

from emovox.audio.load import DEFAULT_MAX_DURATION
from emovox.errors import ModelError
from emovox.features.extractor import FeatureExtractor
from emovox.prediction.predictor import Predictor
from emovox.training.checkpoint import ModelBundle


class EmotionModel(Predictor):
    """A trained emotion model: encoder + an ensemble of heads + calibration temperature."""

    def __init__(self, bundle: ModelBundle, *, extractor: FeatureExtractor | None = None,
                 max_duration: float | None = DEFAULT_MAX_DURATION):
        self.bundle = bundle
        self.labels = list(bundle.labels)
        self.ensemble = bundle.ensemble()
        self.prosody_head = bundle.prosody
        self.profile_spread = bundle.profile_spread
        self.max_duration = max_duration
        self.extractor = extractor or FeatureExtractor.from_settings(
            bundle.features, module=bundle.tuned_encoder() if bundle.tuned else None)
        if self.extractor.settings.encoder_sha256 != bundle.features.encoder_sha256:
            raise ModelError(
                f"encoder weights differ from the ones the model was trained with "
                f"({self.extractor.settings.encoder_sha256[:12]} vs {bundle.features.encoder_sha256[:12]})"
            )

    @property
    def has_dimensions(self) -> bool:  # type: ignore[override]  # a fact of the loaded heads
        return self.ensemble.has_dimensions

    @property
    def model_id(self) -> str:
        return self.bundle.config.get("training", {}).get("name", "emovox-model")

    @torch.inference_mode()
    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Calibrated class probabilities ``(n, n_labels)`` from pooled features."""
        return self.ensemble.probabilities(features)

    def features_for_signals(self, signals: Sequence[np.ndarray]) -> np.ndarray:
        return self.extractor(signals)

    def probabilities_for_features(self, features: np.ndarray, *, adapted: bool = False,
                                   profiled: bool = False) -> np.ndarray:
        return self.ensemble.probabilities(features, adapted=adapted, profiled=profiled)

    @torch.inference_mode()
    def outputs_for_features(self, features: np.ndarray, *, adapted: bool = False,
                             profiled: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        # under a profile the profile heads (when the model has them) give the dims too, as the runtime's graph does
        heads = self.ensemble.profile_heads if profiled and self.ensemble.profile_heads is not None else self.ensemble
        dims = heads.dimensions(features) if heads.has_dimensions else None
        return self.ensemble.probabilities(features, adapted=adapted, profiled=profiled), dims

    def outputs_for_signals(self, signals: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities and the heads' (arousal, valence) (None without them) for 16 kHz signals."""
        return self.outputs_for_features(self.extractor(signals))

    def reference_mean(self) -> np.ndarray:
        return self.ensemble.reference_mean()

    def encoder_sha256(self) -> str:
        return self.bundle.features.encoder_sha256

    def probabilities_for_signals(self, signals: Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities for 16 kHz mono signals: encoder features, then the heads."""
        return self.probabilities(self.extractor(signals))

