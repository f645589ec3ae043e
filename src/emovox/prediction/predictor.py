"""What every emotion model shares, torch-free: :class:`Predictor`.

:class:`Predictor` turns a backend's ``probabilities_for_signals`` (16 kHz signals →
probabilities) into the public entry points ``predict``, ``predict_file`` and ``predict_files``.
A backend whose heads also give arousal and valence (``has_dimensions``, a model trained with
``emovox train --dimensions``) implements ``outputs_for_signals`` and ``outputs_for_features``
as well, and every :class:`~emovox.prediction.result.Prediction` then carries the heads' values
instead of the circumplex table's;
the PyTorch model (:class:`emovox.prediction.torch_model.EmotionModel`) and the ONNX runtime
(:class:`emovox.runtime.OnnxEmotionModel`) both build on it.

Examples:
    >>> from emovox.testing import voice
    >>> class Always(Predictor):
    ...     labels = ["happy", "sad"]
    ...     def probabilities_for_signals(self, signals):
    ...         return np.tile([0.25, 0.75], (len(signals), 1))
    >>> Always().predict(voice(1.0), 16000).label
    'sad'
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from emovox.audio.load import DEFAULT_MAX_DURATION, SAMPLING_RATE, load_audio
from emovox.errors import EmovoxError, InvalidAudioError
from emovox.prediction.decision import restrict, top_label
from emovox.prediction.result import UNKNOWN, Prediction, PredictionError

if TYPE_CHECKING:
    from emovox.training.profile_spread import ProfileSpread
    from emovox.training.prosody import ProsodyHead

log = logging.getLogger(__name__)


class Predictor:
    """Base of the emotion models: subclasses set ``labels``, ``max_duration`` and implement
    :meth:`probabilities_for_signals`."""

    labels: list[str]
    max_duration: float | None = DEFAULT_MAX_DURATION
    abstain: float | None = None  # top probability below this gives the label "unknown"
    has_dimensions: bool = False  # the heads give arousal and valence (else: the circumplex table)

    def probabilities_for_signals(self, signals: Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities ``(len(signals), len(labels))`` for 16 kHz mono signals."""
        raise NotImplementedError

    def features_for_signals(self, signals: Sequence[np.ndarray]) -> np.ndarray:
        """Pooled encoder features ``(len(signals), n_states, 2 d)``."""
        raise NotImplementedError

    def probabilities_for_features(self, features: np.ndarray, *, adapted: bool = False,
                                   profiled: bool = False) -> np.ndarray:
        """Class probabilities from pooled features (the heads only); ``adapted``: the features
        were adapted to their speaker (the model's adapted temperature applies); ``profiled``: a
        domain profile centred them (the model's profile heads answer, when it has them)."""
        raise NotImplementedError

    def outputs_for_signals(self, signals: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities and the heads' (arousal, valence) ``(len(signals), 2)`` for 16 kHz signals,
        from one pass; None instead of the latter for a model without the dimensional output."""
        return self.probabilities_for_signals(signals), None

    def outputs_for_features(self, features: np.ndarray, *, adapted: bool = False,
                             profiled: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`probabilities_for_features` and the heads' (arousal, valence) (None without them)."""
        return self.probabilities_for_features(features, adapted=adapted, profiled=profiled), None

    def reference_mean(self) -> np.ndarray:
        """The training feature mean the heads standardise with (see :mod:`emovox.training.adaptation`)."""
        raise NotImplementedError

    profile = None  # an emovox.training.profiles.DomainProfile applied to every clip (use_profile)
    # an emovox.training.prosody.ProsodyHead: mixed in where a profile carries the domain's prosody statistics
    prosody_head: ProsodyHead | None = None
    # an emovox.training.profile_spread.ProfileSpread: the training corpora's spread, which profiles built for this
    # model scale a domain's spread toward (None: profiles only centre)
    profile_spread: ProfileSpread | None = None

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
        """Centre every clip on a deployment's domain (:mod:`emovox.training.profiles`): ``profile`` is a
        :class:`~emovox.training.profiles.DomainProfile` or a path to one, ``None`` removes it.

        Raises:
            emovox.training.profiles.ProfileError: the profile was made for another model.
        """
        from emovox.training.profiles import DomainProfile

        if profile is not None and not isinstance(profile, DomainProfile):
            profile = DomainProfile.load(profile)
        if profile is not None:
            profile.check(self.fingerprint(), self.encoder_sha256(), getattr(self, "model_id", ""))
            self._profile_reference = self.reference_mean()
            if self.prosody_head is not None and profile.prosody_mean is None:
                log.info("this profile has no prosody statistics (built without `emovox profile --prosody`): the "
                         "model's prosody head stays unused")
        self.profile = profile

    def _outputs_for(self, signals: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities and the heads' (arousal, valence) or None, through the domain profile
        when one is set (and the model's prosody head, when the profile has the domain's prosody statistics)."""
        if self.profile is None:
            return self.outputs_for_signals(signals)
        head, prosody = self.prosody_head, None
        if head is not None and self.profile.prosody_mean is not None:
            from emovox.features.prosody import prosody_features_soon

            prosody = prosody_features_soon(signals)  # openSMILE beside the encoder
        features = self.profile.apply(self.features_for_signals(signals), self._profile_reference)
        probs, dims = self.outputs_for_features(features, profiled=True)
        if head is not None and prosody is not None:
            probs = head.fuse(probs, self.profile.prosody(prosody.result()))
        return probs, dims

    def predict_speaker(self, signals: Sequence[np.ndarray], *, labels: Sequence[str] | None = None) -> list[Prediction]:
        """Predict for several 16 kHz clips of *one* speaker, adapted to that speaker: their
        features are centred on the training mean before the heads (:mod:`emovox.training.adaptation`;
        needs at least ``MIN_CLIPS`` clips that cover the speaker's range, not one emotion)."""
        from emovox.training.adaptation import MIN_CLIPS, adapt

        if len(signals) < MIN_CLIPS:
            raise EmovoxError(f"speaker adaptation needs at least {MIN_CLIPS} clips of the speaker, got {len(signals)}")
        features = adapt(self.features_for_signals(signals), self.reference_mean())
        probs, dims = self.outputs_for_features(features, adapted=True)
        return self._results(probs, dims, signals, labels)

    def _results(self, probs: np.ndarray, dims: np.ndarray | None, signals: Sequence[np.ndarray],
                 labels: Sequence[str] | None) -> list[Prediction]:
        rows = [None] * len(signals) if dims is None else list(dims)
        return [self._result(p, len(s) / SAMPLING_RATE, labels, None, d)
                for p, d, s in zip(probs, rows, signals, strict=True)]

    def _result(self, probs: np.ndarray, duration: float, labels: Sequence[str] | None, path: str | None,
                dims: np.ndarray | None = None) -> Prediction:
        if not np.isfinite(probs).all() or (dims is not None and not np.isfinite(dims).all()):
            raise InvalidAudioError("the model's probabilities for this clip are not finite")  # NaN is not an answer
        scores = restrict({l: float(p) for l, p in zip(self.labels, probs, strict=True)}, labels)
        label = top_label(scores)
        if self.abstain is not None and scores[label] < self.abstain:
            label = UNKNOWN
        dimensions = None if dims is None else (round(float(dims[0]) + 0.0, 4), round(float(dims[1]) + 0.0, 4))
        return Prediction(label, scores, duration, path, dimensions=dimensions)

    def predict_signals(self, signals: Sequence[np.ndarray], *, labels: Sequence[str] | None = None) -> list[Prediction]:
        """Predict for 16 kHz mono float32 signals (already loaded)."""
        if not len(signals):
            return []
        probs, dims = self._outputs_for(signals)
        return self._results(probs, dims, signals, labels)

    def predict_recording(self, signal: np.ndarray, *, labels: Sequence[str] | None = None) -> Prediction:
        """Predict for one whole 16 kHz recording: a clip up to 30 s is judged whole, a longer
        one on its speech segments (:func:`emovox.prediction.timeline.predict_recording`)."""
        from emovox.prediction.timeline import predict_recording

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
        batch: list[tuple[str, np.ndarray | Exception]] = []
        for path in paths:
            batch.append(self._decode(path))
            if len(batch) >= batch_size:
                yield from self._answer(batch, self.predict_signals, labels)
                batch = []
        yield from self._answer(batch, self.predict_signals, labels)

    def _decode(self, path: str | os.PathLike) -> tuple[str, np.ndarray | Exception]:
        """A file's path and its audio, or the error that decoding it raised."""
        path = os.fspath(path)
        try:
            return path, load_audio(path, max_duration=self.max_duration)
        except Exception as exc:  # noqa: BLE001  whatever one file raises is that file's error
            return path, exc

    def _answer(self, decoded: Sequence[tuple[str, np.ndarray | Exception]], predict,
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
        from emovox.prediction.timeline import LONG_RECORDING

        plain = predict == self.predict_signals  # an adapted group stands or falls together
        out: list = [None] * len(signals)
        for i, signal in enumerate(signals):
            if plain and len(signal) > LONG_RECORDING * SAMPLING_RATE:
                out[i] = _or_error(lambda signal=signal: self.predict_recording(signal, labels=labels))
        together = [i for i, result in enumerate(out) if result is None]
        if not together and plain:
            return out
        try:
            results = predict([signals[i] for i in together], labels=labels)
        except EmovoxError as exc:
            if not plain:
                raise
            results = [exc] if len(together) == 1 else \
                [_or_error(lambda i=i: predict([signals[i]], labels=labels)[0]) for i in together]
        for i, result in zip(together, results, strict=True):
            out[i] = result
        return out


def _or_error(judge):
    """``judge()``, or the EmovoxError it raised."""
    try:
        return judge()
    except EmovoxError as exc:
        return exc
