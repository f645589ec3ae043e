"""A call report a supervisor can read: one self-contained HTML file (inline CSS and SVG, no
script, nothing fetched), written by ``emovox report``.

It shows, for a conversation timeline (:func:`emovox.conversation.conversation_timeline`):
one lane per party over time (each window coloured by its emotion, overlapping speech outlined,
escalations shaded), each party's arousal and valence over time, the moments (escalations and
recoveries), a summary per party (speech time, dominant emotion, shares, mean arousal and
valence), and every segment with its words when the call was transcribed.

Examples:
    >>> from emovox.prediction.timeline import Segment, Timeline
    >>> seg = Segment(1.0, 3.0, "sad", {"sad": 0.9, "angry": 0.1}, 0, party="agent", arousal=-0.46, valence=-0.69)
    >>> html = render(Timeline(5.0, ["sad", "angry"], [seg], parties=["agent", "customer"], moments=[]), title="call.wav")
    >>> html.startswith("<!DOCTYPE html>"), "http" in html.replace("http://www.w3.org/2000/svg", "")
    (True, False)
    >>> html.count('class="lane"')
    2
"""

from __future__ import annotations

import html as _html

PALETTE = {"angry": "#d62728", "happy": "#f2b701", "sad": "#1f77b4", "neutral": "#9e9e9e", "calm": "#2ca02c",
           "fear": "#9467bd", "disgust": "#8c564b", "surprise": "#e377c2", "boredom": "#7f7f7f", "unknown": "#cccccc"}
OTHER = ["#17becf", "#bcbd22", "#ff7f0e", "#393b79", "#637939"]
WIDTH, LEFT, LANE = 960, 110, 34  # px: the drawing, the names column, one lane


def colours(labels: list[str]) -> dict[str, str]:
    """A colour per label (the common emotions keep theirs in every report).

    Examples:
        >>> colours(["angry", "joy"])
        {'angry': '#d62728', 'joy': '#17becf'}
    """
    out, spare = {}, iter(OTHER * 4)
    for label in labels:
        out[label] = PALETTE.get(label) or next(spare)
    return out


