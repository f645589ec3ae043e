"""emovox: speech emotion recognition with pretrained transformer speech encoders."""

from __future__ import annotations

__version__ = "0.1.0"
