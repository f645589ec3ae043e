"""Per-layer pooled encoder features, computed in length-sorted batches and cached on disk.

:class:`FeatureExtractor` turns 16 kHz signals into ``(n_states, 2 d)`` arrays (mean and std of
every Whisper hidden state). :class:`FeatureCache` stores them under a key made of the file's
content hash and the extractor's settings, so re-running over a corpus only reads the cache.

Examples:
    >>> from emovox.testing import sinusoid
    >>> extractor = FeatureExtractor("whisper-tiny.en")       # doctest: +SKIP
    >>> extractor([sinusoid(duration=1.0)]).shape             # doctest: +SKIP
    (1, 5, 768)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from emovox._version import __version__
from emovox.audio.speech_level import level_weights
from emovox.encoder.batches import length_batches
from emovox.encoder.mel import mel_windows
from emovox.encoder.weights import DEFAULT_ENCODER, cache_dir, encoder_weight_hash, load_encoder
from emovox.encoder.whisper import WhisperEncoder
from emovox.features.pooling import POOLINGS, mean_std_pool

FEATURE_VERSION = 1  # bump when the meaning of cached features changes


def pad_mels(mels: Sequence[np.ndarray], n_mels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mel windows zero-padded into one batch ``(b, n_mels, longest)`` and their frame counts."""
    lengths = torch.tensor([m.shape[1] for m in mels])
    batch = torch.zeros(len(mels), n_mels, int(lengths.max()))
    for i, m in enumerate(mels):
        batch[i, :, : m.shape[1]] = torch.from_numpy(m)
    return batch, lengths


def atomic_save(path: Path, save: Callable) -> None:
    """Write ``path`` through ``save(file)`` on a temporary file in its folder, then rename it:
    a crash never leaves a half-written entry."""
    path.parent.mkdir(exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".tmp") as tmp:
        save(tmp)
    os.replace(tmp.name, path)


@dataclasses.dataclass(frozen=True)
class FeatureSettings:
    """Everything that determines a feature vector; stored in model checkpoints."""

    encoder: str = DEFAULT_ENCODER
    encoder_sha256: str = ""
    pooling: str = "mean_std"
    window: float = 0.0  # 0: encode each clip's own length; 30: pad each window to 30 s like Whisper
    sampling_rate: int = 16000
    version: int = FEATURE_VERSION
    tuned_sha256: str = ""  # sha256 of the model's tuned top blocks (emovox.encoder.tuned); "" = frozen encoder
    # True: the clip's frames also attend to a 30 s window of silence after the clip (WhisperEncoder.silence_context)
    silence_context: bool = False
    # >1: only every s-th position of that context, each counted s times (the context's attention costs 1/s)
    silence_stride: int = 1
    # (low, high) dBFS: each clip's speech level brought into this band before the log-mel (emovox.audio.level_band)
    level_band: tuple[float, float] | None = None

    def __post_init__(self):
        if self.level_band is not None:  # JSON stores it as a list
            object.__setattr__(self, "level_band", tuple(float(v) for v in self.level_band))

    def key(self) -> str:
        """Short hash of the settings, used as the cache namespace (a frozen encoder's key is the
        one it had before fine-tuning and silence context existed, so caches stay valid)."""
        fields = dataclasses.asdict(self)
        for name in ("tuned_sha256", "silence_context"):
            if not fields[name]:
                del fields[name]
        if fields["silence_stride"] == 1:
            del fields["silence_stride"]
        if fields["level_band"] is None:
            del fields["level_band"]
        blob = json.dumps(fields, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FeatureSettings:
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})


