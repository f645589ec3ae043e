"""``emovox batch``: annotate a large archive into a resumable Parquet dataset (local or Ray)."""

from __future__ import annotations

import logging
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from emovox.cli import model_option
from emovox.cli.main import app


class Engine(str, Enum):
    local = "local"
    ray = "ray"


@app.command()
def batch(
    inputs: str = typer.Argument(..., help="A folder, a glob, or a manifest (.csv/.jsonl/.parquet with a 'path' column)."),
    output: Path = typer.Argument(..., help="Parquet dataset folder; files already in it are skipped (resume)."),
    engine: Engine = typer.Option(Engine.local, "--engine", help="local: a process pool here; ray: Ray Data."),
    address: str | None = typer.Option(None, "--address", help="Ray cluster address (default: start a local one)."),
    workers: int = typer.Option(0, "--workers", min=0, help="Processes or Ray actors, one model each (0: one per core)."),
    model_dir: Path | None = model_option.MODEL,
    timeline: bool = typer.Option(False, "--timeline", help="One row per speech segment instead of per file."),
    parties: str | None = typer.Option(None, "--parties", help="With --timeline: each file is a conversation: "
                                       "'channels' or 'speakers', 'speakers:N', 'speakers:auto'; adds party and overlap "
                                       "columns (every row has arousal and valence)."),
    party_names: str | None = typer.Option(None, "--party-names", help="With --parties: comma-separated names, e.g. "
                                           "agent,customer (channel order, or order of first speech)."),
    chunk_size: int = typer.Option(64, "--chunk-size", min=1, help="Files per task and per part file."),
    threads: int = typer.Option(1, "--threads", min=1, help="Compute threads per worker."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar with throughput and ETA."),
    profile: Path | None = model_option.PROFILE,
) -> None:
    """Annotate every audio file of INPUTS into OUTPUT, one row per file; rerun to resume.

    Bad files become rows with an error and the run goes on (exit status 0); the status is 2
    when the run cannot start (no inputs, bad model, an OUTPUT of other columns or in use).
    """
    import os

    from emovox.audio.decode import quiet_decoder_messages
    from emovox.batch import run_batch
    from emovox.errors import EmovoxError

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    quiet_decoder_messages()
    err = Console(stderr=True, soft_wrap=True)  # one line per error however long: grep finds it
    if party_names and not parties:
        err.print("[red]error:[/] --party-names needs --parties")
        raise typer.Exit(2)
    if parties is not None:
        from emovox.cli.timeline import _party_spec
        from emovox.conversation.parties import party_names as check_names

        if not timeline:
            err.print("[red]error:[/] --parties needs --timeline")
            raise typer.Exit(2)
        _party_spec(parties, err)
        try:
            check_names(party_names, 0)  # names that repeat fail here, before any worker starts
        except ValueError as exc:
            err.print(f"[red]error:[/] --party-names: {escape(str(exc))}")
            raise typer.Exit(2) from None
    try:
        summary = run_batch(inputs, output, engine=engine.value, workers=workers or (os.cpu_count() or 1),
                            model_dir=model_dir, timeline=parties or timeline, chunk_size=chunk_size, threads=threads,
                            address=address, progress=progress, profile=profile, party_names=party_names or None)
    except EmovoxError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    table = Table(title=f"{output} ({summary.parts} parts)", show_lines=False)
    table.add_column("label")
    table.add_column("rows", justify="right")
    for label, n in summary.counts.items():
        table.add_row(label, str(n))
    for kind, n in summary.failures.items():
        table.add_row(f"[red]error: {kind}[/]", str(n))
    err.print(table)
    err.print(f"{summary.inputs} files: {summary.skipped} already done, {summary.processed} annotated "
              f"({summary.failed} failed) in {summary.elapsed:.1f} s, {summary.files_per_s:.1f} files/s")
