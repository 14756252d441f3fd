"""Exports validated by strict parsers: SRT, WebVTT, TXT, JSON round trip."""

from __future__ import annotations

import json
import os
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from captioner.stt.events import Final, Gap, Partial, Word
from captioner.transcript import segmentation as seg
from captioner.transcript.export import ExportError, _timing, export, from_json, to_json, to_srt, to_txt, to_vtt, write_atomic
from captioner.transcript.model import Transcript
from captioner.transcript.segmentation import CueRules, build_cues
from captioner.transcript.spacing import split_words

SRT_TIME = r"(\d{2}):(\d{2}):(\d{2}),(\d{3})"


def _secs(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse_srt_strict(text: str) -> list[tuple[float, float, list[str]]]:
    """Numbering from 1, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, text, one blank line between cues."""
    assert text.encode("utf-8").decode("utf-8") == text
    assert not text.startswith("\ufeff")
    blocks = text.rstrip("\n").split("\n\n")
    cues = []
    for n, block in enumerate(blocks, 1):
        lines = block.split("\n")
        assert lines[0] == str(n), f"cue {n} numbered {lines[0]!r}"
        m = re.fullmatch(SRT_TIME + " --> " + SRT_TIME, lines[1])
        assert m, f"bad timing line {lines[1]!r}"
        start, end = _secs(*m.groups()[:4]), _secs(*m.groups()[4:])
        assert end > start
        assert len(lines) >= 3 and all(line.strip() for line in lines[2:])
        cues.append((start, end, lines[2:]))
    return cues


def parse_vtt_strict(text: str) -> list[tuple[float, float, list[str]]]:
    assert text.startswith("WEBVTT\n\n")
    cues = []
    for block in text[len("WEBVTT\n\n"):].rstrip("\n").split("\n\n"):
        lines = block.split("\n")
        m = re.fullmatch(r"(\d{2}):(\d{2}):(\d{2})\.(\d{3}) --> (\d{2}):(\d{2}):(\d{2})\.(\d{3})", lines[0])
        assert m, lines[0]
        start, end = _secs(*m.groups()[:4]), _secs(*m.groups()[4:])
        assert end > start
        for line in lines[1:]:
            assert "-->" not in line
        cues.append((start, end, lines[1:]))
    return cues


def sample() -> Transcript:
    t = Transcript(provider="audiopod", source="a.wav")
    words = (Word("Hello,", 0.5, 0.9, 0.9), Word("world.", 1.0, 1.4, 0.8))
    t.apply(Final("Hello, world.", 0.5, 1.4, words))
    t.apply(Partial("ignored partial"))
    t.apply(Final("Second line <b>&", 2.0, 3.0, (), speaker="0", timed=False))
    t.apply(Gap(3.0, 4.0, "network"))
    return t


def test_srt_is_strict_and_timed():
    cues = parse_srt_strict(to_srt(sample()))
    assert cues[0] == (0.5, 1.4, ["Hello, world."])
    assert cues[1][2] == ["Speaker 1: Second line <b>&"]
    assert cues[2][2] == ["[…]"]
    assert all(a[1] <= b[0] for a, b in zip(cues, cues[1:]))


def test_vtt_escapes_and_uses_voice_tags():
    cues = parse_vtt_strict(to_vtt(sample()))
    assert cues[1][2] == ["<v Speaker 1>Second line &lt;b&gt;&amp;"]


def test_txt_and_json_round_trip():
    t = sample()
    assert to_txt(t).splitlines()[0] == "Hello, world."
    back = from_json(to_json(t))
    assert back.to_dict() == t.to_dict()
    assert back.segments[0].words == t.segments[0].words


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=30).filter(str.strip), st.floats(0, 5), st.floats(0.01, 5)), max_size=20))
def test_json_round_trips_losslessly(items):
    t = Transcript()
    at = 0.0
    for text, gap, dur in items:
        t.apply(Final(text, at + gap, at + gap + dur, (Word(text.strip(), at + gap, at + gap + dur, 0.5, "2"),)))
        at += gap + dur
    assert from_json(to_json(t)).to_dict() == t.to_dict()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "word", "longerword", "x,", "end."]), st.floats(0.05, 1.5)), min_size=1, max_size=120))
def test_cues_respect_limits_and_never_overlap(tokens):
    words, at = [], 0.0
    for text, dur in tokens:
        words.append(Word(text, at, at + dur))
        at += dur + 0.05
    t = Transcript()
    t.apply(Final(" ".join(w.text for w in words), words[0].start, words[-1].end, tuple(words)))
    rules = CueRules()
    cues = build_cues(t.segments, rules)
    assert " ".join(" ".join(c.lines) for c in cues).split() == [w.text for w in words]
    for a, b in zip(cues, cues[1:]):
        assert a.end <= b.start + 1e-9
    for c in cues:
        assert len(c.lines) <= rules.max_lines
        assert all(len(line) <= rules.max_chars_per_line for line in c.lines)
    parse_srt_strict(to_srt(t))


