"""The text-emotion model: a sentence embedding, then a linear softmax head per encoder.

A model folder holds ``config.json`` (labels, encoders, which encoder reads which language,
measured scores) and ``heads.safetensors`` (``<encoder>.weight`` ``(n_labels, 384)`` and
``<encoder>.bias`` per encoder). The heads run in NumPy; only the sentence encoders need the
``text`` extra. The shipped model is ``emovox/models/text-default`` (trained by
``scripts/train_text.py``).

Examples:
    >>> import numpy as np
    >>> m = TextEmotionModel(["neutral", "happy"], {"minilm": (np.zeros((2, 384)), np.array([0.0, 1.0]))})
    >>> [round(float(p), 3) for p in m.probabilities_for_embeddings(np.zeros((1, 384)), "minilm")[0]]
    [0.269, 0.731]
    >>> m.encoder_for("pl"), m.encoder_for("en")
    ('minilm', 'minilm')
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from emovox.errors import ModelError
from emovox.text.embed import embed

CONFIG = "config.json"
WEIGHTS = "heads.safetensors"


def default_text_model_dir() -> Path:
    """The text model shipped inside the package."""
    return Path(str(resources.files("emovox") / "models" / "text-default"))


class TextEmotionModel:
    """Emotion probabilities for sentences.

    Args:
        labels: the label of each output column.
        heads: encoder name -> ``(weight (n_labels, dim), bias (n_labels,))``.
        languages: language code -> encoder; ``"default"`` is used for any other language
            (default: the first head for everything).
        config: extra metadata kept with the model (scores, training command).
    """

    def __init__(self, labels: Sequence[str], heads: dict[str, tuple[np.ndarray, np.ndarray]], *,
                 languages: dict[str, str] | None = None, config: dict | None = None):
        if not heads:
            raise ModelError("a text model needs at least one head")
        self.labels = list(labels)
        self.heads = {k: (np.asarray(w, np.float32), np.asarray(b, np.float32)) for k, (w, b) in heads.items()}
        for name, (w, b) in self.heads.items():
            if w.shape[0] != len(self.labels) or b.shape != (len(self.labels),):
                raise ModelError(f"head {name!r} has shape {w.shape}/{b.shape} for {len(self.labels)} labels")
        self.languages = dict(languages or {"default": next(iter(self.heads))})
        self.config = dict(config or {})

    def encoder_for(self, language: str | None) -> str:
        """The encoder that reads ``language`` (an ISO 639-1 code such as ``"en"``; None: default)."""
        name = self.languages.get(language or "", self.languages.get("default", next(iter(self.heads))))
        return name if name in self.heads else next(iter(self.heads))

    def gate_threshold(self, encoder: str, default: float = 0.3) -> float:
        """The fusion threshold measured for ``encoder`` at training (see :mod:`emovox.text.fusion`):
        the emotional confidence ``1 - p(neutral)`` that most neutral sentences stay below."""
        return float(self.config.get("gate_threshold", {}).get(encoder, default))

    def probabilities_for_embeddings(self, embeddings: np.ndarray, encoder: str) -> np.ndarray:
        """Class probabilities ``(n, n_labels)`` from sentence embeddings of ``encoder``."""
        w, b = self.heads[encoder]
        logits = np.asarray(embeddings, np.float32) @ w.T + b
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def probabilities(self, texts: Sequence[str], language: str | None = None) -> np.ndarray:
        """Class probabilities ``(len(texts), n_labels)`` for sentences in one language."""
        encoder = self.encoder_for(language)
        return self.probabilities_for_embeddings(embed(texts, encoder), encoder)

    def predict(self, text: str, language: str | None = None) -> dict[str, float]:
        """``{label: probability}`` for one sentence."""
        return dict(zip(self.labels, map(float, self.probabilities([text], language)[0]), strict=True))

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json`` and ``heads.safetensors`` into ``directory``."""
        from safetensors.numpy import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {}
        for name, (w, b) in self.heads.items():
            tensors[f"{name}.weight"], tensors[f"{name}.bias"] = w, b
        save_file(tensors, directory / WEIGHTS)
        config = {**self.config, "format": "emovox-text", "labels": self.labels,
                  "encoders": list(self.heads), "languages": self.languages}
        (directory / CONFIG).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike | None = None) -> TextEmotionModel:
        """Read a model folder (default: the shipped text model)."""
        from safetensors.numpy import load_file

        directory = Path(directory) if directory is not None else default_text_model_dir()
        try:
            config = json.loads((directory / CONFIG).read_text())
            tensors = load_file(directory / WEIGHTS)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read a text model in {directory}: {exc}") from None
        heads = {name: (tensors[f"{name}.weight"], tensors[f"{name}.bias"]) for name in config["encoders"]}
        extra = {k: v for k, v in config.items() if k not in ("labels", "encoders", "languages", "format")}
        return cls(config["labels"], heads, languages=config.get("languages"), config=extra)


def load_text_model(directory: str | os.PathLike | None = None) -> TextEmotionModel:
    """Load a text model folder (default: the shipped one). See :class:`TextEmotionModel`."""
    return TextEmotionModel.load(directory)
