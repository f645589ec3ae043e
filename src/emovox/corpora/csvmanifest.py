"""Generic corpus described by a CSV file.

Columns: ``path,label[,speaker,gender,language,transcript]``.

Relative paths are resolved against the CSV's folder. Labels (case-insensitive) must be
taxonomy labels or keys of ``mapping`` (a mapping to ``None`` drops the row); an unknown
label, a missing file or a non-audio file is an error naming the row. Without a ``speaker``
value the speaker comes from the file name as in :mod:`emovox.corpora.folder`.

Examples:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a_1.wav").write_bytes(b"")
    >>> _ = (d / "meta.csv").write_text("path,label,gender\\na_1.wav,Sad,female\\n")
    >>> [(u.label, u.speaker, u.gender, u.corpus) for u in scan(d / "meta.csv")]
    [('sad', 'a', 'female', 'meta')]
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from pathlib import Path

from emovox.corpora._common import finish, is_audio
from emovox.corpora.folder import resolve_label, speaker_from_stem
from emovox.corpora.manifest import Utterance
from emovox.errors import CorpusError

OPTIONAL = ("speaker", "gender", "language", "transcript")


def scan(root: str | os.PathLike, *, mapping: Mapping[str, str | None] | None = None,
         corpus: str | None = None) -> list[Utterance]:
    """List the utterances of a CSV manifest.

    Args:
        root: The CSV file.
        mapping: Native label -> taxonomy label (or ``None`` to drop).
        corpus: Corpus name stored in each utterance; defaults to the CSV's stem.
    """
    csv_path = Path(root).expanduser().absolute()
    if not csv_path.is_file():
        raise CorpusError(f"csv: manifest file not found: {csv_path}")
    corpus = corpus or csv_path.stem
    with csv_path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        fields = [c.strip().lower() for c in reader.fieldnames or ()]
        if "path" not in fields or "label" not in fields:
            raise CorpusError(f"csv: {csv_path} needs columns path,label; found {fields}")
        rows = [{k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
                for row in reader]
    out = []
    for n, row in enumerate(rows, 2):  # line 1 is the header
        where = f"{csv_path}:{n}"
        known, label = resolve_label(row["label"], mapping)
        if not known:
            raise CorpusError(f"csv: {where}: label {row['label']!r} is not a taxonomy label "
                              "nor in the mapping")
        if not label:
            continue
        path = Path(row["path"]).expanduser()
        path = path if path.is_absolute() else csv_path.parent / path
        if not is_audio(path):
            raise CorpusError(f"csv: {where}: {path} is not a .wav or .flac file")
        if not path.is_file():
            raise CorpusError(f"csv: {where}: audio file not found: {path}")
        extra = {k: row.get(k) or None for k in OPTIONAL}
        extra["speaker"] = extra["speaker"] or speaker_from_stem(path.stem)
        extra["gender"] = extra["gender"] and extra["gender"].lower()
        out.append(Utterance(str(path), label, row["label"], corpus=corpus, **extra))
    return finish(out, "csv", csv_path, "rows of path,label[,speaker,gender,language,transcript]")
