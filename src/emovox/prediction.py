"""What every emotion model shares, torch-free: results, file batching, and :func:`load`.

:class:`Predictor` turns a backend's ``predict_signals`` (16 kHz signals → predictions) into
the public entry points ``predict``, ``predict_file`` and ``predict_files``; the PyTorch model
(:class:`emovox.model.EmotionModel`) and the ONNX runtime
(:class:`emovox.runtime.OnnxEmotionModel`) both build on it. :func:`load` picks the backend
from the folder: an exported folder (see :mod:`emovox.export`) runs on onnxruntime without
importing torch, a model directory on PyTorch.

Examples:
    >>> Prediction("sad", {"sad": 0.75, "angry": 0.25}, 1.5).to_dict()["label"]
    'sad'
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from . import __version__
from .audio import DEFAULT_MAX_DURATION, SAMPLING_RATE, load_audio
from .decision import restrict, top_label
from .errors import EmovoxError, InvalidAudioError, ModelError

UNKNOWN = "unknown"  # the label of an abstention (see Predictor.abstain)
EXPORT_FORMAT = "emovox-onnx"  # the ``format`` of an exported folder's config.json
# bump when emovox.export's graphs change: the shipped model's cached export is redone
EXPORT_REVISION = 5  # 5: the graph also outputs each row's frame weight (level pooling)

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Prediction:
    """One clip's result: top label, every label's probability, duration in seconds.

    ``basis`` is set when the answer is not the model's judgement of the whole clip: for a
    long recording, ``"speech segments (n=..., ... s of speech)"`` with ``scores`` the share of
    speech time per label (see :func:`emovox.timeline.predict_recording`).
    """

    label: str
    scores: dict[str, float]
    duration: float
    path: str | None = None
    basis: str | None = None

    def to_dict(self) -> dict:
        out = {"path": self.path} if self.path is not None else {}
        out = {**out, "label": self.label, "scores": self.scores, "duration": round(self.duration, 3)}
        return {**out, "basis": self.basis} if self.basis is not None else out


@dataclasses.dataclass
class PredictionError:
    """A clip that could not be processed, with the reason."""

    path: str
    error: str
    kind: str

    def to_dict(self) -> dict:
        return {"path": self.path, "error": self.error, "error_type": self.kind}


class Predictor:
    """Base of the emotion models: subclasses set ``labels``, ``max_duration`` and implement
    :meth:`probabilities_for_signals`."""

    labels: list[str]
    max_duration: float | None = DEFAULT_MAX_DURATION
    abstain: float | None = None  # top probability below this gives the label "unknown"

    def probabilities_for_signals(self, signals: Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities ``(len(signals), len(labels))`` for 16 kHz mono signals."""
        raise NotImplementedError

    def features_for_signals(self, signals: Sequence[np.ndarray]) -> np.ndarray:
        """Pooled encoder features ``(len(signals), n_states, 2 d)``."""
        raise NotImplementedError

    def probabilities_for_features(self, features: np.ndarray, *, adapted: bool = False) -> np.ndarray:
        """Class probabilities from pooled features (the heads only); ``adapted``: the features
        were adapted to their speaker (the model's adapted temperature applies)."""
        raise NotImplementedError

    def reference_mean(self) -> np.ndarray:
        """The training feature mean the heads standardise with (see :mod:`emovox.adaptation`)."""
        raise NotImplementedError

    profile = None  # an emovox.profiles.DomainProfile applied to every clip (use_profile)

    def fingerprint(self) -> str:
        """sha256 of what a domain profile depends on: the model id, labels and the training
        feature mean the heads standardise with (the same for a model and its ONNX export)."""
        digest = hashlib.sha256(f"{getattr(self, 'model_id', '')}|{','.join(self.labels)}|".encode())
        digest.update(np.round(np.nan_to_num(self.reference_mean(), nan=-9e9), 4).astype(np.float32).tobytes())
        return digest.hexdigest()

    def encoder_sha256(self) -> str:
        """The encoder weights' hash the model was trained with ("" when unknown)."""
        return ""

    def use_profile(self, profile) -> None:
        """Centre every clip on a deployment's domain (:mod:`emovox.profiles`): ``profile`` is a
        :class:`~emovox.profiles.DomainProfile` or a path to one, ``None`` removes it.

        Raises:
            emovox.profiles.ProfileError: the profile was made for another model.
        """
        from .profiles import DomainProfile

        if profile is not None and not isinstance(profile, DomainProfile):
            profile = DomainProfile.load(profile)
        if profile is not None:
            profile.check(self.fingerprint(), self.encoder_sha256(), getattr(self, "model_id", ""))
            self._profile_reference = self.reference_mean()
        self.profile = profile

    def _probabilities(self, signals: Sequence[np.ndarray]) -> np.ndarray:
        """Probabilities for signals, through the domain profile when one is set."""
        if self.profile is None:
            return self.probabilities_for_signals(signals)
        features = self.profile.apply(self.features_for_signals(signals), self._profile_reference)
        return self.probabilities_for_features(features)

    def predict_speaker(self, signals: Sequence[np.ndarray], *, labels: Sequence[str] | None = None) -> list[Prediction]:
        """Predict for several 16 kHz clips of *one* speaker, adapted to that speaker: their
        features are centred on the training mean before the heads (:mod:`emovox.adaptation`;
        needs at least ``MIN_CLIPS`` clips that cover the speaker's range, not one emotion)."""
        from .adaptation import MIN_CLIPS, adapt

        if len(signals) < MIN_CLIPS:
            raise EmovoxError(f"speaker adaptation needs at least {MIN_CLIPS} clips of the speaker, got {len(signals)}")
        features = adapt(self.features_for_signals(signals), self.reference_mean())
        probs = self.probabilities_for_features(features, adapted=True)
        return [self._result(p, len(s) / SAMPLING_RATE, labels, None) for p, s in zip(probs, signals)]

    def _result(self, probs: np.ndarray, duration: float, labels: Sequence[str] | None, path: str | None) -> Prediction:
        if not np.isfinite(probs).all():  # never a result: NaN is not JSON, and not an answer
            raise InvalidAudioError("the model's probabilities for this clip are not finite")
        scores = restrict({l: float(p) for l, p in zip(self.labels, probs)}, labels)
        label = top_label(scores)
        if self.abstain is not None and scores[label] < self.abstain:
            label = UNKNOWN
        return Prediction(label, scores, duration, path)

    def predict_signals(self, signals: Sequence[np.ndarray], *, labels: Sequence[str] | None = None) -> list[Prediction]:
        """Predict for 16 kHz mono float32 signals (already loaded)."""
        if not len(signals):
            return []
        probs = self._probabilities(signals)
        return [self._result(p, len(s) / SAMPLING_RATE, labels, None) for p, s in zip(probs, signals)]

    def predict_recording(self, signal: np.ndarray, *, labels: Sequence[str] | None = None) -> Prediction:
        """Predict for one whole 16 kHz recording: a clip up to 30 s is judged whole, a longer
        one on its speech segments (:func:`emovox.timeline.predict_recording`)."""
        from .timeline import predict_recording

        return predict_recording(self, signal, labels=labels)

    def predict(self, signal: np.ndarray, sampling_rate: int, *, labels: Sequence[str] | None = None) -> Prediction:
        """Predict for one signal at ``sampling_rate`` (any rate, mono or multichannel)."""
        audio = load_audio(signal, sampling_rate, max_duration=self.max_duration)
        return self.predict_recording(audio, labels=labels)

    def predict_file(self, path: str | os.PathLike, *, labels: Sequence[str] | None = None) -> Prediction:
        """Predict for one audio file."""
        audio = load_audio(path, max_duration=self.max_duration)
        result = self.predict_recording(audio, labels=labels)
        result.path = os.fspath(path)
        return result

    def predict_files(self, paths: Iterable[str | os.PathLike], *, labels: Sequence[str] | None = None,
                      batch_size: int = 16, adapt: bool = False) -> Iterator[Prediction | PredictionError]:
        """Predict for many files in batches, in input order; a bad file yields a PredictionError.

        A recording over 30 s is judged on its speech segments (:meth:`predict_recording`).

        ``adapt=True``: the files are clips of one speaker; all are decoded first and judged
        together against the speaker's own average (:meth:`predict_speaker`).
        """
        if adapt:  # one group: every file must be decoded before any is judged
            yield from self._answer([self._decode(path) for path in paths], self.predict_speaker, labels)
            return
        batch: list[tuple[str, np.ndarray | EmovoxError]] = []
        for path in paths:
            batch.append(self._decode(path))
            if len(batch) >= batch_size:
                yield from self._answer(batch, self.predict_signals, labels)
                batch = []
        yield from self._answer(batch, self.predict_signals, labels)

    def _decode(self, path: str | os.PathLike) -> tuple[str, np.ndarray | EmovoxError]:
        """A file's path and its audio, or the error that decoding it raised."""
        path = os.fspath(path)
        try:
            return path, load_audio(path, max_duration=self.max_duration)
        except Exception as exc:  # noqa: BLE001  whatever one file raises is that file's error
            return path, exc

    def _answer(self, decoded: Sequence[tuple[str, np.ndarray | EmovoxError]], predict,
                labels: Sequence[str] | None) -> Iterator[Prediction | PredictionError]:
        """``predict`` (``predict_signals`` or ``predict_speaker``) on the decoded files together,
        then each file's result in input order; a file that failed to decode yields its error."""
        good = [audio for _, audio in decoded if isinstance(audio, np.ndarray)]
        results = iter(self._judge(good, predict, labels))
        for path, audio in decoded:
            result = next(results) if isinstance(audio, np.ndarray) else audio
            if isinstance(result, Prediction):
                result.path = path
                yield result
            else:
                yield PredictionError(path, str(result) or repr(result), type(result).__name__)

    def _judge(self, signals: Sequence[np.ndarray], predict, labels: Sequence[str] | None) -> list:
        """Each signal's Prediction, or the EmovoxError that judging it raised. Unadapted, a
        recording over 30 s is judged on its own (:meth:`predict_recording`), and when a batch
        fails each clip is judged alone, so that only the culprit fails."""
        from .timeline import LONG_RECORDING

        plain = predict == self.predict_signals  # an adapted group stands or falls together
        out: list = [None] * len(signals)
        for i, signal in enumerate(signals):
            if plain and len(signal) > LONG_RECORDING * SAMPLING_RATE:
                out[i] = _or_error(lambda: self.predict_recording(signal, labels=labels))
        together = [i for i, result in enumerate(out) if result is None]
        if not together and plain:
            return out
        try:
            results = predict([signals[i] for i in together], labels=labels)
        except EmovoxError as exc:
            if not plain:
                raise
            results = [exc] if len(together) == 1 else \
                [_or_error(lambda: predict([signals[i]], labels=labels)[0]) for i in together]
        for i, result in zip(together, results):
            out[i] = result
        return out


