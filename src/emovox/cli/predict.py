"""``emovox predict``: emotions for audio files."""

from __future__ import annotations

import json
import sys
import time
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from emovox.cli import model_option
from emovox.cli.inputs import expand_inputs
from emovox.cli.main import app


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    jsonl = "jsonl"


@app.command()
def predict(
    inputs: list[str] = typer.Argument(..., help="Audio files, directories or glob patterns."),
    output_format: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="Output format; "
                                         "json and jsonl also give each file's arousal and valence (-1 to 1)."),
    labels: str | None = typer.Option(None, "--labels", help="Comma-separated subset of labels to decide among."),
    model_dir: Path | None = model_option.MODEL,
    batch_size: int = typer.Option(16, help="Clips encoded together."),
    abstain: float | None = typer.Option(None, min=0.0, max=1.0, help="Answer 'unknown' when the top probability is below this."),
    max_duration: float = typer.Option(600.0, help="Longest clip accepted, in seconds (longer ones are errors; use a timeline)."),
    transcribe: bool = typer.Option(False, "--transcribe", help="Also transcribe each file (faster-whisper): "
                                    "adds transcript and language."),
    asr_model: str = typer.Option("whisper-base", "--asr-model", help="ASR model for --transcribe: whisper-base "
                                  "(multilingual) or whisper-tiny.en."),
    fuse: bool = typer.Option(False, "--fuse", help="With --transcribe: fuse what the words say into label and scores "
                              "(pip install 'emovox[text]')."),
    explain: bool = typer.Option(False, "--explain", help="Explain each decision: top classes, pitch and energy, "
                                 "and with --transcribe the words that moved the text branch."),
    adapt: bool = typer.Option(False, "--adapt", help="The inputs are clips of one speaker (4 or more, not all one "
                               "emotion): judge each against that speaker's own average (emovox.training.adaptation)."),
    profile: Path | None = model_option.PROFILE,
    neutral_ref: Path | None = typer.Option(None, "--neutral-ref", help="With --explain: a neutral clip of the same "
                                            "speaker; pitch and energy are given relative to it."),
) -> None:
    """Predict the emotion of each input file; one result per file."""
    from emovox.audio.decode import quiet_decoder_messages
    from emovox.errors import EmovoxError
    from emovox.prediction.loading import load
    from emovox.prediction.result import PredictionError

    quiet_decoder_messages()
    err = Console(stderr=True, soft_wrap=True)  # one line per error however long: grep finds it
    skipped: list[tuple[str, str]] = []
    paths = expand_inputs(inputs, skipped)
    for path, reason in skipped:
        err.print(f"[yellow]warning:[/] skipped {escape(path)}: {reason}")
    if not paths:
        err.print("[red]error:[/] no audio files found in the inputs")
        raise typer.Exit(2)
    subset = [s.strip() for s in labels.split(",") if s.strip()] if labels else None
    if neutral_ref is not None and not explain:
        err.print("[red]error:[/] --neutral-ref needs --explain")
        raise typer.Exit(2)
    reference = None
    if neutral_ref is not None:
        from emovox.audio.load import SAMPLING_RATE, load_audio
        from emovox.text.explain import measure_prosody

        try:
            reference = measure_prosody(load_audio(neutral_ref, max_duration=max_duration), SAMPLING_RATE)
        except EmovoxError as exc:
            err.print(f"[red]error:[/] --neutral-ref: {escape(str(exc))}")  # the message names the file
            raise typer.Exit(2) from None
    start = time.perf_counter()
    try:
        if adapt and profile is not None:
            raise EmovoxError("--adapt and --profile both centre the features (per speaker, per domain): use one")
        model = load(model_dir, adaptive=adapt and model_dir is None, max_duration=max_duration, profile=profile)
        model.abstain = abstain
        if subset:
            from emovox.prediction.decision import restrict

            restrict({l: 1.0 for l in model.labels}, subset)  # validate labels before any work
    except EmovoxError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    transcriber = text_model = None
    if fuse and not transcribe:
        err.print("[red]error:[/] --fuse needs --transcribe")
        raise typer.Exit(2)
    if transcribe:
        from emovox.text.transcribe import Transcriber

        try:
            transcriber = Transcriber(asr_model)
            if fuse or explain:  # --explain reads the words through the text branch too
                from emovox.text import load_text_model

                text_model = load_text_model()
        except EmovoxError as exc:
            err.print(f"[red]error:[/] {escape(str(exc))}")
            raise typer.Exit(2) from None
    results, failures = [], 0
    try:
        predictions = list(model.predict_files(paths, labels=subset, adapt=True)) if adapt else \
            model.predict_files(paths, labels=subset, batch_size=batch_size)
    except EmovoxError as exc:  # e.g. too few clips to adapt to
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    for result in predictions:
        if not isinstance(result, PredictionError):
            audio_scores = dict(result.scores)
            if transcriber is not None:
                spoken = transcriber.transcribe_file(result.path)
                result.transcript, result.language = spoken.text, spoken.language
                if fuse:
                    _fuse(result, text_model, abstain)
            if explain:
                _explain(result, audio_scores, reference, text_model, err)
            if not _finite(result):  # NaN is not JSON, and not an answer
                result = PredictionError(result.path, "the scores are not finite", "InvalidAudioError")
        if isinstance(result, PredictionError):
            failures += 1
            err.print(f"[red]error:[/] {escape(result.path)}: {escape(result.error)}")
        if output_format is OutputFormat.jsonl:
            sys.stdout.write(json.dumps(_as_dict(result), ensure_ascii=False, allow_nan=False) + "\n")
            sys.stdout.flush()
        else:
            results.append(result)
    if output_format is OutputFormat.json:
        sys.stdout.write(json.dumps([_as_dict(r) for r in results], indent=2, ensure_ascii=False, allow_nan=False)
                         + "\n")
    elif output_format is OutputFormat.table:
        _print_table(results, subset or model.labels)
    elapsed = time.perf_counter() - start
    err.print(f"{len(paths) - failures} ok, {failures} failed, {elapsed:.1f} s", style="dim")
    if failures:
        raise typer.Exit(1)


