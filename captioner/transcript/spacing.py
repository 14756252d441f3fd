"""Where caption text may break between words, shared by the transcript,
its exports and the windows (a module of its own: the overlay needs it
before its first paint, without the transcript model)."""

from __future__ import annotations

import re

# Whitespace a line may break at: str.split()'s, less the no-break spaces
# (U+00A0, U+2007 figure, U+202F narrow) that hold "10 000 €" and "Paris !"
# together, and the ideographic space U+3000, a full-width character of its own.
_BREAKING_SPACES = re.compile("[\t-\r\x1c-\x20\x85\u1680\u2000-\u2006\u2008-\u200a\u2028\u2029\u205f]+")


def split_words(text: str) -> list[str]:
    """`text.split()` that keeps no-break and ideographic spaces inside words."""
    if text.isascii():
        return text.split()
    return [w for w in _BREAKING_SPACES.split(text) if w]


def single_spaced(text: str) -> str:
    """Words joined by one space: what a caption line shows."""
    return " ".join(split_words(text))