def _or_error(judge):
    """``judge()``, or the EmovoxError it raised."""
    try:
        return judge()
    except EmovoxError as exc:
        return exc


# Models shipped inside the package, by name: "default" (single clips, per-speaker adaptation and
# domain profiles; chosen by accuracy on corpora it never heard), "noise-robust" (trained with
# noisy copies and level-weighted pooling, for rooms with background talk)
SHIPPED_MODELS = ("default", "noise-robust")
ALIASES = {"default-adaptive": "default"}
"""Old names of shipped models that still work (default-adaptive: the default now adapts too)."""


def shipped_model_dir(name: str) -> Path:
    """The folder of the shipped model ``name`` (one of :data:`SHIPPED_MODELS`).

    Examples:
        >>> shipped_model_dir("noise-robust").name
        'noise-robust'
    """
    name = ALIASES.get(name, name)
    if name not in SHIPPED_MODELS:
        raise ModelError(f"no shipped model {name!r}; shipped: {', '.join(SHIPPED_MODELS)}")
    return Path(str(resources.files("emovox") / "models" / name))


def shipped_name(model_dir: str | os.PathLike | None) -> str | None:
    """``model_dir`` as a shipped model's name, when it is one and no such path exists."""
    if model_dir is not None and str(model_dir) in (*SHIPPED_MODELS, *ALIASES) and not Path(model_dir).exists():
        return str(model_dir)
    return None


