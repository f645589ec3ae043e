"""IEMOCAP (Busso et al. 2008), English, five dyadic sessions.

Labels: ``Session{n}/dialog/EmoEvaluation/<dialog>.txt``, lines such as
``[6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]``.
Audio: ``Session{n}/sentences/wav/<dialog>/<utterance>.wav``. Transcripts (optional):
``Session{n}/dialog/transcriptions/<dialog>.txt``, lines ``<utterance> [start-end]: text``.

Each session has one female and one male actor; the letter opening the last ``_`` field of
the utterance id says which one speaks, so the speaker is ``Ses01`` + that letter. Excited
counts as happy; frustration, other and no-agreement (``xxx``) are dropped. Utterances
without audio are skipped.

Examples:
    >>> parse_utterance_id("Ses01M_impro01_F000")
    ('Ses01M_impro01', 'Ses01F', 'female')
    >>> parse_label_line("[6.2901 - 8.2357]\\tSes01F_impro01_F000\\tneu\\t[2.5000, 2.5000, 2.5000]")
    ('Ses01F_impro01_F000', 'neu')
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from emovox.corpora._common import check_root, find_audio, finish
from emovox.corpora.labels import map_label
from emovox.corpora.manifest import Utterance

_LABEL = re.compile(r"^\[[^\]]+\]\s+(Ses\d\d[FM]_\S+_[FM]\S*)\s+(\w+)\b")
_TRANSCRIPT = re.compile(r"^(Ses\d\d[FM]_\S+_[FM]\S*)\s+\[[^\]]*\]:\s?(.*)$")
_GENDERS = {"F": "female", "M": "male"}


def parse_label_line(line: str) -> tuple[str, str] | None:
    """(utterance id, category) of an EmoEvaluation summary line; ``None`` for other lines."""
    m = _LABEL.match(line.strip())
    return (m.group(1), m.group(2)) if m else None


def parse_utterance_id(utt: str) -> tuple[str, str, str | None]:
    """(dialog, speaker, gender) of an utterance id such as ``Ses01F_script01_1_M012``."""
    dialog, last = utt.rsplit("_", 1)
    letter = last[:1].upper()
    return dialog, utt[:5] + letter, _GENDERS.get(letter)


def read_transcripts(folder: Path) -> dict[str, str]:
    """Utterance id -> text from every ``*.txt`` in ``folder`` (empty if it is absent)."""
    out: dict[str, str] = {}
    for txt in sorted(folder.glob("*.txt")) if folder.is_dir() else ():
        for line in txt.read_text(encoding="utf-8", errors="replace").splitlines():
            m = _TRANSCRIPT.match(line.strip())
            if m:
                out[m.group(1)] = m.group(2).strip()
    return out


def _sessions(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("Session[0-9]*") if p.is_dir())


def scan(root: str | os.PathLike) -> list[Utterance]:
    """List IEMOCAP utterances under ``root`` (the folder holding ``Session1`` ... ``Session5``).

    Examples:
        >>> scan("/data/IEMOCAP_full_release")  # doctest: +SKIP
    """
    root = check_root(root, "iemocap")
    out = []
    for session in _sessions(root):
        transcripts = read_transcripts(session / "dialog" / "transcriptions")
        for txt in sorted((session / "dialog" / "EmoEvaluation").glob("*.txt")):
            for line in txt.read_text(encoding="utf-8", errors="replace").splitlines():
                parsed = parse_label_line(line)
                label = parsed and map_label("iemocap", parsed[1])
                if not label:
                    continue
                utt, native = parsed
                dialog, speaker, gender = parse_utterance_id(utt)
                path = find_audio(session / "sentences" / "wav" / dialog / utt)
                if path:
                    out.append(Utterance(str(path), label, native, speaker, "iemocap",
                                         gender=gender, language="en",
                                         transcript=transcripts.get(utt)))
    return finish(out, "iemocap", root, "Session{n}/dialog/EmoEvaluation/*.txt and "
                  "Session{n}/sentences/wav/<dialog>/*.wav")
