"""Start-up: the CLI's import time without Qt, that `captioner transcribe`
never imports PySide6, and (GUI) process start → overlay visible."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, FakeProcess, Result, bench_dir, median, na, speech_wav

_ENV = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen")


def _py(code: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env or _ENV, capture_output=True, text=True, timeout=timeout)


def cli_import(runs: int) -> Result:
    """Median wall time of `python -c "import captioner.cli"` minus `python -c pass`."""
    def timed(code: str) -> float:
        t0 = time.perf_counter()
        _py(code).check_returncode()
        return time.perf_counter() - t0

    timed("import captioner.cli")  # warm the page cache and .pyc files
    base = median(timed("pass") for _ in range(runs))
    cli = median(timed("import captioner.cli") for _ in range(runs))
    top = _py("import captioner.cli", env=dict(_ENV, PYTHONPROFILEIMPORTTIME="1")).stderr.splitlines()
    rows = []
    for line in top:
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].strip()))
    heaviest = ", ".join(f"{name} {us / 1000:.0f} ms" for us, name in sorted(rows, reverse=True)[:3])
    return Result(
        "import captioner.cli (no Qt)", f"{(cli - base) * 1000:.0f} ms", "info", None,
        f"median of {runs}: {cli * 1000:.0f} ms vs {base * 1000:.0f} ms for `python -c pass`; heaviest (cumulative, -X importtime): {heaviest}",
    )


def transcribe_without_qt() -> Result:
    """Run `captioner transcribe` against the fake in a child and list what it imported."""
    wav = speech_wav(bench_dir() / "speech48k2ch-10s.wav", seconds=10.0)
    with FakeProcess("audiopod") as fake, tempfile.TemporaryDirectory() as data:
        env = dict(_ENV, CAPTIONER_AUDIOPOD_KEY=fake.key, CAPTIONER_DATA_DIR=data)
        code = (
            "import sys; from captioner.cli import main; "
            f"rc = main(['transcribe', {str(wav)!r}, '--provider', 'audiopod', '--endpoint', {fake.url!r}, '--speed', '0', '--no-save']); "
            "qt = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'qasync')); "
            "print('RC', rc); print('QT', ','.join(qt))"
        )
        proc = _py(code, env=env)
    lines = dict(line.split(" ", 1) if " " in line else (line, "") for line in proc.stdout.splitlines() if line[:3] in ("RC ", "QT ", "QT"))
    rc = lines.get("RC", "?").strip()
    qt = lines.get("QT", "").strip()
    words = sum(1 for line in proc.stdout.splitlines() if line and not line.startswith(("RC", "QT")))
    ok = rc == "0" and not qt
    note = f"exit {rc}, {words} caption line(s) printed; Qt modules imported: {qt or 'none'}"
    if proc.returncode != 0:
        note += f"; stderr: {proc.stderr.strip()[-300:]}"
    return Result("transcribe path imports PySide6", "no" if not qt else "YES", "no", ok, note)


def overlay_visible(runs: int) -> Result:
    """Parent clock before spawning → the child's first overlay paint (same
    machine, CLOCK_MONOTONIC is shared). Warm: the first run is discarded."""
    name, target = "start → overlay visible", "<= 0.4 s"
    try:
        import captioner.app  # noqa: F401
        import captioner.ui.overlay  # noqa: F401
    except ImportError as exc:
        return na(name, target, f"GUI not landed: {exc}")
    times = []
    with tempfile.TemporaryDirectory() as home:
        env = dict(_ENV, XDG_CONFIG_HOME=home, CAPTIONER_DATA_DIR=home, HOME=home)
        for i in range(runs + 1):
            t0 = time.monotonic()
            proc = subprocess.run(
                [sys.executable, "-m", "bench.gui", "first-paint"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
            )
            if proc.returncode == 3:
                return na(name, target, proc.stdout.strip().splitlines()[-1])
            if proc.returncode != 0 or "PAINT" not in proc.stdout:
                raise RuntimeError(f"the app did not paint its overlay: {proc.stderr.strip()[-400:]}")
            painted = float(proc.stdout.split("PAINT")[1].split()[0])
            if i:
                times.append(painted - t0)
    m = median(times)
    return Result(name, f"{m:.3f} s", target, m <= 0.4, f"median of {runs} warm runs (offscreen), min {min(times):.3f} s, max {max(times):.3f} s")


def run(quick: bool) -> list[Result]:
    return [cli_import(3 if quick else 10), transcribe_without_qt(), overlay_visible(1 if quick else 7)]
