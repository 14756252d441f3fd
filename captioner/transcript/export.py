"""Exporters: SRT, WebVTT, plain text and JSON, shared by the CLI and the GUI.

Files are written atomically (a temporary file in the same folder, then a
rename), so a full disk or a crash never leaves a half-written export in place
of a good one.
"""

from __future__ import annotations

import json

import orjson
import os
import tempfile
from pathlib import Path
from typing import Callable

from captioner.transcript.model import Transcript
from captioner.transcript.segmentation import CueRules, build_cues


class ExportError(OSError):
    """An export that could not be written (message is safe to show)."""


def _clock(seconds: float, sep: str) -> str:
    ms = max(0, int(round(seconds * 1000)))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_srt(transcript: Transcript, rules: CueRules | None = None) -> str:
    blocks = []
    for n, cue in enumerate(build_cues(transcript.segments, rules), 1):
        lines = list(cue.lines)
        if cue.speaker is not None and lines:
            lines[0] = f"{speaker_label(cue.speaker)}: {lines[0]}"
        blocks.append(f"{n}\n{_clock(cue.start, ',')} --> {_clock(cue.end, ',')}\n" + "\n".join(lines) + "\n")
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(transcript: Transcript, rules: CueRules | None = None) -> str:
    out = ["WEBVTT", ""]
    for cue in build_cues(transcript.segments, rules):
        text = "\n".join(_vtt_escape(line.replace("-->", "→")) for line in cue.lines)
        if cue.speaker is not None:
            text = f"<v {_vtt_escape(speaker_label(cue.speaker))}>{text}"
        out += [f"{_clock(cue.start, '.')} --> {_clock(cue.end, '.')}", text, ""]
    return "\n".join(out)


def to_txt(transcript: Transcript) -> str:
    lines = []
    last_speaker = None
    for seg in transcript.segments:
        if seg.speaker is not None and seg.speaker != last_speaker:
            lines.append(f"{speaker_label(seg.speaker)}: {seg.text}")
            last_speaker = seg.speaker
        else:
            lines.append(seg.text)
    return "\n".join(lines) + ("\n" if lines else "")


_JSON = json.JSONEncoder(ensure_ascii=False)


def to_json(transcript: Transcript) -> str:
    """Indented head, then one segment per line. Segments are encoded with
    orjson: exact shortest float repr (lossless round trip), and an 8-hour
    transcript in a few hundredths of a second instead of 0.2 s."""
    data = transcript.to_dict()
    segments = data.pop("segments")
    head = [f" {_JSON.encode(k)}: {_JSON.encode(v)}," for k, v in data.items()]
    if not segments:
        return "{\n" + "\n".join(head) + '\n "segments": []\n}\n'
    body = ",\n  ".join([orjson.dumps(seg).decode("utf-8") for seg in segments])
    return "{\n" + "\n".join(head) + '\n "segments": [\n  ' + body + "\n ]\n}\n"


def from_json(text: str) -> Transcript:
    return Transcript.from_dict(json.loads(text))


def speaker_label(speaker: str) -> str:
    """Numeric speaker ids become "Speaker N" (1-based); names stay names."""
    if speaker.isdigit():
        return f"Speaker {int(speaker) + 1}"
    return speaker


FORMATS: dict[str, Callable[[Transcript], str]] = {
    "srt": to_srt,
    "vtt": to_vtt,
    "txt": to_txt,
    "json": to_json,
}


def write_atomic(path: str | Path, text: str) -> None:
    """Write UTF-8 text via temp file + rename; raise ExportError in words."""
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise ExportError(exc.errno, f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def render(transcript: Transcript, fmt: str, rules: CueRules | None = None) -> str:
    """The text of one export format; `rules` shape SRT and WebVTT cues."""
    if fmt == "srt":
        return to_srt(transcript, rules)
    if fmt == "vtt":
        return to_vtt(transcript, rules)
    return FORMATS[fmt](transcript)


def export(transcript: Transcript, fmt: str, path: str | Path, rules: CueRules | None = None) -> None:
    write_atomic(path, render(transcript, fmt, rules))
