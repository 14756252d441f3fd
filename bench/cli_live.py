"""Live captioning without Qt: what `captioner listen` costs, for comparison
with "app CPU" (same fake mic, same chatty AudioPod fake replying 50 ms after
each frame, journal on). The difference between the two is what hosting the
loop in Qt and drawing the two windows adds.

The child (`python -m bench.cli_live child <url> <key> <seconds> <wav>`) runs
`caption_source` on a plain asyncio loop, as the CLI does, and prints the CPU
of each third of the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def run(seconds: float, tls: bool = False) -> object:
    """With `tls`: the same over wss:// with a verified certificate, as every
    real endpoint is."""
    from bench.common import FakeProcess, Result, bench_dir, speech_wav, warm_up_s

    wav = speech_wav(bench_dir() / "speech48k2ch.wav")
    with FakeProcess("audiopod", chatty=True, tls=tls) as fake, tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_CONFIG_HOME=home, CAPTIONER_DATA_DIR=home, HOME=home)
        if fake.certificate is not None:
            env["SSL_CERT_FILE"] = str(fake.certificate)
        proc = subprocess.run(
            [sys.executable, "-m", "bench.cli_live", "child", fake.url, fake.key, str(seconds), str(wav)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=seconds + 60,
        )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("{")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"the live run without Qt failed (exit {proc.returncode}): {proc.stderr.strip()[-600:]}")
    r = json.loads(line)
    thirds = [c / w * 100 for c, w in r["windows"]]
    note = (
        f"{sum(w for _, w in r['windows']):.0f} s after {warm_up_s(seconds):g} s warm-up, in thirds: " + ", ".join(f"{t:.2f} %" for t in thirds)
        + f"; {r['events']} caption events; `captioner listen`'s path on a plain asyncio loop, no Qt, no meter; "
        "same fake mic and fake as \"app CPU\"" + (", over wss:// (verified self-signed certificate)" if tls else "")
    )
    name = "live captioning without Qt (CLI)" + (" over TLS" if tls else "")
    return Result(name, f"{min(thirds):.2f} %", "info", None, note)


def _child(url: str, key: str, seconds: float, wav: str) -> None:
    import asyncio
    import gc

    from bench import fakemic
    from bench.common import warm_up_s
    from captioner.captioning import CaptionJob, caption_source, make_session
    from captioner.stt.session import SessionConfig
    from captioner.transcript.journal import SessionJournal

    sources = fakemic.install(Path(wav))
    events = [0]

    def count(_event: object) -> None:
        events[0] += 1

    async def main() -> dict:
        source = sources.MicrophoneSource(None)
        session = make_session(CaptionJob("audiopod", {}, url), key, SessionConfig(url))
        journal = await asyncio.to_thread(SessionJournal.create, "audiopod", source.name)
        async with source:
            task = asyncio.ensure_future(caption_source(source, session, [journal, count], live=True))
            await asyncio.sleep(warm_up_s(seconds))  # connect, first frames
            gc.collect()
            gc.freeze()  # as the app freezes its start-up objects
            events[0] = 0
            windows = []
            for _ in range(3):
                c, w = time.process_time(), time.perf_counter()
                await asyncio.sleep(seconds / 3)
                windows.append((time.process_time() - c, time.perf_counter() - w))
            session.stop()
            await task
        journal.close()
        return {"windows": windows, "events": events[0]}

    print(json.dumps(asyncio.run(main())), flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "child":
        _child(sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5])
    else:
        print(__doc__)
