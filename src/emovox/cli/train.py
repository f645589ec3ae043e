"""``emovox train``: train a model from one or more corpora."""

from __future__ import annotations

import json
import logging
import shlex
import sys
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console

from emovox.cli import recipe_options
from emovox.cli.main import app


class HeadsDtype(str, Enum):
    """How ``heads.safetensors`` stores the heads (:func:`emovox.training.checkpoint.save_model`)."""

    float32 = "float32"
    float16 = "float16"


def load_corpora(specs: list[str], manifests: list[Path] | None = None):
    """Utterances from corpus specs (``name:path`` or a path) and JSONL manifests."""
    from emovox.corpora import parse_spec, scan_corpus
    from emovox.corpora.manifest import read_jsonl

    utterances = []
    for spec in specs:
        name, root = parse_spec(spec)
        utterances += scan_corpus(name, root)
    for manifest in manifests or []:
        utterances += read_jsonl(manifest)
    return utterances


def profile_state_list(spec: str, n_states: int) -> tuple[int, ...] | None:
    """``--profile-layers`` as :attr:`emovox.training.train.TrainConfig.profile_layers`: ``""`` = the
    heads' own (None), otherwise what ``--layers`` takes, ``all`` spelled out as every state.

    Examples:
        >>> profile_state_list("", 7), profile_state_list("all", 3), profile_state_list("0,1", 7)
        (None, (0, 1, 2), (0, 1))
    """
    from emovox.training.train import parse_layers

    if not spec:
        return None
    layers = parse_layers(spec, n_states)
    return tuple(range(n_states)) if layers is None else layers