def _finite(result) -> bool:
    """Every number in ``result``'s output is finite (its scores, and the explanation's)."""
    try:
        json.dumps(_as_dict(result), allow_nan=False)
    except ValueError:
        return False
    return True


def _fuse(result, text_model, abstain=None) -> None:
    """Replace label and scores by the fused ones; the audio-only label stays as audio_label."""
    from emovox.prediction.decision import top_label
    from emovox.prediction.result import UNKNOWN
    from emovox.text.fusion import fuse_transcript

    try:
        scores = fuse_transcript(result.scores, result.transcript, result.language, text_model=text_model)
    except ValueError:  # a --labels subset the text branch shares too little of: audio only
        return
    result.audio_label, result.scores = result.label, scores
    result.dimensions = None  # arousal and valence follow the fused scores
    result.label = top_label(scores)
    if abstain is not None and scores[result.label] < abstain:
        result.label = UNKNOWN


def _explain(result, audio_scores, reference, text_model, err) -> None:
    """Attach ``result.explanation`` (see :mod:`emovox.text.explain`); the clip is decoded once more."""
    from emovox.audio.load import SAMPLING_RATE, load_audio
    from emovox.errors import EmovoxError
    from emovox.text.explain import explain

    try:
        signal = load_audio(result.path, max_duration=None)
    except EmovoxError as exc:  # the file changed since it was predicted
        err.print(f"[yellow]warning:[/] {escape(result.path)}: no explanation: {escape(str(exc))}")
        return
    kwargs = {"label": result.label, "audio_scores": audio_scores, "reference": reference}
    try:
        result.explanation = explain(result.scores, signal, SAMPLING_RATE, transcript=getattr(result, "transcript", None),
                                     language=getattr(result, "language", None), text_model=text_model, **kwargs)
    except EmovoxError as exc:  # the text encoder is not installed: acoustic evidence only
        result.explanation = explain(result.scores, signal, SAMPLING_RATE, **kwargs)
        result.explanation.note = f"the text branch is unavailable ({exc})"


