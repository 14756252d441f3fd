"""Audio sources: a capture device through PortAudio, and a WAV file.

Capture devices include system audio ("what you hear"): PulseAudio/PipeWire
monitor sources on Linux (pulse.py), WASAPI loopback on Windows and virtual
loopback devices such as BlackHole on macOS (system.py). They open through
the same MicrophoneSource; mixer.py combines two sources into one.

Both are async iterators of float32 blocks shaped (frames, channels) at
`sample_rate`. Sources deliver audio whole and unaltered: no gating, no AGC,
no silence skipping, so provider times map one-to-one onto the source.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import numpy as np

from captioner.audio.feed import AudioFeed, AudioSourceError, FeedStats

log = logging.getLogger(__name__)

#: InputDevice.kind values
KIND_INPUT = "input"
KIND_SYSTEM = "system"  # what the computer plays: a monitor, a loopback

#: InputDevice.backend values: how the device is opened
BACKEND_PORTAUDIO = "portaudio"  # sounddevice, by index
BACKEND_PULSE = "pulse"  # sounddevice's `pulse` device with PULSE_SOURCE=target
BACKEND_WASAPI_LOOPBACK = "wasapi-loopback"  # PyAudioWPatch, by its own index
#: Blocks that arrive this long after the previous one mean the process (or
#: PortAudio's thread) stood still: the computer slept, it was stopped or starved.
STALL_S = 1.0
#: Lost audio shorter than this is not a gap (capture times wobble by ms).
STALL_GAP_S = 0.5
_JUMP_S = 0.02  # a capture-time jump of a block larger than this is audio skipped
_STEADY_BLOCKS = 5  # blocks at the device's pace, with no jump, that end a stall
_MAX_HOLD_S = 30.0  # audio held back while a stall settles, at most (PulseAudio keeps up to ~22 s)
_SETTLED_S = 1.0  # a stall has settled once the audio waits no longer than before it, plus this


@dataclass(frozen=True, slots=True)
class InputDevice:
    index: int  # the index to open with `backend` (for pulse: PortAudio's `pulse` device)
    name: str  # unique and stable: what --device takes and settings remember
    hostapi: str
    channels: int
    default_rate: float
    is_default: bool
    kind: str = KIND_INPUT
    backend: str = BACKEND_PORTAUDIO
    target: str = ""  # the sound server's source name (pulse backend)
    label: str = ""  # what to show a person; "" means the name

    @property
    def display_name(self) -> str:
        return self.label or self.name

    @property
    def is_system(self) -> bool:
        return self.kind == KIND_SYSTEM


def _sd() -> Any:
    """sounddevice, imported on first use (it loads PortAudio, ~100 ms).
    On Linux, libasound's error lines are kept off stderr first (alsa.py)."""
    if sys.platform.startswith("linux"):
        from captioner.audio import alsa

        alsa.quiet_errors()
    try:
        import sounddevice
    except OSError as exc:  # PortAudio library missing
        raise AudioSourceError(
            f"audio capture is unavailable: {exc} (install it: libportaudio2 on Debian and Ubuntu, "
            "portaudio on Fedora, Arch and Homebrew)"
        ) from None
    return sounddevice


def list_input_devices(system: bool = True) -> list[InputDevice]:
    """Every device that can capture, default first marked; with `system`,
    also the system-audio sources (Linux monitors, Windows loopbacks), after
    the ordinary inputs. Blocking (PortAudio, the sound server): call it off
    the event loop."""
    from captioner.audio.system import is_loopback_name

    sd = _sd()
    try:
        with _pa_lock:
            devices = sd.query_devices()
            hostapis = sd.query_hostapis()
            default_in = sd.default.device[0]
    except Exception as exc:  # PortAudio errors are plain Exceptions
        raise AudioSourceError(f"cannot list audio devices: {exc}") from None
    out = []
    for index, dev in enumerate(devices):
        if dev["max_input_channels"] <= 0:
            continue
        out.append(
            InputDevice(
                index=index,
                name=dev["name"],
                hostapi=hostapis[dev["hostapi"]]["name"],
                channels=int(dev["max_input_channels"]),
                default_rate=float(dev["default_samplerate"]),
                is_default=index == default_in,
                kind=KIND_SYSTEM if is_loopback_name(dev["name"]) else KIND_INPUT,
            )
        )
    if system:
        out.extend(_system_devices(out))
    return out