def default_model_dir() -> Path:
    """The model shipped inside the package."""
    return shipped_model_dir("default")


def adaptive_model_dir() -> Path:
    """The shipped model for speaker-adapted use (:meth:`Predictor.predict_speaker`): the default
    itself since v4 (``default-adaptive`` is an alias of it); kept for old callers."""
    return shipped_model_dir("default-adaptive")


def is_exported_dir(directory: str | os.PathLike) -> bool:
    """True if ``directory`` holds an exported model (a config.json of format emovox-onnx)."""
    config = Path(directory) / "config.json"
    try:
        return json.loads(config.read_text()).get("format") == EXPORT_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def load(model_dir: str | os.PathLike | None = None, *, adaptive: bool = False, profile=None, **kwargs) -> Predictor:
    """Load a model (see :func:`_load_model`); ``profile``: a domain profile (path or
    :class:`emovox.profiles.DomainProfile`, made by ``emovox profile`` for this model) that
    centres every clip on the deployment's audio.

    Examples:
        >>> model = load(profile="callcentre.npz")  # doctest: +SKIP
    """
    model = _load_model(model_dir, adaptive=adaptive, **kwargs)
    if profile is not None:
        model.use_profile(profile)
    return model


def _load_model(model_dir: str | os.PathLike | None = None, *, adaptive: bool = False, **kwargs) -> Predictor:
    """Load a model (default: the one shipped with emovox; ``adaptive=True`` is accepted for old
    callers and loads the same default, which adapts too). ``model_dir`` is a model
    directory, an exported folder, or the name of a shipped model (:data:`SHIPPED_MODELS`, e.g.
    ``"noise-robust"``) where no such path exists.

    An exported folder runs on onnxruntime, without torch (keyword arguments go to
    :class:`emovox.runtime.OnnxEmotionModel`: ``variant``, ``device``, ``threads``,
    ``max_duration``); a model directory runs on PyTorch (:class:`emovox.model.EmotionModel`).
    The shipped model runs on onnxruntime too: it is exported once into the cache on first
    use (see :func:`default_export`); ``EMOVOX_DEFAULT_BACKEND=torch`` keeps it on PyTorch.
    """
    shipped = adaptive_model_dir() if adaptive else default_model_dir()
    if name := shipped_name(model_dir):
        shipped, model_dir = shipped_model_dir(name), None
    if model_dir is None and "extractor" not in kwargs:
        exported = default_export(shipped)
        if exported is not None:
            from .runtime import OnnxEmotionModel

            return OnnxEmotionModel(exported, **kwargs)
    directory = Path(model_dir) if model_dir is not None else shipped
    if is_exported_dir(directory):
        from .runtime import OnnxEmotionModel

        return OnnxEmotionModel(directory, **kwargs)
    from .checkpoint import load_model_files
    from .model import EmotionModel

    return EmotionModel(load_model_files(directory), **kwargs)


