"""Typed, validated provider options built from strings (CLI, settings).

Each provider module declares a frozen dataclass of its options; field
metadata carries the help text and allowed values. This module turns a
mapping of strings into that dataclass or a clear `OptionError`, before any
connection is attempted.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Mapping, TypeVar

T = TypeVar("T")


class OptionError(ValueError):
    """An option that the provider cannot take, in words."""


def option(default: Any, help: str, choices: tuple[Any, ...] | None = None) -> Any:
    """Declare one option field with its help and, optionally, allowed values."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices})


def _convert(name: str, kind: Any, raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin is typing.Union or (origin is not None and type(None) in args):
        if raw.lower() in ("", "none", "null", "auto"):
            return None
        kind = next(a for a in args if a is not type(None))
    if kind is bool:
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise OptionError(f"option {name!r} takes true or false, got {raw!r}")
    if kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            raise OptionError(f"option {name!r} takes a number, got {raw!r}") from None
    return raw


def build_options(cls: type[T], values: Mapping[str, Any]) -> T:
    """Make `cls` from `values`, converting strings and checking choices."""
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise OptionError(
            f"unknown option(s) {', '.join(unknown)}; this provider takes: {', '.join(sorted(known))}"
        )
    converted: dict[str, Any] = {}
    for name, raw in values.items():
        value = _convert(name, hints[name], raw)
        choices = known[name].metadata.get("choices")
        if choices and value is not None and value not in choices:
            raise OptionError(f"option {name!r} must be one of {', '.join(map(str, choices))}; got {value!r}")
        converted[name] = value
    obj = cls(**converted)
    check = getattr(obj, "validate", None)
    if callable(check):
        check()
    return obj


def describe_options(cls: type) -> list[tuple[str, Any, str, tuple[Any, ...] | None]]:
    """(name, default, help, choices) of each option, for `providers` and the GUI."""
    return [
        (f.name, f.default, f.metadata.get("help", ""), f.metadata.get("choices"))
        for f in dataclasses.fields(cls)
    ]
