"""What is added to a trained model directory beside its heads (a prosody head, a profile spread): its
small tensor files, each named in ``config.json`` with its sha256 and checked on load, and the change of
``config.json`` in place. Torch-free: the ONNX runtime reads these files too.

Examples:
    >>> import tempfile
    >>> import numpy as np
    >>> d = tempfile.mkdtemp()
    >>> entry = write_tensors(d, "extra.safetensors", {"w": np.ones(3, np.float32)})
    >>> read_tensors(d, entry, "a test tensor")["w"].tolist()
    [1.0, 1.0, 1.0]
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from emovox.errors import ModelError


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a (small) file; here rather than :mod:`emovox.encoder.weights`, which imports torch."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_tensors(directory: str | os.PathLike, name: str, tensors: dict[str, np.ndarray]) -> dict:
    """Write ``tensors`` as ``directory/name`` (safetensors, atomically, readable by all like the heads'
    file: an installed package's data); returns ``{"file": name, "sha256": ...}`` for its ``config.json`` entry."""
    from safetensors.numpy import save_file

    path = Path(directory) / name
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp))
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return {"file": name, "sha256": sha256_file(path)}


def read_tensors(directory: str | os.PathLike, entry: dict, what: str) -> dict[str, np.ndarray]:
    """The tensors of the file ``entry`` (a :func:`write_tensors` entry) names in ``directory``, after its
    sha256 is checked; ``what`` names the file in errors.

    Raises:
        ModelError: the file is missing or is not the one ``config.json`` names.
    """
    from safetensors.numpy import load_file

    path = Path(directory) / str(entry.get("file"))
    if not path.is_file():
        raise ModelError(f"{path} is missing (config.json names {what})")
    if sha256_file(path) != entry.get("sha256"):
        raise ModelError(f"{path} does not match the sha256 in config.json")
    return load_file(str(path))


def update_config(directory: str | os.PathLike, entries: dict, training: dict | None = None) -> dict:
    """Set ``entries`` in a model directory's ``config.json`` (and ``training`` in its training record), in one
    atomic write; returns the new config.

    Examples:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> _ = (d / "config.json").write_text('{"labels": ["a", "b"], "training": {"name": "m"}}')
        >>> update_config(d, {"note": 1}, {"name": "m2"})
        {'labels': ['a', 'b'], 'training': {'name': 'm2'}, 'note': 1}
    """
    config_path = Path(directory) / "config.json"
    config = json.loads(config_path.read_text())
    config.update(entries)
    config.setdefault("training", {}).update(training or {})
    tmp = config_path.with_name("config.json.tmp")
    tmp.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, config_path)
    return config
