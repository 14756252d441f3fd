"""API keys: the OS keyring (service "captioner", one entry per provider), with
an environment override `CAPTIONER_<PROVIDER>_KEY` for headless use.

This is the only module that reads secrets. Nothing here logs or prints a key.
Keyring calls can block (D-Bus, a locked keychain prompt): GUI code calls the
`*_async` variants, which run them in a worker thread.
"""

from __future__ import annotations

import asyncio
import os

import keyring
from keyring.errors import KeyringError, PasswordDeleteError

SERVICE = "captioner"


class KeyStoreError(RuntimeError):
    """The OS keyring is unavailable or refused the operation (message is safe to show)."""


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
        raise KeyStoreError(_explain(exc)) from None
    return stored or None


def key_source(provider: str) -> str | None:
    """Where the key comes from ("environment" or "keyring"), or None."""
    if os.environ.get(env_var(provider)):
        return "environment"
    try:
        return "keyring" if keyring.get_password(SERVICE, provider) else None
    except KeyringError:
        return None


def set_key(provider: str, key: str) -> None:
    key = key.strip()
    if not key:
        raise KeyStoreError("an empty key cannot be stored")
    try:
        keyring.set_password(SERVICE, provider, key)
    except KeyringError as exc:
        raise KeyStoreError(_explain(exc)) from None


def delete_key(provider: str) -> bool:
    """Remove the stored key; False when there was none."""
    try:
        keyring.delete_password(SERVICE, provider)
    except PasswordDeleteError:
        return False
    except KeyringError as exc:
        raise KeyStoreError(_explain(exc)) from None
    return True


def _explain(exc: Exception) -> str:
    backend = type(keyring.get_keyring()).__module__
    return (
        f"the OS keyring is not available ({type(exc).__name__}, backend {backend}). "
        "Unlock or install a keyring (GNOME Keyring, KWallet, macOS Keychain, Windows Credential Manager), "
        "or set the key in the environment variable CAPTIONER_<PROVIDER>_KEY"
    )


async def get_key_async(provider: str) -> str | None:
    return await asyncio.to_thread(get_key, provider)


async def set_key_async(provider: str, key: str) -> None:
    await asyncio.to_thread(set_key, provider, key)


async def delete_key_async(provider: str) -> bool:
    return await asyncio.to_thread(delete_key, provider)
