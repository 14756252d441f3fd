"""The CLI and exports where real use gets rough: stop signals from outside, a
closed stdout, outputs that would clobber the input, unwritable targets, odd
file modes and links, provider text with control characters, and what the
JSON and `sessions` say about a session (found by exploratory testing)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from hypothesis import example, given, settings
from hypothesis import strategies as st

from captioner.stt.events import Final, Gap, Partial, Word
from captioner.transcript.export import to_json, to_srt, to_txt, to_vtt, write_atomic
from captioner.transcript.model import Transcript
from captioner.transcript.segmentation import CueRules
from tests.conftest import SCRIPT
from tests.fakes.audiopod import FakeAudioPod
from tests.fakes.tones import synthesize, write_wav
from tests.test_cli import captioner
from tests.test_exports import parse_srt_strict

LINES = [" ".join(u) for u in SCRIPT]


def _transcribe_args(wav: Path, fake: FakeAudioPod, *extra: str, speed: str = "0") -> list[str]:
    return ["transcribe", str(wav), "--provider", "audiopod", "--endpoint", fake.url, "--speed", speed, *extra]


# ------------------------------------------------------------ 1. stop signals
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
async def test_a_stop_signal_exports_what_was_captioned(tone_wav, tmp_path, signum):
    wav, _ = tone_wav
    length = soundfile.info(str(wav)).duration
    out = {fmt: tmp_path / f"cut.{fmt}" for fmt in ("srt", "vtt", "txt", "json")}
    async with FakeAudioPod() as fake:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "captioner", *_transcribe_args(wav, fake, speed="1"),
            *[a for fmt, p in out.items() for a in (f"--{fmt}", str(p))],
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "CAPTIONER_AUDIOPOD_KEY": fake.key},
        )
        first = await asyncio.wait_for(proc.stdout.readline(), 30)  # real time: the first caption, then stop
        assert first.decode().strip() == LINES[0]
        proc.send_signal(signum)
        rest, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 128 + signum, err.decode()
    assert f"stopping on {signal.Signals(signum).name}" in err.decode()
    captioned = (first + rest).decode().splitlines()
    assert 1 <= len(captioned) < len(LINES)  # cut short, yet everything captioned is in every file
    assert [" ".join(c[2]) for c in parse_srt_strict(out["srt"].read_text())] == captioned
    assert out["txt"].read_text().splitlines() == captioned
    assert out["vtt"].read_text().startswith("WEBVTT")
    data = json.loads(out["json"].read_text())
    assert [s["text"] for s in data["segments"]] == captioned
    assert data["outcome"] == "stopped" and "error" not in data
    assert 1.0 < data["audio_duration"] < length - 0.5
    assert fake.records[0].messages[-1] == {"type": "end"}  # stopped gracefully: the provider was told


# ------------------------------------------------- 2. speaker labels in SRT
def _diarized(text: str, speaker: str = "0", per_word: float = 0.35) -> Transcript:
    words, at = [], 0.0
    for token in text.split():
        words.append(Word(token, at, at + per_word * 0.8, speaker=speaker))
        at += per_word
    t = Transcript()
    t.apply(Final(text, 0.0, words[-1].end, tuple(words), speaker=speaker))
    return t


@pytest.mark.parametrize("width", [20, 30, 42])
def test_srt_lines_with_the_speaker_label_fit_the_line_width(width):
    text = "so the quarterly numbers look better than we expected and everyone agrees on the plan for next year"
    rules = CueRules(max_chars_per_line=width)
    cues = parse_srt_strict(to_srt(_diarized(text, "0"), rules))
    assert all(len(line) <= width for c in cues for line in c[2]), cues
    assert all(" ".join(c[2]).startswith("Speaker 1: ") for c in cues)
    words = " ".join(" ".join(c[2]) for c in cues).replace("Speaker 1: ", "").split()
    assert words == text.split()
    # VTT says who speaks with a voice tag, outside the text: no label in its lines
    assert "Speaker 1: " not in to_vtt(_diarized(text, "0"), rules)


def test_the_label_is_never_split_across_lines_and_counts_in_reading_time():
    # "Speaker 12:" is 11 characters: on a 12-character line no word fits beside it
    t = _diarized("one two three", "11", per_word=0.1)
    cues = parse_srt_strict(to_srt(t, CueRules(max_chars_per_line=12, max_lines=2)))
    assert cues[0][2][0] == "Speaker 12:"
    assert all(len(line) <= 12 for c in cues for line in c[2])
    # reading speed: the label is read too ("Speaker 1: hi" is 13 characters at 5 cps)
    (cue,) = parse_srt_strict(to_srt(_diarized("hi", "0", per_word=0.2), CueRules(max_chars_per_second=5.0)))
    assert cue[2] == ["Speaker 1: hi"] and cue[1] - cue[0] == pytest.approx(13 / 5.0, abs=0.002)


def test_a_new_speaker_starts_a_new_cue_even_when_the_last_words_bind_forward():
    text = "so, we agree on the next one"  # speaker 0 trails off on "on the"; speaker 1 says "next one"
    words = [Word(w, i * 0.3, i * 0.3 + 0.25, speaker="0" if i < 5 else "1") for i, w in enumerate(text.split())]
    t = Transcript()
    t.apply(Final(text, 0.0, words[-1].end, tuple(words)))
    cues = parse_srt_strict(to_srt(t))
    assert [c[2] for c in cues] == [["Speaker 1: so, we agree on the"], ["Speaker 2: next one"]]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["a", "word", "longerword", "x,", "end.", "Dr."]), st.sampled_from(["0", "1", "Ana"])),
             min_size=1, max_size=80),
    st.integers(10, 50),
    st.integers(1, 3),
)
@example([("a", "0"), ("a", "0"), ("longerword", "0")], 10, 1)  # "a" carried over left no room for the next word
def test_labelled_srt_cues_respect_every_limit(tokens, width, lines):
    if lines == 1:
        width = max(width, 22)  # "Speaker 2: longerword": a one-line cue must hold a label and a word
    words, at = [], 0.0
    for text, speaker in tokens:
        words.append(Word(text, at, at + 0.3, speaker=speaker))
        at += 0.35
    t = Transcript()
    t.apply(Final(" ".join(w.text for w in words), 0.0, at, tuple(words)))
    cues = parse_srt_strict(to_srt(t, CueRules(max_chars_per_line=width, max_lines=lines)))
    for c in cues:
        assert len(c[2]) <= lines and all(len(line) <= width for line in c[2]), (width, c)
    label = {"0": "Speaker 1: ", "1": "Speaker 2: ", "Ana": "Ana: "}
    said = []
    for c in cues:
        text = " ".join(c[2])
        prefix = next(p for p in label.values() if text.startswith(p))
        said.extend(text[len(prefix):].split())
    assert said == [w.text for w in words]


async def test_transcribe_with_speakers_keeps_srt_lines_within_line_chars(tone_wav, tmp_path):
    wav, _ = tone_wav
    async with FakeAudioPod(speaker="0") as fake:
        code, out, err = await captioner(
            *_transcribe_args(wav, fake, "--option", "diarize=true", "--line-chars", "12", "--srt", str(tmp_path / "s.srt")),
            env={"CAPTIONER_AUDIOPOD_KEY": fake.key},
        )
    assert code == 0, err
    cues = parse_srt_strict((tmp_path / "s.srt").read_text())
    assert all(len(line) <= 12 for c in cues for line in c[2]), cues
    assert " ".join(" ".join(c[2]) for c in cues).replace("Speaker 1:", "").split() == " ".join(LINES).split()


# ------------------------------------------------ 3. file modes and links
@pytest.fixture
def umask():
    previous = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_new_export_gets_the_mode_the_umask_allows(tmp_path, umask, mask, mode):
    umask(mask)
    write_atomic(tmp_path / "new.srt", "x")
    assert stat.S_IMODE(os.stat(tmp_path / "new.srt").st_mode) == mode


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
def test_a_replaced_export_keeps_its_mode(tmp_path, umask):
    umask(0o077)
    target = tmp_path / "shared.txt"
    target.write_text("old")
    os.chmod(target, 0o644)
    write_atomic(target, "new")
    assert target.read_text() == "new" and stat.S_IMODE(os.stat(target).st_mode) == 0o644
    os.chmod(target, 0o640)
    write_atomic(target, "newer")
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["shared.txt"]


@pytest.mark.skipif(os.name != "posix", reason="symbolic links")
def test_an_export_through_a_symlink_updates_its_target(tmp_path, umask):
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    target = real_dir / "captions.srt"
    target.write_text("old")
    os.chmod(target, 0o664)
    link = tmp_path / "latest.srt"
    link.symlink_to(target)
    write_atomic(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new" and stat.S_IMODE(os.stat(target).st_mode) == 0o664
    assert sorted(p.name for p in real_dir.iterdir()) == ["captions.srt"]  # the temp file was next to the target
    dangling = tmp_path / "later.srt"
    dangling.symlink_to(real_dir / "not-yet.srt")
    write_atomic(dangling, "made")
    assert dangling.is_symlink() and (real_dir / "not-yet.srt").read_text() == "made"


# --------------------------------------------- 4. outputs that are the input
def _links(wav: Path, tmp_path: Path) -> list[Path]:
    sym, hard = tmp_path / "sym.srt", tmp_path / "hard.srt"
    sym.symlink_to(wav)
    os.link(wav, hard)
    return [wav, sym, hard, tmp_path / "." / wav.name]


@pytest.mark.skipif(os.name != "posix", reason="links")
async def test_an_output_naming_the_input_recording_is_refused_before_anything(tone_wav, tmp_path):
    wav, _ = tone_wav
    before = wav.read_bytes()
    async with FakeAudioPod() as fake:
        for i, path in enumerate(_links(wav, tmp_path)):
            fmt = ("srt", "vtt", "txt", "json")[i]
            code, out, err = await captioner(
                *_transcribe_args(wav, fake, f"--{fmt}", str(path)), env={"CAPTIONER_AUDIOPOD_KEY": fake.key}
            )
            assert code == 2 and out == "", err
            assert err == f"error: --{fmt} {path} would overwrite the input recording {wav}; choose another file name\n"
        assert fake.records == []  # refused before connecting
    assert wav.read_bytes() == before
    code, _, err = await captioner("transcribe", str(wav), "--provider", "audiopod", "--srt", str(tmp_path / "a.srt"),
                                   "--txt", str(tmp_path / "a.srt"))
    assert code == 2 and "--txt and --srt name the same file" in err


def test_listen_refuses_two_outputs_naming_one_file_before_opening_a_device(tmp_path, capsys):
    from captioner.cli import main

    assert main(["listen", "--provider", "audiopod", "--srt", str(tmp_path / "a"), "--txt", str(tmp_path / "." / "a")]) == 2
    assert "--txt and --srt name the same file" in capsys.readouterr().err


async def test_export_refuses_to_overwrite_the_sessions_journal(tmp_path):
    from captioner.transcript.journal import SessionJournal, sessions_dir

    journal = SessionJournal.create("audiopod", "a.wav", sessions_dir())
    journal(Final("kept", 0.0, 1.0))
    journal.close()
    before = journal.path.read_bytes()
    code, _, err = await captioner("export", journal.path.stem, "--json", str(journal.path))
    assert code == 2 and "would overwrite the session's journal" in err
    assert journal.path.read_bytes() == before


# ---------------------------------------- 5. export writes every target it can
async def test_export_writes_every_target_it_can_and_reports_each_failure(tmp_path):
    from captioner.transcript.journal import SessionJournal, sessions_dir

    journal = SessionJournal.create("audiopod", "a.wav", sessions_dir())
    journal(Final("hello there", 0.0, 1.0))
    journal.close()
    bad1, bad2 = tmp_path / "nodir" / "x.srt", tmp_path / "nodir" / "x.vtt"
    code, _, err = await captioner(
        "export", journal.path.stem, "--srt", str(bad1), "--vtt", str(bad2),
        "--txt", str(tmp_path / "ok.txt"), "--json", str(tmp_path / "ok.json"),
    )
    assert code == 4
    assert [line.split(":")[0] + ":" + line.split(":")[1] for line in err.splitlines()] == [
        f"error: cannot write {bad1}", f"error: cannot write {bad2}"
    ]
    assert (tmp_path / "ok.txt").read_text() == "hello there\n"
    assert json.loads((tmp_path / "ok.json").read_text())["segments"][0]["text"] == "hello there"


# ------------------------------------------------------- 6. a closed stdout
def _run_with_closed_stdout(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run the CLI with stdout a pipe whose reader is already gone (what
    `… | head -1` becomes once head exits): every write fails with EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "captioner", *args], stdout=write_end, stderr=subprocess.PIPE,
                              env={**os.environ, **env}, timeout=60, text=True)
    finally:
        os.close(write_end)


async def test_a_closed_stdout_is_quiet_and_the_files_are_still_written(tone_wav, tmp_path):
    wav, _ = tone_wav
    async with FakeAudioPod() as fake:
        result = await asyncio.to_thread(
            _run_with_closed_stdout,
            _transcribe_args(wav, fake, "--srt", str(tmp_path / "p.srt"), "--json", str(tmp_path / "p.json")),
            {"CAPTIONER_AUDIOPOD_KEY": fake.key},
        )
    assert result.stderr == "" and result.returncode == 0
    assert [" ".join(c[2]) for c in parse_srt_strict((tmp_path / "p.srt").read_text())] == LINES
    assert json.loads((tmp_path / "p.json").read_text())["outcome"] == "completed"
    # and a listing command
    result = await asyncio.to_thread(_run_with_closed_stdout, ["sessions"], {})
    assert result.stderr == "" and result.returncode == 0
    result = await asyncio.to_thread(_run_with_closed_stdout, ["providers"], {})
    assert result.stderr == "" and result.returncode == 0


def test_head_reads_the_first_caption_without_a_traceback(tone_wav, tmp_path):
    wav, _ = tone_wav

    async def run() -> subprocess.CompletedProcess:
        async with FakeAudioPod() as fake:
            cmd = " ".join([sys.executable, "-m", "captioner", *_transcribe_args(wav, fake, "--srt", str(tmp_path / "h.srt"))])
            return await asyncio.to_thread(
                subprocess.run, ["bash", "-c", f"{cmd} | head -1; echo ${{PIPESTATUS[0]}} >&2"], capture_output=True,
                text=True, timeout=60, env={**os.environ, "CAPTIONER_AUDIOPOD_KEY": fake.key},
            )

    result = asyncio.run(run())
    assert result.stdout == LINES[0] + "\n"
    assert result.stderr == "0\n"
    assert len(parse_srt_strict((tmp_path / "h.srt").read_text())) == len(LINES)


# -------------------------------------------- 7. what `sessions` says of length
async def test_sessions_shows_the_audio_length_not_the_last_captions_end(tmp_path):
    audio, _ = synthesize([["alpha", "bravo"]], rate=16000, lead_s=0.5, tail_s=6.0)
    speech = write_wav(tmp_path / "speech.wav", audio, 16000)
    silence = write_wav(tmp_path / "silence.wav", np.zeros((160000, 1), np.float32), 16000)
    lengths = {p.name: soundfile.info(str(p)).duration for p in (speech, silence)}
    async with FakeAudioPod() as fake:
        for wav in (speech, silence):
            code, _, err = await captioner(*_transcribe_args(wav, fake), env={"CAPTIONER_AUDIOPOD_KEY": fake.key})
            assert code == 0, err
    code, out, _ = await captioner("sessions")
    rows = {line.split("\t")[3]: line.split("\t")[2] for line in out.splitlines()}
    assert rows == {
        "speech.wav": f"1 caption, {lengths['speech.wav']:.0f} s",
        "silence.wav": f"0 captions, {lengths['silence.wav']:.0f} s",
    }
    assert lengths["speech.wav"] > 7 and lengths["silence.wav"] == 10.0


async def test_sessions_says_what_it_shows_when_the_length_was_not_recorded():
    from captioner.transcript.journal import SessionJournal, sessions_dir

    journal = SessionJournal.create("audiopod", "mic", sessions_dir())  # as the app's journals are closed
    journal(Final("hello", 1.0, 58.4))
    journal.close()
    code, out, _ = await captioner("sessions")
    assert out.split("\t")[2] == "1 caption, captions up to 58 s"


# ---------------------------------------- 8. provider text with control chars
def test_caption_text_is_one_clean_line():
    from captioner.transcript.model import clean_text

    assert clean_text("two\nlines\r\n and\ta  tab") == "two lines and a tab"
    assert clean_text("nul\x00here\x07 \x1b[31mred\x9b") == "nulhere [31mred"
    assert clean_text(" \u2028 ") == ""
    kept = "שלום עולם 👩‍👩‍👧 你好 مرحبا \u200fok"
    assert clean_text(kept) == kept
    t = Transcript()
    words = (Word("line\none", 0.0, 0.5), Word("\r\x00", 0.5, 0.6), Word("two", 0.6, 1.0))
    t.apply(Final("line\none\r\n\x00two\n", 0.0, 1.0, words))
    t.apply(Final("\n\r\x00", 1.0, 2.0))  # nothing left: not a caption
    t.apply(Gap(2.0, 3.0, "network\ndown"))
    t.apply(Partial("still\ntalking"))
    assert [s.text for s in t.segments] == ["line one two", "[…]"]
    assert [w.text for w in t.segments[0].words] == ["line one", "two"]
    assert t.segments[1].reason == "network down" and t.partial.text == "still talking"
    assert to_txt(t) == "line one two\n[…]\n"
    t.apply(Final("hi", 3.0, 4.0, (Word("hi", 3.0, 4.0, speaker="Ana\nB"),), speaker="Ana\nB"))
    assert t.segments[-1].speaker == "Ana B" and t.segments[-1].words[0].speaker == "Ana B"
    assert parse_srt_strict(to_srt(t))[0][2] == ["line one two"]


class _NewlineAudioPod(FakeAudioPod):
    """Sends each final's text with newlines, CR and NUL between the words."""

    def _event(self, kind: str, words: list, diarize: bool) -> dict:
        event = super()._event(kind, words, diarize)
        event["text"] = "\r\n".join(event["text"].split()) + "\x00\n"
        for item in event.get("words", ()):
            item["word"] += "\n"
        return event


