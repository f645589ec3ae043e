"""Moments that matter: where a party's arousal rises or valence falls well past their own baseline.

Each party is measured against themselves: a loud speaker is not escalating because they are
loud, only when they get louder (more aroused, more negative) than they have been. A party's
baseline is a running mean of their segments' arousal and valence (each segment pulls it by
``1 - exp(-seconds / TAU)``). An **escalation** starts at the first segment whose arousal is at
least :data:`RISE` above the baseline or whose valence is at least :data:`RISE` below it, and is
listed once such segments (consecutive in the party's own speech) add up to :data:`SUSTAIN`
seconds; the baseline stays where it was while it lasts. It ends at the party's first segment
back within :data:`SETTLE` of that baseline on both, which is listed as the **recovery** (none if
the call ends first). The arousal and valence come from the categorical probabilities
(:mod:`emovox.conversation.dimensions`), so an escalation is a shift of the predicted emotions.

Examples:
    >>> from emovox.prediction.timeline import Segment
    >>> def seg(start, a, v):
    ...     return Segment(start, start + 2.0, "x", {}, 0, party="caller", arousal=a, valence=v)
    >>> calm = [seg(t, 0.0, 0.0) for t in (0, 2, 4, 6)]
    >>> heated = [seg(t, 0.8, -0.6) for t in (8, 10)]
    >>> for m in find_moments(calm + heated + [seg(12, 0.05, 0.0)]):
    ...     print(m["kind"], m["party"], m["start"], m["end"])
    escalation caller 8 12.0
    recovery caller 12 14.0
"""

from __future__ import annotations

import math

RISE = 0.3  # arousal up or valence down by this much over the baseline marks a segment
SETTLE = 0.15  # back within this of the baseline on both is a recovery
SUSTAIN = 3.0  # seconds of marked speech that make an escalation
TAU = 30.0  # seconds of a party's speech over which the baseline follows them


def find_moments(segments) -> list[dict]:
    """Escalations and recoveries of every party, in time order.

    Args:
        segments: :class:`emovox.prediction.timeline.Segment` s with ``party``, ``arousal`` and
            ``valence`` set (those without a party or arousal are skipped).

    Returns:
        Dicts with ``kind`` (``"escalation"`` or ``"recovery"``), ``party``, ``start`` and
        ``end`` (seconds); an escalation also has ``peak_arousal``, ``lowest_valence`` and the
        ``baseline`` it rose from, a recovery the ``escalation_start`` it ends.
    """
    moments: list[dict] = []
    parties = dict.fromkeys(s.party for s in segments if s.party is not None and s.arousal is not None)
    for party in parties:
        mine = sorted((s for s in segments if s.party == party and s.arousal is not None), key=lambda s: s.start)
        moments += _party_moments(party, mine)
    return sorted(moments, key=lambda m: (m["start"], m["kind"] != "escalation"))


def _party_moments(party: str, segments) -> list[dict]:
    out: list[dict] = []
    base: tuple[float, float] | None = None
    run: list = []  # the marked segments of a stretch that may become an escalation
    open_escalation: dict | None = None
    for s in segments:
        a, v = s.arousal, s.valence if s.valence is not None else 0.0
        if base is None:
            base = (a, v)
            continue
        if open_escalation is not None:
            if abs(a - base[0]) <= SETTLE and abs(v - base[1]) <= SETTLE:
                out.append({"kind": "recovery", "party": party, "start": s.start, "end": s.end,
                            "escalation_start": open_escalation["start"]})
                open_escalation, run = None, []
                base = _follow(base, a, v, s.end - s.start)
            else:
                open_escalation["end"] = s.end
                open_escalation["peak_arousal"] = max(open_escalation["peak_arousal"], round(a, 4))
                open_escalation["lowest_valence"] = min(open_escalation["lowest_valence"], round(v, 4))
            continue
        if a - base[0] >= RISE or base[1] - v >= RISE:
            run.append(s)
            if sum(r.end - r.start for r in run) >= SUSTAIN:
                open_escalation = {"kind": "escalation", "party": party, "start": run[0].start, "end": s.end,
                                   "peak_arousal": round(max(r.arousal for r in run), 4),
                                   "lowest_valence": round(min(r.valence or 0.0 for r in run), 4),
                                   "baseline": {"arousal": round(base[0], 4), "valence": round(base[1], 4)}}
                out.append(open_escalation)
            continue
        for r in run:  # a short rise: it joins the baseline after all
            base = _follow(base, r.arousal, r.valence or 0.0, r.end - r.start)
        run = []
        base = _follow(base, a, v, s.end - s.start)
    return out


def _follow(base: tuple[float, float], a: float, v: float, seconds: float) -> tuple[float, float]:
    pull = 1.0 - math.exp(-max(seconds, 0.0) / TAU)
    return base[0] + pull * (a - base[0]), base[1] + pull * (v - base[1])
