"""The ``emovox`` command line: one small module per command, all registered on one Typer app
(:mod:`emovox.cli.main`); ``emovox --help`` lists them in the order imported here."""
# The import order is the order of the commands in --help; isort and ruff leave it alone:
# isort: skip_file

from __future__ import annotations

from emovox.cli.main import app
from emovox.cli import predict as _predict  # noqa: F401  (each import registers its commands)
from emovox.cli import train as _train  # noqa: F401
from emovox.cli import export as _export  # noqa: F401
from emovox.cli import evaluate as _evaluate  # noqa: F401
from emovox.cli import serve as _serve  # noqa: F401
from emovox.cli import timeline as _timeline  # noqa: F401
from emovox.cli import report as _report  # noqa: F401
from emovox.cli import batch as _batch  # noqa: F401
from emovox.cli import profile as _profile  # noqa: F401

__all__ = ["app"]
