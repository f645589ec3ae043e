"""The ``--model`` and ``--profile`` options of the commands that run a model (predict, timeline,
batch, serve), defined once so that its help (which names the shipped models) cannot drift between them."""

from __future__ import annotations

import typer

MODEL = typer.Option(None, "--model", help="Model directory, exported folder, or a shipped model: default, "
                     "noise-robust (for background talk). Default: default.")

PROFILE = typer.Option(None, "--profile", help="A domain profile made by `emovox profile` for this model: centres "
                       "every clip on your deployment's own audio (more accurate on speech unlike the training corpora).")
