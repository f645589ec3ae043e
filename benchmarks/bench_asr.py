"""Real-time factor of the emotion timeline with and without transcription and the text branch.

Builds a 60 s recording (RAVDESS clips from ../shared/corpora with 0.8 s pauses when present,
else English sentences said by espeak-ng with 1.5 s pauses), loads every model once, then
times :func:`emovox.prediction.timeline.make_timeline` on it:

* ``timeline``: emotion per speech window only;
* ``+ asr <model>``: each window also transcribed (:meth:`Transcriber.transcribe_clips`);
* ``+ fusion``: and its words fused into the emotion (the text branch, minilm / e5);
* ``+ asr whisper-base, faster-whisper defaults``: beam 5, timestamp tokens, conditioning on
  the previous text: what the chosen options are compared with;
* ``+ asr whisper-base, batched``: faster-whisper's ``BatchedInferencePipeline`` (batch 8)
  over the same windows.

Chosen options (``Transcriber.transcribe_clips``): greedy decoding (``beam_size=1``),
``without_timestamps=True`` (one text per window; the window gives the times),
``vad_filter=False`` (the windows are speech already) and
``condition_on_previous_text=False`` (windows are independent), on int8 weights with
``cpu_threads=2``; the language is detected once for the recording, not per window. That
last choice matters most: per-window detection costs a second encoder pass per window and
made whisper-base about 1.7x slower (27 s instead of 16 s here). The decoding options save
less, since every window is padded to Whisper's 30 s input and the encoder dominates:
faster-whisper's defaults (with the language detected once too) took 7 % longer, with one
word fewer wrong on RAVDESS (2.6 % against 3.8 % WER: greedy adds a "the"). The batched
pipeline was no faster on 2 shared CPU cores (17.1 s against 15.9 s), so the windows go one
by one.

The machine may be shared: the load average (1 min) before and after each row is reported.

    python benchmarks/bench_asr.py --json runs/bench_asr.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SR = 16000
RAVDESS_TEXT = {"01": "kids are talking by the door", "02": "dogs are sitting by the door"}
SENTENCES = [
    "The weather is lovely today and I am very happy.",
    "Please close the window before you leave the house.",
    "I cannot believe you lost the keys again.",
    "The meeting starts at nine in the morning.",
    "My brother bought a new bicycle last week.",
    "We should plant more trees in the garden.",
    "This is the worst day of my whole life.",
    "Could you send me the report by Friday?",
]


def recording(seconds: float, source: str) -> tuple[np.ndarray, list[str], str]:
    """A ``seconds`` long 16 kHz signal of clips and pauses, the clips' reference texts, a description."""
    from emovox.audio.load import load_audio

    corpora = Path(os.environ.get("EMOVOX_CORPORA", ROOT.parent / "shared" / "corpora"))
    files = sorted((corpora / "ravdess").rglob("*.flac")) if source in ("auto", "ravdess") else []
    if source == "ravdess" and not files:
        sys.exit("no RAVDESS clips under ../shared/corpora/ravdess")
    if files:  # every 37th clip: many actors, emotions and both statements
        items = [(p, RAVDESS_TEXT[p.stem.split("-")[4]]) for p in files[::37]]
        pause, what = 0.8, "RAVDESS clips, 0.8 s pauses"
    else:
        if shutil.which("espeak-ng") is None:
            sys.exit("needs RAVDESS under ../shared/corpora or espeak-ng")
        tmp = Path(tempfile.mkdtemp())
        items = []
        for i, text in enumerate(SENTENCES * 4):
            path = tmp / f"s{i}.wav"
            if not path.exists():
                subprocess.run(["espeak-ng", "-s", str(150 + 10 * (i % 4)), "-w", str(path), text], check=True)
            items.append((path, text))
        pause, what = 1.5, "espeak-ng sentences, 1.5 s pauses"
    parts, texts, total = [], [], 0.0
    gap = np.zeros(int(pause * SR), np.float32)
    for path, text in items:
        clip = load_audio(path, max_duration=None)
        if total + len(clip) / SR + pause > seconds:
            break
        parts += [clip, gap]
        texts.append(text)
        total += len(clip) / SR + pause
    signal = np.concatenate(parts)
    signal = np.concatenate([signal, np.zeros(int(seconds * SR) - len(signal), np.float32)])
    return signal, texts, f"{what}, {len(texts)} utterances"


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z' ]", " ", text.lower()).split()


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level edit distance / reference words."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / max(1, len(ref))


class Defaults:
    """faster-whisper's default decoding (beam 5, timestamps, conditioning) on the same windows."""

    def __init__(self, transcriber):
        self.t = transcriber

    def transcribe_clips(self, clips, *, language=None):
        from emovox.text.transcribe import Transcript

        if language is None and not self.t.english_only:  # once, as the chosen path does
            language, _, _ = self.t.model.detect_language(np.concatenate(clips)[: 30 * SR])
        out = []
        for clip in clips:
            segments, _ = self.t.model.transcribe(clip, language="en" if self.t.english_only else language)
            out.append(Transcript(" ".join(s.text.strip() for s in segments), language or "en", 1.0, []))
        return out


