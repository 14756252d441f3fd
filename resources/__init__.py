"""Captioner's resource files (icons, desktop entry, AppStream metadata),
installed as the package `captioner.resources`."""