async def test_stdout_keeps_one_line_per_final_whatever_the_provider_sends(tone_wav, tmp_path):
    wav, _ = tone_wav
    async with _NewlineAudioPod() as fake:
        code, out, err = await captioner(
            *_transcribe_args(wav, fake, "--partials", "--txt", str(tmp_path / "t.txt"), "--srt", str(tmp_path / "t.srt")),
            env={"CAPTIONER_AUDIOPOD_KEY": fake.key},
        )
    assert code == 0, err
    assert out.splitlines() == LINES
    assert (tmp_path / "t.txt").read_text().splitlines() == LINES
    assert [" ".join(c[2]) for c in parse_srt_strict((tmp_path / "t.srt").read_text())] == LINES
    assert "\x00" not in out + err and "\r" not in out + err


# ------------------------------------------------------- 9. the JSON export
def test_json_times_are_rounded_to_the_millisecond_and_gaps_say_why():
    t = Transcript()
    t.apply(Final("a b", 0.1 + 0.2, 1.9000000000000001, (Word("a", 0.30000000000000004, 1.0), Word("b", 1.0, 1.9000000000000001))))
    t.apply(Gap(2.0004, 3.0, "replay buffer exceeded; audio lost"))
    text = to_json(t)
    assert "0000000" not in text
    data = json.loads(text)
    assert data["version"] == 2
    assert data["segments"][0] == {"text": "a b", "start": 0.3, "end": 1.9, "words": [
        {"text": "a", "start": 0.3, "end": 1.0}, {"text": "b", "start": 1.0, "end": 1.9}]}
    assert data["segments"][1] == {"text": "[…]", "start": 2.0, "end": 3.0, "gap": True,
                                   "reason": "replay buffer exceeded; audio lost"}