class Batched:
    """faster-whisper's BatchedInferencePipeline over the windows (one language for all)."""

    def __init__(self, transcriber, batch_size: int = 8):
        from faster_whisper import BatchedInferencePipeline

        self.t, self.pipeline, self.batch_size = transcriber, BatchedInferencePipeline(transcriber.model), batch_size

    def transcribe_clips(self, clips, *, language=None):
        from emovox.text.transcribe import Transcript

        signal = np.concatenate(clips)
        edges = np.cumsum([0] + [len(c) for c in clips]) / SR
        spans = [{"start": a, "end": b} for a, b in itertools.pairwise(edges)]
        segments, info = self.pipeline.transcribe(signal, language="en" if self.t.english_only else language,
                                                  clip_timestamps=spans, batch_size=self.batch_size, beam_size=1)
        texts = [""] * len(clips)
        for s in segments:
            k = min(int(np.searchsorted(edges, (s.start + s.end) / 2)) - 1, len(clips) - 1)
            texts[max(k, 0)] = (texts[max(k, 0)] + " " + s.text.strip()).strip()
        return [Transcript(t, info.language, float(info.language_probability), []) for t in texts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--source", choices=["auto", "ravdess", "espeak"], default="auto")
    parser.add_argument("--threads", type=int, default=2, help="ASR threads (CTranslate2) and torch threads")
    parser.add_argument("--repeats", type=int, default=1, help="runs per row; the fastest is reported")
    parser.add_argument("--quick", action="store_true", help="only the four rows of the issue")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()

    os.environ.setdefault("EMOVOX_THREADS", str(args.threads))
    import emovox
    from emovox.prediction.timeline import make_timeline
    from emovox.text import load_text_model
    from emovox.text.transcribe import Transcriber

    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        pass
    signal, references, what = recording(args.seconds, args.source)
    duration = len(signal) / SR
    loads = {}
    start = time.perf_counter()
    model = emovox.load()
    loads["emotion model"] = time.perf_counter() - start
    asr = {}
    for name in ("whisper-base", "whisper-tiny.en"):
        start = time.perf_counter()
        asr[name] = Transcriber(name, threads=args.threads, compute_type="int8", beam_size=1)
        loads[name] = time.perf_counter() - start
    start = time.perf_counter()
    text_model = load_text_model()
    language = "en"
    text_model.probabilities(["warm up"], language)  # loads the sentence encoder
    loads["text model"] = time.perf_counter() - start
    make_timeline(model, signal[: 5 * SR])  # warm-up: first calls allocate and compile

    rows = [("timeline (emotion only)", {})]
    base, tiny = asr["whisper-base"], asr["whisper-tiny.en"]
    rows += [("+ asr whisper-base", {"transcriber": base}),
             ("+ asr whisper-base + fusion", {"transcriber": base, "text_model": text_model}),
             ("+ asr whisper-tiny.en", {"transcriber": tiny}),
             ("+ asr whisper-tiny.en + fusion", {"transcriber": tiny, "text_model": text_model})]
    if not args.quick:
        rows += [("+ asr whisper-base, faster-whisper defaults", {"transcriber": Defaults(base)}),
                 ("+ asr whisper-base, batched (8)", {"transcriber": Batched(base)})]
    results = []
    for name, kw in rows:
        walls = []
        load_before = os.getloadavg()[0]
        for _ in range(args.repeats):
            start = time.perf_counter()
            timeline = make_timeline(model, signal, **kw)
            walls.append(time.perf_counter() - start)
        wall = min(walls)
        row = {"config": name, "wall_s": round(wall, 2), "rtf": round(wall / duration, 3),
               "segments": len(timeline.segments), "load_before": round(load_before, 2),
               "load_after": round(os.getloadavg()[0], 2)}
        if "transcriber" in kw:
            said = " ".join(s.text or "" for s in timeline.segments)
            row["wer"] = round(wer(" ".join(references), said), 3)
            row["languages"] = sorted({s.language for s in timeline.segments if s.language})
            row["example"] = next((s.text for s in timeline.segments if s.text), "")
        results.append(row)
        print(f"{name}: {wall:.2f} s, RTF {wall / duration:.3f}, load {load_before:.2f}", file=sys.stderr)

    print(f"\n{duration:.0f} s recording ({what}); {os.cpu_count()} CPUs, ASR int8 on {args.threads} threads; "
          f"best of {args.repeats}\n")
    print("| configuration | wall (s) | RTF | WER | segments | load avg before/after |")
    print("|---|---|---|---|---|---|")
    for r in results:
        error = f"{r['wer']:.1%}" if "wer" in r else "-"
        print(f"| {r['config']} | {r['wall_s']:.2f} | {r['rtf']:.3f} | {error} | {r['segments']} | "
              f"{r['load_before']:.2f} / {r['load_after']:.2f} |")
    print("\nmodel load (s): " + ", ".join(f"{k} {v:.1f}" for k, v in loads.items()))
    if args.json:
        out = {"recording": what, "duration_s": duration, "cpus": os.cpu_count(), "threads": args.threads,
               "repeats": args.repeats, "platform": platform.platform(), "python": sys.version.split()[0],
               "load_s": {k: round(v, 2) for k, v in loads.items()}, "loadavg_end": os.getloadavg(),
               "rows": results}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
