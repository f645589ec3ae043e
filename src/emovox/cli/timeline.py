"""``emovox timeline``: emotion over time in a long recording (what ``POST /v1/timeline`` does)."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from emovox.cli import model_option
from emovox.cli.main import app


class TimelineFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


@app.command()
def timeline(
    file: Path = typer.Argument(..., help="An audio file (any length up to --max-duration)."),
    out: list[Path] = typer.Option([], "--out", "-o", help="Write the timeline: .csv, .json or .png (a plot); repeatable."),
    output_format: TimelineFormat = typer.Option(TimelineFormat.table, "--format", "-f", help="What to print."),
    labels: str | None = typer.Option(None, "--labels", help="Comma-separated subset of labels to decide among."),
    model_dir: Path | None = model_option.MODEL,
    window: float = typer.Option(10.0, help="Longest piece of speech classified at once, in seconds."),
    max_duration: float = typer.Option(10800.0, help="Longest recording accepted, in seconds."),
    transcribe: bool = typer.Option(False, "--transcribe", help="Also transcribe each segment (faster-whisper): "
                                    "adds text and language."),
    asr_model: str = typer.Option("whisper-base", "--asr-model", help="ASR model for --transcribe: whisper-base "
                                  "(multilingual) or whisper-tiny.en."),
    language: str | None = typer.Option(None, "--language", help="With --transcribe: the language (ISO 639-1) "
                                        "instead of detecting it."),
    adapt: bool = typer.Option(False, "--adapt", help="Judge each segment against the recording's own average "
                               "(one speaker or one call; needs 4+ windows)."),
    fuse: bool = typer.Option(False, "--fuse", help="With --transcribe: fuse what the words say into each segment's "
                              "emotion (pip install 'emovox[text]')."),
    profile: Path | None = model_option.PROFILE,
    parties: str | None = typer.Option(None, "--parties", help="A conversation: 'channels' (each channel is a party) or "
                                       "'speakers', 'speakers:N', 'speakers:auto' (voices told apart in the mix); every "
                                       "segment gets its party, the summary is per party."),
    party_names: str | None = typer.Option(None, "--party-names", help="With --parties: comma-separated names, e.g. "
                                           "agent,customer (channel order, or order of first speech)."),
) -> None:
    """Find the speech (Silero VAD) and the emotion of each stretch; summarise the share of time per emotion."""
    from emovox import load
    from emovox.audio.decode import quiet_decoder_messages
    from emovox.audio.load import load_audio
    from emovox.errors import EmovoxError
    from emovox.prediction.decision import restrict
    from emovox.prediction.timeline import make_timeline

    quiet_decoder_messages()
    err = Console(stderr=True, soft_wrap=True)  # one line per error however long: grep finds it
    bad = [p for p in out if p.suffix.lower() not in (".csv", ".json", ".png")]
    if bad:
        err.print(f"[red]error:[/] cannot write {escape(str(bad[0]))}: use a .csv, .json or .png file")
        raise typer.Exit(2)
    if (fuse or language) and not transcribe:
        err.print("[red]error:[/] --fuse and --language need --transcribe")
        raise typer.Exit(2)
    if party_names and not parties:
        err.print("[red]error:[/] --party-names needs --parties")
        raise typer.Exit(2)
    if party_names:
        from emovox.conversation.parties import party_names as check_names

        try:
            check_names(party_names, 0)  # two parties of one name fail before any work
        except ValueError as exc:
            err.print(f"[red]error:[/] --party-names: {escape(str(exc))}")
            raise typer.Exit(2) from None
    spec = _party_spec(parties, err) if parties else None
    subset = [s.strip() for s in labels.split(",") if s.strip()] if labels else None
    try:
        if adapt and profile is not None:
            raise EmovoxError("--adapt and --profile both centre the features (per recording, per domain): use one")
        model = load(model_dir, adaptive=adapt and model_dir is None, profile=profile)
        if subset:
            restrict({l: 1.0 for l in model.labels}, subset)  # unknown labels fail before any work
        transcriber, text_model = _text_branch(asr_model, fuse) if transcribe else (None, None)
        options = dict(labels=subset, max_window=window, transcriber=transcriber, text_model=text_model, language=language,
                       adapt=adapt)
        if spec is not None:
            from emovox.conversation.parties import conversation_timeline, load_channels

            channels = load_channels(file, max_duration=max_duration)
            result = conversation_timeline(model, channels, parties=spec, names=party_names, **options)
        else:
            result = make_timeline(model, load_audio(file, max_duration=max_duration), **options)
        for path in out:
            result.write(path)
    except EmovoxError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    if output_format is TimelineFormat.json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    elif output_format is TimelineFormat.csv:
        sys.stdout.write(result.to_csv())
    else:
        _print(result)
    for path in out:
        err.print(f"wrote {escape(str(path))}", style="dim")


def _party_spec(parties: str, err: Console):
    """The parsed --parties (exit 2 with a message when it does not parse)."""
    from emovox.conversation.parties import parse_parties

    try:
        return parse_parties(parties)
    except ValueError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None


def _text_branch(asr_model: str, fuse: bool):
    """The transcriber (and the text model with --fuse); a missing package is an EmovoxError."""
    from emovox.errors import ModelError
    from emovox.text.transcribe import Transcriber

    try:
        transcriber = Transcriber(asr_model)
    except ImportError as exc:
        raise ModelError(f"--transcribe needs faster-whisper ({exc})") from None
    if not fuse:
        return transcriber, None
    from emovox.text import load_text_model

    return transcriber, load_text_model()


def _print(result) -> None:
    table = Table(title=f"{result.duration:.1f} s, {result.speech_duration:.1f} s of speech")
    party = ["party"] if result.parties is not None else []
    for column in ["start", "end", *party, "label", *result.labels]:
        table.add_column(column, justify="left" if column == "label" else "right")
    if result.transcribed:
        table.add_column("text", overflow="fold")
    for s in result.segments:
        words = [escape(f"[{s.language}] {s.text}")] if result.transcribed else []
        who = [escape(s.party) + (" (overlap)" if s.overlap else "")] if party else []
        table.add_row(f"{s.start:.2f}", f"{s.end:.2f}", *who, f"[bold]{s.label}[/]",
                      *[f"{s.scores[l]:.2f}" for l in result.labels], *words)
    console = Console()
    console.print(table)
    summary = result.summary()
    console.print("share of speech time: " + ", ".join(f"{l} {v:.0%}" for l, v in summary["shares"].items()))
    if "arousal" in summary:  # per segment in --format json/csv
        console.print(f"arousal {summary['arousal']:+.2f}, valence {summary['valence']:+.2f} (time-weighted, -1 to 1)")
    for name, own in summary.get("parties", {}).items():
        shares = ", ".join(f"{l} {v:.0%}" for l, v in own["shares"].items() if v)
        console.print(f"{escape(name)}: {own['speech']:.1f} s of speech, mostly {own['dominant']} ({shares})")
