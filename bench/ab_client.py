"""Our streaming client alone, for an A/B between two source trees.

    python bench/ab_client.py <tree> [runs]

runs the SDK comparison's client side from <tree> (a checkout or a `git
worktree`): `StreamSession` streaming 1200 s of 16 kHz PCM, unpaced, to the
AudioPod fake in its own process, `runs` times (default 5), and prints each
run's CPU seconds and the best. This machine drifts by ±25 %: alternate the
two trees a few times and compare the bests, never one run against another.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from pathlib import Path


def main() -> None:
    if len(sys.argv) < 2:
        print(__doc__)
        raise SystemExit(2)
    tree = str(Path(sys.argv[1]).resolve())
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    sys.path.insert(0, tree)  # the tree's captioner and bench, not the installed ones
    from bench import streaming
    from bench.common import FakeProcess

    frames = streaming._pcm_frames(1200.0)
    cpu = []
    for _ in range(runs):
        with FakeProcess("audiopod") as fake:
            gc.collect()
            gc.freeze()  # as bench.common.settled_heap (kept here: older trees lack it)
            try:
                seconds, _finals = asyncio.run(streaming._ours(fake, frames))
            finally:
                gc.unfreeze()
        cpu.append(seconds)
    print(f"{tree}: best {min(cpu):.3f} CPU-s of {runs}: " + " ".join(f"{c:.3f}" for c in cpu))


if __name__ == "__main__":
    main()
