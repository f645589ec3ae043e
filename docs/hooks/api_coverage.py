"""mkdocs hook: fail the build when a public module of ``src/emovox`` has no page in ``docs/api``.

A module is public when no part of its dotted name starts with ``_`` (``__init__`` stands for its
package). It is covered when ``::: <module>`` starts a line of a page under ``docs/api/``, so a
new module without an API page fails ``mkdocs build``.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.exceptions import PluginError


def public_modules(src: Path) -> set[str]:
    """Dotted names of the public modules and packages under ``src/emovox``."""
    names = set()
    for path in (src / "emovox").rglob("*.py"):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if not any(part.startswith("_") for part in parts):
            names.add(".".join(parts))
    return names


def on_config(config, **kwargs):
    root = Path(config.config_file_path).parent
    pages = "\n".join(p.read_text(encoding="utf-8") for p in (Path(config.docs_dir) / "api").glob("*.md"))
    referenced = set(re.findall(r"^::: *([\w.]+)", pages, flags=re.MULTILINE))
    missing = sorted(public_modules(root / "src") - referenced)
    if missing:
        raise PluginError("modules with no API page in docs/api/: " + ", ".join(missing))
    return config
