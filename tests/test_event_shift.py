"""`shifted` builds events field by field (for speed): it must carry every
field, so a field added later and not carried over fails here."""

from __future__ import annotations

import dataclasses

from captioner.stt.events import Final, Partial, Word


def _values(obj: object) -> dict:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}  # type: ignore[arg-type]


def test_shifted_moves_times_and_keeps_every_other_field():
    w = Word("hi", 1.0, 1.5, 0.9, "2")
    assert _values(w.shifted(2.0)) == _values(w) | {"start": 3.0, "end": 3.5}
    f = Final("hi", 1.0, 1.5, (w,), "2", False, False)
    g = f.shifted(2.0)
    assert _values(g) == _values(f) | {"start": 3.0, "end": 3.5, "words": (w.shifted(2.0),)}
    p = Partial("hi", 1.0, 1.5, "1")
    assert _values(p.shifted(2.0)) == _values(p) | {"start": 3.0, "end": 3.5}
    assert Partial("hi").shifted(2.0) == Partial("hi")  # untimed stays untimed
    # every field differs from its default above, so a dropped one would show
    for obj in (w, f, p):
        defaults = {fl.name: fl.default for fl in dataclasses.fields(obj)}  # type: ignore[arg-type]
        assert all(v != defaults[k] for k, v in _values(obj).items()), obj


def test_a_zero_shift_is_the_same_object():
    """Events are frozen, so a zero shift (one connection, no holes: the usual
    case) hands the provider's event on as it is instead of copying it."""
    w = Word("hi", 1.0, 1.5)
    for obj in (w, Final("hi", 1.0, 1.5, (w,)), Partial("hi", 1.0)):
        assert obj.shifted(0.0) is obj
        assert obj.shifted(1e-3) is not obj
