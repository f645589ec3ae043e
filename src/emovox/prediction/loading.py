"""Load a model: :func:`load` picks the backend from the folder, and finds the shipped models.

An exported folder (see :mod:`emovox.export.onnx`) runs on onnxruntime without importing torch, a
model directory on PyTorch; the shipped model is exported once into the cache on first use.

Examples:
    >>> shipped_model_dir("default").name
    'default'
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

from emovox._version import __version__
from emovox.errors import ModelError
from emovox.prediction.predictor import Predictor
from emovox.runtime.model import EXPORT_FORMAT

# bump when emovox.export.onnx's graphs change: the shipped model's cached export is redone
EXPORT_REVISION = 5  # 5: the graph also outputs each row's frame weight (level pooling)

log = logging.getLogger(__name__)


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
    :class:`emovox.training.profiles.DomainProfile`, made by ``emovox profile`` for this model) that
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
    ``max_duration``); a model directory runs on PyTorch (:class:`emovox.prediction.torch_model.EmotionModel`).
    The shipped model runs on onnxruntime too: it is exported once into the cache on first
    use (see :func:`default_export`); ``EMOVOX_DEFAULT_BACKEND=torch`` keeps it on PyTorch.
    """
    shipped = adaptive_model_dir() if adaptive else default_model_dir()
    if name := shipped_name(model_dir):
        shipped, model_dir = shipped_model_dir(name), None
    if model_dir is None and "extractor" not in kwargs:
        exported = default_export(shipped)
        if exported is not None:
            from emovox.runtime import OnnxEmotionModel

            return OnnxEmotionModel(exported, **kwargs)
    directory = Path(model_dir) if model_dir is not None else shipped
    if is_exported_dir(directory):
        from emovox.runtime import OnnxEmotionModel

        return OnnxEmotionModel(directory, **kwargs)
    from emovox.prediction.torch_model import EmotionModel
    from emovox.training.checkpoint import load_model_files

    return EmotionModel(load_model_files(directory), **kwargs)


EXPORT_CHILD = """
import json, sys
from pathlib import Path
from emovox.export.onnx import export_model
model_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
evidence = json.loads((model_dir / "config.json").read_text()).get("int8_gate")
heads = bool(evidence) and all(e.get("int8_heads", False) for e in evidence)
export_model(model_dir, out, int8=bool(evidence), int8_evidence=evidence, int8_heads=heads)
"""


def run_export(model_dir: Path, out: Path, *, timeout: float = 600.0) -> None:
    """Export the shipped model in a child process, so that the caller (a server, a CLI) never
    imports torch and does not keep the export's memory; int8 too when the model's config
    records passing int8 gate results (:func:`emovox.export.onnx.export_model`)."""
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
        if (model_dir / "encoder_tuned.safetensors").is_file():  # also pinned by config.json's sha256
            digest.update((model_dir / "encoder_tuned.safetensors").read_bytes())
    except OSError:
        return None
    # the cache root of emovox.encoder.weights.cache_dir, which cannot be imported without torch
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
