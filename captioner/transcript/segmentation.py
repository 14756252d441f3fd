"""Caption cues from transcript segments, with broadcast-style limits.

Defaults follow common subtitle guidelines (e.g. the BBC's and Netflix's
timed-text style guides): at most 2 lines of at most 42 characters, reading
speed at most ~20 characters per second where the gap to the next cue allows,
cues between 0.8 s and 7 s, no overlaps. Cues are cut at word times when the
provider gave them, preferring breaks after punctuation, and lines never end
on a word that binds to the next one (an article, a preposition, a title)
when another break fits.

Chinese and Japanese are written without spaces: their text is cut into one
token per character (closing marks stay with the character before them,
opening ones with the one after), tokens are wrapped like words, each
counting two columns with its separator (a CJK character is full width), and
the spaces between two such characters are taken out of the finished lines.
Each of their characters counts as five of the reading speed's (their
subtitling guides allow about 4 characters a second, against ~20).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise
from operator import itemgetter
from typing import Callable, NamedTuple

from captioner.stt.events import Word
from captioner.transcript.model import Segment
from captioner.transcript.spacing import single_spaced, split_words

_BREAK_AFTER = (".", "?", "!", ",", ";", ":", "…", "。", "、", "，", "！", "？", "；", "：")
# Words that bind to the next one: a line or cue should not end on them.
_BINDS_FORWARD = frozenset(
    """a an the of to in on at by for from with into onto about over under between
    and or but nor my your his her its our their this that these those
    mr. mrs. ms. dr. prof. st. mr mrs ms dr prof""".split()
)
# Words a new line may well start with (a clause begins).
_STARTS_CLAUSE = frozenset("and but or so because which who when while although if".split())


def _binds(word: str) -> bool:
    return word.lower() in _BINDS_FORWARD


@dataclass(frozen=True, slots=True)
class CueRules:
    max_chars_per_line: int = 42
    max_lines: int = 2
    min_duration: float = 0.8
    max_duration: float = 7.0
    max_chars_per_second: float = 20.0  # reading speed; cues are lengthened into silence to meet it
    #: A Chinese or Japanese character takes as long to read as this many
    #: Latin ones: their subtitling guides allow about 4 a second, against ~20.
    unspaced_reading_weight: float = 5.0


class Cue(NamedTuple):
    """One caption cue (a tuple: an 8-hour export makes ~15,000 of them, and a
    frozen dataclass is several times slower to create)."""

    start: float
    end: float
    lines: tuple[str, ...]
    speaker: str | None = None

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


# Han, kana, CJK symbols and punctuation, full-width forms: scripts written
# without spaces between words. (Hangul is written with spaces: it wraps as words.)
_UNSPACED = "\u2e80-\u2fdf\u3001-\u303f\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff01-\uff60"
_HAS_UNSPACED = _UNSPACED_CHAR = re.compile(f"[{_UNSPACED}]")
_UNSPACED_GAP = re.compile(f"(?<=[{_UNSPACED}]) (?=[{_UNSPACED}])")
# Marks a line must not start with (they close, or are small kana) and marks
# it must not end with (they open): Japanese line-breaking rules (kinsoku).
_NO_LINE_START = frozenset("、。，．・：；？！ー」』）］｝〕〉》】〙〗〟’”々〻ゝゞヽヾぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶ")
_NO_LINE_END = frozenset("「『（［｛〔〈《【〘〖〝‘“")


def _unspaced_tokens(text: str) -> list[str]:
    """A word cut where a line may break: between CJK characters, never
    inside a run of other letters or digits ("iPhone", "2024")."""
    tokens: list[str] = []
    opening = ""
    for ch in text:
        cjk = _HAS_UNSPACED.match(ch) is not None
        if tokens and (ch in _NO_LINE_START or (not cjk and not opening and not _HAS_UNSPACED.match(tokens[-1][-1]))):
            tokens[-1] += ch  # a closing mark, or the next letter of a Latin run
        elif ch in _NO_LINE_END:
            opening += ch
        else:
            tokens.append(opening + ch)
            opening = ""
    if opening:
        if tokens:
            tokens[-1] += opening
        else:
            tokens.append(opening)
    return tokens


def _split_unspaced(words: list[Word]) -> list[Word]:
    """Words of unspaced scripts cut into tokens, their times shared out by
    characters (a provider's "word" can be a whole Japanese sentence)."""
    out: list[Word] = []
    for w in words:
        tokens = _unspaced_tokens(w.text) if _HAS_UNSPACED.search(w.text) else [w.text]
        if len(tokens) == 1:
            out.append(w)
            continue
        span, total, at = w.end - w.start, len(w.text), w.start
        for i, t in enumerate(tokens):
            end = at + span * len(t) / total
            if i and not (_HAS_UNSPACED.match(tokens[i - 1][-1]) and _HAS_UNSPACED.match(t[0])):
                t = _GLUE + t  # "を|2024|年": no space between them once wrapped
            out.append(Word(t, at, end, w.confidence, w.speaker))
            at = end
    return out


# Marks a token that was not spaced from the one before it in the provider's
# text, where one side is not CJK ("iPhoneを"); caption text holds no control character.
_GLUE = "\x02"


def _close_unspaced(lines: tuple[str, ...]) -> tuple[str, ...]:
    """The wrap's separators between two CJK characters, and before a glued
    token, taken out again."""
    return tuple(_UNSPACED_GAP.sub("", line.replace(" " + _GLUE, "").replace(_GLUE, "")) for line in lines)


_NOT_LETTERS = re.compile(r"[\W_]+")


def _as_written(text: str, texts: list[str]) -> list[str]:
    """Word texts as the final's text writes them: a provider may send words
    without their punctuation or capitals ("hello" for "Hello,"), and cues
    are built from words. Each word takes its token of the text when the two
    have the same letters; a word the text writes otherwise ("three", "3")
    stays as it is, and so do all of them when the counts differ."""
    if " ".join(texts) == text:
        return texts  # the usual case
    tokens = split_words(text)
    if len(tokens) != len(texts):
        return texts
    return [token if _NOT_LETTERS.sub("", token).casefold() == _NOT_LETTERS.sub("", word).casefold() else word
            for token, word in zip(tokens, texts)]


def wrap_lines(text: str, width: int) -> list[str]:
    """Greedy word wrap; a line breaks early after punctuation when the
    remainder still fits, so clauses stay together."""
    words = split_words(text)
    lines: list[str] = []
    current: list[str] = []
    for word in words:
        candidate = " ".join(current + [word])
        if current and len(candidate) > width:
            lines.append(" ".join(current))
            current = [word]
        else:
            current.append(word)
    if current:
        lines.append(" ".join(current))
    return lines


def balance_two(text: str, width: int) -> list[str]:
    """Split text that needs two lines near the middle (bottom-heavy), at a
    punctuation mark when one is close."""
    return list(_two_lines(text, width))


def _two_lines(text: str, width: int, spaced: bool | None = None) -> tuple[str, ...]:
    """`balance_two` as a tuple, what a Cue holds (`spaced`: whether text is
    known to be single-spaced already)."""
    if len(text) <= width:
        return (text,)
    if spaced is None:
        spaced = _single_spaced(text)
    lines = _best_split(text if spaced else single_spaced(text), width)
    return lines if lines is not None else tuple(wrap_lines(text, width))


def _single_spaced(text: str) -> bool:
    """Whether text == " ".join(text.split()), without building that: no
    whitespace but single inner spaces (no other whitespace is printable)."""
    return text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " "


def _best_split(text: str, width: int) -> tuple[str, str] | None:
    """The best two-line split of single-spaced text, or None when no split
    fits both lines in `width`. Only the spaces where a split fits are
    scored: a break at space p leaves p characters on top and
    len(text) - p - 1 below."""
    total = len(text)
    best_score, best = 0, -1
    p = text.find(" ", max(0, total - 1 - width), width + 1)
    while p != -1:
        bottom = total - p - 1
        score = abs(p - bottom) + (0 if bottom >= p else 2)
        if best != -1 and score - 8 >= best_score:  # not even the punctuation bonus would make it win
            if bottom < p:
                break  # past the middle, scores only grow
            p = text.find(" ", p + 1, width + 1)
            continue
        before = text[text.rfind(" ", 0, p) + 1 : p]
        if _binds(before):
            score += 12  # never "the | meeting", "Dr. | Smith" when another split fits
        elif before.endswith(_BREAK_AFTER):
            score -= 8
        else:
            after_end = text.find(" ", p + 1)
            if text[p + 1 : after_end if after_end != -1 else total].lower() in _STARTS_CLAUSE:
                score -= 4
        if best == -1 or score < best_score:
            best_score, best = score, p
        p = text.find(" ", p + 1, width + 1)
    if best == -1:
        return None
    return text[:best], text[best + 1 :]


def _estimated_words(segment: Segment) -> list[Word]:
    """Word times spread by character count when the provider gave none."""
    tokens = split_words(segment.text)
    if not tokens:
        return []
    total = sum(len(t) + 1 for t in tokens)
    span = max(segment.end - segment.start, 0.0)
    out, at = [], segment.start
    for t in tokens:
        dur = span * (len(t) + 1) / total
        out.append(Word(t, at, at + dur, speaker=segment.speaker))
        at += dur
    return out


def cues_for_segment(segment: Segment, rules: CueRules) -> list[Cue]:
    """The cues of one segment, cut where the lines, the time or the speaker run out."""
    return [Cue(*raw[:4]) for raw in _segment_cues(segment, rules)]


#: A Cue before build_cues fixes its times, plus the reading time its
#: Chinese or Japanese characters add beyond their length (in Latin characters).
_RawCue = tuple[float, float, tuple[str, ...], str | None, float]


def _greedy(lengths: list[int], width: int, lines_used: int = 0, line_len: int = 0) -> tuple[int, int, bool]:
    """Greedy wrap of words of these lengths (after `lines_used` lines, the
    last `line_len` long): (lines used, length of the last line, whether a
    word is longer than a line)."""
    for length in lengths:
        if lines_used and line_len + 1 + length <= width:
            line_len += 1 + length
        else:
            lines_used += 1
            line_len = length
    return lines_used, line_len, max(lengths, default=width) > width  # False for no words


# Stand for the spaces and the colon of a speaker label while its cue is
# wrapped, so no line breaks inside "Speaker 1:" and its colon earns no
# punctuation bonus (caption text never holds a control character).
_LABEL_SPACE, _LABEL_COLON = "\x00", "\x01"

Label = Callable[[str], str]  # speaker id -> the label a cue's first line starts with


def _label_length(label: Label | None, speaker: str | None) -> int:
    """Characters "<label>:" takes at the start of a cue's first line (0: none)."""
    return len(label(speaker)) + 1 if label is not None and speaker is not None else 0


def _segment_cues(segment: Segment, rules: CueRules, label: Label | None = None) -> list[_RawCue]:
    """`cues_for_segment` as plain tuples, so that `build_cues` makes each
    Cue once, after fixing its times. The loop runs once per word of the
    transcript: a chunk is the range words[lo:i], not a list. With `label`,
    each cue's first line starts with "<label>: " and the wrap counts it."""
    words = segment.words or _estimated_words(segment)
    if segment.gap or not words:
        return [(segment.start, segment.end, (segment.text,), segment.speaker, 0.0)] if segment.text else []
    unspaced = not segment.text.isascii() and _HAS_UNSPACED.search(segment.text) is not None
    if unspaced:
        words = _split_unspaced(words)
    width, max_duration, max_lines = rules.max_chars_per_line, rules.max_duration, rules.max_lines
    texts = [w.text for w in words]
    if segment.words and not unspaced:
        texts = _as_written(segment.text, texts)
    lengths = list(map(len, texts))
    cuts = [0]

    def chunk_speaker(at: int) -> str | None:
        first = words[at].speaker
        return first if first is not None else segment.speaker

    def start_chunk(at: int, upto: int) -> tuple[int, int, bool]:
        """Greedy state of words[at:upto] after the chunk's label, if any."""
        prefix = _label_length(label, chunk_speaker(at))
        if not prefix:
            return _greedy(lengths[at:upto], width)
        return _greedy(lengths[at:upto], width, 1, prefix)  # a long label is no overlong word

    # Greedy wrap of the chunk, kept as words come: greedy wrapping uses the
    # fewest lines, so "fits" is "greedy needs at most max_lines" — O(1) per word.
    lines_used, line_len, overlong = start_chunk(0, 1)  # the first word starts the chunk
    lo, chunk_start, previous_speaker = 0, words[0].start, words[0].speaker
    for i in range(1, len(words)):
        word = words[i]
        length, speaker = lengths[i], word.speaker
        grown = line_len + 1 + length
        if (
            overlong
            or (grown > width and (lines_used >= max_lines or length > width))
            or word.end - chunk_start > max_duration
            or (speaker != previous_speaker and speaker is not None)
        ):
            new_speaker = speaker != previous_speaker and speaker is not None
            # Prefer to cut after the last punctuation in the second half of the chunk.
            half = (i - lo) // 2
            for cut in range(i, lo + half, -1):
                if new_speaker or texts[cut - 1].endswith(_BREAK_AFTER) and not _binds(texts[cut - 1]):
                    break  # a new speaker starts a cue of their own, right here
            else:
                cut = i
            # A cue should not end on "the", "of", "Dr.": carry such words over (never to another speaker).
            while not new_speaker and cut - lo > max(1, half) and _binds(texts[cut - 1]):
                cut -= 1
            cuts.append(cut)
            lo, chunk_start = cut, words[cut].start
            lines_used, line_len, overlong = start_chunk(lo, i)
            grown = line_len + 1 + length
            if lo < i and grown > width and lines_used >= max_lines:
                # the words carried over leave no room for this one: it starts the next cue
                cuts.append(i)
                lo, chunk_start = i, word.start
                lines_used, line_len, overlong = start_chunk(i, i)
                grown = line_len + 1 + length
        # the word joins the chunk: _greedy's step, inlined on this per-word path
        if lines_used and grown <= width:
            line_len = grown
        else:
            lines_used += 1
            line_len = length
            overlong = overlong or length > width
        previous_speaker = speaker
    cuts.append(len(words))

    cues: list[_RawCue] = []
    slower = rules.unspaced_reading_weight - 1.0
    for lo, hi in pairwise(cuts):
        speaker = chunk_speaker(lo)
        text = " ".join(texts[lo:hi])
        if label is not None and speaker is not None:
            tag = label(speaker).replace(" ", _LABEL_SPACE) + _LABEL_COLON
            wrapped = _two_lines(f"{tag} {text}", width, _single_spaced(text))
            lines = (wrapped[0].replace(_LABEL_SPACE, " ").replace(_LABEL_COLON, ":"), *wrapped[1:])
        else:
            lines = _two_lines(text, width)
        extra = 0.0
        if unspaced:
            lines = _close_unspaced(lines)
            extra = slower * sum(len(_UNSPACED_CHAR.findall(line)) for line in lines)
        cues.append((words[lo].start, words[hi - 1].end, lines, speaker, extra))
    return cues


def build_cues(segments: list[Segment], rules: CueRules | None = None, label: Label | None = None) -> list[Cue]:
    """All cues of a transcript, ordered, non-overlapping, each at least
    `min_duration` long where the next cue leaves room. With `label`, a cue
    with a speaker starts with "<label(speaker)>: ", counted in the line
    width and the reading time (SRT and text have no voice tags)."""
    rules = rules or CueRules()
    raw: list[_RawCue] = []
    for segment in segments:
        raw.extend(_segment_cues(segment, rules, label))
    raw.sort(key=itemgetter(0))  # stable, by start
    cps, min_duration, max_duration = rules.max_chars_per_second, rules.min_duration, rules.max_duration
    fixed: list[Cue] = []
    end = 0.0
    # One pass over the ~7,400 cues of an 8-hour transcript, hence `b if b > a
    # else a` for max(a, b) and `b if b < a else a` for min(a, b): the same
    # choice as the builtins (ties and NaN included), without the calls.
    for i, (start, cue_end, lines, speaker, extra) in enumerate(raw, 1):
        start = end if end > start else start  # after the previous cue
        reading = (sum(map(len, lines)) + extra) / cps if cps > 0 else 0.0
        longest = start + max_duration
        held = start + reading
        held = longest if longest < held else held
        end = cue_end
        shortest = start + min_duration
        end = shortest if shortest > end else end
        end = held if held > end else end
        least = start + 0.001
        if i < len(raw):
            next_start = raw[i][0]
            room = least if least > next_start else next_start
            end = room if room < end else end
        end = least if least > end else end
        fixed.append(Cue(start, end, lines, speaker))
    return fixed
