"""Allow ``python -m emovox``."""

from emovox.cli import app

app(prog_name="emovox")
