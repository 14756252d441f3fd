"""Shared plumbing for the benchmarks: results, fake servers in their own
process, audio generation, and "not available" detection.

The fake servers run in a child process (multiprocessing, spawn) so that their
CPU time never counts as the client's: every CPU figure is measured with
`time.process_time()` inside the client process only.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import math
import multiprocessing as mp
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Iterable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


class NotAvailable(Exception):
    """A piece the benchmark needs has not landed (yet): reported as n/a."""


@dataclass
class Result:
    name: str
    figure: str
    target: str
    ok: bool | None  # None: n/a or informational
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.ok is None:
            return "n/a" if self.figure.startswith("n/a") else "info"
        return "pass" if self.ok else "FAIL"


def na(name: str, target: str, why: str) -> Result:
    return Result(name, "n/a (not available)", target, None, why)


def require(module: str) -> Any:
    """Import a module that may not have landed; NotAvailable if it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise NotAvailable(f"{module}: {exc}") from None


def warm_up_s(seconds: float) -> float:
    """Seconds a live run is left to settle (connect, first frames and paints)
    before its CPU is measured: 3 s for a full run, 1 s for a quick one, which
    only shows that the row works."""
    return 3.0 if seconds >= 10 else 1.0


def percentile(values: list[float], p: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def rss_mb() -> float:
    """Resident set size of this process in MB, from /proc/self/statm."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


# ------------------------------------------------------------------ providers
# Per provider: the fake's module and class, its constructor kwargs, the key
# the fake accepts (attribute), and options that make a session end promptly.
FAKES: dict[str, tuple[str, str, dict[str, Any], dict[str, str]]] = {
    "audiopod": ("tests.fakes.audiopod", "FakeAudioPod", {}, {}),
    "smallest": ("tests.fakes.smallest", "FakeSmallest", {}, {}),
    "voicerun": ("tests.fakes.voicerun", "FakeVoiceRun", {}, {}),
    "inworld": ("tests.fakes.inworld", "FakeInworld", {}, {"end_idle_seconds": "0.3"}),
    "uglabs": ("tests.fakes.uglabs", "FakeUgLabs", {}, {}),
}


def provider_available(provider: str) -> None:
    """NotAvailable unless the provider module and its fake have landed."""
    from captioner.stt.registry import PROVIDERS

    if provider not in PROVIDERS:
        raise NotAvailable(f"provider {provider} is not registered")
    mod = PROVIDERS[provider].module.split(":")[0]
    require(mod)
    fake_mod, cls, _, _ = FAKES[provider]
    if not hasattr(require(fake_mod), cls):
        raise NotAvailable(f"{fake_mod}.{cls} is missing")


# --------------------------------------------------------- fake server process
class _ByteCount:
    """Stands in for a record's audio bytearray in long runs: the fakes only
    append to it and take its length, so counting keeps the server's memory flat."""

    def __init__(self) -> None:
        self.n = 0

    def __iadd__(self, data: bytes) -> "_ByteCount":
        self.n += len(data)
        return self

    def __len__(self) -> int:
        return self.n


def tls_certificate() -> tuple[Path, Path]:
    """(certificate, key) for localhost, self-signed, made once with openssl
    in the bench directory: the fakes serve wss:// with it and the client
    trusts it through SSL_CERT_FILE, so TLS rows verify as real use does."""
    cert, key = bench_dir() / "localhost-cert.pem", bench_dir() / "localhost-key.pem"
    if not (cert.exists() and key.exists()):
        import subprocess

        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
             "-days", "3650", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
            check=True, capture_output=True,
        )
    return cert, key


def _server_main(provider: str, kwargs: dict, faults: list, chatty: bool, pipe: Any, tls: tuple | None = None) -> None:
    """Child process: run one fake until told to stop; report what happened."""
    import collections

    import tests.fakes.base as base

    class LightRecord(base.ConnRecord):
        def __init__(self, *args: Any, **kw: Any) -> None:
            super().__init__(*args, **kw)
            self.audio = _ByteCount()  # type: ignore[assignment]
            self.messages = collections.deque(maxlen=64)  # type: ignore[assignment]

    base.ConnRecord = LightRecord  # type: ignore[misc]
    fake_mod, cls_name, defaults, _ = FAKES[provider]
    module = importlib.import_module(fake_mod)
    if chatty:
        _make_chatty(module)
    drops: list[float] = []
    orig_fault = base.FakeServer.maybe_fault

    async def maybe_fault(self: Any, ws: Any, record: Any) -> Any:
        action = await orig_fault(self, ws, record)
        if action is not None:
            drops.append(time.monotonic())
        return action

    base.FakeServer.maybe_fault = maybe_fault  # type: ignore[method-assign]

    async def main() -> None:
        fake = getattr(module, cls_name)(**{**defaults, **kwargs})
        fake.faults.extend(faults)
        if tls is not None:
            import ssl

            fake.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            fake.tls.load_cert_chain(*tls)
        async with fake:
            key = getattr(fake, "key", None) or getattr(fake, "api_key", None)
            pipe.send((fake.url, key))
            loop = asyncio.get_running_loop()
            while True:
                if await loop.run_in_executor(None, pipe.poll, 0.2):
                    msg = pipe.recv()
                    if msg == "stop":
                        break
            pipe.send(
                {
                    "connections": len(fake.records),
                    "violations": list(fake.violations)[:5],
                    "audio_bytes": [len(r.audio) for r in fake.records],
                    "drops": drops,
                    "cpu": time.process_time(),
                }
            )

    asyncio.run(main())


