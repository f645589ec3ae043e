"""emovox: speech emotion recognition with pretrained transformer speech encoders.

Examples:
    >>> import emovox
    >>> model = emovox.load()                              # doctest: +SKIP
    >>> model.predict_file("call.wav").label               # doctest: +SKIP
    'angry'
"""

from __future__ import annotations

from emovox._version import __version__

__all__ = ["__version__", "load", "EmotionModel", "Prediction"]


def __getattr__(name: str):
    # Lazy: `import emovox` stays cheap (no torch) until a model is asked for.
    if name == "load":  # torch-free: an exported folder never imports torch
        from .prediction.loading import load

        return load
    if name == "Prediction":
        from .prediction.result import Prediction

        return Prediction
    if name == "EmotionModel":
        from .prediction.torch_model import EmotionModel

        return EmotionModel
    raise AttributeError(name)
