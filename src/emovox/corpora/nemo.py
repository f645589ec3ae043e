"""nEMO (Christop 2024), Polish: ``data.tsv`` + ``samples/<file_id>``.

``data.tsv`` columns: file_id, emotion, raw_text, normalized_text, speaker_id, gender, age.
``file_id`` keeps the original ``.wav`` name; the file may be stored as ``.flac``. Rows whose
audio is missing are skipped (a partial copy is fine), but more than half missing is an error.

Examples:
    >>> from emovox.corpora.labels import map_label
    >>> map_label("nemo", "happiness")
    'happy'
"""

from __future__ import annotations

import csv
import os

from emovox.corpora._common import check_root, find_audio, finish
from emovox.corpora.labels import map_label
from emovox.corpora.manifest import Utterance
from emovox.errors import CorpusError

COLUMNS = ("file_id", "emotion", "raw_text", "speaker_id", "gender")


def scan(root: str | os.PathLike) -> list[Utterance]:
    """List the nEMO utterances under ``root`` (the folder with ``data.tsv`` and ``samples/``).

    Speaker is ``speaker_id`` stripped, transcript ``raw_text``, language ``"pl"``.

    Examples:
        >>> scan("/data/nEMO")  # doctest: +SKIP
    """
    root = check_root(root, "nemo")
    tsv = root / "data.tsv"
    if not tsv.is_file():
        raise CorpusError(f"nemo: {tsv} not found; expected data.tsv and samples/ under {root}")
    with tsv.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    lacking = [c for c in COLUMNS if rows and c not in rows[0]]
    if lacking:
        raise CorpusError(f"nemo: {tsv} lacks column(s) {', '.join(lacking)}")
    out, missing = [], 0
    for row in rows:
        path = find_audio(root / "samples" / row["file_id"].strip())
        if path is None:
            missing += 1
            continue
        label = map_label("nemo", row["emotion"])
        if label:
            gender = row["gender"].strip().lower() or None
            out.append(Utterance(str(path), label, row["emotion"].strip(),
                                 row["speaker_id"].strip(), "nemo", gender=gender,
                                 language="pl", transcript=row["raw_text"].strip() or None))
    if missing * 2 > len(rows):
        raise CorpusError(f"nemo: audio missing for {missing} of {len(rows)} rows of {tsv}; "
                          f"expected files in {root / 'samples'}")
    return finish(out, "nemo", root, "data.tsv and samples/<file_id>")
