"""The benchmark suite works: `python bench/run.py --quick` exits 0 and prints
its table (figures are not asserted: benchmarks are not timed unit tests)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_bench_quick_runs_and_prints_the_table() -> None:
    proc = subprocess.run(
        [sys.executable, "bench/run.py", "--quick"], cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    header = next(line for line in proc.stdout.splitlines() if line.startswith("benchmark"))
    assert header.split() == ["benchmark", "figure", "target", "result"]
    assert "ERROR" not in proc.stdout
    for name in ("CPU/audio-hour audiopod", "app CPU, overlay only (control window in the tray)", "app floor", "live captioning without Qt (CLI)", "latency callback→socket", "export 8 h → SRT", "reconnect → captions again"):
        assert name in proc.stdout
    # The TLS rows are informational: "info" means captions came back over wss://
    # (a row whose session failed would crash or say FAIL).
    for name in ("CPU/audio-hour audiopod over TLS", "CPU/audio-hour voicerun over TLS", "live captioning without Qt (CLI) over TLS"):
        row = next(line for line in proc.stdout.splitlines() if line.startswith(name + " "))
        assert row.split()[-1] == "info", row
    # Real capture from a PulseAudio monitor: "info" means captions flowed from
    # the device (n/a only where no PulseAudio is installed; CI installs it).
    expected = "info" if shutil.which("pulseaudio") and shutil.which("paplay") else "n/a"
    for name in ("app CPU, real capture of a PulseAudio monitor, nothing else playing",
                 "app CPU, real capture of a PulseAudio monitor, a call app playing (20 ms)"):
        row = next(line for line in proc.stdout.splitlines() if line.startswith(name + " "))
        assert row.split()[-1] == expected, row
