"""PulseAudio/PipeWire sources, for capturing "what you hear" on Linux.

PortAudio's ALSA backend shows the sound server only as the `pulse` and
`default` devices, which record the server's *default* source. To record a
chosen source (e.g. a sink's monitor) we list the server's sources here and
open PortAudio's `pulse` device with PULSE_SOURCE=<source name> set while the
stream opens: the ALSA pulse plugin creates its libpulse context then, and
libpulse takes PULSE_SOURCE as that client's default source. Checked with two
null sinks: each stream records its own monitor, even two at once.

Listing uses `pulsectl` (ctypes over libpulse, the library the ALSA pulse
plugin uses anyway) when installed, else `pactl`. Both block for a few
milliseconds: call them off the event loop.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator

ENV_VAR = "PULSE_SOURCE"
_env_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class PulseSource:
    name: str  # the server's source name, e.g. "alsa_output.pci-0000_00_1f.3.analog-stereo.monitor"
    description: str  # e.g. "Monitor of Built-in Audio Analog Stereo"
    monitor_of: str  # the sink it monitors ("" for a microphone-like source)
    rate: int
    channels: int

    @property
    def is_monitor(self) -> bool:
        return bool(self.monitor_of)

    @property
    def label(self) -> str:
        """What a person reads: the speakers, not the plumbing."""
        what = self.description
        if what.lower().startswith("monitor of "):
            what = what[len("monitor of ") :]
        return f"{what} — what you hear" if self.is_monitor else what


def list_sources(timeout: float = 2.0) -> list[PulseSource]:
    """Every source of the running sound server; [] when there is none."""
    try:
        return _list_with_pulsectl(timeout)
    except ImportError:
        pass
    except Exception:  # no server, or libpulse missing: pactl will not do better
        return []
    return _list_with_pactl(timeout)


def list_monitors(timeout: float = 2.0) -> list[PulseSource]:
    return [s for s in list_sources(timeout) if s.is_monitor]


def _list_with_pulsectl(timeout: float) -> list[PulseSource]:
    import pulsectl

    # No connect timeout: pulsectl 24.12 then always waits the whole timeout
    # (2 s per listing). Without one it fails at once when no server runs, and
    # it never autospawns a daemon.
    with pulsectl.Pulse("captioner-devices") as pulse:
        return [
            PulseSource(
                name=s.name,
                description=s.description or s.name,
                monitor_of=(s.monitor_of_sink_name or "") if _is_valid_index(s.monitor_of_sink) else "",
                rate=s.rate,
                channels=int(s.channel_count),
            )
            for s in _source_list(pulsectl, pulse)
        ]


def _source_list(pulsectl: Any, pulse: Any) -> list[Any]:
    """pulsectl's source list, each with `rate` read while libpulse's info is
    valid. pulsectl keeps `sample_spec` as a view into memory libpulse frees
    after its callback: read later, every source had the rate of the last one
    listed (a 48 kHz monitor opened at 8 kHz). Built with pulsectl's own list
    factory; should that change, pactl's listing is used instead."""
    try:
        from pulsectl import _pulsectl as c

        make_list = pulsectl.Pulse._pulse_get_list
        cb_type, get_list = c.PA_SOURCE_INFO_CB_T, c.pa.context_get_source_info_list
    except (ImportError, AttributeError):
        raise ImportError("pulsectl without its list factory") from None

    class SourceInfo(pulsectl.PulseSourceInfo):
        def _init_from_struct(self, struct: Any) -> None:
            super()._init_from_struct(struct)
            self.rate = int(struct.sample_spec.rate)

    return make_list(cb_type, get_list, SourceInfo)(pulse)


def _is_valid_index(index: Any) -> bool:
    return index is not None and 0 <= int(index) < 0xFFFFFFFF


def _list_with_pactl(timeout: float) -> list[PulseSource]:
    """`pactl -f json` (pactl ≥ 16) for descriptions, else the short list."""
    if not shutil.which("pactl"):
        return []
    out = _run(["pactl", "-f", "json", "list", "sources"], timeout)
    if out is not None:
        try:
            return parse_pactl_json(out)
        except (ValueError, TypeError, KeyError):
            pass
    out = _run(["pactl", "list", "short", "sources"], timeout)
    return parse_pactl_short(out or "")


