"""The ``--model`` option of the commands that run a model (predict, timeline, batch, serve),
defined once so that its help (which names the shipped models) cannot drift between them."""

from __future__ import annotations

import typer

MODEL = typer.Option(None, "--model", help="Model directory, exported folder, or a shipped model: default, "
                     "default-adaptive, noise-robust (for background talk). Default: default.")