@app.command()
def train(
    corpora: list[str] = typer.Argument(
        None, help="Corpora as NAME:PATH (e.g. ravdess:/data/RAVDESS) or a path whose layout is detected."),
    out: Path = typer.Option(..., "--out", "-o", help="Model directory to write."),
    manifest: list[Path] = typer.Option([], "--manifest", help="Extra JSONL manifests of utterances."),
    encoder: str = typer.Option("whisper-base", help="Encoder id or weights path."),
    ensemble: int = typer.Option(5, min=1, help="Heads in the ensemble (each validated on other held-out speakers)."),
    epochs: int = typer.Option(60, min=1),
    hidden: int = typer.Option(256, min=4),
    window: float = typer.Option(0.0, help="0 = encode each clip's own length; 30 = pad to Whisper's 30 s window."),
    pooling: str = recipe_options.POOLING,
    silence_context: bool = recipe_options.SILENCE_CONTEXT,
    silence_stride: int = recipe_options.SILENCE_STRIDE,
    level_band: str = recipe_options.LEVEL_BAND,
    level_jitter: str = typer.Option(
        "", "--level-jitter", help="LOW:HIGH dBFS: every clip also trains as a copy with its speech level set to a "
        "point of this band drawn from its content (features cached), so that heads served with that band in front "
        "do not read a corpus's recording level, e.g. --level-jitter=-32:-10. Empty: none."),
    layers: str = recipe_options.LAYERS,
    augment: int = typer.Option(0, min=0, help="Augmented copies of each clip to train on as well (level, pitch, tempo, "
                                "white or babble noise at 0-20 dB SNR; features cached). 2 makes the model robust to noise."),
    reverb: float = recipe_options.REVERB,
    mask: float = recipe_options.MASK,
    noise: float = recipe_options.NOISE,
    copy_weight: float = recipe_options.COPY_WEIGHT,
    dropout: float = recipe_options.DROPOUT,
    label_smoothing: float = recipe_options.LABEL_SMOOTHING,
    mixup: float = recipe_options.MIXUP,
    adversary: float = recipe_options.ADVERSARY,
    voice_swap: float = recipe_options.VOICE_SWAP,
    voice_spread: float = recipe_options.VOICE_SPREAD,
    nuisance_dims: int = recipe_options.NUISANCE_DIMS,
    validation: str = recipe_options.VALIDATION,
    balance_corpora: bool = recipe_options.BALANCE_CORPORA,
    balance_speakers: float = recipe_options.BALANCE_SPEAKERS,
    balance_labels_per_corpus: bool = recipe_options.BALANCE_LABELS_PER_CORPUS,
    centre_corpora: str = recipe_options.CENTRE_CORPORA,
    finetune_blocks: int = recipe_options.FINETUNE_BLOCKS,
    finetune_rank: int = recipe_options.FINETUNE_RANK,
    finetune_epochs: int = recipe_options.FINETUNE_EPOCHS,
    finetune_lr: float = recipe_options.FINETUNE_LR,
    finetune_max_clips: int = recipe_options.FINETUNE_MAX_CLIPS,
    dimensions: bool = recipe_options.DIMENSIONS,
    dimensions_weight: float = recipe_options.DIMENSIONS_WEIGHT,
    dimensions_shared: bool = recipe_options.DIMENSIONS_SHARED,
    profile_heads: bool = typer.Option(
        False, "--profile-heads", help="Also train profile heads: a second ensemble reading each state's mean over "
        "frames only (not its std), which answers when a domain profile (`emovox profile`, --profile) centres the "
        "audio; single clips keep the main heads. Leave-one-corpus-out: +1.2-1.6 UA with a profile."),
    profile_layers: str = typer.Option(
        "", "--profile-layers", help="Encoder states the profile heads read (default: those of --layers), as "
        "--layers takes them, e.g. 0,1,2,3,4,5: the default model's profile heads skip the top state."),
    heads_dtype: HeadsDtype = typer.Option(
        HeadsDtype.float32, "--heads-dtype",
        help="How heads.safetensors stores the heads: float16 halves the file (they load back as float32; "
        "on the default's held-out folds one label of about 15,000 moved, experiments/exp_half_heads.py)."),
    prosody_weight: float = typer.Option(
        0.0, "--prosody-weight", min=0.0, max=1.0,
        help="Also fit a prosody head (eGeMAPS features, each corpus standardised by its own statistics), whose "
        "log-probabilities are mixed in with this weight where a profile made with `emovox profile --prosody` is "
        "applied; single clips and other profiles are unchanged. 0: none. The default model has one at 0.1 "
        "(docs/training.md)."),
    linear_weight: float = typer.Option(
        0.0, "--linear-weight", min=0.0, max=0.99,
        help="Also fit a linear head (a logistic regression over every encoder state side by side), whose "
        "log-probabilities are mixed into the heads' with this weight wherever they answer (single clips, speaker "
        "adaptation; under a profile see --profile-linear-weight). 0: none. experiments/exp_linear_heads.py, docs/training.md."),
    profile_linear_weight: float = typer.Option(
        0.0, "--profile-linear-weight", min=0.0, max=0.99,
        help="With --profile-heads: also fit a linear head beside them (over each state's mean, on every corpus "
        "moved to the mean of all, as a profile moves audio), mixed into their answer with this weight where a "
        "domain profile is applied. 0: none. experiments/exp_profile_linear.py, docs/training.md."),
    linear_room_copies: int = typer.Option(
        0, "--linear-room-copies", min=0, max=4,
        help="With --linear-weight: the linear head also learns from this many copies of every clip heard in a "
        "simulated room (RT60 0.2-0.8 s, no noise; the MLP heads never hear them). The default model has one: "
        "single clips lose 10 points in a room instead of 17 (experiments/exp_room_linear.py)."),
    linear_strength: float = typer.Option(
        3e-4, "--linear-strength", min=1e-8,
        help="The linear heads' C (inverse L2 strength, on standardised features)."),
    profile_spread_power: float = typer.Option(
        0.5, "--profile-spread-power", min=0.0, max=1.0,
        help="How far a domain profile (`emovox profile`) moves a deployment's spread of each feature toward the "
        "training corpora's (the model stores their within-corpus spread): 0 only centres, 1 standardises. 0.5: "
        "best by leave-one-corpus-out (docs/profiles.md)."),
    seed: int = typer.Option(0),
    name: str | None = typer.Option(None, help="Model id stored in the model (default: the output folder's name)."),
) -> None:
    """Train an emotion model; features are cached, so re-training on the same audio is fast."""
    from emovox.audio.level_band import parse_band
    from emovox.corpora.manifest import summarize
    from emovox.errors import EmovoxError
    from emovox.features.extractor import FeatureExtractor
    from emovox.training.fit import FitConfig
    from emovox.training.train import TrainConfig, parse_layers, train_model

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    err = Console(stderr=True)
    try:
        if profile_linear_weight > 0 and not profile_heads:
            raise EmovoxError("--profile-linear-weight mixes into profile heads: add --profile-heads")
        if linear_room_copies and not linear_weight:
            raise EmovoxError("--linear-room-copies trains the linear head: add --linear-weight")
        utterances = load_corpora(corpora or [], manifest)
        if not utterances:
            raise EmovoxError("give at least one corpus or --manifest")
        err.print(json.dumps(summarize(utterances), ensure_ascii=False))
        extractor = FeatureExtractor(encoder, window=window, pooling=pooling, silence_context=silence_context,
                                     silence_stride=silence_stride, level_band=parse_band(level_band))
        config = TrainConfig(encoder=encoder, ensemble=ensemble, seed=seed, augment=augment, reverb=reverb, mask=mask,
                             noise=noise, copy_weight=copy_weight, validation=validation,
                             balance_corpora=balance_corpora, balance_speakers=balance_speakers,
                             balance_labels_per_corpus=balance_labels_per_corpus, centre_corpora=centre_corpora,
                             profile_heads=profile_heads, level_jitter=parse_band(level_jitter),
                             profile_layers=profile_state_list(profile_layers, extractor.feature_shape[0]),
                             finetune=recipe_options.finetune_config(finetune_blocks, finetune_rank, finetune_epochs,
                                                                     finetune_lr, finetune_max_clips),
                             fit=FitConfig(epochs=epochs, hidden=hidden, label_smoothing=label_smoothing, dropout=dropout,
                                           mixup=mixup, adversary=adversary, voice_swap=voice_swap, voice_spread=voice_spread,
                                           nuisance_dims=nuisance_dims,
                                           dimensions_weight=recipe_options.dimensions_weight(dimensions, dimensions_weight),
                                           dimensions_shared=dimensions_shared,
                                           layers=parse_layers(layers, extractor.feature_shape[0])))
        provenance = {"name": name or out.name, "command": shlex.join(["emovox", *sys.argv[1:]]),
                      "corpora_specs": corpora or [], "manifests": [str(m) for m in manifest]}
        report = train_model(utterances, out, config=config, extractor=extractor, provenance=provenance,
                             heads_dtype=heads_dtype.value, profile_spread_power=profile_spread_power)
        if prosody_weight > 0:
            from emovox.training.prosody import add_prosody_head

            add_prosody_head(out, utterances, weight=prosody_weight)
            err.print(f"prosody head added (weight {prosody_weight:g}, read with a domain profile)")
        linear_heads = [(w, profile) for w, profile in ((linear_weight, False), (profile_linear_weight, True)) if w > 0]
        if linear_heads:
            from emovox.training.checkpoint import load_model_files
            from emovox.training.train import add_linear_head, load_features

            # both heads fit on the clips as the heads read them: read from the cache once (a tuned encoder's model
            # is refused by add_linear_head before any feature is needed)
            bundle = load_model_files(out)
            fitted_on = FeatureExtractor.from_settings(bundle.features)
            features = None if bundle.tuned else load_features(utterances, fitted_on)
            copies = None
            if linear_room_copies and features is not None:
                from emovox.training.train import room_copies

                copies = room_copies(utterances, fitted_on, linear_room_copies)
            for weight, profile in linear_heads:
                add_linear_head(out, utterances, weight=weight, strength=linear_strength, features=features,
                                profile=profile, copies=None if profile else copies)
                err.print(f"{'profile ' if profile else ''}linear head added (weight {weight:g}, C {linear_strength:g})")
    except (EmovoxError, ValueError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    held_out = "held-out corpora" if validation == "corpus" else "held-out speakers"
    err.print(f"saved {out}: labels {', '.join(report['labels'])}; mean validation UA "
              f"{report['mean_val_ua']:.3f} ({held_out}); temperature {report['temperature']:.2f}")
