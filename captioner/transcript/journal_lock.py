"""Whether a journal is being written right now, by this process or another.

A running session holds an advisory lock (`flock`) on its journal for as long
as it writes it. The OS drops the lock when the process dies, so a crash
leaves exactly what recovery should offer: an unfinished journal nobody holds.
A second Captioner must not offer a live journal for recovery, append to it
(a rename or a "recovered" mark would land in the middle of the writer's next
line), or delete it.

POSIX only (Linux, macOS). On Windows there is no such lock here and a
second running instance is not detected.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


class SessionInUse(OSError):
    """The journal belongs to a session that is still running."""

    def __init__(self, path: Path) -> None:
        super().__init__(errno.EBUSY, "this session is still being recorded by a running Captioner", str(path))


def hold(fd: int) -> None:
    """Lock a new journal for its writer. Best effort: on a filesystem without
    locks the session records all the same."""
    if fcntl is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        pass


def claim(f: IO[bytes], path: Path) -> None:
    """Lock an open journal before changing it (held until `f` is closed);
    `SessionInUse` when its session is still running."""
    if fcntl is None:
        return
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SessionInUse(path) from None
    except OSError:
        pass  # no locks on this filesystem


def in_use(path: Path) -> bool:
    """Whether a running session holds the journal."""
    if fcntl is None:
        return False
    try:
        with open(path, "rb") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            except OSError:
                return False
            return False  # closing the file drops the probe's lock
    except OSError:
        return False