def test_export_is_atomic_and_reports_unwritable_paths(tmp_path):
    target = tmp_path / "out.srt"
    target.write_text("old good file")
    with pytest.raises(ExportError) as info:
        export(sample(), "srt", tmp_path / "missing-dir" / "x.srt")
    assert "cannot write" in str(info.value.strerror)
    export(sample(), "srt", target)
    parse_srt_strict(target.read_text("utf-8"))
    assert [p.name for p in tmp_path.iterdir()] == ["out.srt"]  # no temp files left


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_full_disk_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "keep.txt"
    target.write_text("previous")
    import captioner.transcript.export as ex

    real_fdopen = os.fdopen

    def full_disk(fd, *a, **k):
        f = real_fdopen(fd, *a, **k)
        original = f.write

        def write(text):
            original(text)
            raise OSError(28, "No space left on device")

        f.write = write
        return f

    monkeypatch.setattr(ex.os, "fdopen", full_disk)
    with pytest.raises(ExportError) as info:
        write_atomic(target, "new content")
    assert "No space left" in info.value.strerror
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_json_export_is_utf8_and_marked():
    data = json.loads(to_json(Transcript(segments=[], provider="x")))
    assert data["format"] == "captioner-transcript" and data["version"] == 2


def _cues_for(text: str, start: float = 0.0, per_word: float = 0.3, rules: CueRules | None = None):
    words, at = [], start
    for token in text.split():
        words.append(Word(token, at, at + per_word * 0.8))
        at += per_word
    t = Transcript()
    t.apply(Final(text, words[0].start, words[-1].end, tuple(words)))
    return build_cues(t.segments, rules)


def test_lines_do_not_end_on_articles_or_titles():
    # the most balanced split would be "... I will present the | quarterly ...";
    # a line must not end on "the" when another split fits
    (cue,) = _cues_for("Tomorrow morning I will present the quarterly results to the board members")
    assert cue.lines == ("Tomorrow morning I will present", "the quarterly results to the board members")
    (cue,) = _cues_for("Yesterday I spoke at length with Dr. Johnson about the new plans")
    assert all(not line.endswith("Dr.") for line in cue.lines)


def test_cues_are_not_cut_after_a_word_that_binds_forward():
    text = " ".join(["alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike the november"] * 2)
    cues = _cues_for(text, per_word=0.2)
    assert len(cues) > 1
    for cue in cues[:-1]:
        assert cue.lines[-1].split()[-1] not in ("the",)


def test_fast_speech_is_held_long_enough_to_read_when_silence_follows():
    # 40 characters spoken in 0.9 s: at 20 chars/s it needs 2 s on screen
    (cue,) = _cues_for("Quick words spoken very fast indeed now", per_word=0.15)
    assert cue.end - cue.start == pytest.approx(len("Quick words spoken very fast indeed now") / 20.0, abs=0.01)


def test_reading_time_never_overlaps_the_next_cue():
    t = Transcript()
    t.apply(Final("A long first sentence with many words in it.", 0.0, 0.8))
    t.apply(Final("Next.", 1.0, 1.5))
    first, second = build_cues(t.segments)
    assert first.end == pytest.approx(1.0) and second.start == pytest.approx(1.0)


def _reference_balance(text: str, width: int) -> list[str]:
    """balance_two as first written: score every split of the words (split
    where a line may break: not at a no-break space)."""
    if len(text) <= width:
        return [text]
    words = split_words(text)
    total = len(" ".join(words))
    best = None
    for i in range(1, len(words)):
        top = len(" ".join(words[:i]))
        bottom = total - top - 1
        if top > width or bottom > width:
            continue
        score = abs(top - bottom) + (0 if bottom >= top else 2)
        if words[i - 1].lower() in seg._BINDS_FORWARD:
            score += 12
        elif words[i - 1].endswith(seg._BREAK_AFTER):
            score -= 8
        elif words[i].lower() in seg._STARTS_CLAUSE:
            score -= 4
        if best is None or score < best[0]:
            best = (score, i)
    if best is None:
        return seg.wrap_lines(text, width)
    return [" ".join(words[: best[1]]), " ".join(words[best[1] :])]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "the", "Dr.", "and", "word", "longerword", "x,", "end.", "", " ", "\t", "\xa0", "İ"]), max_size=30),
    st.integers(1, 45),
)
def test_balancing_scans_only_the_splits_that_fit_and_agrees_with_scoring_all(tokens, width):
    text = " ".join(tokens)
    assert seg.balance_two(text, width) == _reference_balance(text, width)


@given(st.floats(-10, 400_000, allow_nan=False), st.floats(-10, 400_000, allow_nan=False), st.sampled_from([",", "."]))
def test_cue_timing_is_the_plain_clock(start, end, sep):
    def clock(seconds: float) -> str:
        ms = max(0, int(round(seconds * 1000)))
        h, rem = divmod(ms, 3_600_000)
        m, rem = divmod(rem, 60_000)
        s, ms = divmod(rem, 1000)
        return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"

    assert _timing(start, end, sep) == f"{clock(start)} --> {clock(end)}"


def test_words_finalized_after_an_outage_began_come_before_its_gap_in_every_format():
    """The gap is reported when the device is lost (7.98 s); the words said
    just before it (7.32–7.92 s) are finalized after that. TXT and JSON kept
    arrival order: "[…]" came before them."""
    t = Transcript()
    t.apply(Final("before", 5.0, 6.0))
    t.apply(Gap(7.98, 11.26, "the input device was lost"))
    t.apply(Final("juliet hotel", 7.32, 7.92))
    t.apply(Final("after", 11.5, 12.0))
    assert [s.text for s in t.segments] == ["before", "juliet hotel", "[…]", "after"]
    assert to_txt(t).index("juliet hotel") < to_txt(t).index("[…]")
    assert [s["text"] for s in json.loads(to_json(t))["segments"]] == ["before", "juliet hotel", "[…]", "after"]
    late = Transcript()  # finals never reorder among themselves
    late.apply(Final("one", 5.0, 6.0))
    late.apply(Final("two", 4.0, 4.5))
    assert [s.text for s in late.segments] == ["one", "two"]
