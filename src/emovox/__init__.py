"""emovox: speech emotion recognition with pretrained transformer speech encoders.

Examples:
    >>> import emovox
    >>> model = emovox.load()                              # doctest: +SKIP
    >>> model.predict_file("call.wav").label               # doctest: +SKIP
    'angry'
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load", "EmotionModel", "Prediction"]


def __getattr__(name: str):
    # Lazy: `import emovox` stays cheap (no torch) until a model is asked for.
    if name in ("load", "Prediction"):  # torch-free: an exported folder never imports torch
        from . import prediction

        return getattr(prediction, name)
    if name == "EmotionModel":
        from . import model

        return model.EmotionModel
    raise AttributeError(name)
