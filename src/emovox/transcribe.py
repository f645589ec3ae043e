"""Speech to text with faster-whisper, on the Whisper weights emovox already ships.

:class:`Transcriber` wraps ``faster_whisper.WhisperModel`` over a packaged CTranslate2 folder
(:func:`emovox.encoder_weights.packaged_encoder_dir`): ``"whisper-base"`` (multilingual, with
language detection; the default) or ``"whisper-tiny.en"`` (English only, fast). It runs on
the CPU with int8 weights.

The encoder pass is not shared with emovox's own encoder: faster-whisper's ``transcribe``
takes audio and runs CTranslate2's encoder internally; its lower-level
``WhisperModel.encode`` returns only the final-layer output as a CTranslate2 ``StorageView``,
while emovox's heads pool several hidden layers of its own PyTorch/ONNX encoder, so the
acoustic features would have to be recomputed anyway. A transcript therefore costs one
more encoder pass plus decoding.

Examples:
    >>> Transcript("hello", "en", 0.98, [Segment(0.0, 1.2, "hello")]).to_dict()["language"]
    'en'
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np

from .audio import SAMPLING_RATE, load_audio

DEFAULT_ASR = "whisper-base"


@dataclasses.dataclass
class Segment:
    """A stretch of recognised speech, times in seconds from the start of the clip."""

    start: float
    end: float
    text: str


@dataclasses.dataclass
class Transcript:
    """What was said: the text, the detected language (ISO 639-1) and its probability, segments."""

    text: str
    language: str
    language_probability: float
    segments: list[Segment]

    def to_dict(self) -> dict:
        return {"text": self.text, "language": self.language,
                "language_probability": round(self.language_probability, 4),
                "segments": [dataclasses.asdict(s) for s in self.segments]}


class Transcriber:
    """faster-whisper on a packaged Whisper model.

    Args:
        model: a packaged model id (``"whisper-base"``, ``"whisper-tiny.en"``) or a CTranslate2
            Whisper folder.
        threads: CPU threads for CTranslate2 (default: 2, or ``$EMOVOX_ASR_THREADS``).
        compute_type: CTranslate2 compute type (``"int8"`` by default).
        beam_size: decoding beam (1 = greedy, the fastest).
    """

    def __init__(self, model: str | os.PathLike = DEFAULT_ASR, *, threads: int | None = None,
                 compute_type: str = "int8", beam_size: int = 1):
        from faster_whisper import WhisperModel

        from .encoder_weights import PACKAGED_ENCODERS, packaged_encoder_dir

        path = packaged_encoder_dir(str(model)) if str(model) in PACKAGED_ENCODERS else os.fspath(model)
        threads = threads or int(os.environ.get("EMOVOX_ASR_THREADS", 2))
        self.english_only = str(model).endswith(".en")
        self.beam_size = beam_size
        self.model = WhisperModel(str(path), device="cpu", compute_type=compute_type, cpu_threads=threads)

    def transcribe(self, signal: np.ndarray, sampling_rate: int, *, language: str | None = None) -> Transcript:
        """Transcribe one signal.

        Args:
            signal: mono or multichannel samples.
            sampling_rate: their rate in Hz (resampled to 16 kHz if different).
            language: force a language (ISO 639-1); None detects it (English-only models: "en").
        """
        audio = load_audio(signal, sampling_rate, max_duration=None)
        if self.english_only:
            language = "en"
        segments, info = self.model.transcribe(
            audio, language=language, beam_size=self.beam_size, vad_filter=False,
            condition_on_previous_text=False, without_timestamps=False,
        )
        segments = [Segment(round(float(s.start), 3), round(float(s.end), 3), s.text.strip()) for s in segments]
        text = " ".join(s.text for s in segments if s.text).strip()
        return Transcript(text, info.language, float(info.language_probability or 0.0), segments)

    def transcribe_file(self, path: str | os.PathLike, *, language: str | None = None) -> Transcript:
        """Transcribe one audio file."""
        return self.transcribe(load_audio(path, max_duration=None), SAMPLING_RATE, language=language)

    def transcribe_signals(self, signals: Sequence[np.ndarray], *, language: str | None = None) -> list[Transcript]:
        """Transcribe 16 kHz mono signals one by one."""
        return [self.transcribe(s, SAMPLING_RATE, language=language) for s in signals]