class FeatureExtractor:
    """Whisper encoder + pooling; call it with a list of 16 kHz float32 signals."""

    def __init__(
        self,
        encoder: str | os.PathLike = DEFAULT_ENCODER,
        *,
        max_batch_frames: int = 6000,
        window: float = 0.0,
        pooling: str = "mean_std",
        module: WhisperEncoder | None = None,
        tuned_sha256: str = "",
        silence_context: bool = False,
        silence_stride: int = 1,
        level_band: tuple[float, float] | None = None,
    ):
        """``module``: an encoder already built (e.g. with tuned top blocks merged, whose file's
        sha256 is ``tuned_sha256``); default: ``encoder``'s weights, loaded. ``silence_context``:
        each clip's frames also attend to a 30 s window of silence after the clip, as if it were
        padded to Whisper's window (:meth:`WhisperEncoder.silence_context`), at its own length's cost;
        ``silence_stride``: only every s-th position of it, each counted s times; ``level_band``: ``(low, high)``
        dBFS, each clip's speech level brought into it first (:mod:`emovox.audio.level_band`)."""
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
        if silence_context and window:
            raise ValueError("silence_context stands in for a padded window: use it with window=0")
        if silence_stride < 1 or (silence_stride > 1 and not silence_context):
            raise ValueError("silence_stride: a positive integer, above 1 only with silence_context")
        self.encoder = module if module is not None else load_encoder(encoder)
        self.settings = FeatureSettings(
            encoder=str(encoder), encoder_sha256=encoder_weight_hash(encoder), pooling=pooling, window=window,
            tuned_sha256=tuned_sha256, silence_context=silence_context, silence_stride=silence_stride,
            level_band=level_band,
        )
        self.max_batch_frames = max_batch_frames
        self.n_mels = self.encoder.config.n_mels

    @classmethod
    def from_settings(cls, settings: FeatureSettings, *, module: WhisperEncoder | None = None) -> FeatureExtractor:
        """The extractor a model's stored settings describe (its encoder loaded, or ``module``: the
        model's encoder with its tuned blocks); its encoder hash is the one found, for the caller to check."""
        return cls(settings.encoder, window=settings.window, pooling=settings.pooling, module=module,
                   tuned_sha256=settings.tuned_sha256, silence_context=settings.silence_context,
                   silence_stride=settings.silence_stride, level_band=settings.level_band)

    @property
    def feature_shape(self) -> tuple[int, int]:
        return (self.encoder.n_hidden_states, 2 * self.encoder.config.d_model)

    @torch.inference_mode()
    def __call__(
        self, signals: Sequence[np.ndarray], *, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Pooled features ``(len(signals), n_states, 2 d)``; batches of similar length."""
        windows: list[tuple[int, np.ndarray]] = []  # (signal index, mel window)
        valid: list[int] = []  # encoder frames of real audio in each window (at least one)
        weights: list[np.ndarray | None] = []  # each window's frame weights (level pooling)
        level = self.settings.pooling == "level_mean_std"
        for index, signal in enumerate(signals):
            for mel, valid_mel in mel_windows(signal, n_mels=self.n_mels, window=self.settings.window,
                                           level_band=self.settings.level_band):
                windows.append((index, mel))
                valid.append(max(1, (valid_mel + 1) // 2))
                weights.append(level_weights(torch.from_numpy(mel)[None], torch.tensor([valid_mel]))[0].numpy()
                               if level else None)
        per_signal: list[list[np.ndarray]] = [[] for _ in signals]
        per_signal_weights: list[list[np.ndarray]] = [[] for _ in signals]
        for part in length_batches([w.shape[1] for _, w in windows], self.max_batch_frames):
            batch = [windows[i] for i in part]
            encoded = self._encode([w for _, w in batch])
            for j, (index, _), states in zip(part, batch, encoded, strict=True):
                per_signal[index].append(states[:, : valid[j]])
                if level:
                    per_signal_weights[index].append(weights[j][: valid[j]])
            if progress:
                progress(len({index for index, _ in batch}))
        pooled = [mean_std_pool(np.concatenate(parts, axis=1), np.concatenate(w) if w else None)
                  for parts, w in zip(per_signal, per_signal_weights, strict=True)]
        return np.stack(pooled) if pooled else np.zeros((0, *self.feature_shape), np.float32)

    def _encode(self, mels: list[np.ndarray]) -> list[np.ndarray]:
        """Encode a batch of mel windows; returns each window's ``(n_states, frames, d)``."""
        batch, lengths = pad_mels(mels, self.n_mels)
        states = torch.stack(self.encoder(batch, lengths, silence=self.settings.silence_context,
                                          silence_stride=self.settings.silence_stride), dim=1)  # (b, n_states, t, d)
        out_len = WhisperEncoder.output_lengths(lengths)
        return [states[i, :, : out_len[i]].numpy() for i in range(len(mels))]


def content_hash(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes: the cache key does not depend on where the file lives."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class FeatureCache:
    """Pooled features on disk, one ``.npy`` (float16) per (file content, settings)."""

    def __init__(self, settings: FeatureSettings, root: str | os.PathLike | None = None):
        self.settings = settings
        self.root = Path(root) if root else cache_dir() / "features"
        self.dir = self.root / settings.key()
        self.dir.mkdir(parents=True, exist_ok=True)
        meta = self.dir / "settings.json"
        if not meta.exists():
            meta.write_text(json.dumps({**settings.to_dict(), "emovox": __version__}, indent=2))

    def _path(self, digest: str) -> Path:
        return self.dir / digest[:2] / f"{digest}.npy"

    def get(self, digest: str) -> np.ndarray | None:
        path = self._path(digest)
        try:
            return np.load(path).astype(np.float32)
        except (FileNotFoundError, ValueError, EOFError):
            return None

    def put(self, digest: str, features: np.ndarray) -> None:
        atomic_save(self._path(digest), lambda f: np.save(f, features.astype(np.float16)))


def extract_files(
    paths: Sequence[str | os.PathLike],
    extractor: FeatureExtractor,
    *,
    cache: FeatureCache | None = None,
    chunk: int = 64,
    desc: str = "features",
    loader: Callable[[str], np.ndarray] | None = None,
    transform: Callable[[np.ndarray, str], np.ndarray] | None = None,
    cache_key: Callable[[str], str] | None = None,
) -> np.ndarray:
    """Features for audio files, reading the cache first and saving new ones as they finish.

    ``transform(signal, content_hash)`` changes the audio before encoding (augmentation);
    ``cache_key(content_hash)`` then names its cache entry. Work is done in chunks of
    ``chunk`` files and each chunk is cached as soon as it is computed, so an interrupted run
    loses at most one chunk.
    """
    if loader is None:
        from emovox.audio.load import load_audio

        loader = lambda p: load_audio(p, max_duration=None)  # noqa: E731
    if transform is not None and cache_key is None:
        raise ValueError("a transform needs its own cache_key")
    key = cache_key or (lambda digest: digest)
    out = np.zeros((len(paths), *extractor.feature_shape), np.float32)
    todo: list[tuple[int, str]] = []
    for i, path in enumerate(paths):
        digest = content_hash(path)
        hit = cache.get(key(digest)) if cache else None
        if hit is not None and hit.shape == out.shape[1:]:
            out[i] = hit
        else:
            todo.append((i, digest))
    with tqdm(total=len(paths), initial=len(paths) - len(todo), desc=desc, unit="file") as bar:
        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            signals = [loader(os.fspath(paths[i])) for i, _ in part]
            if transform is not None:
                signals = [transform(x, digest) for x, (_, digest) in zip(signals, part, strict=True)]
            feats = extractor(signals, progress=bar.update)
            for (i, digest), f in zip(part, feats, strict=True):
                out[i] = f
                if cache:
                    cache.put(key(digest), f)
    return out