def _as_dict(result) -> dict:
    """A result's dict, with ``transcript`` and ``language`` when --transcribe added them, and
    ``explanation`` with --explain."""
    extra = {"transcript": result.transcript, "language": result.language} if hasattr(result, "transcript") else {}
    if hasattr(result, "audio_label"):
        extra["audio_label"] = result.audio_label
    if hasattr(result, "explanation"):
        extra["explanation"] = result.explanation.to_dict()
    return {**result.to_dict(), **extra}


def display_names(paths: list[str], width: int) -> list[str]:
    """Readable names for a table column of at most ``width`` characters: the paths as given
    when they all fit, else each path's shortest tail of folders that tells it from the others
    (the file name when that is unique), shortened from the left with "…" when still too long,
    so the file name itself always shows.

    Examples:
        >>> display_names(["/data/a/clip.wav", "/data/b/clip.wav", "/data/b/other.wav"], 40)
        ['/data/a/clip.wav', '/data/b/clip.wav', '/data/b/other.wav']
        >>> display_names(["/data/a/clip.wav", "/data/b/clip.wav", "/data/b/other.wav"], 12)
        ['a/clip.wav', 'b/clip.wav', 'other.wav']
        >>> display_names(["/tmp/" + "x" * 30 + ".wav"], 12)
        ['…xxxxxxx.wav']
    """
    width = max(width, 8)
    if all(len(p) <= width for p in paths):
        return list(paths)
    parts = [Path(p).parts or (p,) for p in paths]
    depth = [1] * len(paths)
    while True:
        tails = ["/".join(q[-d:]) for q, d in zip(parts, depth, strict=True)]
        clash = {t for t in tails if tails.count(t) > 1}
        grow = [i for i, t in enumerate(tails) if t in clash and depth[i] < len(parts[i])]
        if not grow:
            break
        for i in grow:
            depth[i] += 1
    return [t if len(t) <= width else "…" + t[-(width - 1):] for t in tails]


def _print_table(results, labels) -> None:
    from emovox.prediction.result import PredictionError

    console = Console()
    transcripts = any(hasattr(r, "transcript") for r in results)
    # what the other columns need (label, duration, one score per label, borders); the file
    # name gets the rest, and at least 16 characters
    others = 12 + 9 + 7 * len(labels) + 3 * (len(labels) + 3) + (24 if transcripts else 0)
    names = display_names([r.path for r in results], max(16, console.width - others))
    table = Table(show_lines=False)
    table.add_column("file", no_wrap=True, overflow="ellipsis", min_width=min(max(map(len, names), default=4), 40))
    shown = ["error" if isinstance(r, PredictionError) else r.label for r in results]  # "unknown" on abstention
    table.add_column("label", no_wrap=True, min_width=max(map(len, shown), default=5))  # never cut the answer
    for column in ["duration", *labels]:
        table.add_column(column, justify="right")
    if transcripts:
        table.add_column("transcript", overflow="fold")
    for r, name in zip(results, names, strict=True):
        if isinstance(r, PredictionError):
            table.add_row(escape(name), "[red]error[/]", "", *[""] * len(labels), *[""] * transcripts)
        else:
            extra = [escape(f"[{r.language}] {r.transcript}") if hasattr(r, "transcript") else ""] * transcripts
            table.add_row(escape(name), f"[bold]{r.label}[/]", f"{r.duration:.2f}", *[f"{r.scores[l]:.2f}" for l in labels],
                          *extra)
    console.print(table)
    for r in results:  # --explain: a full-width line per file reads better than a squeezed column
        if hasattr(r, "explanation"):
            Console().print(f"[bold]{escape(r.path)}[/]: {escape(r.explanation.sentence())}")
    for r in results:  # a long recording's answer is its speech's: say so under the table
        if getattr(r, "basis", None):
            Console(soft_wrap=True).print(f"{escape(r.path)}: judged on {escape(r.basis)}; scores are shares of "
                                          "speech time", style="dim")