def render(timeline, *, title: str = "call") -> str:
    """The report of a conversation timeline as one HTML document."""
    parties = timeline.parties or ["all"]
    colour = colours(list(timeline.labels))
    summary = timeline.summary()
    duration = max(timeline.duration, 1e-3)
    body = [f"<h1>{_e(title)}</h1>",
            f"<p class=meta>{timeline.duration:.1f} s, {summary['speech']:.1f} s of speech, {len(parties)} parties"
            f"{', model ' + _e(timeline.model_id) if timeline.model_id else ''}. Arousal and valence are read off the "
            "emotion probabilities (a circumplex table), not measured separately.</p>",
            "<h2>Who felt what, and when</h2>", _legend(colour), _lanes(timeline, parties, colour, duration),
            "<h2>Arousal and valence</h2>", _curves(timeline, parties, duration),
            "<h2>Moments</h2>", _moments(timeline.moments or []),
            "<h2>Per party</h2>", _party_table(summary, parties, colour),
            "<h2>Segments</h2>", _segments(timeline)]
    return ("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            f"<title>{_e(title)} — emovox call report</title><style>{CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1000px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:22px 0 6px}.meta{color:#555;margin:0}
table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #e5e5e5;text-align:left}
th{font-weight:600;background:#fafafa}.num{text-align:right;font-variant-numeric:tabular-nums}
.legend span{display:inline-block;margin-right:12px}.legend i{display:inline-block;width:12px;height:12px;
margin-right:4px;vertical-align:-1px;border-radius:2px}svg text{font:12px system-ui,sans-serif;fill:#333}
.escalation{color:#b71c1c;font-weight:600}.recovery{color:#1b5e20;font-weight:600}"""


def _e(text) -> str:
    return _html.escape(str(text), quote=True)


def _x(t: float, duration: float) -> float:
    return round(LEFT + (WIDTH - LEFT - 10) * t / duration, 1)


def _axis(duration: float, y: float) -> str:
    step = next(s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600) if duration / s <= 12)
    ticks = []
    for k in range(int(duration // step) + 1):
        x = _x(k * step, duration)
        ticks.append(f'<line x1={x} x2={x} y1=0 y2={y} stroke="#eee"/><text x={x} y={y + 14} text-anchor=middle>'
                     f"{_clock(k * step)}</text>")
    return "".join(ticks)


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def _legend(colour: dict[str, str]) -> str:
    items = "".join(f'<span><i style="background:{c}"></i>{_e(label)}</span>' for label, c in colour.items())
    return f'<div class=legend>{items}<span><i style="border:2px solid #000"></i>overlapping speech</span></div>'


def _lanes(timeline, parties: list[str], colour: dict[str, str], duration: float) -> str:
    height = LANE * len(parties) + 24
    out = [f'<svg class=lanes width={WIDTH} height={height} viewBox="0 0 {WIDTH} {height}" role=img>',
           _axis(duration, LANE * len(parties))]
    for m in timeline.moments or []:
        if m["kind"] == "escalation" and m["party"] in parties:
            row = parties.index(m["party"])
            x0, x1 = _x(m["start"], duration), _x(m["end"], duration)
            out.append(f'<rect x={x0} y={row * LANE} width={max(x1 - x0, 2)} height={LANE} fill="#ffcdd2"/>')
    for row, party in enumerate(parties):
        out.append(f'<g class="lane" data-party="{_e(party)}"><text x=0 y={row * LANE + 21}>{_e(party)}</text>')
        for s in timeline.segments:
            if (s.party or "all") != party:
                continue
            x0, x1 = _x(s.start, duration), _x(s.end, duration)
            edge = ' stroke="#000" stroke-width=2' if s.overlap else ""
            out.append(f'<rect x={x0} y={row * LANE + 6} width={max(x1 - x0, 1)} height={LANE - 12} '
                       f'fill="{colour.get(s.label, "#ccc")}"{edge}><title>{_clock(s.start)}–{_clock(s.end)} {_e(s.label)}'
                       f"{' (overlap)' if s.overlap else ''}</title></rect>")
        out.append("</g>")
    for m in timeline.moments or []:
        if m["party"] in parties:
            x, y = _x(m["start"], duration), parties.index(m["party"]) * LANE
            fill = "#b71c1c" if m["kind"] == "escalation" else "#1b5e20"
            out.append(f'<path d="M{x - 5},{y} L{x + 5},{y} L{x},{y + 7} Z" fill="{fill}"><title>{m["kind"]}</title></path>')
    return "".join(out) + "</svg>"


def _curves(timeline, parties: list[str], duration: float) -> str:
    plots = []
    strokes = ["#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a", "#00838f", "#ad1457"]
    for key in ("arousal", "valence"):
        h = 110
        out = [f'<svg class=curve data-dimension={key} width={WIDTH} height={h + 24} viewBox="0 0 {WIDTH} {h + 24}" role=img>',
               _axis(duration, h), f"<text x=0 y=14>{key}</text><text x=0 y={h / 2 + 4}>0</text>",
               f'<line x1={LEFT} x2={WIDTH - 10} y1={h / 2} y2={h / 2} stroke="#bbb" stroke-dasharray="4 3"/>']
        for k, party in enumerate(parties):
            points = []
            for s in timeline.segments:
                value = getattr(s, key)
                if (s.party or "all") == party and value is not None:
                    y = round(h / 2 - value * (h / 2 - 6), 1)
                    points.append(f"M{_x(s.start, duration)},{y} L{_x(s.end, duration)},{y}")
            if points:  # a step per segment, broken where the party is silent
                out.append(f'<path class=series fill=none stroke="{strokes[k % len(strokes)]}" stroke-width=2 '
                           f'd="{" ".join(points)}"><title>{_e(party)}</title></path>')
        names = " ".join(f'<tspan fill="{strokes[k % len(strokes)]}">■ {_e(p)}</tspan>' for k, p in enumerate(parties))
        out.append(f"<text x=0 y={h - 4}>{names}</text></svg>")
        plots.append("".join(out))
    return "<br>".join(plots)


def _moments(moments: list[dict]) -> str:
    if not moments:
        return "<p>No escalation: every party stayed near their own baseline.</p>"
    rows = []
    for m in moments:
        if m["kind"] == "escalation":
            what = (f"arousal up to {m['peak_arousal']:+.2f}, valence down to {m['lowest_valence']:+.2f} "
                    f"(baseline {m['baseline']['arousal']:+.2f}, {m['baseline']['valence']:+.2f})")
        else:
            what = f"back near the baseline after the escalation at {_clock(m['escalation_start'])}"
        rows.append(f"<tr><td class={m['kind']}>{m['kind']}</td><td>{_e(m['party'])}</td>"
                    f"<td class=num>{_clock(m['start'])}–{_clock(m['end'])}</td><td>{what}</td></tr>")
    return "<table><tr><th>moment</th><th>party</th><th>when</th><th>what</th></tr>" + "".join(rows) + "</table>"


def _party_table(summary: dict, parties: list[str], colour: dict[str, str]) -> str:
    sections = summary.get("parties") or {"all": summary}
    rows = []
    for party in parties:
        own = sections.get(party, {})
        bar = "".join(f'<rect x={round(x * 200, 1)} width={round(v * 200, 1)} height=12 fill="{colour[label]}">'
                      f"<title>{_e(label)} {v:.0%}</title></rect>"
                      for label, v, x in _stack(own.get("shares", {})))
        rows.append(f"<tr><td>{_e(party)}</td><td class=num>{own.get('speech', 0):.1f} s</td>"
                    f"<td>{_e(own.get('dominant') or '—')}</td><td><svg width=200 height=12>{bar}</svg></td>"
                    f"<td class=num>{_signed(own.get('arousal'))}</td><td class=num>{_signed(own.get('valence'))}</td></tr>")
    return ("<table><tr><th>party</th><th>speech</th><th>mostly</th><th>share of speech time</th><th>arousal</th>"
            "<th>valence</th></tr>" + "".join(rows) + "</table>")


def _stack(shares: dict[str, float]):
    x = 0.0
    for label, v in shares.items():
        if v > 0:
            yield label, v, x
            x += v


def _signed(value) -> str:
    return "—" if value is None else f"{value:+.2f}"


def _segments(timeline) -> str:
    words = timeline.transcribed
    rows = []
    for s in timeline.segments:
        text = f"<td>{_e(s.text or '')}</td>" if words else ""
        rows.append(f"<tr><td class=num>{_clock(s.start)}–{_clock(s.end)}</td><td>{_e(s.party or '')}"
                    f"{' (overlap)' if s.overlap else ''}</td><td>{_e(s.label)}</td><td class=num>{_signed(s.arousal)}</td>"
                    f"<td class=num>{_signed(s.valence)}</td>{text}</tr>")
    head = "<th>words</th>" if words else ""
    return ("<table><tr><th>when</th><th>party</th><th>emotion</th><th>arousal</th><th>valence</th>"
            f"{head}</tr>" + "".join(rows) + "</table>")
