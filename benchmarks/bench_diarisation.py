"""Who spoke when, and how each party felt: diarisation error, party accuracy, per-party emotion, cost.

Synthetic conversations are built from real corpus speakers (RAVDESS, nEMO, TurEV-DB under
``../shared/corpora``): 2 or 3 parties, each a different speaker of one corpus; turns of 1–6 s
(a speaker's clips, trimmed of their silence, joined and cut); pauses of 0.2–1.2 s, and 15 % of
turns start 0.5 s before the previous one ends (overlap); each party at its own level (0 to
-9 dB); half of the conversations band-limited like a telephone line (300–3400 Hz, through 8 kHz).
Mono: the parties summed. Stereo: one party per channel, each channel with the other's speech
leaking in at -30 dB (crosstalk).

* DER: (missed speech + false alarm + speaker confusion) / reference speech, counted on 10 ms
  frames, after the best one-to-one mapping of found to true speakers (scipy's
  ``linear_sum_assignment`` on their shared time). With a 0.25 s collar around every reference
  turn boundary (not scored) and without. Reference turns span a turn's speech, small pauses
  inside a turn included.
* Party accuracy: the share of single-speaker reference speech (outside the collars) given to
  the right party (missed speech counts as wrong).
* Speakers found: the share of mono conversations where ``speakers:auto`` found the true count.
* Per-party emotion: stereo calls whose first party speaks only angry clips and the second only
  neutral ones (RAVDESS, nEMO); the per-party dominant emotion of ``--parties channels`` against
  single-clip predictions of the same clips (share right, and each party's majority).
* Cost: the real-time factor of the conversation timeline with ``speakers:auto`` (diarisation
  plus the emotion model) on a 10-minute two-party mono call, model load excluded.

Usage:
    PYTHONPATH=src python benchmarks/bench_diarisation.py [--conversations 20] [--out runs/bench_diarisation.json]

Results: ``PYTHONPATH=src python benchmarks/bench_diarisation.py --conversations 20 --emotion-calls 10``
(seed 0; default model emovox-default-v4; 2 CPU cores shared with another benchmark and test runs,
load average 5-6, so times are pessimistic). DER and party accuracy over 20 conversations per
condition (13-16 min of reference speech each); "known count" is ``speakers:N`` with the true N.
The RTF column is diarisation alone per conversation (mono: the auto and known-count runs together;
stereo: the channels' VAD and crosstalk check)::

    condition          scoring           DER   miss     FA   conf party acc count ok    RTF
    mono 2-party       collar 0.25 s    9.8%   3.3%   0.0%   6.4%     90.2%      75%  0.180
    mono 2-party       no collar       15.4%   6.2%   2.6%   6.7%     88.7%      75%  0.180
    mono 2-party       known count      6.4%   3.3%   0.0%   3.0%     93.6%      75%  0.180
    stereo 2-party     collar 0.25 s    3.7%   3.7%   0.0%   0.0%     96.3%        -  0.006
    stereo 2-party     no collar        6.9%   4.6%   2.2%   0.0%     95.5%        -  0.006
    mono 3-party       collar 0.25 s   20.9%   2.9%   0.0%  18.1%     79.1%      30%  0.154
    mono 3-party       no collar       26.2%   5.3%   2.6%  18.3%     77.7%      30%  0.154
    mono 3-party       known count     10.5%   2.9%   0.0%   7.6%     89.5%      30%  0.154

    per-party emotion (10 stereo calls, angry vs neutral): dominant right 95%; single clips right 92%,
    each party's majority of clips right 95%
    cost: 596 s two-party mono call, timeline --parties speakers:auto RTF 0.036 (diarisation alone 0.038,
    timed separately); found 2 parties

The bar (DER < 15 % on mono two-party calls) is met with the 0.25 s collar (9.8 %), not without
one (15.4 %). Missed speech is mostly the second voice of the 0.5 s overlaps (one voice per mono
window) and turn edges; confusion comes mostly from conversations whose speaker count
``speakers:auto`` got wrong (75 % right for two parties, 30 % for three: same-corpus voices are
close in GE2E space); with the count given, DER falls to 6.4 % and 10.5 %. Stereo calls have no
confusion; crosstalk at -30 dB costs nothing after the 20 dB dominance check (it was 29 % false
alarm without it). Per-party emotion is as good as single-clip predictions make it (95 % vs 95 %
for each party's majority of its clips).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.signal import butter, sosfilt

from emovox.audio.load import SAMPLING_RATE, load_audio, resample
from emovox.audio.vad import speech_segments
from emovox.conversation.diarise import diarise
from emovox.conversation.parties import own_speech
from emovox.corpora import scan_corpus

SR = SAMPLING_RATE
FRAME = 0.01
CORPORA = ("ravdess", "nemo", "turev")
ROOT = Path(__file__).resolve().parents[2] / "shared" / "corpora"
CORPUS_DIRS = {"ravdess": "ravdess", "nemo": "nemo", "turev": "turev"}


# Building conversations ------------------------------------------------------------------

class Clips:
    """Corpus clips by (corpus, speaker), loaded once and trimmed of leading/trailing silence."""

    def __init__(self, root: Path):
        self.by_speaker: dict[tuple[str, str], list] = {}
        for corpus in CORPORA:
            if not (root / CORPUS_DIRS[corpus]).is_dir():
                continue
            for u in scan_corpus(corpus, root / CORPUS_DIRS[corpus]):
                self.by_speaker.setdefault((corpus, u.speaker), []).append(u)
        self.cache: dict[str, np.ndarray] = {}

    def speakers(self, corpus: str) -> list[str]:
        return sorted(s for c, s in self.by_speaker if c == corpus)

    def audio(self, utterance) -> np.ndarray:
        if utterance.path not in self.cache:
            self.cache[utterance.path] = trim(load_audio(utterance.path))
        return self.cache[utterance.path]


def trim(x: np.ndarray, floor_db: float = -35.0) -> np.ndarray:
    """``x`` without its leading and trailing silence (20 ms frames under peak + ``floor_db``)."""
    n = len(x) // 320
    if n < 2:
        return x
    rms = np.sqrt(np.mean(x[: n * 320].reshape(n, 320) ** 2, axis=1))
    loud = np.flatnonzero(rms > rms.max() * 10 ** (floor_db / 20))
    return x[loud[0] * 320 : (loud[-1] + 1) * 320]


def turn_audio(rng, clips: Clips, pool: list, length: float) -> tuple[np.ndarray, list]:
    """``length`` seconds of one speaker: random clips of ``pool`` joined and cut; the clips used."""
    parts, used, total = [], [], 0
    while total < length * SR:
        u = pool[rng.integers(len(pool))]
        parts.append(clips.audio(u))
        used.append(u)
        total += len(parts[-1])
    x = np.concatenate(parts)[: int(length * SR)].copy()
    fade = min(160, len(x) // 2)
    x[:fade] *= np.linspace(0, 1, fade)
    x[-fade:] *= np.linspace(1, 0, fade)
    return x, used


def telephone(x: np.ndarray) -> np.ndarray:
    """300–3400 Hz band, through 8 kHz and back."""
    sos = butter(4, [300, 3400], btype="bandpass", fs=SR, output="sos")
    return resample(resample(sosfilt(sos, x).astype(np.float32), SR, 8000), 8000, SR)


def make_conversation(rng, clips: Clips, parties: int, *, pools: list[list] | None = None, turns: int = 14,
                      duration: float | None = None, phone: bool = False) -> tuple[np.ndarray, list, list]:
    """A conversation: ``(samples, parties)`` float32, the reference turns ``(start, end, party)`` and
    each party's clips.

    ``pools``: each party's clips (default: ``parties`` different speakers of one random corpus,
    all their clips). ``duration``: keep adding turns until this long (instead of ``turns``).
    """
    if pools is None:
        usable = [c for c in CORPORA if len(clips.speakers(c)) >= parties]
        corpus = usable[rng.integers(len(usable))]
        chosen = rng.choice(clips.speakers(corpus), parties, replace=False)
        pools = [clips.by_speaker[(corpus, s)] for s in chosen]
    gains = 10 ** (-rng.uniform(0, 9, parties) / 20)
    pieces, reference, used, t, who = [], [], [[] for _ in range(parties)], 0.5, 0
    while (len(reference) < turns) if duration is None else (t < duration - 7):
        x, u = turn_audio(rng, clips, pools[who], rng.uniform(1, 6))
        used[who] += u
        pieces.append((int(t * SR), who, x * gains[who]))
        reference.append((round(t, 3), round(t + len(x) / SR, 3), who))
        t += len(x) / SR + (-0.5 if rng.random() < 0.15 and len(x) > SR else rng.uniform(0.2, 1.2))
        who = (who + 1) % parties if parties <= 2 else int(rng.choice([p for p in range(parties) if p != who]))
    out = np.zeros((int((t + 1.0) * SR), parties), np.float32)
    for start, p, x in pieces:
        out[start : start + len(x), p] += x
    if phone:
        out = np.stack([telephone(out[:, p]) for p in range(parties)], axis=1)[: len(out)]
    return out, reference, used


# Scoring -------------------------------------------------------------------------------

def frames_of(turns, n: int, speakers: int) -> np.ndarray:
    """A (frames, speakers) bool matrix from ``(start, end, speaker)`` turns."""
    m = np.zeros((n, speakers), bool)
    for a, b, s in turns:
        m[int(round(a / FRAME)) : int(round(b / FRAME)), s] = True
    return m


def score(reference, hypothesis, duration: float, collar: float = 0.25) -> dict:
    """DER parts (seconds) and party accuracy of ``hypothesis`` against ``reference`` turns."""
    n = int(np.ceil(duration / FRAME)) + 1
    ref = frames_of(reference, n, max(s for *_, s in reference) + 1)
    hyp_ids = sorted({s for *_, s in hypothesis})
    hyp = frames_of([(a, b, hyp_ids.index(s)) for a, b, s in hypothesis], n, max(len(hyp_ids), 1))
    shared = ref.T.astype(float) @ hyp.astype(float)
    rows, cols = linear_sum_assignment(-shared)
    mapped = np.zeros_like(ref)
    for r, c in zip(rows, cols, strict=True):
        mapped[:, r] = hyp[:, c]
    scored = np.ones(n, bool)
    if collar:
        for a, b, _ in reference:
            for edge in (a, b):
                scored[max(0, int(round((edge - collar) / FRAME))) : int(round((edge + collar) / FRAME))] = False
    n_ref, n_hyp = ref.sum(1), hyp.sum(1)
    correct = (ref & mapped).sum(1)
    miss = np.maximum(n_ref - n_hyp, 0)
    false_alarm = np.maximum(n_hyp - n_ref, 0)
    confusion = np.minimum(n_ref, n_hyp) - correct
    single = scored & (n_ref == 1)
    return {"reference": float(n_ref[scored].sum() * FRAME), "miss": float(miss[scored].sum() * FRAME),
            "false_alarm": float(false_alarm[scored].sum() * FRAME), "confusion": float(confusion[scored].sum() * FRAME),
            "single": float(single.sum() * FRAME), "single_right": float(((ref & mapped).any(1) & single).sum() * FRAME)}


def total(scores: list[dict]) -> dict:
    s = {k: sum(x[k] for x in scores) for k in scores[0]}
    return {"der": (s["miss"] + s["false_alarm"] + s["confusion"]) / s["reference"], "miss": s["miss"] / s["reference"],
            "false_alarm": s["false_alarm"] / s["reference"], "confusion": s["confusion"] / s["reference"],
            "party_accuracy": s["single_right"] / s["single"], "hours": s["reference"] / 3600}


def channel_turns(audio: np.ndarray) -> list:
    """``--parties channels``' speech: each channel's VAD segments, the channel as the party."""
    channels = [np.ascontiguousarray(audio[:, p]) for p in range(audio.shape[1])]
    return [(a, b, p) for p, c in enumerate(channels) for a, b in own_speech(channels, p, speech_segments(c))]


# The conditions ----------------------------------------------------------------------------

def run_diarisation(rng, clips: Clips, n: int) -> dict:
    results = {}
    for parties in (2, 3):
        for layout in ("mono", "stereo") if parties == 2 else ("mono",):
            by = {"collar 0.25 s": [], "no collar": [], "known count": []}
            found_count, seconds, elapsed = 0, 0.0, 0.0
            for i in range(n):
                audio, reference, _ = make_conversation(rng, clips, parties, phone=i % 2 == 1)
                duration = len(audio) / SR
                seconds += duration
                started = time.perf_counter()
                if layout == "mono":
                    mix = audio.sum(axis=1)
                    hypothesis = [(t.start, t.end, t.speaker) for t in diarise(mix)]
                    found_count += len({s for *_, s in hypothesis}) == parties
                    known = [(t.start, t.end, t.speaker) for t in diarise(mix, speakers=parties)]
                    by["known count"].append(score(reference, known, duration))
                else:
                    bleed = audio + 0.0316 * audio[:, ::-1]
                    hypothesis = channel_turns(bleed)
                elapsed += time.perf_counter() - started
                by["collar 0.25 s"].append(score(reference, hypothesis, duration))
                by["no collar"].append(score(reference, hypothesis, duration, collar=0.0))
            name = f"{layout} {parties}-party"
            results[name] = {k: total(v) for k, v in by.items() if v}
            if layout == "mono":
                results[name]["speakers_found"] = found_count / n
            results[name]["rtf"] = elapsed / seconds
            print(f"  {name}: DER {results[name]['collar 0.25 s']['der']:.1%}", file=sys.stderr, flush=True)
    return results


def run_emotion(rng, clips: Clips, model, n: int) -> dict:
    from emovox.conversation.parties import conversation_timeline

    pools = {}
    for (corpus, speaker), utts in clips.by_speaker.items():
        for label in ("angry", "neutral"):
            mine = [u for u in utts if u.label == label]
            if len(mine) >= 2:
                pools.setdefault((corpus, speaker), {})[label] = mine
    speakers = sorted(k for k, v in pools.items() if len(v) == 2)
    right = clip_right = clip_total = majority_right = 0
    for i in range(n):
        a, b = rng.choice(len(speakers), 2, replace=False)
        while speakers[a][0] != speakers[b][0]:
            b = rng.integers(len(speakers))
        audio, _, used = make_conversation(rng, clips, 2, pools=[pools[speakers[a]]["angry"], pools[speakers[b]]["neutral"]],
                                           turns=10, phone=i % 2 == 1)
        timeline = conversation_timeline(model, [np.ascontiguousarray(audio[:, 0]), np.ascontiguousarray(audio[:, 1])],
                                         parties="channels", names="angry,neutral")
        for party in ("angry", "neutral"):
            right += timeline.summary()["parties"][party]["dominant"] == party
        for party, clips_used in zip(("angry", "neutral"), used, strict=True):
            unique = list({u.path: u for u in clips_used}.values())
            labels = [p.label for p in model.predict_signals([clips.audio(u) for u in unique])]
            clip_right += sum(l == party for l in labels)
            clip_total += len(labels)
            majority_right += max(set(labels), key=labels.count) == party
    return {"calls": n, "per_party_dominant_right": right / (2 * n), "single_clip_right": clip_right / clip_total,
            "single_clip_majority_right": majority_right / (2 * n)}


def run_cost(rng, clips: Clips, model) -> dict:
    from emovox.conversation.parties import conversation_timeline

    audio, _, _ = make_conversation(rng, clips, 2, duration=600.0)
    mix = audio.sum(axis=1)
    started = time.perf_counter()
    turns = diarise(mix)
    diarised = time.perf_counter() - started
    started = time.perf_counter()
    timeline = conversation_timeline(model, [mix], parties="speakers:auto")
    whole = time.perf_counter() - started
    duration = len(mix) / SR
    return {"seconds": round(duration, 1), "rtf": whole / duration, "diarisation_rtf": diarised / duration,
            "turns": len(turns), "parties": timeline.parties}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=20, help="conversations per diarisation condition")
    parser.add_argument("--emotion-calls", type=int, default=10, help="stereo angry/neutral calls")
    parser.add_argument("--corpora", type=Path, default=ROOT)
    parser.add_argument("--model", default=None, help="emotion model (default: emovox's default)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["diarisation", "emotion", "cost"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/bench_diarisation.json"))
    args = parser.parse_args(argv)
    import emovox

    clips = Clips(args.corpora)
    if not clips.by_speaker:
        print(f"no corpora under {args.corpora}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    report: dict = {"conversations": args.conversations, "seed": args.seed}
    model = emovox.load(args.model) if {"emotion", "cost"} - set(args.skip) else None
    if "diarisation" not in args.skip:
        report["diarisation"] = run_diarisation(rng, clips, args.conversations)
    if "emotion" not in args.skip:
        report["emotion"] = run_emotion(rng, clips, model, args.emotion_calls)
    if "cost" not in args.skip:
        report["cost"] = run_cost(rng, clips, model)
    if model is not None:
        report["model"] = getattr(model, "model_id", "")
    print_report(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


def print_report(report: dict) -> None:
    if "diarisation" in report:
        print(f"{'condition':<18} {'scoring':<14} {'DER':>6} {'miss':>6} {'FA':>6} {'conf':>6} {'party acc':>9} "
              f"{'count ok':>8} {'RTF':>6}")
        for name, result in report["diarisation"].items():
            for scoring in ("collar 0.25 s", "no collar", "known count"):
                if scoring in result:
                    r = result[scoring]
                    count = f"{result['speakers_found']:.0%}" if "speakers_found" in result else "-"
                    print(f"{name:<18} {scoring:<14} {r['der']:>6.1%} {r['miss']:>6.1%} {r['false_alarm']:>6.1%} "
                          f"{r['confusion']:>6.1%} {r['party_accuracy']:>9.1%} {count:>8} {result['rtf']:>6.3f}")
    if "emotion" in report:
        e = report["emotion"]
        print(f"per-party emotion ({e['calls']} stereo calls, angry vs neutral): "
              f"dominant right {e['per_party_dominant_right']:.0%}; "
              f"single clips right {e['single_clip_right']:.0%}, each party's majority of clips right "
              f"{e['single_clip_majority_right']:.0%}")
    if "cost" in report:
        c = report["cost"]
        print(f"cost: {c['seconds']:.0f} s two-party mono call, timeline --parties speakers:auto RTF {c['rtf']:.3f} "
              f"(diarisation alone {c['diarisation_rtf']:.3f}); found {len(c['parties'])} parties")


if __name__ == "__main__":
    raise SystemExit(main())
