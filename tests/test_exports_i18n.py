"""Exports of text that is not English-like: Chinese and Japanese (written
without spaces), no-break spaces, and subtitle-format special characters."""

from __future__ import annotations

import json

from captioner.stt.events import Final, Word
from captioner.transcript.export import to_json, to_srt, to_txt, to_vtt
from captioner.transcript.model import Transcript
from captioner.transcript.segmentation import CueRules
from tests.test_exports import parse_srt_strict, parse_vtt_strict

JAPANESE = ("今日は良い天気です。明日も晴れるでしょう。東京では桜が咲き始めました。"
            "週末には多くの人が花見に出かける予定です。「iPhone」を2024年に買った人も来ます。")
NO_LINE_START = set("、。，」』）っゃゅょ")


def columns(line: str) -> int:
    """Display width: a CJK character takes two columns."""
    return sum(2 if "\u3000" <= ch <= "\u9fff" or "\uff01" <= ch <= "\uff60" else 1 for ch in line)


def transcript(*finals: Final) -> Transcript:
    t = Transcript(provider="audiopod", source="a.wav")
    for f in finals:
        t.apply(f)
    return t


def test_japanese_without_word_times_is_wrapped_and_cut_like_any_language():
    """One 20-s final with no spaces was one cue of 138 characters on one line."""
    cues = parse_srt_strict(to_srt(transcript(Final(JAPANESE, 0.0, 20.0, (), timed=True))))
    assert len(cues) >= 4
    for start, end, lines in cues:
        assert len(lines) <= 2 and end - start <= 7.0 + 1e-9
        assert all(len(line) <= 21 for line in lines), lines  # full width: 21 characters fill 42 columns
        assert all(line[0] not in NO_LINE_START and line[-1] not in "「『（" for line in lines), lines
    assert "".join("".join(lines) for _, _, lines in cues) == JAPANESE.replace(" ", "")  # nothing lost, no space added
    assert all(a[1] <= b[0] for a, b in zip(cues, cues[1:]))


def test_japanese_word_times_do_not_put_spaces_between_words():
    words = (Word("今日", 0.0, 0.6), Word("は", 0.6, 0.8), Word("良い", 0.8, 1.4), Word("天気", 1.4, 2.2), Word("です。", 2.2, 3.0))
    t = transcript(Final("今日は良い天気です。", 0.0, 3.0, words))
    assert parse_srt_strict(to_srt(t))[0][2] == ["今日は良い天気です。"]
    assert parse_vtt_strict(to_vtt(t))[0][2] == ["今日は良い天気です。"]


def test_latin_words_inside_japanese_keep_their_spaces_and_cut_at_characters():
    t = transcript(Final("John と Mary は明日の会議に来ます。", 0.0, 3.0, ()))
    assert parse_srt_strict(to_srt(t))[0][2] == ["John と Mary は明日の会議に来ます。"]
    narrow = CueRules(max_chars_per_line=16)
    lines = [line for _, _, ls in parse_srt_strict(to_srt(t, narrow)) for line in ls]
    assert "".join(lines).replace(" ", "") == "JohnとMaryは明日の会議に来ます。"
    assert len(lines) == 2 and all(columns(line) <= 16 + 2 for line in lines), lines  # a closing mark may overhang


def test_chinese_and_japanese_cues_are_held_for_their_reading_speed():
    """~4 characters a second, not the 20 of Latin script: a 10-character
    sentence said in 1 s stays up 2.5 s into the pause after it (it left
    after 0.8 s), a Latin one of the same length is not held longer."""
    for text in ("明日も晴れるでしょう。", "今天天气很好我们走吧"):
        t = transcript(Final(text, 0.0, 1.0, ()), Final("次", 10.0, 10.5, ()))
        (start, end, _), _ = parse_srt_strict(to_srt(t))
        assert start == 0.0 and abs(end - len(text) * 5 / 20) < 0.002, (text, end)
    t = transcript(Final("ten chars.", 0.0, 1.0, ()), Final("next", 10.0, 10.5, ()))
    (start, end, _), _ = parse_srt_strict(to_srt(t))
    assert end == 1.0
    mixed = transcript(Final("iPhoneを買った", 0.0, 1.0, ()), Final("次", 10.0, 10.5, ()))
    (_, end, _), _ = parse_srt_strict(to_srt(mixed))
    assert abs(end - (6 + 4 * 5) / 20) < 0.002  # the Latin letters at their own speed


def test_no_break_spaces_survive_every_format():
    """French "10 000 €" and "Paris !" hold narrow no-break spaces; they
    became ordinary spaces (a line could break there) in every file."""
    text = "Il coûte 10\u202f000\u00a0€ à Paris\u202f!"
    t = transcript(Final(text, 0.0, 2.0, ()))
    assert to_txt(t) == text + "\n"
    assert json.loads(to_json(t))["segments"][0]["text"] == text
    assert parse_srt_strict(to_srt(t))[0][2] == [text]
    assert parse_vtt_strict(to_vtt(t))[0][2] == [text]
    long = transcript(Final(" ".join([text] * 3), 0.0, 6.0, ()))  # wrapped: never broken at a no-break space
    lines = [line for _, _, ls in parse_srt_strict(to_srt(long)) for line in ls]
    assert " ".join(lines) == " ".join([text] * 3) and len(lines) > 1


def test_an_arrow_in_a_caption_is_escaped_in_vtt_not_rewritten():
    t = transcript(Final("use a --> b", 0.0, 1.0, ()))
    assert parse_vtt_strict(to_vtt(t))[0][2] == ["use a --&gt; b"]


def test_cues_keep_the_punctuation_and_capitals_of_the_final_when_its_words_lack_them():
    """Cues are built from word times; words sent bare ("hello" for "Hello,")
    lost the text's punctuation and capitals in SRT and VTT."""
    words = (Word("hello", 0.0, 0.4), Word("world", 0.5, 0.9), Word("it's", 1.0, 1.2), Word("three", 1.3, 1.6),
             Word("pm", 1.7, 2.0))
    t = transcript(Final("Hello, world! It's 3 p.m.", 0.0, 2.0, words))
    assert parse_srt_strict(to_srt(t))[0][2] == ["Hello, world! It's three p.m."]  # "3" is not "three": kept
    assert json.loads(to_json(t))["segments"][0]["words"][0]["text"] == "hello"  # the data stays the provider's
    other = transcript(Final("Hello there, world.", 0.0, 2.0, words[:2]))  # counts differ: words as sent
    assert parse_srt_strict(to_srt(other))[0][2] == ["hello world"]


def test_a_final_of_only_invisible_characters_makes_no_empty_cue():
    t = transcript(Final("first", 0.0, 1.0, ()), Final("\u200b\u200f", 1.0, 2.0, ()), Final("zero\u200bwidth", 2.0, 3.0, ()))
    assert [lines for _, _, lines in parse_srt_strict(to_srt(t))] == [["first"], ["zero\u200bwidth"]]
