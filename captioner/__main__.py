"""`python -m captioner` is the same as the `captioner` command."""

from captioner.cli import main

raise SystemExit(main())
