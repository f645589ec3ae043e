"""Frame-level hidden states below the tuned encoder blocks, computed once and cached on disk.

Fine-tuning the top K blocks (:mod:`emovox.training.finetune`) runs them on every training clip
in every epoch; the frozen part below them never changes, so its output (hidden state
``n_layers - K``, one ``(frames, d)`` array per encoder window) is computed once per clip and
stored in float16, keyed like the pooled cache on the file's content, the encoder's weights, the
pooling and the window, plus the state. A clip's entry also holds the level weights of its frames
when the pooling is level-weighted.

Examples:
    >>> import numpy as np
    >>> from emovox.encoder.whisper import WhisperEncoder, WhisperEncoderConfig
    >>> enc = WhisperEncoder(WhisperEncoderConfig(n_mels=80, d_model=16, n_heads=2, n_layers=2))
    >>> clips = encode_below(enc, [np.zeros(16000, np.float32)], state=1)
    >>> len(clips), clips[0].windows[0].shape
    (1, (50, 16))
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from emovox.audio.speech_level import level_weights
from emovox.encoder.batches import length_batches
from emovox.encoder.mel import mel_windows
from emovox.encoder.weights import cache_dir
from emovox.encoder.whisper import WhisperEncoder
from emovox.features.extractor import FeatureSettings, atomic_save, content_hash, pad_mels


@dataclasses.dataclass
class ClipFrames:
    """One clip's hidden state below the tuned blocks: a ``(frames, d)`` float16 array per encoder
    window, and each window's frame weights (level pooling) or None (uniform pooling)."""

    windows: list[np.ndarray]
    weights: list[np.ndarray] | None = None

    @property
    def n_frames(self) -> int:
        return sum(len(w) for w in self.windows)


@torch.inference_mode()
def encode_windows_below(encoder: WhisperEncoder, mels: Sequence[np.ndarray], state: int) -> list[np.ndarray]:
    """Hidden state ``state`` of each mel window (a padded batch), ``(frames, d)`` float16 each."""
    batch, lengths = pad_mels(mels, encoder.config.n_mels)
    x = encoder(batch, lengths, n_blocks=state)[-1]
    return [x[i, :n].numpy().astype(np.float16) for i, n in enumerate(WhisperEncoder.output_lengths(lengths).tolist())]


def encode_below(encoder: WhisperEncoder, signals: Sequence[np.ndarray], *, state: int, level: bool = False,
                 max_batch_frames: int = 6000) -> list[ClipFrames]:
    """Hidden state ``state`` (the input of block ``state + 1``) of every 16 kHz signal, per
    window (each clip's own length, cut every 30 s, as the pooled features are computed)."""
    items: list[tuple[int, int, np.ndarray, int]] = []  # (signal, window position, mel, valid frames)
    out = []
    for index, signal in enumerate(signals):
        windows = mel_windows(signal, n_mels=encoder.config.n_mels)
        items += [(index, k, mel, valid) for k, (mel, valid) in enumerate(windows)]
        n = len(windows)
        out.append(ClipFrames([np.empty(0)] * n, [np.empty(0)] * n if level else None))
    for part in length_batches([mel.shape[1] for _, _, mel, _ in items], max_batch_frames):
        encoded = encode_windows_below(encoder, [items[i][2] for i in part], state)
        for i, frames in zip(part, encoded, strict=True):
            index, k, mel, valid = items[i]
            out[index].windows[k] = frames
            if level:
                w = level_weights(torch.from_numpy(mel)[None], torch.tensor([valid]))[0].numpy()
                out[index].weights[k] = w[: len(frames)].astype(np.float16)  # type: ignore[index]
    return out


class FrameCache:
    """Frame-level states on disk: one ``.npz`` per (file content, feature settings, state)."""

    def __init__(self, settings: FeatureSettings, state: int, root: str | os.PathLike | None = None):
        self.dir = (Path(root) if root else cache_dir() / "frames") / f"{settings.key()}-state{state}"
        self.dir.mkdir(parents=True, exist_ok=True)

    def _path(self, digest: str) -> Path:
        return self.dir / digest[:2] / f"{digest}.npz"

    def get(self, digest: str) -> ClipFrames | None:
        try:
            with np.load(self._path(digest)) as z:
                n = int(z["n"])
                windows = [z[f"w{k}"] for k in range(n)]
                weights = [z[f"l{k}"] for k in range(n)] if "l0" in z else None
        except (FileNotFoundError, ValueError, EOFError, KeyError, OSError):
            return None
        return ClipFrames(windows, weights)

    def put(self, digest: str, clip: ClipFrames) -> None:
        arrays = {"n": np.array(len(clip.windows))}
        arrays.update({f"w{k}": w for k, w in enumerate(clip.windows)})
        arrays.update({f"l{k}": w for k, w in enumerate(clip.weights or [])})
        atomic_save(self._path(digest), lambda f: np.savez(f, **arrays))


def clip_frames(paths: Sequence[str | os.PathLike], encoder: WhisperEncoder, settings: FeatureSettings, *, state: int,
                cache: FrameCache | None = None, chunk: int = 32, loader: Callable[[str], np.ndarray] | None = None,
                desc: str = "frames") -> list[ClipFrames]:
    """:class:`ClipFrames` of every file, from ``cache`` where present; new ones are cached as
    each chunk of ``chunk`` files finishes (an interrupted run loses at most one chunk)."""
    if settings.window:
        raise ValueError("fine-tuning needs features of each clip's own length (window 0), not 30 s windows")
    if loader is None:
        from emovox.audio.load import load_audio

        loader = lambda p: load_audio(p, max_duration=None)  # noqa: E731
    level = settings.pooling == "level_mean_std"
    out: list[ClipFrames | None] = [None] * len(paths)
    todo = []
    for i, path in enumerate(paths):
        digest = content_hash(path)
        hit = cache.get(digest) if cache else None
        if hit is not None and (hit.weights is not None) == level:
            out[i] = hit
        else:
            todo.append((i, digest))
    with tqdm(total=len(paths), initial=len(paths) - len(todo), desc=desc, unit="file") as bar:
        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            clips = encode_below(encoder, [loader(os.fspath(paths[i])) for i, _ in part], state=state, level=level)
            for (i, digest), clip in zip(part, clips, strict=True):
                out[i] = clip
                if cache:
                    cache.put(digest, clip)
            bar.update(len(part))
    return out  # type: ignore[return-value]