EXPORT_CHILD = """
import json, sys
from pathlib import Path
from emovox.export import export_model
model_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
evidence = json.loads((model_dir / "config.json").read_text()).get("int8_gate")
export_model(model_dir, out, int8=bool(evidence), int8_evidence=evidence)
"""


def run_export(model_dir: Path, out: Path, *, timeout: float = 600.0) -> None:
    """Export the shipped model in a child process, so that the caller (a server, a CLI) never
    imports torch and does not keep the export's memory; int8 too when the model's config
    records passing int8 gate results (:func:`emovox.export.export_model`)."""
    done = subprocess.run([sys.executable, "-c", EXPORT_CHILD, os.fspath(model_dir), os.fspath(out)],
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"export failed ({done.returncode}): {tail[0]}")


def default_export(model_dir: Path) -> Path | None:
    """The exported copy of the shipped model in the cache, made on first use (fp32 is exact to
    1e-6 and faster than PyTorch; int8 is written too and is the default when the model's
    config.json records passing int8 gate results for its recipe); None when there is no shipped model, when
    ``EMOVOX_DEFAULT_BACKEND=torch``, or when the export fails (PyTorch then serves)."""
    if os.environ.get("EMOVOX_DEFAULT_BACKEND", "onnx") == "torch":
        return None
    try:
        digest = hashlib.sha256(f"{__version__}/{EXPORT_REVISION}".encode())
        for name in ("config.json", "heads.safetensors"):
            digest.update((model_dir / name).read_bytes())
    except OSError:
        return None
    # the cache root of emovox.encoder_weights.cache_dir, which cannot be imported without torch
    cache = Path(os.environ.get("EMOVOX_CACHE", Path.home() / ".cache" / "emovox"))
    target = cache / "exported" / f"{model_dir.name}-{digest.hexdigest()[:16]}"
    if is_exported_dir(target):
        return target
    log.warning("exporting the shipped model to %s for onnxruntime (once; takes a few seconds)", target)
    scratch = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=".export-"))
        run_export(model_dir, scratch)
        os.replace(scratch, target)  # atomic; fails if another process got there first
    except Exception as exc:  # any failure: PyTorch serves instead
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        if is_exported_dir(target):
            return target
        log.warning("could not export the shipped model (%s); using PyTorch", exc)
        return None
    return target
