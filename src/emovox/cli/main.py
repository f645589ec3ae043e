"""The one Typer app every ``emovox`` command registers on (see :mod:`emovox.cli`)."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="emovox",
    help="Speech emotion recognition with pretrained transformer speech encoders.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
