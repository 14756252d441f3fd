"""parse_words: the one reader of every provider's word-timestamp list. Each
case pins a rule the providers' tests rely on only indirectly."""

from __future__ import annotations

import pytest

from captioner.stt.events import Word
from captioner.stt.words import UnitlessWordTimes, guess_units, parse_words


def test_seconds_and_milliseconds_by_key_and_by_units():
    items = [
        {"word": "a", "start": 1.5, "end": 2.0, "confidence": 0.9},
        {"word": "b", "startTimeMs": 2000, "endTimeMs": 2500},
        {"text": "c", "startTimeSeconds": "3", "endTimeSeconds": 3.25, "speaker": 2},
    ]
    assert parse_words(items) == (
        Word("a", 1.5, 2.0, 0.9, None),
        Word("b", 2.0, 2.5, None, None),
        Word("c", 3.0, 3.25, None, "2"),
    )
    # unit-less start/end follow `units`; keys that name their unit do not
    ms = parse_words([{"word": "a", "start": 1500, "end": 2000}, {"word": "b", "start_ms": 2000, "end_ms": 2100}], "ms")
    assert ms == (Word("a", 1.5, 2.0), Word("b", 2.0, 2.1))


def test_the_first_usable_key_wins():
    # punctuated_word before word; a non-string text key is passed over
    assert parse_words([{"punctuated_word": "Hi,", "word": "hi", "start": 0, "end": 1}])[0].text == "Hi,"
    assert parse_words([{"punctuated_word": 5, "word": " hi ", "start": 0, "end": 1}])[0].text == "hi"
    # a time key whose value is not a number gives way to the next variant
    item = {"word": "x", "startTimeMs": "soon", "start": 2, "end": 3}
    assert parse_words([item]) == (Word("x", 2.0, 3.0),)
    # "speaker" is taken even when null; then speaker_id, then speakerId
    assert parse_words([{"word": "x", "start": 0, "speaker": None, "speaker_id": 1}])[0].speaker is None
    assert parse_words([{"word": "x", "start": 0, "speaker_id": 1, "speakerId": 2}])[0].speaker == "1"
    assert parse_words([{"word": "x", "start": 0, "speakerId": "S"}])[0].speaker == "S"
    assert parse_words([{"word": "x", "start": 0, "speaker": {"id": 1}}])[0].speaker is None


@pytest.mark.parametrize(
    "item",
    [
        None,
        "word",
        {"start": 0, "end": 1},  # no text
        {"word": "x"},  # no time
        {"word": "x", "start": True, "end": 1},  # a boolean is not a time
        {"word": 7, "start": 0, "end": 1},
    ],
)
def test_unusable_items_are_skipped_not_guessed(item):
    good = {"word": "ok", "start": 0.0, "end": 0.5}
    assert parse_words([item, good]) == (Word("ok", 0.0, 0.5),)


def test_missing_or_backwards_end_never_makes_a_negative_word():
    assert parse_words([{"word": "x", "start": 2.0}]) == (Word("x", 2.0, 2.0),)
    assert parse_words([{"word": "x", "start": 2.0, "end": 1.0}]) == (Word("x", 2.0, 2.0),)
    assert parse_words([{"word": "x", "start": 2, "end": "bad"}]) == (Word("x", 2.0, 2.0),)


def test_not_a_list_is_no_words():
    assert parse_words(None) == ()
    assert parse_words({"word": "x", "start": 0}) == ()


# ------------------------------------------------ unit-less times: s or ms?
@pytest.mark.parametrize(
    "items, audio_sent, guess",
    [
        ([{"word": "a", "start": 1.2, "end": 1.5}, {"word": "b", "start": 1.6, "end": 2.0}], 3.0, ("s", True)),
        ([{"word": "a", "start": 1200, "end": 1500}, {"word": "b", "start": 1600, "end": 2000}], 3.0, ("ms", True)),
        # the lengths decide even where the place could not: 40 min in, "500" could be either
        ([{"word": "a", "start": 2400.1, "end": 2400.5}], 2401.0, ("s", True)),
        ([{"word": "a", "start": 100, "end": 500}], 2401.0, ("ms", True)),
        # one-instant words: only their place can tell, and not for sure
        ([{"word": "a", "start": 900, "end": 900}], 3.0, ("ms", False)),
        ([{"word": "a", "start": 2.5, "end": 2.5}], 3.0, ("s", False)),
        # times whose key names the unit, or none at all: nothing to guess
        ([{"word": "a", "startTimeMs": 900, "endTimeMs": 1200}], 3.0, ("s", False)),
        ([], 3.0, ("s", False)),
    ],
)
def test_the_unit_of_unitless_times_is_told_from_the_words(items, audio_sent, guess):
    assert guess_units(items, audio_sent) == guess


def test_auto_units_are_kept_once_sure_and_a_chosen_unit_is_never_guessed():
    times = UnitlessWordTimes("auto")
    assert times.parse([{"word": "a", "start": 900, "end": 900}], 3.0) == (Word("a", 0.9, 0.9),)
    assert times.units is None  # a guess: asked again
    assert times.parse([{"word": "b", "start": 1000, "end": 1500}], 3.0) == (Word("b", 1.0, 1.5),)
    assert times.units == "ms"
    # kept: a later one-instant word at 2.5 is 2.5 ms, as the provider's other times are
    assert times.parse([{"word": "c", "start": 2.5, "end": 2.5}], 3.0) == (Word("c", 0.0025, 0.0025),)
    assert UnitlessWordTimes("s").parse([{"word": "a", "start": 1000, "end": 1400}], 3.0) == (Word("a", 1000.0, 1400.0),)
