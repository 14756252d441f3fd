"""Exporting an 8-hour transcript to SRT, WebVTT and JSON.

The transcript is synthetic but shaped like speech: ~2.6 words/s (≈ 75,000
words in 8 h), utterances of 3-25 words with word times and confidences,
punctuation now and then, a speaker change every few segments. Each format
is timed end to end in CPU time (cue building included, file writing
excluded), best of N.
"""

from __future__ import annotations

import random
import time
from typing import Any

from bench.common import Result

WORDS = (
    "the quick brown fox jumps over a lazy dog while our team reviews quarterly numbers and "
    "everyone agrees that captions should be readable at a glance even in long meetings"
).split()


def transcript(hours: float = 8.0, seed: int = 3) -> Any:
    from captioner.stt.events import Word
    from captioner.transcript.model import Segment, Transcript

    rng = random.Random(seed)
    segments = []
    t = 0.5
    end = hours * 3600
    n = 0
    while t < end:
        count = rng.randint(3, 25)
        words = []
        for k in range(count):
            w = rng.choice(WORDS)
            if k == count - 1:
                w += "."
            elif rng.random() < 0.08:
                w += ","
            dur = 0.15 + rng.random() * 0.3
            words.append(Word(w, round(t, 3), round(t + dur, 3), round(rng.random(), 3), str(n // 4 % 2)))
            t += dur + 0.08
        segments.append(Segment(" ".join(w.text for w in words), words[0].start, words[-1].end, tuple(words), words[0].speaker))
        t += 0.6
        n += 1
    return Transcript(segments=segments, provider="audiopod", source="bench", started_at="2025-01-01T00:00:00+00:00")


def run(quick: bool) -> list[Result]:
    from captioner.transcript.export import to_json, to_srt, to_vtt

    tr = transcript()
    words = sum(len(s.words) for s in tr.segments)
    repeats = 2 if quick else 5
    out = []
    for fmt, fn in (("srt", to_srt), ("vtt", to_vtt), ("json", to_json)):
        best = float("inf")
        for _ in range(repeats):
            t0 = time.process_time()  # CPU time: steadier than wall on a shared machine
            text = fn(tr)
            best = min(best, time.process_time() - t0)
        out.append(
            Result(f"export 8 h → {fmt.upper()}", f"{best:.3f} s", "<= 0.1 s", best <= 0.1,
                   f"{len(tr.segments):,} segments, {words:,} words → {len(text) / 1e6:.1f} MB (best of {repeats})")
        )
    return out