async def test_json_says_how_long_the_audio_was_how_the_session_ended_and_with_what_options(tone_wav, tmp_path):
    wav, _ = tone_wav
    length = soundfile.info(str(wav)).duration
    async with FakeAudioPod() as fake:
        code, _, err = await captioner(
            *_transcribe_args(wav, fake, "--language", "fr", "--json", str(tmp_path / "ok.json")),
            env={"CAPTIONER_AUDIOPOD_KEY": fake.key},
        )
    assert code == 0, err
    data = json.loads((tmp_path / "ok.json").read_text())
    assert data["outcome"] == "completed" and "error" not in data
    assert data["audio_duration"] == pytest.approx(length, abs=0.01)
    assert data["language"] == "fr"
    assert data["options"] == {"language": "fr", "diarize": False, "word_units": "auto", "rollover_margin_s": 20.0}
    # the saved session says the same, and `export` writes it again
    code, out, _ = await captioner("sessions")
    code, _, err = await captioner("export", out.split("\t")[0], "--json", str(tmp_path / "again.json"))
    assert code == 0, err
    assert json.loads((tmp_path / "again.json").read_text()) == data

    async with FakeAudioPod(refuse_with="INSUFFICIENT_CREDITS") as fake:
        code, _, err = await captioner(
            *_transcribe_args(wav, fake, "--json", str(tmp_path / "refused.json")), env={"CAPTIONER_AUDIOPOD_KEY": fake.key}
        )
    assert code == 1
    data = json.loads((tmp_path / "refused.json").read_text())
    assert data["outcome"] == "failed" and data["error"] == "INSUFFICIENT_CREDITS" and data["segments"] == []


