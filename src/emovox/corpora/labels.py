"""One emotion taxonomy, and every corpus's mapping onto it, in one place.

Each corpus names its emotions its own way (RAVDESS uses codes ``"05"``, EmoDB German letters,
nEMO nouns such as ``"anger"``). Adapters keep the native string in
:attr:`~emovox.corpora.manifest.Utterance.native_label` and store the taxonomy label from
:func:`map_label`; a native label mapped to ``None`` (IEMOCAP's frustration, "other", no
agreement) drops the utterance.

Class sets differ between corpora (TurEV-DB has calm but no neutral, nEMO has no calm or
disgust), so cross-corpus evaluation first reduces labels to a shared scheme with
:func:`collapse`.

Examples:
    >>> map_label("ravdess", "05")
    'angry'
    >>> map_label("emovo", "gio")
    'happy'
    >>> map_label("iemocap", "fru") is None
    True
    >>> collapse("calm"), collapse("fear")
    ('neutral', None)
"""

from __future__ import annotations

from emovox.errors import CorpusError

EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fear", "disgust", "surprise", "boredom")
"""The taxonomy: every label an :class:`~emovox.corpora.manifest.Utterance` can carry."""

CANDIDATE_SEPARATOR = "|"
"""Joins the members of a candidate-set label (``"angry|happy"``: one of these, not known which)."""

HIGH_AROUSAL = ("happy", "angry", "fear", "surprise")
"""The emotions a corpus's "high arousal" level may be (a candidate set, taxonomy order)."""

FOUR_CLASS = ("neutral", "happy", "sad", "angry")
"""The four classes shared by most corpora (the ``"4class"`` scheme of :func:`collapse`)."""

CORPUS_LABELS: dict[str, dict[str, str | None]] = {
    # Third field of 03-01-EE-II-SS-RR-AA.
    "ravdess": {
        "01": "neutral", "02": "calm", "03": "happy", "04": "sad",
        "05": "angry", "06": "fear", "07": "disgust", "08": "surprise",
    },
    # data.tsv "emotion" column.
    "nemo": {
        "anger": "angry", "fear": "fear", "happiness": "happy", "neutral": "neutral",
        "sadness": "sad", "surprised": "surprise",
    },
    # Folder names under "Sound Source/".
    "turev": {"angry": "angry", "calm": "calm", "happy": "happy", "sad": "sad"},
    # Sixth character of the file name (German initials: Wut, Langeweile, Ekel, Angst, ...).
    "emodb": {
        "w": "angry", "l": "boredom", "e": "disgust", "a": "fear",
        "f": "happy", "t": "sad", "n": "neutral",
    },
    # First field of dis-f1-b1 (Italian: disgusto, gioia, neutro, paura, rabbia, ...).
    "emovo": {
        "dis": "disgust", "gio": "happy", "neu": "neutral", "pau": "fear",
        "rab": "angry", "sor": "surprise", "tri": "sad",
    },
    # Third field of 1001_DFA_ANG_XX.
    "cremad": {
        "ang": "angry", "dis": "disgust", "fea": "fear", "hap": "happy",
        "neu": "neutral", "sad": "sad",
    },
    # Last word of the file stem; pleasant surprise appears as "ps" or spelled out.
    "tess": {
        "angry": "angry", "disgust": "disgust", "fear": "fear", "happy": "happy",
        "neutral": "neutral", "ps": "surprise", "pleasant_surprise": "surprise",
        "pleasant_surprised": "surprise", "sad": "sad",
    },
    # Letter prefix of a01, sa12, su03.
    "savee": {
        "a": "angry", "d": "disgust", "f": "fear", "h": "happy",
        "n": "neutral", "sa": "sad", "su": "surprise",
    },
    # Folder names.
    "urdu": {"angry": "angry", "happy": "happy", "neutral": "neutral", "sad": "sad"},
    # EmoEvaluation category; excitement counts as happiness, the rest is dropped.
    "iemocap": {
        "neu": "neutral", "hap": "happy", "exc": "happy", "sad": "sad", "ang": "angry",
        "fea": "fear", "dis": "disgust", "sur": "surprise",
        "fru": None, "oth": None, "xxx": None,
    },
    # Utterance number range of <spk>NNNNN (the adapter turns it into these words).
    "koetts": {"neutral": "neutral", "happy": "happy", "angry": "angry", "sad": "sad"},
    # Third field of keyword-environment-emotion-timestamp-user; "none" is unlabelled.
    "emospeech": {"angry": "angry", "calm": "calm", "fearful": "fear", "happy": "happy",
                  "none": None},
    # Arousal level (fifth field): only the neutral level is a taxonomy emotion.
    "baved": {"0": None, "1": "neutral", "2": None},
    # Third field of 03-01-EE-II-SS-RR-AA; BanglaSER's own codes (not RAVDESS's), the extension
    # adds 06 disgust and 07 fear.
    "banglaser": {
        "01": "happy", "02": "sad", "03": "angry", "04": "surprise", "05": "neutral",
        "06": "disgust", "07": "fear",
    },
}
"""Native label (lower-cased) -> taxonomy label, per corpus. ``None`` drops the utterance."""

