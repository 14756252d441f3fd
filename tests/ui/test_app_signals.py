"""The desktop app started from a terminal ends on Ctrl-C, SIGTERM and
SIGHUP as the Quit button ends it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 0), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_quits_the_app_gracefully(tmp_path, signum, code):
    """Ctrl-C printed a KeyboardInterrupt traceback from a Qt callback and the
    app went on; SIGTERM ended it at once with its session left unfinished."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "cfg"),
               CAPTIONER_DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from captioner.app import main; sys.exit(main([]))"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    settings = tmp_path / "cfg" / "Captioner" / "Captioner.ini"
    deadline = time.monotonic() + 30
    while not settings.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)  # the settings file is written once the windows are up
    time.sleep(1.0)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signum)
    try:
        out, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the app did not quit on the signal")
    assert proc.returncode == code, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


# The app, with its start-up held up for 3 s once the windows are being built
# (a busy machine): says STARTING on stderr when a signal can come.
_SLOW_START = """
import sys, time
import captioner.app as app
build = app.CaptionerApp.__init__
def slow(self, *args, **kwargs):
    print("STARTING", file=sys.stderr, flush=True)
    time.sleep(3)
    build(self, *args, **kwargs)
app.CaptionerApp.__init__ = slow
sys.exit(app.main([]))
"""


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 0), (signal.SIGTERM, 143)])
def test_a_signal_during_start_up_quits_gracefully_once_it_can(tmp_path, signum, code):
    """Start-up takes seconds on a busy machine; a signal in them killed the
    app on the spot (SIGTERM: -15, nothing saved) or printed a
    KeyboardInterrupt traceback (Ctrl-C). It is held, and the app quits as
    Quit does once it is up (its settings are written)."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "cfg"),
               CAPTIONER_DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_START], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    before = []  # Qt's offscreen notes ("This plugin does not support raise()") may come first
    while (line := proc.stderr.readline()) and line.strip() != "STARTING":
        before.append(line)
    assert line.strip() == "STARTING", "".join(before)
    proc.send_signal(signum)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the app did not quit on a signal sent during start-up")
    assert proc.returncode == code, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert (tmp_path / "cfg" / "Captioner" / "Captioner.ini").exists()  # quit as Quit does: settings saved
