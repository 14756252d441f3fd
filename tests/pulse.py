"""A private PulseAudio daemon with a null sink: a real capture device for
tests on machines with no sound card. What is played into the sink can be
recorded from its monitor through PortAudio's `pulse` device."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest


class PulseServer:
    def __init__(self, root: Path, keepalive_latency_ms: int = 20) -> None:
        self.root = root
        #: The latency the sinks' keep-alive players ask for. A player asking
        #: for little (a call app: ~20 ms) makes the sink render, and its
        #: monitor deliver, in small pieces: every recorder of the monitor
        #: then wakes ~200 times a second (bench/pulse_capture.py).
        self.keepalive_latency_ms = keepalive_latency_ms
        self.env: dict[str, str] = {}
        self._keepalive: subprocess.Popen | None = None
        self._more: list[subprocess.Popen] = []

    def start(self) -> None:
        home, run = self.root / "home", self.root / "run"
        home.mkdir(parents=True)
        run.mkdir(mode=0o700)
        socket = self.root / "native"
        base = {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(run)}
        subprocess.run(
            [
                "pulseaudio", "-D", "-n", "--exit-idle-time=-1", "--daemonize=yes", "--use-pid-file=yes",
                f"--log-target=file:{self.root / 'log'}",
                f"--load=module-native-protocol-unix auth-anonymous=1 socket={socket}",
                "--load=module-null-sink sink_name=captions rate=48000 channels=1",
                "--load=module-always-sink",
            ],
            env=base, check=True, timeout=20,
        )
        self.env = {**base, "PULSE_SERVER": f"unix:{socket}", "PULSE_COOKIE": str(self.root / "cookie")}
        for _ in range(100):
            if subprocess.run(["pactl", "info"], env=self.env, capture_output=True).returncode == 0:
                break
            time.sleep(0.05)
        subprocess.run(["pactl", "set-default-sink", "captions"], env=self.env, check=True)
        subprocess.run(["pactl", "set-default-source", "captions.monitor"], env=self.env, check=True)
        # Keep the sink busy: an idle monitor delivers garbage for its first ~2 s.
        self._keepalive = self._busy("captions")
        time.sleep(2.0)

    def add_sink(self, name: str) -> str:
        """Another null sink (kept busy like the first); returns its monitor's name."""
        subprocess.run(
            ["pactl", "load-module", "module-null-sink", f"sink_name={name}", "rate=48000", "channels=1"],
            env=self.env, check=True, capture_output=True,
        )
        self._more.append(self._busy(name))
        time.sleep(2.0)
        return f"{name}.monitor"

    def _busy(self, sink: str) -> subprocess.Popen:
        return subprocess.Popen(
            ["pacat", "--playback", "--raw", "--format=s16le", "--rate=48000", "--channels=1",
             f"--device={sink}", f"--latency-msec={self.keepalive_latency_ms}", "/dev/zero"],
            env=self.env, stdin=subprocess.DEVNULL,
        )

    def play(self, wav: Path, sink: str = "captions") -> subprocess.Popen:
        return subprocess.Popen(["paplay", f"--device={sink}", str(wav)], env=self.env)

    def play_looped(self, wav: Path, latency_ms: int, sink: str = "captions") -> subprocess.Popen:
        """Plays `wav` into `sink` over and over until terminated (paplay has
        no loop option: one paplay after another, in a shell of its own)."""
        loop = f'while paplay --latency-msec={latency_ms} --device="$1" "$2"; do :; done'
        return subprocess.Popen(["sh", "-c", loop, "sh", sink, str(wav)], env=self.env, start_new_session=True)

    def stop(self) -> None:
        for proc in [self._keepalive, *self._more]:
            if proc is not None:
                proc.terminate()
                proc.wait(5)
        subprocess.run(["pulseaudio", "--kill"], env=self.env, capture_output=True, timeout=10)
        pid_file = Path(self.env.get("XDG_RUNTIME_DIR", "/nonexistent")) / "pulse" / "pid"
        try:
            if pid_file.exists():
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGTERM)
        except (ValueError, IndexError, ProcessLookupError, FileNotFoundError):
            pass


@pytest.fixture
def pulse(tmp_path_factory: pytest.TempPathFactory):
    if not shutil.which("pulseaudio"):
        if os.environ.get("CI"):
            pytest.fail("pulseaudio is missing on CI: .ci/run must install it")
        pytest.skip("pulseaudio is not installed (apt-get install pulseaudio pulseaudio-utils)")
    server = PulseServer(tmp_path_factory.mktemp("pulse"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
