"""Allow ``python -m emovox``."""

from .cli import app

app(prog_name="emovox")
