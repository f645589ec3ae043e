"""Changing a trained model directory's ``config.json`` in place, for what is added after training (a prosody
head, a profile spread) without touching the heads."""

from __future__ import annotations

import json
import os
from pathlib import Path


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
