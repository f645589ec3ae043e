"""The worker side: load a model once, annotate a chunk of paths into an Arrow table.

Every engine calls :func:`annotate` on chunks of paths with a model from :func:`load_worker_model`;
the table has one row per file (or per speech segment with ``timeline=True``; per segment of
each party of a conversation with ``timeline="channels"`` or ``"speakers[:N|auto]"``,
:mod:`emovox.conversation`) and the columns of :func:`result_schema`. A file that cannot be
processed becomes a row with ``error`` set, and so does one whose scores are not finite: a row
without an error has finite scores.

Examples:
    >>> result_schema(["sad", "angry"]).names
    ['path', 'duration', 'label', 'score_sad', 'score_angry', 'arousal', 'valence', 'model_id', 'error', 'error_type']
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from emovox.errors import ModelError
from emovox.prediction.loading import default_export, default_model_dir, is_exported_dir, shipped_model_dir, shipped_name
from emovox.prediction.result import PredictionError

TIMELINE_COLUMNS = [("segment", pa.int32()), ("start", pa.float64()), ("end", pa.float64()),
                    ("speech_segment", pa.int32())]
DIMENSION_COLUMNS = [("arousal", pa.float64()), ("valence", pa.float64())]  # emovox.prediction.result's rule
PARTY_COLUMNS = [("party", pa.string()), ("overlap", pa.bool_()), *DIMENSION_COLUMNS]


def result_schema(labels: Sequence[str], *, timeline: bool | str = False) -> pa.Schema:
    """Columns of the output: path, [segment, start, end, speech_segment, [party, overlap, arousal,
    valence,]] duration, label, ``score_<label>`` per label, [arousal, valence,] model_id, error,
    error_type. Every row without an error has arousal and valence in [-1, 1]: a conversation's
    next to its party (where they have always been), any other's after the scores.

    Examples:
        >>> result_schema(["sad"], timeline="channels").names[5:9]
        ['party', 'overlap', 'arousal', 'valence']
    """
    fields = [("path", pa.string())]
    if timeline:
        fields += TIMELINE_COLUMNS
    if isinstance(timeline, str):
        fields += PARTY_COLUMNS
    fields += [("duration", pa.float64()), ("label", pa.string())]
    fields += [(f"score_{label}", pa.float64()) for label in labels]
    if not isinstance(timeline, str):
        fields += DIMENSION_COLUMNS
    fields += [("model_id", pa.string()), ("error", pa.string()), ("error_type", pa.string())]
    return pa.schema(fields)


def resolve_model(model_dir: str | os.PathLike | None) -> Path:
    """The folder workers load: an exported (onnxruntime) copy when one can be made, so that
    workers never import torch; the cached export is made once (see ``default_export``)."""
    if model_dir is None:
        directory = default_model_dir()
    else:
        name = shipped_name(model_dir)
        directory = shipped_model_dir(name) if name else Path(model_dir)
    if not (directory / "config.json").is_file():
        raise ModelError(f"{directory}: not a model directory (no config.json)")
    if is_exported_dir(directory):
        return directory.resolve()
    return (default_export(directory) or directory).resolve()


def model_info(directory: str | os.PathLike) -> tuple[list[str], str]:
    """Labels and model id of a model or exported folder, from its config.json (no loading)."""
    try:
        config = json.loads((Path(directory) / "config.json").read_text())
        training = config.get("source", config).get("training", {})
        return list(config["labels"]), training.get("name", "emovox-model")
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"{directory}: unreadable model config: {exc}") from None


def load_worker_model(directory: str | os.PathLike, *, threads: int = 1, timeline: bool | str = False,
                      profile: str | os.PathLike | None = None):
    """Load the model in a worker with ``threads`` compute threads (one per worker by default),
    with the domain ``profile`` if given; the decoders' notes (mpg123) stay off the worker's stderr."""
    from emovox.audio.decode import quiet_decoder_messages
    from emovox.prediction.loading import load

    quiet_decoder_messages()

    max_duration = {"max_duration": None} if timeline else {}
    if is_exported_dir(directory):
        return load(directory, threads=threads, profile=profile, **max_duration)
    import torch

    torch.set_num_threads(threads)
    return load(directory, profile=profile, **max_duration)


def annotate(model, paths: Sequence[str], *, labels: Sequence[str] | None = None, timeline: bool | str = False,
             batch_size: int = 16, party_names: str | list[str] | None = None) -> pa.Table:
    """Annotate ``paths`` with ``model``: an Arrow table of :func:`result_schema` rows, in input order
    (``timeline``: True for a row per speech window, or a ``--parties`` spec for a conversation's, whose
    parties are called ``party_names`` if given, see :func:`emovox.conversation.parties.party_names`)."""
    labels = list(labels or model.labels)
    schema = result_schema(labels, timeline=timeline)
    model_id = getattr(model, "model_id", "")
    rows = []
    if timeline:
        for path in paths:
            rows += _timeline_rows(model, path, labels, model_id, timeline if isinstance(timeline, str) else None,
                                   party_names)
    else:
        try:
            results = list(model.predict_files(paths, batch_size=batch_size))
        except Exception:  # noqa: BLE001  a failure inside a batch: redo one by one to find the culprit
            results = [_one(model, path) for path in paths]
        rows = [_row(r, labels, model_id) for r in results]
    return pa.Table.from_pylist(rows, schema=schema)


def _one(model, path: str):
    try:
        return next(iter(model.predict_files([path], batch_size=1)))
    except Exception as exc:  # noqa: BLE001  recorded in the row, the run goes on
        return PredictionError(path, str(exc) or repr(exc), type(exc).__name__)


def _row(result, labels: Sequence[str], model_id: str) -> dict:
    if isinstance(result, PredictionError):
        return {"path": result.path, "model_id": model_id, "error": result.error, "error_type": result.kind}
    if not _finite(result.scores, labels):
        return _not_finite(result.path, model_id)
    row = {"path": result.path, "duration": round(result.duration, 3), "label": result.label, "model_id": model_id,
           "arousal": result.arousal, "valence": result.valence}
    row.update({f"score_{label}": result.scores[label] for label in labels})
    return row


def _finite(scores: dict, labels: Sequence[str]) -> bool:
    return all(isinstance(scores.get(l), (int, float)) and math.isfinite(scores[l]) for l in labels)


def _not_finite(path: str, model_id: str) -> dict:
    return {"path": path, "model_id": model_id, "error": "the model's scores for this file are not finite",
            "error_type": "InvalidAudioError"}


def _timeline_rows(model, path: str, labels: Sequence[str], model_id: str, parties: str | None = None,
                   party_names: str | list[str] | None = None) -> list[dict]:
    """One row per speech window (of each party, given ``parties``); a file without speech is one
    row with no segment."""
    from emovox.audio.load import load_audio
    from emovox.prediction.timeline import make_timeline

    try:
        if parties:
            from emovox.conversation.parties import conversation_timeline, load_channels

            timeline = conversation_timeline(model, load_channels(path, max_duration=None), parties=parties,
                                             names=party_names)
        else:
            timeline = make_timeline(model, load_audio(path, max_duration=None))
    except Exception as exc:  # noqa: BLE001  recorded in the row, the run goes on
        return [{"path": path, "model_id": model_id, "error": str(exc) or repr(exc), "error_type": type(exc).__name__}]
    duration = round(timeline.duration, 3)
    if not all(_finite(s.scores, labels) for s in timeline.segments):
        return [_not_finite(path, model_id)]
    if not timeline.segments:
        return [{"path": path, "duration": duration, "model_id": model_id}]
    rows = []
    for n, s in enumerate(timeline.segments):
        row = {"path": path, "segment": n, "start": s.start, "end": s.end, "speech_segment": s.speech_segment,
               "duration": duration, "label": s.label, "model_id": model_id}
        row.update(arousal=s.arousal, valence=s.valence)
        if parties:
            row.update(party=s.party, overlap=s.overlap)
        row.update({f"score_{label}": s.scores[label] for label in labels})
        rows.append(row)
    return rows
