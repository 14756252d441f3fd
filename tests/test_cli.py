"""The command-line contract, run as a user would (a subprocess), against fakes."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time

import pytest

from tests.conftest import SCRIPT
from tests.fakes.audiopod import FakeAudioPod
from tests.test_exports import parse_srt_strict, parse_vtt_strict


async def captioner(*args: str, env: dict[str, str] | None = None, stdin: bytes | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "captioner", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), 60)
    return proc.returncode, out.decode(), err.decode()


async def test_transcribe_prints_finals_and_writes_timed_exports(tone_wav, tmp_path):
    wav, spoken = tone_wav
    async with FakeAudioPod() as fake:
        code, out, err = await captioner(
            "transcribe", str(wav), "--provider", "audiopod", "--endpoint", fake.url, "--speed", "0",
            "--srt", str(tmp_path / "a.srt"), "--vtt", str(tmp_path / "a.vtt"),
            "--txt", str(tmp_path / "a.txt"), "--json", str(tmp_path / "a.json"),
            env={"CAPTIONER_AUDIOPOD_KEY": fake.key},
        )
    assert code == 0, err
    assert out.splitlines() == [" ".join(u) for u in SCRIPT]
    assert err == ""  # partials only with --partials
    cues = parse_srt_strict((tmp_path / "a.srt").read_text("utf-8"))
    assert [" ".join(c[2]) for c in cues] == [" ".join(u) for u in SCRIPT]
    for (start, end, _), utt in zip(cues, spoken.utterances):
        assert abs(start - utt[0][1]) < 0.08
        assert abs(end - utt[-1][2]) < 0.08 or end - start >= 0.79
    assert len(parse_vtt_strict((tmp_path / "a.vtt").read_text("utf-8"))) == 3
    assert (tmp_path / "a.txt").read_text().splitlines() == out.splitlines()
    assert fake.key not in out + err


async def test_partials_go_to_stderr(tone_wav):
    wav, _ = tone_wav
    async with FakeAudioPod() as fake:
        code, out, err = await captioner(
            "transcribe", str(wav), "--provider", "audiopod", "--endpoint", fake.url, "--speed", "0", "--partials",
            env={"CAPTIONER_AUDIOPOD_KEY": fake.key},
        )
    assert code == 0
    assert "… alpha bravo" in err.splitlines()
    assert "…" not in out


async def test_refusal_is_one_line_error_with_the_providers_reason(tone_wav, tmp_path):
    wav, _ = tone_wav
    async with FakeAudioPod(refuse_with="INSUFFICIENT_CREDITS") as fake:
        code, out, err = await captioner(
            "transcribe", str(wav), "--provider", "audiopod", "--endpoint", fake.url, "--speed", "0",
            env={"CAPTIONER_AUDIOPOD_KEY": fake.key},
        )
    assert code != 0 and out == ""
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "INSUFFICIENT_CREDITS" in lines[0]
    assert len(fake.records) == 1


async def test_wrong_key_is_refused_and_never_shown(tone_wav):
    wav, _ = tone_wav
    async with FakeAudioPod() as fake:
        code, out, err = await captioner(
            "transcribe", str(wav), "--provider", "audiopod", "--endpoint", fake.url, "--speed", "0", "-v",
            env={"CAPTIONER_AUDIOPOD_KEY": "ap_not_the_right_key_123"},
        )
    assert code == 1
    assert "KEY_REJECTED" in err
    assert "ap_not_the_right_key_123" not in out + err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--provider", "nope"], "unknown provider"),
        (["--provider", "audiopod", "--endpoint", "ws://example.com/x"], "refusing unencrypted ws://"),
        (["--provider", "audiopod", "--option", "diarize=maybe"], "true or false"),
        (["--provider", "audiopod", "--option", "colour=blue"], "unknown option"),
    ],
)
async def test_usage_errors_are_clear_and_early(tone_wav, args, message):
    wav, _ = tone_wav
    code, out, err = await captioner("transcribe", str(wav), *args)
    assert code == 2, err
    assert err.startswith("error: ") and message in err


def test_missing_key_is_a_usage_error(tone_wav, capsys):
    from captioner.cli import main

    wav, _ = tone_wav
    assert main(["transcribe", str(wav), "--provider", "audiopod"]) == 2
    err = capsys.readouterr().err
    assert err == "error: no API key for AudioPod: run `captioner keys set audiopod` or set CAPTIONER_AUDIOPOD_KEY\n"


async def test_not_a_wav_is_a_clear_error(tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("this is not audio")
    code, _, err = await captioner("transcribe", str(bad), "--provider", "audiopod", env={"CAPTIONER_AUDIOPOD_KEY": "ap_x"})
    assert code == 3 and "not a readable audio file" in err


async def test_keys_set_list_delete_never_print_the_key(memory_keyring):
    # The subprocess has no in-memory keyring; exercise the same code in-process.
    from captioner.cli import main

    import io
    from contextlib import redirect_stdout

    sys_stdin = sys.stdin
    try:
        sys.stdin = io.StringIO("ap_secret_value_42\n")
        buf = io.StringIO()
        with redirect_stdout(buf):
            assert main(["keys", "set", "audiopod", "--stdin"]) == 0
            assert main(["keys", "list"]) == 0
            assert main(["keys", "delete", "audiopod"]) == 0
            assert main(["keys", "delete", "audiopod"]) == 0
    finally:
        sys.stdin = sys_stdin
    out = buf.getvalue()
    assert "ap_secret_value_42" not in out
    assert re.search(r"^audiopod\tkeyring$", out, re.M)
    assert "no AudioPod key was stored" in out
    assert memory_keyring.store == {}


async def test_env_override_beats_keyring(memory_keyring, monkeypatch):
    from captioner import keys

    keys.set_key("audiopod", "from-keyring")
    assert keys.get_key("audiopod") == "from-keyring"
    monkeypatch.setenv("CAPTIONER_AUDIOPOD_KEY", "from-env")
    assert keys.get_key("audiopod") == "from-env"
    assert keys.key_source("audiopod") == "environment"
    assert memory_keyring.store == {("captioner", "audiopod"): "from-keyring"}


def test_no_keyring_is_explained(monkeypatch):
    import keyring
    from keyring.backends import fail

    from captioner import keys

    keyring.set_keyring(fail.Keyring())
    with pytest.raises(keys.KeyStoreError) as info:
        keys.get_key("audiopod")
    assert "CAPTIONER_AUDIOPOD_KEY" in str(info.value)  # the real name, not a placeholder


async def test_providers_lists_all_five_with_capabilities():
    code, out, _ = await captioner("providers")
    assert code == 0
    ids = [line.split("\t")[0] for line in out.splitlines() if not line.startswith(" ")]
    assert ids == ["uglabs", "audiopod", "voicerun", "smallest", "inworld", "local"]  # + the built-in offline engine
    assert "partials: yes" in out and "word times:" in out


async def test_version_and_module_entry():
    code, out, _ = await captioner("--version")
    assert code == 0 and re.fullmatch(r"captioner \d+\.\d+\.\d+\n", out)


async def test_sessions_are_saved_listed_and_exported(tone_wav, tmp_path):
    wav, _ = tone_wav
    async with FakeAudioPod() as fake:
        code, _, err = await captioner(
            "transcribe", str(wav), "--provider", "audiopod", "--endpoint", fake.url, "--speed", "0",
            env={"CAPTIONER_AUDIOPOD_KEY": fake.key},
        )
    assert code == 0, err
    code, out, _ = await captioner("sessions")
    assert code == 0
    (line,) = out.splitlines()
    session_id = line.split("\t")[0]
    assert "audiopod" in line and "3 captions" in line and "unfinished" not in line
    code, _, err = await captioner("export", session_id[:10], "--srt", str(tmp_path / "s.srt"))
    assert code == 0, err
    cues = parse_srt_strict((tmp_path / "s.srt").read_text())
    assert [" ".join(c[2]) for c in cues] == [" ".join(u) for u in SCRIPT]


async def test_cue_layout_options_shape_the_srt(tone_wav, tmp_path):
    wav, _ = tone_wav
    async with FakeAudioPod() as fake:
        code, _, err = await captioner(
            "transcribe", str(wav), "--provider", "audiopod", "--endpoint", fake.url, "--speed", "0",
            "--line-chars", "12", "--lines", "1", "--srt", str(tmp_path / "narrow.srt"),
            env={"CAPTIONER_AUDIOPOD_KEY": fake.key},
        )
    assert code == 0, err
    cues = parse_srt_strict((tmp_path / "narrow.srt").read_text())
    assert all(len(c[2]) == 1 and len(c[2][0]) <= 12 for c in cues)
    assert " ".join(" ".join(c[2]) for c in cues).split() == [w for u in SCRIPT for w in u]
    code, _, err = await captioner("transcribe", str(wav), "--provider", "audiopod", "--lines", "9")
    assert code == 2 and "--lines 1 to 4" in err


async def test_sessions_says_which_one_is_recording_now():
    """A session another Captioner (here: this test process) is recording is
    listed as such, not as unfinished."""
    from captioner.stt.events import Final
    from captioner.transcript.journal import SessionJournal, sessions_dir

    live = SessionJournal.create("audiopod", "mic", sessions_dir())
    live(Final("still talking", 0.0, 1.0))
    try:
        code, out, _ = await captioner("sessions")
        assert code == 0
        (line,) = out.splitlines()
        assert line.startswith(live.path.stem) and line.endswith("(recording now)")
    finally:
        live.close(finished=False)
    code, out, _ = await captioner("sessions")
    assert out.splitlines()[0].endswith("(unfinished)")


@pytest.mark.parametrize("argv", [["--device=Mic"], ["--endpoint=wss://x.example/s"], ["--provider=local"],
                                  ["--device", "Mic"], ["--start"], []])
def test_the_apps_own_options_open_the_app_also_written_with_an_equals_sign(argv, monkeypatch):
    """`captioner --device=Mic` was "unrecognized arguments" while `--provider=X` worked."""
    import captioner.app
    from captioner import cli

    opened: list[list[str]] = []
    monkeypatch.setattr(captioner.app, "main", lambda a: opened.append(list(a)) or 0)
    assert cli.main(argv) == 0 and opened == [argv]


def test_devices_with_none_found_says_so(monkeypatch, capsys):
    """It printed nothing and exited 0."""
    import captioner.audio.sources as sources
    from captioner import cli

    monkeypatch.setattr(sources, "list_input_devices", lambda: [])
    assert cli.main(["devices"]) == 3
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: no audio input device was found: connect a microphone")


def test_keys_set_for_the_built_in_engine_reads_as_a_sentence(capsys):
    from captioner import cli

    assert cli.main(["keys", "set", "local"]) == 2
    assert capsys.readouterr().err == "error: the built-in engine (local) runs on this computer and needs no key\n"


def test_help_names_the_desktop_apps_options(capsys):
    """`captioner --help` never mentioned --provider/--device/--endpoint/--start."""
    from captioner import cli

    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "the desktop app (no command):" in out
    for flag in ("--provider ID", "--device NAME", "--endpoint URL", "--start"):
        assert flag in out


@pytest.mark.parametrize("bad", ["ap_key_0123\u2026", "ap_key\u200b0123", "ap_key\t0123"])
def test_a_key_with_a_pasted_character_is_refused_at_once_and_not_stored(memory_keyring, monkeypatch, capsys, tone_wav, bad):
    """A pasted "…", zero-width space or tab cannot travel in an HTTP
    header: it is refused when stored, and a key from the environment is
    refused before connecting, instead of 30 s of retried network errors."""
    import io

    from captioner.cli import main

    monkeypatch.setattr(sys, "stdin", io.StringIO(bad + "\n"))
    assert main(["keys", "set", "audiopod", "--stdin"]) == 2
    err = capsys.readouterr().err
    assert "was not stored" in err and "character" in err and "ap_key" not in err
    assert memory_keyring.store == {}
    monkeypatch.setenv("CAPTIONER_AUDIOPOD_KEY", bad)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    started = time.monotonic()
    assert main(["transcribe", str(tone_wav[0]), "--provider", "audiopod"]) == 2
    err = capsys.readouterr().err
    assert "AudioPod key cannot be used" in err and "comes from the environment" in err and "ap_key" not in err
    assert time.monotonic() - started < 5