def _run(cmd: list[str], timeout: float) -> str | None:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


_SPEC = re.compile(r"(\d+)ch\s+(\d+)Hz")


def parse_pactl_json(text: str) -> list[PulseSource]:
    out = []
    for item in json.loads(text):
        props = item.get("properties") or {}
        name = str(item["name"])
        rate, channels = _spec(str(item.get("sample_specification", "")))
        monitor_of = ""
        if props.get("device.class") == "monitor":
            # pactl's JSON names the monitored sink "monitor_source" (sic).
            monitor_of = str(item.get("monitor_source") or name.removesuffix(".monitor"))
        out.append(PulseSource(name, str(item.get("description") or name), monitor_of, rate, channels))
    return out


def parse_pactl_short(text: str) -> list[PulseSource]:
    """`index  name  driver  spec  state`: no descriptions; a monitor's name ends in `.monitor`."""
    out = []
    for line in text.splitlines():
        cols = line.split("\t")
        if len(cols) < 4:
            continue
        name = cols[1]
        rate, channels = _spec(cols[3])
        monitor_of = name[: -len(".monitor")] if name.endswith(".monitor") else ""
        description = f"Monitor of {monitor_of}" if monitor_of else name
        out.append(PulseSource(name, description, monitor_of, rate, channels))
    return out


def _spec(text: str) -> tuple[int, int]:
    m = _SPEC.search(text)
    return (int(m.group(2)), int(m.group(1))) if m else (48000, 2)


@contextlib.contextmanager
def source_selected(name: str) -> Iterator[None]:
    """Make PULSE_SOURCE name the source for libpulse clients created inside
    this block, then put the environment back. The lock keeps two opens in
    this process from seeing each other's choice."""
    with _env_lock:
        before = os.environ.get(ENV_VAR)
        os.environ[ENV_VAR] = name
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(ENV_VAR, None)
            else:
                os.environ[ENV_VAR] = before


class SourceWatch:
    """Tells when the sound server's source `name` goes away.

    A recording stream is movable, and the ALSA pulse plugin gives no way to
    open it otherwise (no PA_STREAM_DONT_MOVE): when its source disappears
    (a headset unplugged, a sink unloaded) the server moves the stream to the
    fallback source and it goes on delivering — another device's audio, with
    no error. So a thread of its own listens to the server's source events
    (no polling, nothing per audio block) and calls `on_gone()` from that
    thread when the source is removed or the server connection is lost.
    Without pulsectl it does nothing."""

    WAKE_S = 2.0  # a missed stop request is noticed within this long

    def __init__(self, name: str, on_gone: Callable[[], None]) -> None:
        self.name = name
        self._on_gone = on_gone
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._pulse: Any = None
        #: Set once it listens (or gave up): for tests.
        self.ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="captioner-pulse-watch", daemon=True)

    def start(self) -> "SourceWatch":
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the thread to end (it does within WAKE_S; this never blocks)."""
        self._stopped.set()
        with self._lock:
            if self._pulse is not None:
                self._pulse.event_listen_stop()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            import pulsectl
        except ImportError:
            self.ready.set()
            return
        try:
            gone = self._listen(pulsectl)
        except Exception:  # no server at all: PortAudio's stream says so itself
            gone = False
        finally:
            self.ready.set()
        if gone and not self._stopped.is_set():
            self._on_gone()

    def _listen(self, pulsectl: Any) -> bool:
        """True when the source went away (or the server did)."""
        pulse = pulsectl.Pulse("captioner-watch")
        try:
            removed = threading.Event()
            watched: list[int] = []

            def on_event(event: Any) -> None:
                if event.t == "remove" and event.index in watched:
                    removed.set()
                    raise pulsectl.PulseLoopStop

            pulse.event_mask_set("source")  # first: a removal from now on is queued
            pulse.event_callback_set(on_event)
            try:
                watched.append(pulse.get_source_by_name(self.name).index)
            except pulsectl.PulseIndexError:
                return True  # already gone
            with self._lock:
                self._pulse = pulse
            self.ready.set()
            while not removed.is_set() and not self._stopped.is_set():
                try:
                    pulse.event_listen(timeout=self.WAKE_S)
                except pulsectl.PulseDisconnected:
                    return True
            return removed.is_set()
        finally:
            with self._lock:
                self._pulse = None
            pulse.close()
