"""Keep ALSA's own error lines off the terminal.

libasound prints its errors to stderr itself ("ALSA lib pulse.c:242:
(pulse_connect) PulseAudio: Unable to connect: Connection refused") while a
device is opened or dies — from PortAudio's threads too, in the middle of the
CLI's output. Our own messages already say what happened in words, so the
library's handler is replaced (snd_lib_error_set_handler, its documented hook)
by one that only keeps the last lines for the debug log.

PortAudio's "Expression '…' failed in 'src/hostapi/alsa/pa_linux_alsa.c'"
lines are another matter: its debug-print hook (PaUtil_SetDebugPrintFunction)
is not exported by the distributions' libportaudio, and the only other way —
pointing fd 2 elsewhere — would also hide Python's own crash reports.
"""

from __future__ import annotations

import atexit
import collections
import ctypes
import ctypes.util
import threading
from typing import Any

#: The last lines libasound reported (file:line function: format), newest last.
recent: collections.deque[str] = collections.deque(maxlen=20)

# file, line, function, err, fmt, ... (variadic: the fixed arguments are read the
# same way on x86-64 and AArch64 Linux, the only places libasound runs)
_HANDLER_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p)
_lock = threading.Lock()
_state: dict[str, Any] = {}


def _keep(file: bytes | None, line: int, function: bytes | None, err: int, fmt: bytes | None) -> None:
    # Any thread (PortAudio's too): no I/O, only a bounded, thread-safe append.
    text = (fmt or b"").decode("utf-8", "replace").strip()
    recent.append(f"{(file or b'?').decode('utf-8', 'replace')}:{line} {(function or b'?').decode('utf-8', 'replace')}: {text}")


def quiet_errors() -> bool:
    """Install the handler once; False where libasound is not there."""
    with _lock:
        if "set" in _state:
            return _state["set"] is not None
        _state["set"] = None
        name = ctypes.util.find_library("asound") or "libasound.so.2"
        try:
            set_handler = ctypes.CDLL(name).snd_lib_error_set_handler
        except (OSError, AttributeError):
            return False
        set_handler.argtypes = [_HANDLER_TYPE]
        set_handler.restype = ctypes.c_int
        handler = _HANDLER_TYPE(_keep)
        if set_handler(handler) != 0:
            return False
        _state["set"], _state["handler"] = set_handler, handler  # the handler must outlive every call
        # Before the interpreter goes (and sounddevice's own exit handler,
        # registered earlier, runs after this one): libasound's default again,
        # so no late error calls into a finalized Python.
        atexit.register(_restore)
        return True


def _restore() -> None:
    with _lock:
        set_handler = _state.get("set")
        if set_handler is not None:
            set_handler(_HANDLER_TYPE())  # a NULL handler: libasound's default again
            _state["set"] = None
            _state["restored"] = True
