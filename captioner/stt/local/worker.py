"""The recognizer's own process: loads (or downloads) the engine, then turns
audio messages into results. It shares nothing with the GUI process but a
pipe, so a long decode never stalls the event loop (pocketsphinx holds the GIL
for up to a second at the end of a long utterance).

Messages in:  ("audio", pcm) · ("end",) · ("abort",)
Messages out: ("progress", done, total) · ("ready", label) · ("results", position, [RawResult])
              · ("error", code, message) · ("done",)
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any, Callable

from captioner.stt.local.options import LocalOptions


def load_engine(options: LocalOptions, progress: Callable[[int, "int | None"], None] | None = None, cancel: threading.Event | None = None) -> Any:
    """The engine the options name, downloading its model first if needed."""
    from captioner.stt.local.engines import PocketSphinxEngine, VoskEngine
    from captioner.stt.local.models import MODELS, default_model_root, ensure_model

    if options.engine == "pocketsphinx":
        return PocketSphinxEngine()
    spec = MODELS[options.engine]
    try:
        import vosk  # noqa: F401  (fail before a 40 MB download, not after)
    except ImportError:
        raise ImportError("vosk") from None
    root = Path(options.model_dir).expanduser() if options.model_dir else default_model_root()
    path = ensure_model(spec, root, progress, cancel, options.allow_unverified, options.model_url)
    return VoskEngine(path)


def engine_missing(name: str) -> str:
    """What to do when an engine's package is not there: pip, from a Python
    install; the installable app (frozen) cannot take packages."""
    if getattr(sys, "frozen", False):
        return (f"this build of Captioner does not include the {name} engine: choose the built-in one, or install "
                f"Captioner with pip (pip install 'captioner[{name}]') to use {name}")
    return f"the {name} package is not installed: pip install 'captioner[{name}]'"


def worker_main(conn: Any, options: LocalOptions) -> None:
    from captioner.stt.local.models import ModelError

    try:
        last = [-1]

        def progress(done: int, total: int | None) -> None:
            step = done * 200 // total if total else done >> 20  # ≤ 200 messages, or one per MiB
            if step != last[0]:
                last[0] = step
                conn.send(("progress", done, total))

        engine = load_engine(options, progress)
    except ModelError as exc:
        conn.send(("error", "MODEL_UNAVAILABLE", str(exc)))
        return
    except ImportError as exc:
        conn.send(("error", "ENGINE_MISSING", engine_missing(exc.name or str(exc))))
        return
    except Exception as exc:  # a broken model folder, an engine that will not start
        conn.send(("error", "ENGINE_FAILED", f"the offline recognizer could not start: {exc}"))
        return
    conn.send(("ready", engine.name))
    position = 0
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the app went away
        kind = message[0]
        try:
            if kind == "audio":
                position += len(message[1]) // 2
                conn.send(("results", position, engine.accept(message[1])))
            elif kind == "end":
                conn.send(("results", position, engine.finish()))
                conn.send(("done",))
                return
            else:
                return
        except (EOFError, OSError):
            return
        except Exception as exc:
            conn.send(("error", "ENGINE_FAILED", f"the offline recognizer failed: {exc}"))
            return
