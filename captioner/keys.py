"""API keys: the OS keyring (service "captioner", one entry per provider), with
an environment override `CAPTIONER_<PROVIDER>_KEY` for headless use.

This is the only module that reads secrets. Nothing here logs or prints a key.
Keyring calls can block (D-Bus, a locked keychain prompt): GUI code calls the
`*_async` variants, which run them in a worker thread.
"""

from __future__ import annotations

import asyncio
import os
import unicodedata

import keyring
from keyring.backends import null
from keyring.errors import KeyringError, PasswordDeleteError

SERVICE = "captioner"


class KeyStoreError(RuntimeError):
    """The OS keyring is unavailable or refused the operation (message is safe to show)."""


class BadKey(KeyStoreError):
    """A key that cannot be one (a character pasted along with it)."""


def key_problem(key: str) -> str | None:
    """Why `key` cannot be an API key, or None. Keys are printable ASCII
    (they travel in HTTP headers and URLs; a space only as in Inworld's
    "Basic <key>", pasted with its scheme); a pasted "…", a zero-width space
    or a line break inside would otherwise fail as a network error, retried
    for half a minute. Names the character, never the key."""
    for i, ch in enumerate(key, 1):
        if not " " <= ch <= "~":
            name = unicodedata.name(ch, "").lower() or "a control character"
            return (f"it holds {name} (U+{ord(ch):04X}) at character {i}, which no API key has: "
                    "copy the key again from the provider's page")
    return None


def env_var(provider: str) -> str:
    return f"CAPTIONER_{provider.upper()}_KEY"


def get_key(provider: str) -> str | None:
    """The key for `provider`: the environment override first, then the keyring."""
    value = os.environ.get(env_var(provider))
    if value:
        return value.strip()
    try:
        stored = keyring.get_password(SERVICE, provider)
    except KeyringError as exc:
        raise KeyStoreError(_explain(exc, [provider])) from None
    return stored or None


def key_source(provider: str) -> str | None:
    """Where the key comes from ("environment" or "keyring"), or None."""
    if os.environ.get(env_var(provider)):
        return "environment"
    try:
        return "keyring" if keyring.get_password(SERVICE, provider) else None
    except KeyringError:
        return None


def key_sources(providers: list[str]) -> tuple[dict[str, str | None], KeyStoreError | None]:
    """Each provider's key_source, and, when the keyring could not be read,
    the error naming the environment variables of every provider that has
    no key there (their source is then None: unknown, not "no key")."""
    sources: dict[str, str | None] = {}
    unread: list[str] = []
    failure: Exception | None = None
    for provider in providers:
        if os.environ.get(env_var(provider)):
            sources[provider] = "environment"
            continue
        try:
            if _stores_nothing():
                raise KeyringError("stores nothing")
            sources[provider] = "keyring" if keyring.get_password(SERVICE, provider) else None
        except KeyringError as exc:
            sources[provider], failure = None, exc
            unread.append(provider)
    return sources, (KeyStoreError(_explain(failure, unread)) if failure is not None else None)


def check_keyring(provider: str) -> None:
    """Raise KeyStoreError when the keyring cannot hold `provider`'s key, so a
    CLI says so before the user types a key in vain. One read of the entry
    storing would replace (nothing is kept or shown); a keyring that needs
    unlocking asks now rather than after the key was typed. The null backend
    (PYTHON_KEYRING_BACKEND) accepts a key and drops it: refused too."""
    if _stores_nothing():
        raise KeyStoreError(_explain(KeyringError("stores nothing"), [provider]))
    try:
        keyring.get_password(SERVICE, provider)
    except KeyringError as exc:
        raise KeyStoreError(_explain(exc, [provider])) from None


def set_key(provider: str, key: str) -> None:
    key = key.strip()
    if not key:
        raise KeyStoreError("an empty key cannot be stored")
    problem = key_problem(key)
    if problem is not None:
        raise BadKey(f"the key was not stored: {problem}")
    try:
        keyring.set_password(SERVICE, provider, key)
    except KeyringError as exc:
        raise KeyStoreError(_explain(exc, [provider])) from None


def delete_key(provider: str) -> bool:
    """Remove the stored key; False when there was none."""
    if _stores_nothing():  # "deleted" would be a claim about a key it never held
        raise KeyStoreError(_explain(KeyringError("stores nothing"), [provider]))
    try:
        keyring.delete_password(SERVICE, provider)
    except PasswordDeleteError:
        return False
    except KeyringError as exc:
        raise KeyStoreError(_explain(exc, [provider])) from None
    return True


def _stores_nothing() -> bool:
    """The null backend (PYTHON_KEYRING_BACKEND): it accepts a key and drops it."""
    return isinstance(keyring.get_keyring(), null.Keyring)


def _explain(exc: Exception, providers: list[str]) -> str:
    backend = type(keyring.get_keyring()).__module__
    names = [env_var(p) for p in providers]
    where = (
        f"the environment variable {names[0]}" if len(names) == 1 else f"the environment variables {', '.join(names)}"
    )
    return (
        f"the OS keyring is not available ({type(exc).__name__}, backend {backend}). "
        "Unlock or install a keyring (GNOME Keyring, KWallet, macOS Keychain, Windows Credential Manager), "
        f"or set the key{'' if len(names) == 1 else 's'} in {where}"
    )


async def get_key_async(provider: str) -> str | None:
    return await asyncio.to_thread(get_key, provider)


async def set_key_async(provider: str, key: str) -> None:
    await asyncio.to_thread(set_key, provider, key)


async def delete_key_async(provider: str) -> bool:
    return await asyncio.to_thread(delete_key, provider)
