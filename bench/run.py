"""Run Captioner's benchmarks and print one table.

    python bench/run.py            # everything, full length (several minutes)
    python bench/run.py --quick    # the same benchmarks, short (~50 s), for CI
    python bench/run.py --only cpu,export

Run from the repository root with the project's venv. Exit status is 0 unless
a benchmark crashed: a missed target is a finding, not a failure (machines are
noisy). Pieces that have not landed (a provider, the GUI) show as n/a.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from bench.common import NotAvailable, Result  # noqa: E402



def plan(quick: bool) -> list[tuple[str, str, str, Callable[[], list[Result]]]]:
    """(group, name, target, thunk) for every benchmark."""
    from bench import cli_live, exports, floor, gui, latency, local_engine, longrun, pulse_capture, reconnect, startup, streaming

    audio_s = 60.0 if quick else 3600.0
    items: list[tuple[str, str, str, Callable[[], list[Result]]]] = []
    for p in streaming.BINARY + streaming.JSON_B64:
        items.append(("cpu", f"CPU/audio-hour {p}", f"<= {streaming.TARGET[p]:g} s",
                      lambda p=p: [streaming.cpu_per_hour(p, audio_s, 1 if quick else 3)]))
    for p in ("audiopod", "voicerun"):  # one binary, one base64/JSON provider: what wss:// adds
        items.append(("tls", f"CPU/audio-hour {p} over TLS", "info",
                      lambda p=p: [streaming.cpu_per_hour(p, audio_s, 1 if quick else 3, tls=True)]))
    items.append(("app", "app CPU, live + overlay", "<= 2 % core", lambda: gui.app_cpu(2.0 if quick else 60.0)))
    items.append(("app", "app CPU, overlay only", "info", lambda: gui.app_cpu(2.0 if quick else 60.0, control_window=False)))
    items.append(("app", "app floor", "info", lambda: [floor.run(1.5 if quick else 30.0)]))
    items.append(("app", "live without Qt", "info", lambda: [cli_live.run(1.5 if quick else 60.0)]))
    items.append(("capture", "app CPU, real capture of a PulseAudio monitor, nothing else playing", "info", lambda: [pulse_capture.run(2.0 if quick else 60.0, call_app=False)]))
    items.append(("capture", "app CPU, real capture of a PulseAudio monitor, a call app playing (20 ms)", "info", lambda: [pulse_capture.run(2.0 if quick else 60.0, call_app=True)]))
    items.append(("tls", "live without Qt over TLS", "info", lambda: [cli_live.run(1.5 if quick else 60.0, tls=True)]))
    items.append(("sdk", "CPU vs AudioPod SDK", "<= 1.00", lambda: [streaming.versus_sdk(30.0 if quick else 1200.0)]))
    items.append(("latency", "latency callback→socket", "<= 5 ms p99", lambda: [latency.callback_to_socket(4.0 if quick else 60.0)]))
    items.append(("long", "long session", "", lambda: longrun.run(0.15 if quick else 8.0)))
    items.append(("events", "per-event cost", "", lambda: longrun.per_event_cost(quick)))
    items.append(("export", "export 8 h", "<= 0.1 s", lambda: exports.run(quick)))
    items.append(("startup", "start-up", "", lambda: startup.run(quick)))
    items.append(("reconnect", "reconnect", "<= 1 s p50", lambda: [reconnect.run(1 if quick else 12, quick=quick)]))
    items.append(("local", "offline engine", "", lambda: local_engine.run(quick)))
    return items


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short runs (seconds), for CI")
    ap.add_argument("--only", help="comma-separated groups: cpu, tls, app, capture, sdk, latency, long, events, export, startup, reconnect, local")
    args = ap.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    results: list[Result] = []
    crashed = False
    started = time.perf_counter()
    print(f"Captioner benchmarks ({'quick' if args.quick else 'full'}; {os.cpu_count()} cores; Python {sys.version.split()[0]})", flush=True)
    for group, name, target, thunk in plan(args.quick):
        if only and group not in only:
            continue
        t0 = time.perf_counter()
        try:
            got = thunk()
        except NotAvailable as exc:
            got = [Result(name, "n/a (not available)", target, None, str(exc))]
        except Exception as exc:  # a crash: reported, and the exit status says so
            crashed = True
            traceback.print_exc()
            got = [Result(name, "ERROR", target, False, f"{type(exc).__name__}: {exc}")]
        names = ", ".join(r.name for r in got)
        print(f"  ran {names} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)
        results.extend(got)
    width = max([34] + [len(r.name) for r in results])  # long names keep the columns aligned
    header = f"{'benchmark':<{width}} {'figure':>22}  {'target':<18} {'result':<6}"
    print()
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r.name:<{width}} {r.figure:>22}  {r.target:<18} {r.verdict:<6}")
    print()
    print("notes:")
    for r in results:
        if r.note:
            print(f"  {r.name}: {r.note}")
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
