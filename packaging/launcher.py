"""Entry point of the bundled app (PyInstaller needs a script, not a module)."""

from captioner.cli import main

raise SystemExit(main())
