"""Readers for the text-emotion corpora, with each corpus's labels mapped to emovox's taxonomy.

Layouts are those of ``../shared/text-emotion`` (see its README):

* GoEmotions: ``text<TAB>label ids<TAB>id``; ids map to 27 emotions + neutral, then through
  ``ekman_mapping.json`` to Ekman's six + neutral. The corpus is multi-label: an example is
  kept only when all its labels fall in one Ekman class (e.g. joy + amusement -> joy);
  examples whose labels span several classes are dropped (about 10 % of them).
* CARER: ``text;label``; love counts as happy.
* CLUEmotion: JSON lines; like and happiness count as happy.

Taxonomy: joy->happy, sadness->sad, anger->angry, fear, disgust, surprise, neutral.

Examples:
    >>> TEXT_LABELS
    ('neutral', 'happy', 'sad', 'angry', 'fear', 'disgust', 'surprise')
    >>> CORPUS_SPLITS["carer"]
    ('train', 'val', 'test')
"""

from __future__ import annotations

import json
from pathlib import Path

TEXT_LABELS = ("neutral", "happy", "sad", "angry", "fear", "disgust", "surprise")
"""Labels the text model decides among (a subset of :data:`emovox.corpora.labels.EMOTIONS`)."""

_NATIVE = {
    "neutral": "neutral", "joy": "happy", "happiness": "happy", "love": "happy", "like": "happy",
    "sadness": "sad", "anger": "angry", "fear": "fear", "disgust": "disgust", "surprise": "surprise",
}

CORPUS_SPLITS = {
    "goemotions": ("train", "dev", "test"),
    "carer": ("train", "val", "test"),
    "cluemotion": ("valid", "test"),
}


def read_split(root: str | Path, corpus: str, split: str) -> tuple[list[str], list[str]]:
    """Texts and taxonomy labels of one split; examples without a mapping are dropped.

    Args:
        root: the ``text-emotion`` folder holding one sub-folder per corpus.
        corpus: a key of :data:`CORPUS_SPLITS`.
        split: one of that corpus's splits.
    """
    folder = Path(root) / corpus
    if split not in CORPUS_SPLITS.get(corpus, ()):
        raise ValueError(f"unknown corpus/split {corpus}/{split}")
    texts, labels = [], []
    if corpus == "goemotions":
        names = (folder / "emotions.txt").read_text().split()
        ekman = {fine: coarse for coarse, fines in json.loads((folder / "ekman_mapping.json").read_text()).items()
                 for fine in fines}
        ekman["neutral"] = "neutral"
        for line in (folder / f"{split}.tsv").read_text(encoding="utf-8").splitlines():
            text, ids, _ = line.split("\t")
            classes = {ekman.get(names[int(i)]) for i in ids.split(",")}
            if len(classes) == 1 and None not in classes:
                texts.append(text)
                labels.append(_NATIVE[classes.pop()])
    elif corpus == "carer":
        for line in (folder / f"{split}.txt").read_text(encoding="utf-8").splitlines():
            text, _, native = line.rpartition(";")
            if native in _NATIVE:
                texts.append(text)
                labels.append(_NATIVE[native])
    else:
        for line in (folder / f"{split}.txt").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row["label"] in _NATIVE:
                texts.append(row["content"])
                labels.append(_NATIVE[row["label"]])
    return texts, labels
