"""Cut live audio into pages at pauses, for providers that transcribe whole
clips instead of a stream (UG Labs takes at most 30 s per `transcribe`).

Why pauses: a page boundary inside a word loses or garbles that word on both
sides. An energy VAD over 20 ms frames (NumPy, vectorized; no per-sample
Python loops) finds the pauses; a page is cut in the middle of the best pause
once it is long enough, and at the hard limit only when it must be — then at
any pause that exists, or, in continuous sound, at the quietest frame.

Pure: no I/O, no clocks. Sample positions are counts of Int16 samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_FLOOR_DB = -120.0


@dataclass(frozen=True)
class PageRules:
    """How pages are cut. Seconds unless named otherwise."""

    rate: int
    target_s: float = 26.0  # from here on, cut at the best pause found so far
    max_s: float = 30.0  # never longer (the provider's limit)
    min_page_s: float = 10.0  # pauses earlier than this are not preferred
    min_pause_s: float = 0.3  # a silence at least this long counts as a pause
    silence_dbfs: float = -50.0  # nothing quieter than this is ever speech
    frame_s: float = 0.02
    pad_s: float = 0.05  # kept around the speech when a page's bounds are trimmed
    margin_db: float = 10.0  # speech is this much above the noise floor...
    headroom_db: float = 20.0  # ...but never needs to be closer than this to the peak

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError("rate must be positive")
        if not 0 < self.min_page_s <= self.target_s <= self.max_s:
            raise ValueError("need 0 < min_page_s <= target_s <= max_s")
        if self.min_pause_s <= 0 or self.frame_s <= 0:
            raise ValueError("min_pause_s and frame_s must be positive")

    @property
    def frame(self) -> int:
        return max(1, int(round(self.frame_s * self.rate)))

    @property
    def max_samples(self) -> int:
        return int(self.max_s * self.rate)

    @property
    def target_samples(self) -> int:
        return int(self.target_s * self.rate)


def frame_levels(samples: np.ndarray, frame: int, tail: bool = True) -> np.ndarray:
    """Mean power in dBFS of each whole frame (and of the trailing part frame
    when `tail`)."""
    x = np.asarray(samples, dtype=np.float32) / 32768.0
    whole = len(x) // frame
    power = (x[: whole * frame].reshape(whole, frame) ** 2).mean(axis=1) if whole else np.zeros(0, np.float32)
    if tail and len(x) > whole * frame:
        power = np.append(power, np.mean(x[whole * frame :] ** 2))
    return 10.0 * np.log10(power.astype(np.float64) + 1e-12)


def speech_mask(levels: np.ndarray, rules: PageRules) -> np.ndarray:
    """True for speech frames. The threshold adapts to the noise floor (10th
    percentile) but stays at or above `silence_dbfs` and never so close to the
    peak that continuous sound would count as silence."""
    if len(levels) == 0:
        return np.zeros(0, bool)
    peak = float(levels.max())
    noise = float(np.percentile(levels, 10))
    threshold = max(rules.silence_dbfs, min(noise + rules.margin_db, peak - rules.headroom_db))
    return levels >= threshold


def silent_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) in frames of every run of non-speech frames."""
    silent = np.concatenate(([0], (~mask).astype(np.int8), [0]))
    edges = np.diff(silent)
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _best(starts: np.ndarray, ends: np.ndarray, ok: np.ndarray) -> int | None:
    """Cut frame in the middle of the longest eligible run. Runs nearly as long
    (within a quarter, or two frames) count as ties and the latest wins, so
    frame rounding does not make pages needlessly short."""
    if not ok.any():
        return None
    s, e = starts[ok], ends[ok]
    lengths = e - s
    longest = int(lengths.max())
    near = lengths >= min(longest - 2, longest * 0.75)
    i = int(np.flatnonzero(near)[-1])  # runs are in time order
    return int((s[i] + e[i]) // 2)


def find_cut(samples: np.ndarray, rules: PageRules, final: bool = False) -> int | None:
    """How many samples from the start of `samples` make the next page now, or
    None to wait for more audio. `final`: the stream has ended, cut what is left."""
    n = len(samples)
    limit = rules.max_samples
    if n == 0:
        return None
    if final and n <= limit:
        return n
    if not final and n < rules.target_samples:
        return None
    hard = n >= limit
    frame = rules.frame
    whole = min(n, limit) // frame
    if whole < 2:
        return min(n, limit)
    levels = frame_levels(samples[: whole * frame], frame, tail=False)
    starts, ends = silent_runs(speech_mask(levels, rules))
    cuts = (starts + ends) // 2
    inside = cuts > 0
    min_frame = int(math.ceil(rules.min_page_s * rules.rate / frame))
    pause_frames = max(1, int(math.ceil(rules.min_pause_s * rules.rate / frame - 1e-9)))
    preferred = inside & (ends - starts >= pause_frames) & (cuts >= min_frame)
    cut = _best(starts, ends, preferred)
    if cut is None and hard:
        # Any pause beats a cut inside a word: after the minimum page first.
        cut = _best(starts, ends, inside & (cuts >= min_frame))
        if cut is None:
            cut = _best(starts, ends, inside)
        if cut is None:
            # Continuous sound: cut in the quietest frame after the minimum page.
            lo = min(min_frame, whole - 1)
            tail = levels[lo:]
            quietest = lo + len(tail) - 1 - int(np.argmin(tail[::-1]))
            return max(1, min(limit, quietest * frame + frame // 2))
    return None if cut is None else cut * frame


def speech_bounds(samples: np.ndarray, rules: PageRules) -> tuple[int, int] | None:
    """(start, end) sample bounds of the speech in `samples`, padded by
    `pad_s`; None when it holds no speech at all."""
    frame = rules.frame
    levels = frame_levels(samples, frame)
    if len(levels) == 0 or float(levels.max()) < rules.silence_dbfs:
        return None
    mask = speech_mask(levels, rules)
    first = int(np.argmax(mask))
    last = len(mask) - 1 - int(np.argmax(mask[::-1]))
    pad = int(round(rules.pad_s * rules.rate))
    n = len(samples)
    return max(0, first * frame - pad), min(n, (last + 1) * frame + pad)


@dataclass(frozen=True)
class Page:
    """One page: where it starts (samples since the pager's first sample), its
    PCM, and its speech bounds on the same timeline (None: pure silence)."""

    start: int
    pcm: bytes
    speech: tuple[int, int] | None

    @property
    def samples(self) -> int:
        return len(self.pcm) // 2

    @property
    def end(self) -> int:
        return self.start + self.samples


class Pager:
    """Buffers Int16LE mono PCM and hands out pages cut by `find_cut`. Pages
    concatenate back to exactly the audio pushed."""

    def __init__(self, rules: PageRules) -> None:
        self.rules = rules
        self._buf = bytearray()
        self._start = 0  # position of the first buffered sample

    def push(self, pcm: bytes) -> None:
        self._buf += pcm[: len(pcm) // 2 * 2]

    @property
    def buffered(self) -> int:
        """Samples waiting to be paged."""
        return len(self._buf) // 2

    @property
    def position(self) -> int:
        """Position of the next sample to be paged."""
        return self._start

    def next_page(self, final: bool = False) -> Page | None:
        """The next page if one should be cut now (`final`: everything left,
        in pages of at most `max_s`)."""
        n = self.buffered
        if n == 0 or (not final and n < self.rules.target_samples):
            return None
        cut = find_cut(np.frombuffer(bytes(self._buf), dtype="<i2"), self.rules, final)
        if cut is None:
            return None
        pcm = bytes(self._buf[: cut * 2])
        del self._buf[: cut * 2]
        start = self._start
        self._start += cut
        bounds = speech_bounds(np.frombuffer(pcm, dtype="<i2"), self.rules)
        speech = None if bounds is None else (start + bounds[0], start + bounds[1])
        return Page(start, pcm, speech)
