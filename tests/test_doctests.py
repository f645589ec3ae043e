"""Every module's docstring examples run and pass (the STYLE's runnable `Examples:` blocks)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import emovox

SKIP = {"emovox.__main__"}  # runs the CLI on import
MODULES = sorted(m.name for m in pkgutil.walk_packages(emovox.__path__, "emovox.") if m.name not in SKIP)


@pytest.mark.parametrize("name", MODULES)
def test_module_examples(name):
    try:
        module = importlib.import_module(name)
    except ImportError as exc:  # an optional extra is not installed
        pytest.skip(f"{name}: {exc}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