def _system_devices(inputs: list[InputDevice]) -> list[InputDevice]:
    """Linux: one entry per sound-server monitor, opened through PortAudio's
    `pulse` device. Windows: one per WASAPI loopback (PyAudioWPatch)."""
    if _platform() == "win32":
        return _wasapi_devices()
    pulse_dev = next((d for d in inputs if d.name == "pulse"), None)
    if pulse_dev is None:
        return []
    monitors = _pulse_monitors()
    labels = [m.label for m in monitors]
    return [
        InputDevice(
            index=pulse_dev.index,
            name=m.name,
            hostapi="PulseAudio monitor",
            channels=max(1, m.channels),
            default_rate=float(m.rate),
            is_default=False,
            kind=KIND_SYSTEM,
            backend=BACKEND_PULSE,
            target=m.name,
            label=m.label if labels.count(m.label) == 1 else f"{m.label} ({m.monitor_of})",
        )
        for m in monitors
    ]


def _pulse_monitors() -> list[Any]:
    """The sound server's monitor sources (pulse.PulseSource); patched in tests."""
    from captioner.audio import pulse

    return pulse.list_monitors()


def _wasapi_devices() -> list[InputDevice]:
    from captioner.audio import system

    module = system.import_pyaudiowpatch()
    if module is None:
        return []
    try:
        found = system.wasapi_loopback_devices(module)
    except Exception:  # a broken audio stack must not hide the microphones
        return []
    found.sort(key=lambda d: not d["is_default"])  # the default speakers first
    return [
        InputDevice(
            index=d["index"],
            name=d["name"],
            hostapi="Windows WASAPI (loopback)",
            channels=d["channels"],
            default_rate=d["rate"],
            is_default=False,
            kind=KIND_SYSTEM,
            backend=BACKEND_WASAPI_LOOPBACK,
            label=f"{d['name'].replace(' [Loopback]', '')} — what you hear",
        )
        for d in found
    ]


def refresh_input_devices(system: bool = True) -> list[InputDevice]:
    """Re-list after a hot-plug: PortAudio scans only at start-up, so it is
    re-initialized first (skipped while a stream is open, see
    _refresh_devices). Blocking: call it off the event loop."""
    _refresh_devices()
    return list_input_devices(system)


def system_audio_help(devices: list[InputDevice]) -> str | None:
    """How to get system audio, for the app and CLI to show, when none of
    `devices` is a system-audio source; else None."""
    from captioner.audio import system

    return system.system_audio_help(_platform(), any(d.is_system for d in devices))


def _platform() -> str:
    return sys.platform


NO_INPUT_FOUND = ("no audio input device was found: connect a microphone (or, on Linux, check that "
                  "PulseAudio or PipeWire is running)")


def find_input_device(spec: "str | int | InputDevice | None") -> InputDevice:
    """Match a device by index, exact name, or case-insensitive part of its
    name or label. None means the system default input."""
    if isinstance(spec, InputDevice):
        return spec
    devices = list_input_devices()
    if not devices:
        raise AudioSourceError(NO_INPUT_FOUND)
    if spec is None or spec == "" or spec == "default":
        for dev in devices:
            if dev.is_default:
                return dev
        return devices[0]
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        index = int(spec)
        for dev in devices:
            if dev.index == index and dev.backend == BACKEND_PORTAUDIO:
                return dev
        raise AudioSourceError(f"no input device with index {index}")
    for dev in devices:
        if dev.name == spec:
            return dev
    want = str(spec).lower()
    matches = [d for d in devices if want in d.name.lower() or (d.label and want in d.label.lower())]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        names = ", ".join(repr(d.name) for d in devices)
        raise AudioSourceError(f"no input device matches {spec!r}; available: {names}")
    names = ", ".join(repr(d.name) for d in matches)
    raise AudioSourceError(f"{spec!r} matches several devices ({names}); give more of the name or the index")