def test_version_1_files_still_load():
    from captioner.transcript.export import from_json

    old = {"format": "captioner-transcript", "version": 1, "provider": "p", "source": "s", "started_at": "",
           "segments": [{"text": "hi", "start": 0.5, "end": 1.0}, {"text": "[…]", "start": 1.0, "end": 2.0, "gap": True}]}
    t = from_json(json.dumps(old))
    assert [s.text for s in t.segments] == ["hi", "[…]"] and t.audio_duration is None and t.outcome == ""


async def test_sessions_with_an_unusable_data_folder_is_one_error_line(tmp_path):
    """CAPTIONER_DATA_DIR naming a file: a traceback before."""
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    code, out, err = await captioner("sessions", env={"CAPTIONER_DATA_DIR": str(not_a_dir)})
    assert code == 2 and out == ""
    assert err.startswith(f"error: cannot open the saved sessions folder {not_a_dir / 'sessions'}: ") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


async def test_sessions_with_none_saved_says_so_on_stderr(tmp_path):
    """It printed nothing at all: a new user could not tell an empty list
    from a broken command. Stdout stays empty for scripts."""
    code, out, err = await captioner("sessions", env={"CAPTIONER_DATA_DIR": str(tmp_path)})
    assert code == 0 and out == ""
    assert err.strip() == f"no saved sessions in {tmp_path / 'sessions'}"