_SCHEMES: dict[str, dict[str, str]] = {
    "4class": {"neutral": "neutral", "calm": "neutral", "happy": "happy", "sad": "sad",
               "angry": "angry"},
    "full": {e: e for e in EMOTIONS},
}


def candidates(label: str) -> tuple[str, ...]:
    """The emotions ``label`` allows: itself, or each member of a candidate set.

    A corpus that labels arousal, not emotion (BAVED's "high" level: happy or angry or ...), gives
    its clips a candidate set; training then asks only that the heads put the clip's probability
    somewhere in the set (:func:`emovox.training.fit.compute_objective`).

    Raises:
        CorpusError: A member outside the taxonomy.

    Examples:
        >>> candidates("sad"), candidates("angry|happy")
        (('sad',), ('angry', 'happy'))
        >>> candidate_label(["angry", "happy", "fear"])
        'happy|angry|fear'
    """
    members = tuple(label.split(CANDIDATE_SEPARATOR))
    unknown = [m for m in members if m not in EMOTIONS]
    if len(members) > 1 and unknown:
        raise CorpusError(f"candidate label {label!r} has members outside the taxonomy: {unknown}")
    return members


def candidate_label(emotions) -> str:
    """The label of a candidate set of ``emotions`` (taxonomy order, :data:`CANDIDATE_SEPARATOR`)."""
    members = set(emotions)
    return CANDIDATE_SEPARATOR.join(e for e in EMOTIONS if e in members)


def map_label(corpus: str, native: str) -> str | None:
    """Map a corpus's native label to the taxonomy.

    Args:
        corpus: Corpus name, a key of :data:`CORPUS_LABELS`.
        native: The label as the corpus writes it; case and surrounding blanks are ignored.

    Returns:
        The taxonomy label, or ``None`` when the label is outside the taxonomy or unknown
        (the utterance is dropped).

    Raises:
        CorpusError: ``corpus`` has no mapping.

    Examples:
        >>> map_label("emodb", "W"), map_label("tess", "ps"), map_label("nemo", "joy")
        ('angry', 'surprise', None)
    """
    try:
        table = CORPUS_LABELS[corpus]
    except KeyError:
        raise CorpusError(
            f"no label mapping for corpus {corpus!r}; known: {', '.join(sorted(CORPUS_LABELS))}"
        ) from None
    return table.get(native.strip().lower())


def collapse(label: str, scheme: str = "4class") -> str | None:
    """Reduce a taxonomy label to a coarser scheme, for cross-corpus evaluation.

    Schemes: ``"4class"`` keeps neutral/happy/sad/angry, maps calm to neutral and everything
    else to ``None``; ``"full"`` keeps every taxonomy label.

    Examples:
        >>> [collapse(e) for e in ("calm", "happy", "surprise")]
        ['neutral', 'happy', None]
        >>> collapse("boredom", "full")
        'boredom'
    """
    try:
        table = _SCHEMES[scheme]
    except KeyError:
        raise ValueError(f"unknown scheme {scheme!r}; known: {', '.join(_SCHEMES)}") from None
    return table.get(label)
