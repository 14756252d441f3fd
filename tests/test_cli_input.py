"""The CLI where the user types or the keyring is missing: `keys set` at a
real terminal (Ctrl-D, Ctrl-C, a closed stdin), `keys set`/`list` with no
keyring, messages that name a key's environment variable, a refused key, a
bad server frame, and a provider that paces files (found by exploratory
testing). Terminal and exit-code behaviour runs the CLI as a subprocess."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from captioner import keys
from tests.fakes.audiopod import FakeAudioPod
from tests.fakes.base import Fault
from tests.fakes.tones import synthesize, write_wav
from tests.fakes.voicerun import FakeVoiceRun
from tests.test_cli import captioner

REPO = Path(__file__).resolve().parents[1]
NO_KEYRING = "keyring.backends.fail.Keyring"
PROMPT = b"(input hidden): "
CLOUD = ["uglabs", "audiopod", "voicerun", "smallest", "inworld"]


def _env(tmp_path: Path, backend: str = "tests.file_keyring.FileKeyring", **extra: str) -> dict[str, str]:
    """The CLI's environment: a keyring in a file under tmp_path (or
    `backend`), never the user's."""
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PYTHON_KEYRING_BACKEND": backend,
        "TEST_KEYRING_FILE": str(tmp_path / "keyring.json"),
        **extra,
    }


