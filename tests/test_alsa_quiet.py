"""libasound's own error lines ("ALSA lib pulse.c:242:(pulse_connect) …")
stay off the terminal once capture is loaded, and are kept for the debug log."""

from __future__ import annotations

import ctypes.util
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or ctypes.util.find_library("asound") is None, reason="libasound is Linux's"
)

PROBE = """
import ctypes
import captioner.audio.sources as sources
sources._sd()  # what every device listing and capture does first
lib = ctypes.CDLL("libasound.so.2")
pcm = ctypes.c_void_p()
print(lib.snd_pcm_open(ctypes.byref(pcm), b"captioner_no_such_pcm", 1, 0))
from captioner.audio import alsa
print(list(alsa.recent))
"""


def test_libasound_errors_are_kept_off_stderr():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "ALSA lib" not in out.stderr
    code, recent = out.stdout.splitlines()[-2:]
    assert int(code) < 0  # the open did fail…
    assert "Unknown PCM" in recent  # …and the message is kept, not lost
