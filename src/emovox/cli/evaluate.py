"""``emovox evaluate``: speaker-independent and cross-corpus evaluation with a report."""

from __future__ import annotations

import logging
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console

from emovox.cli import recipe_options
from emovox.cli.main import app


class Protocol(str, Enum):
    kfold = "kfold"
    loso = "loso"
    cross_corpus = "cross-corpus"
    fixed = "fixed"


@app.command()
def evaluate(
    corpora: list[str] = typer.Argument(None, help="Corpora as NAME:PATH or paths (for kfold, loso, cross-corpus)."),
    protocol: Protocol = typer.Option(Protocol.kfold, help="kfold: folds of whole speakers; loso: leave one speaker out; "
                                      "cross-corpus: train on all but one corpus, test on it (a matrix over corpora); "
                                      "fixed: --train/--test manifests."),
    folds: int = typer.Option(6, help="Speaker folds for kfold."),
    scheme: str = typer.Option("full", help="full: the data's own labels; 4class: neutral(+calm)/happy/sad/angry."),
    train_manifest: Path | None = typer.Option(None, "--train", help="JSONL manifest (fixed protocol)."),
    test_manifest: Path | None = typer.Option(None, "--test", help="JSONL manifest (fixed protocol)."),
    out: Path = typer.Option(Path("runs/evaluate"), "--out", "-o", help="Report folder (report.md, report.json, PNGs)."),
    encoder: str = typer.Option("whisper-base"),
    window: float = typer.Option(0.0),
    pooling: str = recipe_options.POOLING,
    silence_context: bool = recipe_options.SILENCE_CONTEXT,
    silence_stride: int = recipe_options.SILENCE_STRIDE,
    level_band: str = recipe_options.LEVEL_BAND,
    ensemble: int = typer.Option(5, min=1),
    hidden: int = typer.Option(256, min=4, help="Hidden units of each head's MLP."),
    layers: str = recipe_options.LAYERS,
    adapt: bool = typer.Option(False, "--adapt", help="Adapt to each test speaker: centre its features on the mean of "
                               "its own unlabelled test clips (emovox.training.adaptation; transductive, stated in the report)."),
    augment: int = typer.Option(0, min=0, help="Augmented copies of each training clip (as emovox train --augment); "
                                "test clips are never augmented."),
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
    seed: int = typer.Option(0),
    plots: bool = typer.Option(True, help="Write PNG plots."),
) -> None:
    """Evaluate the training recipe with every test speaker unseen in training; prints UA and writes a report."""
    import numpy as np

    from emovox.audio.level_band import parse_band
    from emovox.cli.train import load_corpora
    from emovox.corpora.manifest import read_jsonl
    from emovox.errors import EmovoxError
    from emovox.evaluation.metrics import classification_metrics, expected_calibration_error
    from emovox.evaluation.protocols import cross_corpus, default_trainer, fixed_split, speaker_kfold
    from emovox.evaluation.report import write_report
    from emovox.features.extractor import FeatureExtractor
    from emovox.training.fit import FitConfig
    from emovox.training.train import (
        TrainConfig,
        augmenting_trainer,
        finetuning_trainer,
        kfold_groups,
        load_augmented,
        load_features,
        parse_layers,
    )

    logging.basicConfig(level=logging.WARNING)
    err = Console(stderr=True)
    try:
        extractor = FeatureExtractor(encoder, window=window, pooling=pooling, silence_context=silence_context,
                                     silence_stride=silence_stride, level_band=parse_band(level_band))
        fit = FitConfig(hidden=hidden, label_smoothing=label_smoothing, dropout=dropout,
                        mixup=mixup, adversary=adversary, voice_swap=voice_swap, voice_spread=voice_spread,
                        nuisance_dims=nuisance_dims,
                        dimensions_weight=recipe_options.dimensions_weight(dimensions, dimensions_weight),
                        dimensions_shared=dimensions_shared,
                        layers=parse_layers(layers, extractor.feature_shape[0]))
        config = TrainConfig(encoder=encoder, ensemble=ensemble, seed=seed, augment=augment, reverb=reverb, mask=mask,
                             noise=noise, copy_weight=copy_weight, validation=validation,
                             balance_corpora=balance_corpora, balance_speakers=balance_speakers,
                             balance_labels_per_corpus=balance_labels_per_corpus,
                             centre_corpora=centre_corpora, fit=fit,
                             finetune=recipe_options.finetune_config(finetune_blocks, finetune_rank, finetune_epochs,
                                                                     finetune_lr, finetune_max_clips))
        trainer = default_trainer(config)
        if protocol is Protocol.fixed:
            if not (train_manifest and test_manifest):
                raise EmovoxError("the fixed protocol needs --train and --test manifests")
            tr, te = read_jsonl(train_manifest), read_jsonl(test_manifest)
            trainer = augmenting_trainer(config, tr, load_augmented(tr, extractor, augment, recipe=config.augment_recipe()))
            if finetune_blocks:
                trainer = finetuning_trainer(config, [*tr, *te], extractor)
            outcomes = [fixed_split(load_features(tr, extractor), tr, load_features(te, extractor), te,
                                    trainer=trainer, scheme=scheme, name=test_manifest.stem, adapt=adapt)]
        else:
            utts = load_corpora(corpora or [])
            if not utts:
                raise EmovoxError("give at least one corpus")
            X = load_features(utts, extractor)
            kfold = protocol is not Protocol.cross_corpus
            n = len({u.speaker_key for u in utts}) if protocol is Protocol.loso else folds
            if augment:  # copies of every clip; each fold's trainer takes those of its training clips only
                groups = kfold_groups(utts, n) if kfold else None  # babble never made of a test speaker
                copies = load_augmented(utts, extractor, augment, groups=groups, recipe=config.augment_recipe())
                trainer = augmenting_trainer(config, utts, copies)
            if finetune_blocks:  # each fold's blocks are tuned on its training part only
                trainer = finetuning_trainer(config, utts, extractor)
            if not kfold:
                if len({u.corpus for u in utts}) < 2:
                    raise EmovoxError("cross-corpus evaluation needs at least two corpora")
                outcomes = cross_corpus(X, utts, trainer=trainer, scheme=scheme, adapt=adapt)
            else:
                name = "+".join(sorted({u.corpus for u in utts}))
                outcomes = [speaker_kfold(X, utts, n, trainer=trainer, scheme=scheme, name=name, adapt=adapt)]
    except (EmovoxError, ValueError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if augment:
        for o in outcomes:
            source = ("the same fold, so no test speaker is heard even as noise" if protocol is not Protocol.cross_corpus
                      else "the same corpus")
            extras = "".join([f"; a simulated room with probability {reverb:g}" if reverb else "",
                              f"; masking with probability {mask:g}" if mask else ""])
            noisy = (f"noise with probability {noise:g}, its babble made of utterances of other speakers of {source}"
                     if noise else "no noise")
            o.split += (f"; training clips plus {augment} augmented copies each ({noisy}{extras}; "
                        "test clips are not augmented)")
    if finetune_blocks:
        for o in outcomes:
            o.split += (f"; the encoder's top {finetune_blocks} block(s) fine-tuned with a head on each training part only "
                        f"({config.finetune.describe()}; the epoch chosen on held-out training speakers), test clips "
                        "encoded by that part's tuned encoder")
    results = []
    for o in outcomes:
        metrics = classification_metrics(o.truth, o.predicted, labels=o.labels, probs=o.probs)
        if o.uncalibrated is not None:  # temperature scaling keeps the argmax, so only ECE changes
            correct = np.array([o.labels[i] for i in o.uncalibrated.argmax(1)]) == np.array(o.truth)
            metrics["ece_uncalibrated"] = expected_calibration_error(o.uncalibrated, correct)
        results.append({"name": o.name, "split": o.split, "label_mapping": ", ".join(o.labels), "metrics": metrics})
        err.print(f"{o.name}: UA {metrics['ua']:.3f}  WA {metrics['wa']:.3f}  macro-F1 {metrics['macro_f1']:.3f}  "
                  f"ECE {metrics['ece']:.3f} (uncalibrated {metrics.get('ece_uncalibrated', float('nan')):.3f})  [{o.split}]")
    if len(results) > 1:
        err.print(f"mean UA {np.mean([r['metrics']['ua'] for r in results]):.3f}")
    path = write_report(results, out, title=f"emovox evaluate: {protocol.value} ({scheme} labels)", plots=plots)
    err.print(f"report: {path}")
