"""Entry point of the bundled app (PyInstaller needs a script, not a module)."""

import multiprocessing

from captioner.cli import main

if __name__ == "__main__":
    # The offline engine recognizes in a spawned worker process: in a frozen
    # app that child is this executable again, and freeze_support() runs it.
    multiprocessing.freeze_support()
    raise SystemExit(main())
