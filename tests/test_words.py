"""parse_words: the one reader of every provider's word-timestamp list. Each
case pins a rule the providers' tests rely on only indirectly."""

from __future__ import annotations

import pytest

from captioner.stt.events import Word
from captioner.stt.words import parse_words


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
