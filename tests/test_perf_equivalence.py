"""The bench-driven optimizations change speed only: the fast paths give the
same answers as the straightforward code they replaced."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from captioner.audio.dsp import downmix
from captioner.stt.events import Word
from captioner.transcript.export import to_json
from captioner.transcript.model import Segment, Transcript
from captioner.transcript.segmentation import CueRules, balance_two, cues_for_segment, wrap_lines


def _reference_cues(segment: Segment, rules: CueRules) -> list[tuple]:
    """The pre-optimization chunking: join and balance the chunk for every word."""

    def fits(words: list[str]) -> bool:
        return len(balance_two(" ".join(words), rules.max_chars_per_line)) <= rules.max_lines and all(
            len(w) <= rules.max_chars_per_line for w in words
        ) or len(words) == 1

    out, chunk = [], []
    for word in segment.words:
        if chunk and not fits([w.text for w in chunk] + [word.text]):
            out.append(" ".join(w.text for w in chunk))
            chunk = []
        chunk.append(word)
    if chunk:
        out.append(" ".join(w.text for w in chunk))
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="cb,x", min_size=1, max_size=14), min_size=1, max_size=25), st.integers(3, 40), st.integers(1, 3))
def test_incremental_chunking_cuts_where_joining_did(texts: list[str], width: int, lines: int) -> None:
    # no punctuation, one speaker, short words in time, no word that binds forward
    # ("a", "the"…, which carry over to the next cue): cuts come from line fitting only
    words = tuple(Word(t.replace(",", "b"), i * 0.1, i * 0.1 + 0.05) for i, t in enumerate(texts))
    seg = Segment(" ".join(w.text for w in words), words[0].start, words[-1].end, words)
    rules = CueRules(width, lines, max_duration=1e9)
    got = [" ".join(c.lines) for c in cues_for_segment(seg, rules)]
    want = _reference_cues(seg, rules)
    assert [g.split() for g in got] == [w.split() for w in want]


@given(st.integers(0, 300), st.integers(2, 6))
def test_downmix_matches_channel_mean(frames: int, channels: int) -> None:
    block = np.random.default_rng(frames).uniform(-1, 1, (frames, channels)).astype(np.float32)
    np.testing.assert_allclose(downmix(block), block.mean(axis=1), rtol=1e-6, atol=1e-7)


def test_json_layout_is_one_segment_per_line_and_same_data() -> None:
    words = (Word("héllo", 0.5, 0.9, 0.8, "1"), Word("world.", 1.0, 1.4))
    t = Transcript([Segment("héllo world.", 0.5, 1.4, words, "1"), Segment("[…]", 2, 3, gap=True)], provider="p")
    text = to_json(t)
    assert json.loads(text) == t.to_dict()
    assert json.loads(text)["segments"][0]["words"][1] == {"text": "world.", "start": 1.0, "end": 1.4}
    lines = text.splitlines()
    assert lines[0] == "{" and lines[-1] == "}" and sum(line.startswith('  {"text"') for line in lines) == 2
    assert "héllo" in text  # UTF-8, not \u escapes
    assert json.loads(to_json(Transcript()))["segments"] == []
    assert wrap_lines("a b", 1) == ["a", "b"]
