"""Frame-level hidden states below the tuned encoder blocks, computed once and cached on disk.

Fine-tuning the top K blocks (:mod:`emovox.training.finetune`) runs them on every training clip
in every epoch; the frozen part below them never changes, so its output (hidden state
``n_layers - K``, one ``(frames, d)`` array per encoder window) is computed once per clip and
stored in float16, keyed like the pooled cache on the file's content, the encoder's weights and
the window, plus the state. The states do not depend on the pooling, so uniform and level-weighted
pooling share one cache: a clip's entry also holds the level weights of its frames once a
level-pooled run has needed them (computed from the clip's log-mel alone, no encoder pass).

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
                out[index].weights[k] = window_level_weights(mel, valid, len(frames))  # type: ignore[index]
    return out


def window_level_weights(mel: np.ndarray, valid: int, n_frames: int) -> np.ndarray:
    """Level pooling weight of each of a window's ``n_frames`` encoder frames, float16.

    Examples:
        >>> window_level_weights(np.zeros((80, 100), np.float32), 100, 50).shape
        (50,)
    """
    w = level_weights(torch.from_numpy(mel)[None], torch.tensor([valid]))[0].numpy()
    return w[:n_frames].astype(np.float16)


def add_level_weights(clip: ClipFrames, signal: np.ndarray, n_mels: int) -> ClipFrames:
    """``clip`` with the level weights of its frames, from ``signal``'s log-mel (cheap: no encoder)."""
    windows = mel_windows(signal, n_mels=n_mels)
    if len(windows) != len(clip.windows):
        raise ValueError(f"cached frames have {len(clip.windows)} windows, the audio {len(windows)}")
    weights = [window_level_weights(mel, valid, len(frames)) for (mel, valid), frames in zip(windows, clip.windows,
                                                                                               strict=True)]
    return ClipFrames(clip.windows, weights)


class FrameCache:
    """Frame-level states on disk: one ``.npz`` per (file content, feature settings, state).

    The pooling is not part of the key (the states below the tuned blocks do not depend on it), so
    a uniform and a level-pooled run share the entries; the key is the uniform settings' own, which
    keeps caches made before the sharing valid.
    """

    def __init__(self, settings: FeatureSettings, state: int, root: str | os.PathLike | None = None):
        key = dataclasses.replace(settings, pooling="mean_std").key()
        self.dir = (Path(root) if root else cache_dir() / "frames") / f"{key}-state{state}"
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
    todo, unweighted = [], []
    for i, path in enumerate(paths):
        digest = content_hash(path)
        hit = cache.get(digest) if cache else None
        if hit is None:
            todo.append((i, digest))
        elif level and hit.weights is None:
            out[i] = hit
            unweighted.append((i, digest))  # states cached by a uniform run: only the weights are missing
        else:
            out[i] = hit if level else ClipFrames(hit.windows)
    for i, digest in tqdm(unweighted, desc=f"{desc} level weights", unit="file", disable=not unweighted):
        clip = add_level_weights(out[i], loader(os.fspath(paths[i])), encoder.config.n_mels)  # type: ignore[arg-type]
        out[i] = clip
        if cache:
            cache.put(digest, clip)
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
