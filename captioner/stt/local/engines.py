"""Offline recognizers behind one small, blocking interface.

An engine takes Int16LE mono PCM at `SAMPLE_RATE` and returns results whose
times are *sample positions* counted from the first sample it was given; the
session turns them into seconds on its own timeline. Engines block and hold
the GIL for long stretches (pocketsphinx's `end_utt` holds it for ~1 s on a
25-s utterance, measured), so they run in a worker *process*, never on the
event loop and not in a thread of the GUI process.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

SAMPLE_RATE = 16000


@dataclass(frozen=True, slots=True)
class RawWord:
    text: str
    start: int  # sample position
    end: int
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class RawResult:
    """A partial (`final=False`) or final of one utterance, in sample positions."""

    final: bool
    text: str
    start: int
    end: int
    words: tuple[RawWord, ...] = ()


class Engine(Protocol):
    name: str

    def accept(self, pcm: bytes) -> list[RawResult]:
        """Take more audio; return what became known."""

    def finish(self) -> list[RawResult]:
        """End of audio: the finals of whatever is still open."""


def _clean_word(word: str) -> str | None:
    """Drop fillers (<s>, <sil>, [NOISE], ++GARBAGE++) and pronunciation
    variants ("read(2)" → "read")."""
    if not word or word[0] in "<[" or word.startswith("++"):
        return None
    if word.endswith(")") and "(" in word:
        word = word[: word.rindex("(")]
    return word or None


class PocketSphinxEngine:
    """CMU PocketSphinx with the US-English model its wheel ships (no download).

    pocketsphinx's own `Endpointer` (WebRTC-style VAD with a decision window)
    cuts utterances at pauses; each utterance is decoded with the streaming
    `Decoder` (start_utt/process_raw/hyp/end_utt) and its word times come
    from the segmentation (`seg()`, 100 frames per second)."""

    name = "pocketsphinx"
    FRAME_RATE = 100  # pocketsphinx's default -frate

    def __init__(
        self,
        partial_interval: float = 0.3,
        max_utterance: float = 15.0,
        endpoint_window: float = 0.3,
        endpoint_ratio: float = 0.9,
        vad_mode: int = 1,
        two_pass: bool = True,
    ) -> None:
        import pocketsphinx

        # Two passes: a light streaming search for partials, then the final of
        # each utterance decoded whole. Whole-utterance decoding normalizes the
        # cepstral mean over the utterance; pocketsphinx's live estimate lags
        # and costs a lot of accuracy on the first utterances (WER 0.74 vs 0.26
        # on our espeak set, 0.34 vs 0.30 on LibriVox; bench/local_engine.py).
        # Partials stay rough (last-partial WER ~0.6 on the espeak set); seeding
        # the live pass with the final pass's mean made them worse (0.76).
        self._decoder = pocketsphinx.Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")
        self._live = (
            pocketsphinx.Decoder(samprate=SAMPLE_RATE, loglevel="FATAL", fwdflat=False, bestpath=False)
            if two_pass
            else self._decoder
        )
        self._two_pass = two_pass
        self._utt_audio = bytearray()
        self._ep = pocketsphinx.Endpointer(
            window=endpoint_window, ratio=endpoint_ratio, vad_mode=vad_mode, sample_rate=SAMPLE_RATE
        )
        self._frame_bytes = self._ep.frame_bytes
        self._pending = bytearray()
        self._partial_every = int(partial_interval * SAMPLE_RATE)
        self._max_utt = int(max_utterance * SAMPLE_RATE)
        self._in_utt = False
        self._utt_start = 0  # sample position of the utterance's first sample
        self._utt_samples = 0  # samples given to the decoder in this utterance
        self._last_partial_at = 0
        self._last_partial = ""

    def accept(self, pcm: bytes) -> list[RawResult]:
        out: list[RawResult] = []
        self._pending += pcm
        fb = self._frame_bytes
        usable = len(self._pending) - len(self._pending) % fb
        for i in range(0, usable, fb):
            self._frame(bytes(self._pending[i : i + fb]), out)
        del self._pending[:usable]
        return out

    def finish(self) -> list[RawResult]:
        out: list[RawResult] = []
        if self._ep.in_speech:
            rest = self._ep.end_stream(bytes(self._pending))
            if rest:
                self._speech(rest, out)
        self._pending.clear()
        if self._in_utt:
            self._end_utterance(out)
        return out

    # ----------------------------------------------------------- internals
    def _frame(self, frame: bytes, out: list[RawResult]) -> None:
        speech = self._ep.process(frame)
        if speech is None:
            return
        if not self._in_utt:
            self._begin(int(round(self._ep.speech_start * SAMPLE_RATE)))
        self._speech(speech, out)
        if not self._ep.in_speech:
            self._end_utterance(out)

    def _begin(self, start: int) -> None:
        self._live.start_utt()
        self._utt_audio.clear()
        self._in_utt = True
        self._utt_start, self._utt_samples = start, 0
        self._last_partial_at, self._last_partial = 0, ""

    def _speech(self, speech: bytes, out: list[RawResult]) -> None:
        if not self._in_utt:
            self._begin(int(round(self._ep.speech_start * SAMPLE_RATE)))
        self._live.process_raw(speech, False, False)
        if self._two_pass:
            self._utt_audio += speech
        self._utt_samples += len(speech) // 2
        if self._utt_samples >= self._max_utt:
            # Continuous speech: close this utterance here so finals keep coming.
            next_start = self._utt_start + self._utt_samples
            self._end_utterance(out)
            self._begin(next_start)
        elif self._utt_samples - self._last_partial_at >= self._partial_every:
            self._last_partial_at = self._utt_samples
            hyp = self._live.hyp()
            text = hyp.hypstr if hyp is not None else ""
            if text and text != self._last_partial:
                self._last_partial = text
                out.append(RawResult(False, text, self._utt_start, self._utt_start + self._utt_samples))

    def _end_utterance(self, out: list[RawResult]) -> None:
        self._live.end_utt()
        if self._two_pass:
            self._decoder.start_utt()
            self._decoder.process_raw(bytes(self._utt_audio), False, True)
            self._decoder.end_utt()
            self._utt_audio.clear()
        self._in_utt = False
        step = SAMPLE_RATE // self.FRAME_RATE
        limit = self._utt_start + self._utt_samples
        words = []
        for seg in self._decoder.seg():
            text = _clean_word(seg.word)
            if text is None:
                continue
            start = min(limit, self._utt_start + seg.start_frame * step)
            end = min(limit, self._utt_start + (seg.end_frame + 1) * step)
            words.append(RawWord(text, start, max(start, end)))
        if words or self._last_partial:  # an empty final clears a shown partial
            start = words[0].start if words else self._utt_start
            end = words[-1].end if words else limit
            out.append(RawResult(True, " ".join(w.text for w in words), start, end, tuple(words)))
        self._last_partial = ""


class VoskEngine:
    """Vosk (Kaldi) with a downloaded model: streaming, better accuracy."""

    name = "vosk"

    def __init__(self, model_path: Path, partial_interval: float = 0.3) -> None:
        import vosk

        vosk.SetLogLevel(-1)
        self._rec = vosk.KaldiRecognizer(vosk.Model(str(model_path)), SAMPLE_RATE)
        self._rec.SetWords(True)
        self._pos = 0
        self._utt_start = 0
        self._partial_every = int(partial_interval * SAMPLE_RATE)
        self._since_partial = 0
        self._last_partial = ""

    def accept(self, pcm: bytes) -> list[RawResult]:
        self._pos += len(pcm) // 2
        self._since_partial += len(pcm) // 2
        if self._rec.AcceptWaveform(pcm):
            return self._final(self._rec.Result())
        if self._since_partial < self._partial_every:
            return []
        self._since_partial = 0
        text = str(json.loads(self._rec.PartialResult()).get("partial", "")).strip()
        if not text or text == self._last_partial:
            return []
        self._last_partial = text
        return [RawResult(False, text, self._utt_start, self._pos)]

    def finish(self) -> list[RawResult]:
        return self._final(self._rec.FinalResult())

    def _final(self, raw: str) -> list[RawResult]:
        data = json.loads(raw)
        words = tuple(
            RawWord(
                str(w["word"]),
                int(round(float(w["start"]) * SAMPLE_RATE)),
                int(round(float(w["end"]) * SAMPLE_RATE)),
                float(w["conf"]) if "conf" in w else None,
            )
            for w in data.get("result", ())
        )
        text = " ".join(w.text for w in words) or str(data.get("text", "")).strip()
        had_partial, self._last_partial = bool(self._last_partial), ""
        start = words[0].start if words else self._utt_start
        end = words[-1].end if words else self._pos
        self._utt_start = self._pos
        if not text and not had_partial:
            return []
        return [RawResult(True, text, start, end, words)]