def _stored(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "keyring.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _in_pty(args: list[str], env: dict[str, str], at_prompt: bytes, timeout: float = 30) -> tuple[int, str]:
    """Run the CLI on a new pseudo-terminal (its controlling terminal, as in
    a shell, so getpass reads from it); type `at_prompt` once the key prompt
    shows. Returns (exit code, everything the terminal showed)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: nothing but exec
        try:
            os.execve(sys.executable, [sys.executable, "-m", "captioner", *args], env)
        finally:
            os._exit(127)
    shown, typed, deadline = b"", False, time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
            if not typed and shown.endswith(PROMPT):
                time.sleep(0.2)  # let getpass turn echo off first
                os.write(fd, at_prompt)
                typed = True
        else:
            os.kill(pid, signal.SIGKILL)
            pytest.fail(f"the CLI did not end within {timeout} s; it showed {shown!r}")
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


def _run(args: list[str], env: dict[str, str], stdin: bytes | None = b"", closed_stdin: bool = False):
    if closed_stdin:  # `captioner … <&-`: no fd 0 at all
        cmd = " ".join([sys.executable, "-m", "captioner", *args]) + " <&-"
        return subprocess.run(["sh", "-c", cmd], env=env, capture_output=True, text=True, timeout=30)
    return subprocess.run(
        [sys.executable, "-m", "captioner", *args], env=env, input=stdin.decode(), capture_output=True,
        text=True, timeout=30,
    )


# ------------------------------------------------ 1. no key typed: no traceback
def test_ctrl_d_at_the_prompt_stores_nothing_and_says_so(tmp_path):
    code, shown = _in_pty(["keys", "set", "audiopod"], _env(tmp_path), b"\x04")
    assert "Traceback" not in shown and "EOFError" not in shown
    assert shown.rstrip().endswith("error: no key entered; nothing stored")
    assert code == 2
    assert _stored(tmp_path) == {}


def test_ctrl_c_at_the_prompt_stores_nothing_without_a_traceback(tmp_path):
    code, shown = _in_pty(["keys", "set", "audiopod"], _env(tmp_path), b"\x03")
    assert "Traceback" not in shown and "KeyboardInterrupt" not in shown
    assert shown.rstrip().endswith("error: interrupted; nothing stored")
    assert code == 130
    assert _stored(tmp_path) == {}


def test_a_key_typed_at_the_prompt_is_stored_and_never_shown(tmp_path):
    code, shown = _in_pty(["keys", "set", "audiopod"], _env(tmp_path), b"ap_typed_secret_77\n")
    assert code == 0, shown
    assert "stored the AudioPod key in the OS keyring" in shown
    assert "ap_typed_secret_77" not in shown
    assert _stored(tmp_path) == {"captioner/audiopod": "ap_typed_secret_77"}


@pytest.mark.parametrize(
    "how", ["closed stdin", "empty --stdin", "blank line --stdin", "empty pipe"],
)
def test_no_key_on_stdin_stores_nothing_and_says_so(tmp_path, how):
    args = ["keys", "set", "audiopod"] + (["--stdin"] if "--stdin" in how else [])
    result = _run(args, _env(tmp_path), stdin=b"  \n" if "blank" in how else b"", closed_stdin=how == "closed stdin")
    assert result.returncode == 2, result.stderr
    assert result.stderr == "error: no key entered; nothing stored\n"
    assert result.stdout == ""
    assert _stored(tmp_path) == {}


def test_a_key_on_stdin_is_stored(tmp_path):
    result = _run(["keys", "set", "smallest", "--stdin"], _env(tmp_path), stdin=b"sk_piped_key_1\n")
    assert result.returncode == 0, result.stderr
    assert _stored(tmp_path) == {"captioner/smallest": "sk_piped_key_1"}


# --------------------------------- 2. the keyring is checked before the prompt
def test_keys_set_without_a_keyring_says_so_before_asking_for_the_key(tmp_path):
    code, shown = _in_pty(["keys", "set", "audiopod"], _env(tmp_path, NO_KEYRING), b"ap_typed_in_vain\n")
    assert "input hidden" not in shown  # never asked
    assert "error: the OS keyring is not available" in shown and "CAPTIONER_AUDIOPOD_KEY" in shown
    assert code == 5


def test_keys_set_stdin_without_a_keyring_fails_before_reading(tmp_path):
    result = _run(["keys", "set", "voicerun", "--stdin"], _env(tmp_path, NO_KEYRING), stdin=b"")
    assert result.returncode == 5  # not "no key entered": the keyring is the problem
    assert "the OS keyring is not available" in result.stderr
    assert "CAPTIONER_VOICERUN_KEY" in result.stderr


def test_keys_set_refuses_the_null_keyring_that_would_drop_the_key(tmp_path):
    result = _run(["keys", "set", "audiopod", "--stdin"], _env(tmp_path, "keyring.backends.null.Keyring"), b"ap_k\n")
    assert result.returncode == 5 and "not available" in result.stderr


@pytest.mark.parametrize("command", [["keys", "list"], ["keys", "delete", "audiopod"]])
def test_keys_list_and_delete_with_the_null_keyring_say_it_stores_nothing(tmp_path, command):
    """`keys list` said "no key" with exit 0 and `keys delete` said "deleted"."""
    result = _run(command, _env(tmp_path, "keyring.backends.null.Keyring"))
    assert result.returncode == 5 and "the OS keyring is not available" in result.stderr
    assert "deleted" not in result.stdout


# ----------------------------------------- 3. keys list with no keyring
def test_keys_list_without_a_keyring_says_so_and_exits_like_keys_set(tmp_path):
    env = _env(tmp_path, NO_KEYRING, CAPTIONER_SMALLEST_KEY="sk_from_env")
    result = _run(["keys", "list"], env)
    assert result.returncode == 5
    rows = dict(line.split("\t") for line in result.stdout.splitlines())
    assert rows == {pid: ("environment" if pid == "smallest" else "keyring unavailable") for pid in CLOUD}
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: the OS keyring is not available")
    named = line.split("environment variables ")[1].split(", ")
    assert named == [keys.env_var(pid) for pid in CLOUD if pid != "smallest"]


def test_keys_list_with_a_keyring_is_unchanged(tmp_path):
    assert _run(["keys", "set", "inworld", "--stdin"], _env(tmp_path), b"iw_key\n").returncode == 0
    result = _run(["keys", "list"], _env(tmp_path))
    assert result.returncode == 0 and result.stderr == ""
    rows = dict(line.split("\t") for line in result.stdout.splitlines())
    assert rows == {pid: ("keyring" if pid == "inworld" else "no key") for pid in CLOUD}


# ---------------------------- 4. messages name the real environment variable
def test_keyring_errors_name_the_providers_own_variable():
    import keyring
    from keyring.backends import fail

    keyring.set_keyring(fail.Keyring())
    for call in (keys.get_key, keys.delete_key, keys.check_keyring, lambda pid: keys.set_key(pid, "k")):
        with pytest.raises(keys.KeyStoreError) as info:
            call("audiopod")
        assert str(info.value).endswith("or set the key in the environment variable CAPTIONER_AUDIOPOD_KEY")
        assert "<PROVIDER>" not in str(info.value)


async def test_transcribe_without_a_keyring_names_the_variable(tone_wav, tmp_path):
    wav, _ = tone_wav
    code, _, err = await captioner(
        "transcribe", str(wav), "--provider", "uglabs", env=_env(tmp_path, NO_KEYRING)
    )
    assert code == 5
    assert err.startswith("error: no API key for UG Labs: the OS keyring is not available")
    assert err.rstrip().endswith("CAPTIONER_UGLABS_KEY") and "<PROVIDER>" not in err


# ------------------------------------------------ 5. a bad frame, said once
@pytest.mark.parametrize("verbose", [False, True])
async def test_a_bad_frame_is_reported_once(tone_wav, tmp_path, verbose):
    wav, _ = tone_wav
    async with FakeAudioPod() as fake:
        fake.faults.append(Fault("inject", after_bytes=20000, payload=b"\x00\xff\xfe"))
        code, out, err = await captioner(
            "transcribe", str(wav), "--provider", "audiopod", "--endpoint", fake.url, "--speed", "0",
            *(["-v"] if verbose else []), env={"CAPTIONER_AUDIOPOD_KEY": fake.key},
        )
    assert code == 0, err
    said = [line for line in err.splitlines() if "binary frame" in line]
    assert said == ["warning: BAD_FRAME: AudioPod sent a binary frame where JSON text was expected"]


# ---------------------------------- 6. a refused key: where to fix it
async def test_a_refused_key_from_the_keyring_says_to_store_a_new_one(tone_wav, tmp_path):
    wav, _ = tone_wav
    assert _run(["keys", "set", "audiopod", "--stdin"], _env(tmp_path), b"ap_stale_key_9\n").returncode == 0
    async with FakeAudioPod() as fake:
        code, _, err = await captioner(
            "transcribe", str(wav), "--provider", "audiopod", "--endpoint", fake.url, "--speed", "0",
            env=_env(tmp_path),
        )
    assert code == 1
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert "KEY_REJECTED" in line
    assert line.endswith("; store a new key with `captioner keys set audiopod`")
    assert "ap_stale_key_9" not in err


async def test_a_refused_key_from_the_environment_says_to_fix_the_variable(tone_wav, tmp_path):
    wav, _ = tone_wav
    async with FakeAudioPod() as fake:
        code, _, err = await captioner(
            "transcribe", str(wav), "--provider", "audiopod", "--endpoint", fake.url, "--speed", "0",
            env={"CAPTIONER_AUDIOPOD_KEY": "ap_wrong_env_key"},
        )
    assert code == 1
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert "KEY_REJECTED" in line
    assert line.endswith("; the key comes from CAPTIONER_AUDIOPOD_KEY: set a valid one there")


# ---------------------------- 7. a provider that paces files: said, once
@pytest.fixture
def short_wav(tmp_path: Path) -> Path:
    audio, _ = synthesize([["alpha", "bravo"]], rate=16000, lead_s=0.3, tail_s=0.4)
    return write_wav(tmp_path / "short.wav", audio, 16000)


@pytest.mark.parametrize("speed, asked", [("0", "as fast as possible"), ("3", "3×")])
async def test_voicerun_says_the_file_goes_at_real_time(short_wav, speed, asked):
    async with FakeVoiceRun() as fake:
        code, out, err = await captioner(
            "transcribe", str(short_wav), "--provider", "voicerun", "--endpoint", fake.url, "--speed", speed,
            env={"CAPTIONER_VOICERUN_KEY": fake.key},
        )
    assert code == 0, err
    assert out.split() == ["alpha", "bravo"]
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert notes == [
        f"note: the file goes to VoiceRun at 1× real time, not {asked}: "
        "its caption times are estimated from when its replies arrive"
    ]


async def test_no_pace_note_when_nothing_is_slowed(short_wav):
    async with FakeVoiceRun() as fake:
        code, _, err = await captioner(
            "transcribe", str(short_wav), "--provider", "voicerun", "--endpoint", fake.url, "--speed", "1",
            env={"CAPTIONER_VOICERUN_KEY": fake.key},
        )
    assert code == 0 and "note:" not in err
    async with FakeAudioPod() as fake:  # its times are its own: 0 is as fast as possible
        code, _, err = await captioner(
            "transcribe", str(short_wav), "--provider", "audiopod", "--endpoint", fake.url, "--speed", "0",
            env={"CAPTIONER_AUDIOPOD_KEY": fake.key},
        )
    assert code == 0 and err == ""


def test_speed_help_says_a_provider_may_go_at_real_time():
    from captioner.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices["transcribe"]  # type: ignore[union-attr]
    (speed,) = [a for a in sub._actions if "--speed" in a.option_strings]
    assert "0 = as fast as possible" in speed.help
    assert "voicerun" in speed.help and "real time at most" in speed.help
