"""``emovox profile``: a domain profile from a deployment's own unlabelled audio."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from emovox.cli import model_option
from emovox.cli.inputs import expand_inputs
from emovox.cli.main import app
from emovox.training.profiles import NEUTRAL_SHARE


@app.command()
def profile(
    inputs: list[str] = typer.Argument(..., help="Audio files, directories or glob patterns from the deployment (no labels)."),
    out: Path = typer.Option(..., "--out", "-o", help="Profile file to write (.npz)."),
    model_dir: Path | None = model_option.MODEL,
    estimator: str = typer.Option("neutral", help="How the clips are weighed: 'neutral' (the clips the model hears as "
                                  "neutral make --neutral-share of the profile, whatever the archive's mix; best on corpora the "
                                  "model never heard) or 'balanced' (the emotions heard are evened out by --balance; the earlier "
                                  "default, best for speech like the training corpora's heard through a new room or line)."),
    neutral_share: float = typer.Option(NEUTRAL_SHARE, min=0.05, max=0.95, help="For --estimator neutral: the share of the "
                                        "profile the clips heard as neutral make. Higher gains on other languages and "
                                        "in-the-wild speech and loses on speech like the training corpora's (0.3 does "
                                        "as well as --estimator balanced there)."),
    balance: float = typer.Option(0.5, min=0.0, max=1.0, help="For --estimator balanced: how much the emotions the model "
                                  "hears are evened out (0: plain mean; 1: every heard emotion counts the same)."),
    max_duration: float = typer.Option(600.0, help="Longest clip used, in seconds (longer files are skipped)."),
    prosody: bool = typer.Option(False, "--prosody/--no-prosody", help="Also store the clips' prosody statistics, "
                                 "so that the model's prosody head (the default model has one) is mixed in wherever "
                                 "the profile is applied: +1.1 UA with a profile on held-out corpora at its weight, "
                                 "+0.6 when the weight is chosen without the corpus tested, and every clip then also "
                                 "goes through openSMILE (about twice the time). Off: the model's heads alone."),
    scale: bool = typer.Option(True, "--scale/--no-scale", help="Also bring the deployment's spread of each feature "
                               "part of the way toward the training corpora's, for a model that stores that spread (the "
                               "default model does): +1.2 UA over centring alone with random-half profiles of held-out "
                               "corpora (+0.7 with the power chosen without the tested corpus), at no cost per clip. "
                               "--no-scale: centre only, as profiles before v6.5 did."),
) -> None:
    """Measure what the model needs to centre a deployment's audio, from its own clips.

    Use a few hundred clips that represent the deployment (its microphones, rooms, languages,
    speakers); they need no labels and need not be balanced. Then pass `--profile OUT` to
    predict, timeline, batch or serve.
    """
    from emovox.errors import EmovoxError
    from emovox.prediction.loading import load
    from emovox.training.profiles import ESTIMATORS, MIN_CLIPS, build_profile

    err = Console(stderr=True, soft_wrap=True)
    if estimator not in ESTIMATORS:
        err.print(f"[red]error:[/] --estimator must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")
        raise typer.Exit(2)
    paths = expand_inputs(inputs)
    if not paths:
        err.print("[red]error:[/] no audio files found in the inputs")
        raise typer.Exit(2)
    try:
        model = load(model_dir, max_duration=max_duration)
        result, skipped = build_profile(model, paths, estimator=estimator, balance=balance,
                                        neutral_share=neutral_share, max_duration=max_duration, prosody=prosody,
                                        scale=scale)
        written = result.save(out)
    except EmovoxError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if result.estimator != estimator:
        err.print(f"[yellow]note:[/] the model has no neutral or calm label; the profile uses the "
                  f"{result.estimator} estimator")
    for path, reason in skipped:
        err.print(f"[yellow]skipped[/] {path}: {reason}")
    err.print(f"profile of {result.n_clips} clips for model {result.model_id!r} written to {written}"
              + (f" ({len(skipped)} files skipped)" if skipped else ""))
    if result.is_small:
        err.print(f"[yellow]warning:[/] only {result.n_clips} clips; {MIN_CLIPS} or more are recommended "
                  "(a small profile is shrunk toward the training data, so it changes less)")