REPLY_DELAY_S = 0.05  # half a 100 ms frame: the chatty fake's replies never arrive with our audio


def _make_chatty(module: Any) -> None:
    """Bench-only variant: the recognizer also reports the open utterance as a
    partial on every audio frame it gets, in speech and in silence (then an
    empty partial, as providers send to clear one): exactly 10 partials/s at
    100 ms frames, the load the whole-app benchmark asks for.

    It also answers each frame REPLY_DELAY_S late. A real provider's replies
    come whenever its model is done, not in step with our audio; an instant
    reply would reach the app while it is still awake from sending the frame,
    and hide the cost of waking up for it."""
    base_rec = module.ToneRecognizer

    class Chatty(base_rec):  # type: ignore[misc,valid-type]
        def feed(self, pcm: bytes) -> list:
            time.sleep(REPLY_DELAY_S)  # blocks only this fake's own process, one client
            out = super().feed(pcm)
            if not any(kind == "partial" for kind, _ in out):
                words = list(self._utterance)
                if self._word_start is not None:
                    from tests.fakes.tones import RecognizedWord

                    t = self._word_start * 0.02
                    words.append(RecognizedWord("…", t, t))  # a word is being heard
                out.append(("partial", words))
            return out

    module.ToneRecognizer = Chatty


class FakeProcess:
    """A fake provider server in a child process, on 127.0.0.1."""

    def __init__(self, provider: str, faults: list | None = None, chatty: bool = False, tls: bool = False,
                 **kwargs: Any) -> None:
        self.provider = provider
        #: With tls: the certificate the fake presents (the client trusts it through SSL_CERT_FILE).
        self.certificate: Path | None = None
        chain = None
        if tls:
            self.certificate, key = tls_certificate()
            chain = (str(self.certificate), str(key))
        ctx = mp.get_context("spawn")
        self._pipe, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_server_main, args=(provider, kwargs, list(faults or ()), chatty, child, chain), daemon=True
        )
        self.report: dict[str, Any] = {}

    def __enter__(self) -> "FakeProcess":
        self._proc.start()
        if not self._pipe.poll(30):
            self._proc.kill()
            raise RuntimeError(f"the {self.provider} fake did not start")
        self.url, self.key = self._pipe.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._pipe.send("stop")
            if self._pipe.poll(30):
                self.report = self._pipe.recv()
        except (OSError, EOFError):
            pass
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()

    @property
    def options(self) -> dict[str, str]:
        return dict(FAKES[self.provider][3])


# ------------------------------------------------------------------- audio
SPEECH_RATE = 48000


def speech_wav(path: Path, seconds: float = 60.0, rate: int = SPEECH_RATE, channels: int = 2, seed: int = 7) -> Path:
    """A WAV in the tone language (Int16, `rate`, `channels`): utterances of 3-8
    words (~2.5 words/s, like speech), silence at both ends so it loops cleanly."""
    from tests.fakes.tones import UTTERANCE_GAP_S, VOCAB, WORD_GAP_S, WORD_S, synthesize, write_wav

    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    utterances: list[list[str]] = []
    t = 1.1
    while True:
        n = int(rng.integers(3, 9))
        dur = n * WORD_S + (n - 1) * WORD_GAP_S + UTTERANCE_GAP_S
        if t + dur > seconds:
            break
        utterances.append([VOCAB[int(i)] for i in rng.integers(0, len(VOCAB), n)])
        t += dur
    audio, _ = synthesize(utterances, rate=rate, lead_s=0.5, tail_s=0.6, channels=channels)
    pad = int(seconds * rate) - len(audio)
    if pad > 0:
        audio = np.concatenate([audio, np.zeros((pad, channels), np.float32)])
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_wav(path, audio[: int(seconds * rate)], rate)


class LoopedWav:
    """A WavFileSource looped until `seconds` of audio have been delivered
    (the real WAV reader each pass: soundfile in a worker thread, 100 ms blocks)."""

    def __init__(self, path: Path, seconds: float, speed: float = 0.0) -> None:
        from captioner.audio.sources import WavFileSource

        self._make = lambda: WavFileSource(path, speed=speed)
        first = self._make()
        self.sample_rate = first.sample_rate
        self.channels = first.channels
        self.name = first.name
        self.seconds = seconds
        self.frames_done = 0

    def __aiter__(self) -> AsyncIterator[np.ndarray]:
        return self._blocks()

    async def _blocks(self) -> AsyncIterator[np.ndarray]:
        limit = int(self.seconds * self.sample_rate)
        while self.frames_done < limit:
            async for block in self._make():
                block = block[: limit - self.frames_done]
                self.frames_done += len(block)
                yield block
                if self.frames_done >= limit:
                    return


def bench_dir() -> Path:
    d = Path(os.environ.get("CAPTIONER_BENCH_DIR", "/tmp/captioner-bench"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def make_session(provider: str, fake: FakeProcess, retry: Any = None, config: Any = None) -> Any:
    from captioner.captioning import CaptionJob
    from captioner.captioning import make_session as _make

    job = CaptionJob(provider, fake.options, fake.url)
    return _make(job, fake.key, config, retry)


@contextlib.contextmanager
def settled_heap() -> Any:
    """A timed run starts with what the process built so far frozen out of
    the cyclic GC, as the app freezes its start-up objects: otherwise objects
    left by earlier benchmarks in this process make every full collection
    dearer, and more so for the client that allocates more (seen as ours/SDK
    ×1.11 after the one-hour runs against ×0.90–0.98 run alone)."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def run_async(coro: Any) -> Any:
    return asyncio.run(coro)


def now() -> float:
    return time.perf_counter()
