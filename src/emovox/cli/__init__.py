"""The ``emovox`` command line: one small module per command, all registered on one Typer app."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="emovox",
    help="Speech emotion recognition with pretrained transformer speech encoders.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

from . import predict as _predict  # noqa: E402,F401  (registers commands)
from . import train as _train  # noqa: E402,F401
from . import export as _export  # noqa: E402,F401
from . import evaluate as _evaluate  # noqa: E402,F401
from . import serve as _serve  # noqa: E402,F401
from . import timeline as _timeline  # noqa: E402,F401
from . import batch as _batch  # noqa: E402,F401
from . import profile as _profile  # noqa: E402,F401
