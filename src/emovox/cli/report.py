"""``emovox report``: a call's self-contained HTML report (lanes per party, arousal/valence, moments)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from emovox.cli import model_option
from emovox.cli.main import app


@app.command()
def report(
    file: Path = typer.Argument(..., help="A call recording (stereo: a party per channel; mono: see --parties)."),
    out: Path = typer.Option(..., "--out", "-o", help="The HTML file to write."),
    parties: str = typer.Option("channels", "--parties", help="'channels' (each channel is a party) or 'speakers', "
                                "'speakers:N', 'speakers:auto' (voices told apart in the mix)."),
    party_names: str | None = typer.Option(None, "--party-names", help="Comma-separated names, e.g. agent,customer."),
    model_dir: Path | None = model_option.MODEL,
    window: float = typer.Option(10.0, help="Longest piece of speech classified at once, in seconds."),
    max_duration: float = typer.Option(10800.0, help="Longest recording accepted, in seconds."),
    transcribe: bool = typer.Option(False, "--transcribe", help="Also show the words of each segment (faster-whisper)."),
    asr_model: str = typer.Option("whisper-base", "--asr-model", help="ASR model for --transcribe."),
) -> None:
    """Write one HTML file (no CDN, opens offline): who felt what and when, per party."""
    from emovox import load
    from emovox.audio.decode import quiet_decoder_messages
    from emovox.cli.timeline import _party_spec, _text_branch
    from emovox.conversation.parties import conversation_timeline, load_channels
    from emovox.conversation.report import render
    from emovox.errors import EmovoxError

    quiet_decoder_messages()
    err = Console(stderr=True, soft_wrap=True)
    if out.suffix.lower() not in (".html", ".htm"):
        err.print(f"[red]error:[/] cannot write {escape(str(out))}: use an .html file")
        raise typer.Exit(2)
    spec = _party_spec(parties, err)
    try:
        model = load(model_dir)
        transcriber = _text_branch(asr_model, False)[0] if transcribe else None
        channels = load_channels(file, max_duration=max_duration)
        timeline = conversation_timeline(model, channels, parties=spec, names=party_names, max_window=window,
                                         transcriber=transcriber)
    except (EmovoxError, ValueError) as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    out.write_text(render(timeline, title=file.name), encoding="utf-8")
    err.print(f"wrote {escape(str(out))}", style="dim")
