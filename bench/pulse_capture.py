"""The live app with real capture: PortAudio recording a PulseAudio sink's
monitor ("what you hear", how Captioner captions a meeting), instead of the
fake mic the other live rows use.

The fake mic measures what Captioner costs; this measures what the user's
machine pays, sound server included. A private PulseAudio daemon (the one
the tests use) has a null sink that plays the speech WAV over and over; the
app records its monitor through the default device. Two cases:

- nothing else playing: the sink's other players ask for 200 ms of latency;
- a call app playing: one player asks for 20 ms, as a video call's does.

A monitor delivers in the pieces its sink renders, and a sink renders as
often as its most demanding player asks: with the call app, every recorder
of the monitor (pacat as much as us) wakes ~200 times a second in libpulse's
thread, whatever buffer it asked for. The note splits the CPU between the
main thread (Captioner), libpulse's thread, and the rest (PortAudio's
callback thread, the journal writer).
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from pathlib import Path


def run(seconds: float, call_app: bool) -> object:
    from bench.common import NotAvailable, Result, bench_dir, speech_wav, warm_up_s
    from bench.gui import run_app_child

    name = "app CPU, real capture of a PulseAudio monitor, " + ("a call app playing (20 ms)" if call_app else "nothing else playing")
    if not (shutil.which("pulseaudio") and shutil.which("paplay")):
        raise NotAvailable("pulseaudio and paplay are not installed (apt-get install pulseaudio pulseaudio-utils)")
    from tests.pulse import PulseServer

    wav = speech_wav(bench_dir() / "speech48k2ch.wav")
    with tempfile.TemporaryDirectory(prefix="captioner-bench-pulse") as root:
        server = PulseServer(Path(root), keepalive_latency_ms=20 if call_app else 200)
        server.start()
        player = server.play_looped(wav, latency_ms=200)
        try:
            env = {k: v for k, v in server.env.items() if k.startswith("PULSE_")}
            r = run_app_child(seconds, ["real-capture"], env)
        finally:
            os.killpg(player.pid, signal.SIGTERM)
            player.wait(5)
            server.stop()
    thirds = [c / w * 100 for c, w in r["windows"]]
    threads = r.get("threads") or {}
    split = ", ".join(f"{k} {v / r['wall'] * 100:.2f} %" for k, v in threads.items()) or "not available here"
    note = (
        f"{r['wall']:.0f} s after {warm_up_s(seconds):g} s warm-up, in thirds: " + ", ".join(f"{t:.2f} %" for t in thirds)
        + f" (whole: {r['cpu'] / r['wall'] * 100:.2f} %); by thread over the whole run: {split}; "
        f"{r['partials'] / r['wall']:.1f} partials/s, {r['finals']} finals; both windows shown (offscreen); the app's "
        "default input device (ALSA's pulse plugin) on a private PulseAudio daemon recording a null sink's monitor"
    )
    return Result(name, f"{min(thirds):.2f} %", "info", None if r["partials"] > 0 else False, note)
