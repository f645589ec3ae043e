"""Speech to text with faster-whisper, on the Whisper weights emovox already ships.

:class:`Transcriber` wraps ``faster_whisper.WhisperModel`` over a packaged CTranslate2 folder
(:func:`emovox.encoder.weights.packaged_encoder_dir`): ``"whisper-base"`` (multilingual, with
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

from emovox.audio.load import SAMPLING_RATE, load_audio

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

        from emovox.encoder.weights import PACKAGED_ENCODERS, packaged_encoder_dir

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

    def transcribe_clips(self, clips: Sequence[np.ndarray], *, language: str | None = None) -> list[Transcript]:
        """Transcribe short 16 kHz mono clips already cut at speech (a timeline's windows), one
        :class:`Transcript` each.

        Tuned for speed with the same greedy decoding as :meth:`transcribe`: no timestamp
        tokens (each transcript has one segment spanning its clip), no VAD (the clips are
        speech), no conditioning on the previous text. The language is detected once, on the
        first 30 s of the clips together, and used for all: detecting it per clip would cost
        one more encoder pass per clip, and a short clip is a poor sample of its language.
        The clips go one by one: faster-whisper's ``BatchedInferencePipeline`` was no faster
        on 2 CPU cores (``benchmarks/bench_asr.py``), as every clip is padded to Whisper's
        30 s input either way.

        Args:
            clips: 16 kHz mono float32 signals, each at most 30 s.
            language: force a language (ISO 639-1); None detects it (English-only models: "en").

        Examples:
            >>> Transcriber.__new__(Transcriber).transcribe_clips([])
            []
        """
        if not clips:
            return []
        probability = 1.0
        if self.english_only:
            language = "en"
        elif language is None:
            speech = np.concatenate([np.asarray(c, np.float32) for c in clips])[: 30 * SAMPLING_RATE]
            language, probability, _ = self.model.detect_language(speech)
        out = []
        for clip in clips:
            duration = round(len(clip) / SAMPLING_RATE, 3)
            segments, _ = self.model.transcribe(
                np.asarray(clip, np.float32), language=language, beam_size=self.beam_size, vad_filter=False,
                condition_on_previous_text=False, without_timestamps=True,
            )
            text = " ".join(s.text.strip() for s in segments).strip()
            out.append(Transcript(text, language, float(probability), [Segment(0.0, duration, text)] if text else []))
        return out

    def transcribe_file(self, path: str | os.PathLike, *, language: str | None = None) -> Transcript:
        """Transcribe one audio file."""
        return self.transcribe(load_audio(path, max_duration=None), SAMPLING_RATE, language=language)

    def transcribe_signals(self, signals: Sequence[np.ndarray], *, language: str | None = None) -> list[Transcript]:
        """Transcribe 16 kHz mono signals one by one."""
        return [self.transcribe(s, SAMPLING_RATE, language=language) for s in signals]
