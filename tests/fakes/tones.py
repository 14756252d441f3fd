"""A tiny "tone language" that makes fake providers honest.

Each word is a pure tone at its own frequency; words are separated by short
silences and utterances by longer ones. `ToneRecognizer` turns the PCM a fake
server actually received back into words with times, so a test can tell lost,
doubled or reordered audio, and check that caption times match the source.
It survives resampling and a trip through a real sound server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

VOCAB = (
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
    "india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa",
)
BASE_HZ = 400.0
STEP_HZ = 200.0
WORD_S = 0.25
WORD_GAP_S = 0.10
UTTERANCE_GAP_S = 0.8
FRAME_S = 0.02
END_OF_UTTERANCE_S = 0.4


def freq(word: str) -> float:
    return BASE_HZ + STEP_HZ * VOCAB.index(word)


@dataclass
class Spoken:
    """Where each word of a synthesized signal really is."""

    words: list[tuple[str, float, float]] = field(default_factory=list)
    utterances: list[list[tuple[str, float, float]]] = field(default_factory=list)


def synthesize(
    utterances: list[list[str]],
    rate: int = 16000,
    lead_s: float = 0.5,
    tail_s: float = 0.6,
    amplitude: float = 0.5,
    channels: int = 1,
) -> tuple[np.ndarray, Spoken]:
    """float32 audio (frames, channels) speaking `utterances`, and the truth."""
    pieces: list[np.ndarray] = [np.zeros(int(lead_s * rate), np.float32)]
    t = lead_s
    spoken = Spoken()
    n_word = int(WORD_S * rate)
    ramp = np.minimum(1.0, np.minimum(np.arange(n_word), np.arange(n_word)[::-1]) / (0.005 * rate))
    for u, words in enumerate(utterances):
        utt = []
        for i, word in enumerate(words):
            tt = np.arange(n_word) / rate
            pieces.append((amplitude * ramp * np.sin(2 * np.pi * freq(word) * tt)).astype(np.float32))
            utt.append((word, t, t + WORD_S))
            t += WORD_S
            if i < len(words) - 1:
                pieces.append(np.zeros(int(WORD_GAP_S * rate), np.float32))
                t += int(WORD_GAP_S * rate) / rate
        spoken.utterances.append(utt)
        spoken.words.extend(utt)
        if u < len(utterances) - 1:
            pieces.append(np.zeros(int(UTTERANCE_GAP_S * rate), np.float32))
            t += int(UTTERANCE_GAP_S * rate) / rate
    pieces.append(np.zeros(int(tail_s * rate), np.float32))
    mono = np.concatenate(pieces)
    return np.repeat(mono[:, None], channels, axis=1), spoken


def write_wav(path: Path, audio: np.ndarray, rate: int, subtype: str = "PCM_16") -> Path:
    import soundfile

    soundfile.write(str(path), audio, rate, subtype=subtype)
    return path


@dataclass
class RecognizedWord:
    text: str
    start: float
    end: float


class ToneRecognizer:
    """Streaming recognizer of the tone language over Int16LE mono PCM.

    `feed()` returns events as tuples: ("partial", words) when a word ends
    inside an open utterance and ("final", words) when the utterance ends.
    """

    def __init__(self, rate: int = 16000, threshold_dbfs: float = -30.0) -> None:
        self.rate = rate
        self.frame = int(FRAME_S * rate)
        self.threshold = 10 ** (threshold_dbfs / 20)
        self._pending = np.zeros(0, np.float32)
        self._frames_done = 0
        self._utterance: list[RecognizedWord] = []
        self._word_start: int | None = None
        self._word_freqs: list[float] = []
        self._silent_frames = 0
        self.total_samples = 0

    def feed(self, pcm: bytes) -> list[tuple[str, list[RecognizedWord]]]:
        samples = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0
        self.total_samples += len(samples)
        data = np.concatenate([self._pending, samples])
        n = len(data) // self.frame
        self._pending = data[n * self.frame :]
        if n == 0:
            return []
        frames = data[: n * self.frame].reshape(n, self.frame)
        rms = np.sqrt(np.mean(frames**2, axis=1))
        window = np.hanning(self.frame)
        spectrum = np.abs(np.fft.rfft(frames * window, axis=1))
        peak_hz = np.argmax(spectrum, axis=1) * self.rate / self.frame
        out: list[tuple[str, list[RecognizedWord]]] = []
        for i in range(n):
            index = self._frames_done + i
            if rms[i] >= self.threshold:
                if self._word_start is None:
                    self._word_start = index
                    self._word_freqs = []
                self._word_freqs.append(float(peak_hz[i]))
                self._silent_frames = 0
            else:
                if self._word_start is not None:
                    self._close_word(index)
                    out.append(("partial", list(self._utterance)))
                self._silent_frames += 1
                if self._utterance and self._silent_frames * FRAME_S >= END_OF_UTTERANCE_S:
                    out.append(("final", self._utterance))
                    self._utterance = []
        self._frames_done += n
        return out

    def _close_word(self, end_frame: int) -> None:
        assert self._word_start is not None
        f = float(np.median(self._word_freqs))
        k = int(round((f - BASE_HZ) / STEP_HZ))
        text = VOCAB[k] if 0 <= k < len(VOCAB) and abs(f - freq(VOCAB[k])) < STEP_HZ / 2 else "unk"
        if end_frame - self._word_start >= 3:  # ignore clicks shorter than 60 ms
            self._utterance.append(RecognizedWord(text, self._word_start * FRAME_S, end_frame * FRAME_S))
        self._word_start = None

    def flush(self) -> list[tuple[str, list[RecognizedWord]]]:
        """End of audio: close the open word and utterance."""
        if self._word_start is not None:
            self._close_word(self._frames_done)
        out = []
        if self._utterance:
            out.append(("final", self._utterance))
            self._utterance = []
        return out

    @property
    def seconds(self) -> float:
        return self.total_samples / self.rate
