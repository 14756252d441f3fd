"""Real (synthetic) speech for the offline-engine tests and bench: espeak-ng
sentences joined with pauses, and word error rate.

espeak-ng's `en-us+f2` voice is the one PocketSphinx's US-English model
understands best of the espeak voices (measured: WER 0.26–0.37 on SENTENCES;
the default voice gives 0.8+), so the bounds below test our plumbing, not
espeak's accent. CI must install espeak-ng (.ci/run does).
"""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np

VOICE = "en-us+f2"
RATE = 16000
LEAD_SILENCE = 1.0
PAUSE = 0.8
SENTENCES = [
    "one two three four five six seven eight nine zero",
    "the weather is nice today",
    "please call me tomorrow morning",
    "i would like a cup of coffee",
    "we will meet at the station at noon",
    "turn left at the next corner",
    "seven three nine four one",
]


class MissingTool(RuntimeError):
    pass


def espeak(text: str, path: Path) -> None:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise MissingTool("espeak-ng is not installed: the offline-engine tests need it to make speech (apt-get install espeak-ng)")
    subprocess.run([exe, "-v", VOICE, "-w", str(path), text], check=True, capture_output=True)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), np.int16), w.getframerate()


def to_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    import soxr

    if rate == RATE:
        return samples
    out = soxr.resample(samples.astype(np.float32) / 32768.0, rate, RATE)
    return (np.clip(out, -1.0, 1.0) * 32767.0).astype(np.int16)


def sentence_wav(folder: Path, sentences: list[str] = SENTENCES) -> tuple[Path, list[tuple[float, float]]]:
    """One 16-kHz WAV: LEAD_SILENCE, then each sentence followed by PAUSE.
    Returns the path and each sentence's (start, end) in seconds."""
    parts = [np.zeros(int(LEAD_SILENCE * RATE), np.int16)]
    spans = []
    at = LEAD_SILENCE
    for i, text in enumerate(sentences):
        tmp = folder / f"s{i}.wav"
        espeak(text, tmp)
        pcm = to_16k(*read_wav(tmp))
        spans.append((at, at + len(pcm) / RATE))
        parts += [pcm, np.zeros(int(PAUSE * RATE), np.int16)]
        at += len(pcm) / RATE + PAUSE
    path = folder / "sentences.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.concatenate(parts).tobytes())
    return path, spans


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: (substitutions + deletions + insertions) / reference words."""
    ref, hyp = reference.lower().split(), hypothesis.lower().split()
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[len(hyp)] / max(1, len(ref))
