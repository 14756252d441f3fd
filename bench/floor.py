"""The floor under "app CPU": what a process costs that only wakes as the live
app must, and does nothing else.

The child (`python -m bench.floor child <seconds>`) runs a shown QWidget
(offscreen) on Captioner's event loop. A thread stands in for PortAudio: every
100 ms it copies a 48 kHz stereo float32 block and hands it over with
`call_soon_threadsafe`, as the capture callback does. The loop writes a few
bytes per block to a socket; a peer process answers each 50 ms later, as the
benchmark's fake provider does. No conversion, no WebSocket, no captions, no
paints: the difference between this and "app CPU" is Captioner's own work.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

_PEER = """
import socket, sys, time
s = socket.socket(fileno=int(sys.argv[1]))
while True:
    data = s.recv(4096)
    if not data:
        break
    time.sleep(0.05)
    s.sendall(b"x" * 200)
"""


def run(seconds: float) -> object:
    from bench.common import Result, warm_up_s

    proc = subprocess.run(
        [sys.executable, "-m", "bench.floor", "child", str(seconds)],
        cwd=ROOT, env=dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT)),
        capture_output=True, text=True, timeout=seconds + 60,
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("{")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"the floor run failed (exit {proc.returncode}): {proc.stderr.strip()[-600:]}")
    r = json.loads(line)
    note = (
        f"{r['seconds']:.0f} s after {warm_up_s(seconds):g} s warm-up: {r['blocks']} hand-offs and {r['replies']} socket replies, nothing "
        "else (Qt offscreen, a shown widget, Captioner's event loop, a capture-like thread); "
        "what \"app CPU\" adds to this is Captioner's own work"
    )
    return Result("app floor: Qt + loop woken 20/s, no work", f"{r['percent']:.2f} %", "info", None, note)


def _child(seconds: float) -> None:
    import asyncio

    import numpy as np
    from PySide6.QtWidgets import QApplication, QWidget

    from bench.common import warm_up_s
    from captioner.ui.event_loop import CaptionerEventLoop

    app = QApplication([])
    widget = QWidget()
    widget.resize(400, 120)
    widget.show()
    loop = CaptionerEventLoop(app)
    asyncio.set_event_loop(loop)
    ours, theirs = socket.socketpair()
    peer = subprocess.Popen([sys.executable, "-c", _PEER, str(theirs.fileno())], pass_fds=(theirs.fileno(),))
    theirs.close()
    ours.setblocking(False)
    counts = {"blocks": 0, "replies": 0}

    def on_block(block: np.ndarray) -> None:
        counts["blocks"] += 1
        ours.send(b"f" * 100)

    def on_reply() -> None:
        try:
            ours.recv(4096)
            counts["replies"] += 1
        except BlockingIOError:
            pass

    loop.add_reader(ours.fileno(), on_reply)
    stop = threading.Event()

    def capture() -> None:
        indata = np.zeros((4800, 2), np.float32)
        t0, k = time.perf_counter(), 0
        while not stop.is_set():
            k += 1
            delay = t0 + k * 0.1 - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            try:
                loop.call_soon_threadsafe(on_block, indata.copy())
            except RuntimeError:
                return

    threading.Thread(target=capture, daemon=True).start()

    async def measure() -> dict:
        await asyncio.sleep(warm_up_s(seconds))
        before = dict(counts)
        c0, t0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        stop.set()
        return {"percent": cpu / wall * 100, "seconds": wall,
                "blocks": counts["blocks"] - before["blocks"], "replies": counts["replies"] - before["replies"]}

    with loop:
        result = loop.run_until_complete(measure())
    ours.close()
    peer.wait(5)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "child":
        _child(float(sys.argv[2]))
    else:
        print(__doc__)
