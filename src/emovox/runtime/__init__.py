"""Serving without torch: exported emovox models on numpy + onnxruntime.

Only numpy, onnxruntime, the audio stack (soundfile, soxr) and faster-whisper's numpy log-mel
file are imported here; a test checks that ``torch`` never is.

Examples:
    >>> from emovox.runtime import choose_providers
    >>> choose_providers("cpu")
    ['CPUExecutionProvider']
"""

from __future__ import annotations

from emovox.encoder.mel import log_mel, mel_windows
from emovox.runtime.model import OnnxEmotionModel, merge_pooled, read_export_config
from emovox.runtime.session import choose_providers, make_session

__all__ = ["OnnxEmotionModel", "choose_providers", "log_mel", "make_session", "mel_windows", "merge_pooled",
           "read_export_config"]
