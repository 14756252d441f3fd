"""A keyring backend for CLI subprocesses (PYTHON_KEYRING_BACKEND=
tests.file_keyring.FileKeyring): entries in the JSON file named by
$TEST_KEYRING_FILE, so a test can see what `captioner keys set` stored
without touching a real keyring. Tests only; never a real key."""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class FileKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def _path(self) -> Path:
        return Path(os.environ["TEST_KEYRING_FILE"])

    def _load(self) -> dict[str, str]:
        path = self._path()
        return json.loads(path.read_text()) if path.exists() else {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}/{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        store = self._load()
        store[f"{service}/{username}"] = password
        self._path().write_text(json.dumps(store))

    def delete_password(self, service: str, username: str) -> None:
        store = self._load()
        if store.pop(f"{service}/{username}", None) is None:
            raise PasswordDeleteError("no such password")
        self._path().write_text(json.dumps(store))