class MicrophoneSource:
    """Captures from an input device through a PortAudio callback.

    The callback only copies its block and schedules `AudioFeed.push` on the
    loop; it never blocks, awaits or does I/O. PortAudio's overflow flags and
    our own (a full feed) are counted in `stats`.
    """

    def __init__(
        self,
        device: str | int | InputDevice | None = None,
        sample_rate: int | None = None,
        channels: int | None = None,
        # One block per typical provider frame. A frame cannot leave before its
        # last sample arrives, so smaller blocks add no speed, only wake-ups:
        # 20 ms blocks cost the live app 6.2 % of a core, 100 ms blocks 2.8 %.
        block_ms: int = 100,
        max_buffer_s: float = 10.0,
        reopen_timeout: float = 15.0,
    ) -> None:
        self.device = find_input_device(device)
        self.requested = device
        #: How long to keep trying to reopen a device that vanished (0: give up at once).
        self.reopen_timeout = reopen_timeout
        #: Called with a sentence for the user (device lost, reopened on X).
        self.on_notice: Callable[[str], None] | None = None
        #: Called with (seconds, reason) for audio that could not be captured.
        self.on_gap: Callable[[float, str], None] | None = None
        #: Called with False when the device is lost, True when its audio flows again.
        self.on_device_state: Callable[[bool], None] | None = None
        self.sample_rate = int(sample_rate or self.device.default_rate)
        self.channels = int(channels or min(self.device.channels, 2))
        self.block_frames = max(1, self.sample_rate * block_ms // 1000)
        max_blocks = max(4, int(max_buffer_s * 1000 / block_ms))
        self._feed = AudioFeed(max_blocks)
        self._feed.on_lost = self._lost_in_stall
        self._next_capture: float | None = None  # stream time the next block's first sample should have
        self._timeline = -1  # the stream generation `_next_capture` belongs to
        self._last_arrival: float | None = None  # when the callback had the previous block
        self._held: list[np.ndarray] | None = None  # blocks held while a stall settles
        self._held_lost = 0.0  # seconds the capture timeline skipped since the stall
        self._steady = 0  # blocks at the device's pace with no skip, since the stall
        self._settled_at = 0.0  # how long the audio may wait in the server once the stall is over
        self._newest: tuple[float, float] | None = None  # (when the newest block came, how long it had waited)
        self._stream: Any = None
        self._watch: Any = None  # pulse.SourceWatch of a pulse-backend stream
        self._generation = 0  # bumped per opened stream: a late callback of an old one is ignored
        self._stopped = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def stats(self) -> FeedStats:
        return self._feed.stats

    @property
    def name(self) -> str:
        return self.device.name

    def _callback(self, generation: int, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        # Runs on PortAudio's thread: copy, hand over, return.
        if status.input_overflow:
            self._feed.stats.device_overflows += 1
        block = indata.copy()
        try:
            self._loop.call_soon_threadsafe(  # type: ignore[union-attr]
                self._take, generation, block, getattr(time_info, "inputBufferAdcTime", 0.0) or 0.0, time.monotonic(),
                getattr(time_info, "currentTime", 0.0) or 0.0,
            )
        except RuntimeError:  # the loop is closed: we are shutting down
            pass

    def _take(self, generation: int, block: np.ndarray, captured_at: float, arrived_at: float,
              stream_now: float = 0.0) -> None:
        """A block, with the stream-clock time its first sample was captured
        (0: the host API does not say) and when the callback had it.

        After a stall (no block for `STALL_S`: the computer slept, the process
        was stopped or starved) PulseAudio hands over what it kept, ~11-22 s,
        and throws away what did not fit, setting no overflow flag: the lost
        stretch vanished and every later caption came that much early, with
        no gap. The capture times show it, as jumps in their timeline, but
        only over the next seconds (at once, or a little per block as the
        kept audio drains). So after a stall the blocks are held until the
        timeline is steady again; what it skipped is then a gap before them,
        where the audio was lost, and they go on."""
        rate = self.sample_rate
        seconds = len(block) / rate
        # how long the block's last sample had waited in the sound server when the callback ran
        waited = stream_now > 0.0 and captured_at > 0.0
        buffered = max(0.0, stream_now - captured_at - seconds) if waited else 0.0
        before = self._newest[1] if self._newest is not None else 0.0
        self._newest = (arrived_at, buffered)
        if generation != self._timeline:  # a (re)opened stream: a timeline of its own
            self._release()
            self._timeline, self._next_capture, self._last_arrival = generation, None, None
        if captured_at <= 0.0:  # nothing to check against
            self._release()
            self._feed.push(block)
            return
        jump = captured_at - self._next_capture if self._next_capture is not None else 0.0
        since = arrived_at - self._last_arrival if self._last_arrival is not None else 0.0
        self._next_capture, self._last_arrival = captured_at + seconds, arrived_at
        if self._held is None:
            if since < STALL_S:
                self._feed.push(block)
                return
            self._held, self._held_lost, self._steady = [], 0.0, 0
            self._settled_at = before + _SETTLED_S
        # Signed and every block's: over the hold the sum is exactly the time
        # skipped, even when it comes a few milliseconds per block.
        self._held_lost += jump
        if abs(jump) > _JUMP_S:
            self._steady = 0
        elif since >= seconds / 2 and (not waited or buffered <= self._settled_at):
            # At the device's pace again, not the kept audio's burst (which a
            # busy CPU can slow to the same pace: it still waits in the server).
            self._steady += 1
        self._held.append(block)
        if self._steady >= _STEADY_BLOCKS or sum(len(b) for b in self._held) >= _MAX_HOLD_S * rate:
            self._release()

    def _release(self) -> None:
        """Hand over the blocks held after a stall, behind a gap for what the
        capture timeline skipped."""
        held, self._held = self._held, None
        if held is None:
            return
        if self._held_lost >= STALL_GAP_S:
            self._feed.mark_lost(int(round(self._held_lost * self.sample_rate)))
        for block in held:
            self._feed.push(block, bounded=False)

    @property
    def input_delay(self) -> float:
        """Seconds the audio is behind real time before the session has it:
        waiting in the sound server (a starved process reads late: PulseAudio
        keeps up to ~20 s), in the feed, or held after a stall. A CPU-starved
        tester saw captions 5-13 s behind while the overlay said "Live": the
        session's lag starts where its input ends."""
        if self._newest is None:
            return 0.0
        arrived_at, buffered = self._newest
        held = sum(len(b) for b in self._held) if self._held else 0
        waiting = (self._feed.queued_frames + held) / self.sample_rate
        since = time.monotonic() - arrived_at
        return buffered + waiting + max(0.0, since - self.block_frames / self.sample_rate)

    def _lost_in_stall(self, frames: int) -> None:
        if self.on_gap is not None:
            self.on_gap(frames / self.sample_rate, "audio lost: Captioner could not take it in time "
                                                   "(the computer slept or was too busy)")

    def _lost_from_thread(self, generation: int, what: str) -> None:
        # PortAudio's thread (the stream stopped, e.g. the device vanished) or
        # the source watch's: hand over to the loop.
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._on_lost, generation, what)
        except RuntimeError:
            pass

    def _on_lost(self, generation: int, what: str) -> None:
        # Only for the stream still open, and not one we stopped ourselves.
        if generation == self._generation and self._stream is not None:
            self._feed.fail(AudioSourceError(f"the input device {self.device.name!r} {what}"))

    async def start(self) -> None:
        """Open and start the stream in a worker thread: loading PortAudio and
        opening a device (a sound server round trip) can take a while, and the
        event loop — the GUI — must not wait for it."""
        sd = await asyncio.to_thread(_sd)
        self._loop = asyncio.get_running_loop()
        self._generation += 1
        generation = self._generation
        try:
            self._stream = await asyncio.to_thread(self._open_and_start, sd, generation)
        except Exception as exc:
            self._stream = None
            raise AudioSourceError(f"cannot open {self.device.name!r}: {exc}") from None
        if self.device.backend == BACKEND_PULSE:
            from captioner.audio import pulse

            lost = lambda: self._lost_from_thread(generation, "was disconnected")  # noqa: E731
            self._watch = pulse.SourceWatch(self.device.target, lost).start()

    def _open_and_start(self, sd: Any, generation: int = 0) -> Any:
        global _open_streams
        with _pa_lock:
            stream = self._open_stream(sd, generation)
            try:
                stream.start()
            except Exception:
                stream.close()
                raise
            _open_streams += 1
        return stream

    def _open_stream(self, sd: Any, generation: int = 0) -> Any:
        # PortAudio calls finished_callback when the stream stops, including
        # when the device vanishes.
        kwargs = dict(
            samplerate=self.sample_rate,
            channels=self.channels,
            dtype="float32",
            blocksize=self.block_frames,
            callback=functools.partial(self._callback, generation),
            finished_callback=lambda: self._lost_from_thread(generation, "stopped delivering audio"),
        )
        if self.device.backend == BACKEND_PULSE:
            from captioner.audio import pulse

            # The ALSA pulse plugin makes its libpulse client while the stream
            # opens; PULSE_SOURCE then names the source it records.
            with pulse.source_selected(self.device.target):
                return sd.InputStream(device=self.device.index, **kwargs)
        if self.device.backend == BACKEND_WASAPI_LOOPBACK:
            from captioner.audio import system

            module = system.import_pyaudiowpatch()
            if module is None:
                raise AudioSourceError(system.WINDOWS_HELP)
            kwargs.pop("dtype")
            return system.WasapiLoopbackStream(module, self.device.index, **kwargs)
        return sd.InputStream(device=self.device.index, **kwargs)

    def stop(self) -> None:
        self._stopped = True
        self._release()
        self._stop_watch()
        self._close_stream(self._stream, stop=True)
        self._stream = None
        self._feed.close()

    def _stop_watch(self) -> None:
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.stop()

    @staticmethod
    def _close_stream(stream: Any, stop: bool) -> None:
        global _open_streams
        if stream is None:
            return
        with _pa_lock:
            _open_streams = max(0, _open_streams - 1)
            try:
                if stop:
                    stream.stop()
                stream.close()
            except Exception:
                pass

    async def __aenter__(self) -> "MicrophoneSource":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop()

    def __aiter__(self) -> AsyncIterator[np.ndarray]:
        return self._blocks()

    async def _blocks(self) -> AsyncIterator[np.ndarray]:
        """The feed's blocks; when the device vanishes, reopen the same device
        (the new default only when the default was asked for) and go on. The
        outage is measured until audio flows again — a reopened sound-server
        stream may deliver its first block seconds after it opens — and
        reported as a gap, so later times stay on the audio's own clock."""
        loop = asyncio.get_running_loop()
        lost_at: float | None = None
        while True:
            try:
                async for block in self._feed:
                    if lost_at is not None:  # the first block after an outage
                        missing = max(0.0, loop.time() - lost_at - len(block) / self.sample_rate)
                        lost_at = None
                        self._restored(missing)
                    yield block
                return
            except AudioSourceError as exc:
                if self.reopen_timeout <= 0 or self._stopped:
                    raise
                if lost_at is None:
                    lost_at = loop.time()
                    _log_loss(exc)
                    self._device_state(False)
                self._notice(f"{exc}; trying to reopen it…")
                if not await self._reopen(loop.time() + self.reopen_timeout):
                    if self._stopped:
                        return
                    raise AudioSourceError(f"{exc}, and it did not come back within {self.reopen_timeout:g} s") from None

    def _restored(self, missing: float) -> None:
        if self.on_gap is not None:
            self.on_gap(missing, f"input device interrupted for {missing:.1f} s")
        self._notice(f"capturing again from {self.device.name!r}")
        self._device_state(True)

    def _notice(self, text: str) -> None:
        if self.on_notice is not None:
            self.on_notice(text)

    def _device_state(self, ok: bool) -> None:
        if self.on_device_state is not None:
            self.on_device_state(ok)

    def _reopen_specs(self, name: str) -> tuple[str | None, ...]:
        """The device lost, by name; the default too only when the user asked
        for the default: a chosen device (a meeting's monitor) is never
        swapped for another that hears something else."""
        if self.requested is None or self.requested in ("", "default"):
            return (name, None)
        return (name,)

    async def _reopen(self, deadline: float) -> bool:
        loop = asyncio.get_running_loop()
        name = self.device.name
        self._stop_watch()
        stream, self._stream = self._stream, None
        await asyncio.to_thread(self._close_stream, stream, False)
        self._feed.clear_error()
        while loop.time() < deadline and not self._stopped:
            await asyncio.to_thread(_refresh_devices)
            for spec in self._reopen_specs(name):
                try:
                    device = await asyncio.to_thread(find_input_device, spec)
                except AudioSourceError:
                    continue
                if self._stopped:
                    return False
                self.device = device
                try:
                    await self.start()
                except AudioSourceError:
                    continue
                if self._stopped:  # stop() came while it opened
                    self.stop()
                    return False
                return True
            await asyncio.sleep(0.5)
        return False


def _log_loss(exc: Exception) -> None:
    """The loss, and what libasound said about it (kept off stderr), for the debug log."""
    if log.isEnabledFor(logging.DEBUG):
        from captioner.audio import alsa

        log.debug("%s; libasound's last messages: %s", exc, list(alsa.recent) or "none")


_open_streams = 0  # PortAudio streams this process holds open
# PortAudio is not thread-safe: re-initializing it (below) while another
# thread lists devices or opens a stream crashed the process when two mixed
# inputs were reopened at once. Listing, opening, closing and refreshing hold
# this lock (never the audio callback, never across an await).
_pa_lock = threading.RLock()


def _refresh_devices() -> None:
    """Make PortAudio look for devices again (it lists them once at start-up).
    Re-initializing closes every stream, so it is done only when none is open."""
    sd = _sd()
    with _pa_lock:
        if _open_streams:
            return
        try:
            sd._terminate()
            sd._initialize()
        except Exception:
            pass


class WavFileSource:
    """Reads any PCM WAV (16/24/32-bit int or float, any rate, any channel
    count) in blocks, paced at `speed` × real time (0: as fast as consumed)."""

    def __init__(self, path: str | Path, speed: float = 1.0, block_ms: int = 100) -> None:
        import soundfile

        self.path = Path(path)
        if speed < 0:
            raise ValueError("speed must be 0 (unpaced) or positive")
        self.speed = speed
        if not self.path.is_file():
            raise AudioSourceError(f"{self.path}: no such file")
        try:
            info = soundfile.info(str(self.path))
        except Exception as exc:
            raise AudioSourceError(f"{self.path}: not a readable audio file ({_first_line(exc)})") from None
        if info.format not in ("WAV", "WAVEX", "RF64", "W64"):
            raise AudioSourceError(f"{self.path}: not a WAV file (it is {info.format_info})")
        self.sample_rate = int(info.samplerate)
        self.channels = int(info.channels)
        self.frames = int(info.frames)
        self._int16 = info.subtype == "PCM_16"
        self.block_frames = max(1, self.sample_rate * block_ms // 1000)
        self.stats = FeedStats()

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate

    async def __aenter__(self) -> "WavFileSource":
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def __aiter__(self) -> AsyncIterator[np.ndarray]:
        return self._blocks()

    async def _blocks(self) -> AsyncIterator[np.ndarray]:
        import soundfile

        # Paced: read ~1 s per thread hop, yield 100 ms blocks. Unpaced: read
        # ~5 s per hop (each hop wakes a thread and the loop: ~50 µs of CPU)
        # and yield ~1 s blocks, which cost less per second of audio than
        # 100 ms ones and still fit the CPU cache for the conversions after.
        chunk = self.block_frames * (10 if self.speed > 0 else 50)
        step = self.block_frames * (1 if self.speed > 0 else 10)
        loop = asyncio.get_running_loop()
        # 16-bit files are read as int16 and scaled in NumPy, a block at a time:
        # libsndfile's own int→float conversion costs ~8x more CPU.
        buffer = np.empty((chunk, self.channels), np.int16) if self._int16 else None
        with soundfile.SoundFile(str(self.path)) as f:
            started = loop.time()
            done = 0
            while True:
                data = await asyncio.to_thread(self._read, f, chunk, buffer)
                if len(data) == 0:
                    return
                for at in range(0, len(data), step):
                    block = _as_float(data[at : at + step])  # a copy: `buffer` is reused
                    if self.speed > 0:
                        due = started + done / self.sample_rate / self.speed
                        delay = due - loop.time()
                        if delay > 0:
                            await asyncio.sleep(delay)
                    else:
                        await asyncio.sleep(0)
                    done += len(block)
                    self.stats.blocks += 1
                    self.stats.frames += len(block)
                    yield block


    def _read(self, f: Any, frames: int, out: np.ndarray | None) -> np.ndarray:
        """Up to `frames` frames, shape (frames, channels): float32, or for
        16-bit files the raw int16 samples in `out` (reused: no page faults
        from a fresh multi-megabyte array per read)."""
        if out is None:
            return f.read(frames, "float32", True)
        return f.read(frames, "int16", True, out=out)


def _as_float(block: np.ndarray) -> np.ndarray:
    """int16 → a new float32 array in [-1, 1) with libsndfile's scale (1/32768,
    exact: a power of two); float32 blocks pass through."""
    if block.dtype == np.float32:
        return block
    data = block.astype(np.float32)
    data *= np.float32(1.0 / 32768.0)
    return data


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


async def pcm_blocks(source: Any, rate: int, on_level: Any = None) -> AsyncIterator[bytes]:
    """Int16LE mono PCM at `rate` from a source of float32 blocks: downmix,
    stream-resample and convert, block by block. `on_level(dbfs)` is called
    per block for meters."""
    from captioner.audio.dsp import PcmConverter, downmix, level_dbfs

    converter = PcmConverter(source.sample_rate, rate)
    async for block in source:
        mono = downmix(block)
        if on_level is not None:
            on_level(level_dbfs(mono))
        yield converter.convert(mono)
    tail = converter.flush()
    if tail:
        yield tail
