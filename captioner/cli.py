"""Command line: `captioner` with no arguments opens the app; subcommands
transcribe a file, caption a device headless, and manage keys and devices.

The output contract is stable (other tools parse it): each final caption's
text on its own stdout line as it arrives; partials only with --partials, on
stderr; a one-line `error: …` on stderr and a non-zero exit on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import signal
import sys
from typing import Any, Sequence

from captioner import __version__

EXIT_OK = 0
EXIT_PROVIDER = 1  # the provider refused or failed the session
EXIT_USAGE = 2
EXIT_AUDIO = 3
EXIT_EXPORT = 4
EXIT_KEYRING = 5

EXPORT_FORMATS = ("srt", "vtt", "txt", "json")


class CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _add_cue_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("caption layout (SRT and WebVTT)")
    g.add_argument("--line-chars", type=int, default=42, metavar="N", help="characters per line (default 42)")
    g.add_argument("--lines", type=int, default=2, metavar="N", help="lines per cue (default 2)")
    g.add_argument("--reading-speed", type=float, default=20.0, metavar="CPS",
                   help="longest reading speed in characters per second (default 20; a Chinese or "
                        "Japanese character counts as 5)")


def _cue_rules(args: argparse.Namespace) -> Any:
    from captioner.transcript.segmentation import CueRules

    if args.line_chars < 10 or not 1 <= args.lines <= 4 or args.reading_speed <= 0:
        raise CliError("--line-chars must be at least 10, --lines 1 to 4, --reading-speed positive", EXIT_USAGE)
    return CueRules(max_chars_per_line=args.line_chars, max_lines=args.lines, max_chars_per_second=args.reading_speed)


def _add_session_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--provider",
        help="local (built in: basic accuracy, on this computer, no key), uglabs, audiopod, voicerun, smallest or "
        "inworld; default: the first cloud provider with a key, else local",
    )
    p.add_argument("--endpoint", help="replace the provider's default URL (ws:// only for loopback)")
    p.add_argument("--language", help="language code (provider-specific; see `captioner providers`)")
    p.add_argument(
        "--option", "-o", action="append", default=[], metavar="KEY=VALUE", help="a provider option (repeatable)"
    )
    for fmt in EXPORT_FORMATS:
        p.add_argument(f"--{fmt}", metavar="FILE", help=f"write a {fmt.upper()} file at the end")
    p.add_argument("--partials", action="store_true", help="also print interim text to stderr")
    p.add_argument("--no-save", action="store_true", help="do not keep a session journal")
    _add_cue_args(p)
    p.add_argument("-v", "--verbose", action="store_true", help="log connection details to stderr")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="captioner",
        description="Live captions through a cloud speech-to-text provider or the built-in offline engine.",
        epilog=APP_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"captioner {__version__}")
    sub = parser.add_subparsers(dest="command")

    t = sub.add_parser("transcribe", help="caption a WAV file")
    t.add_argument("wav", help="a PCM WAV file (any rate, any channels, 16/24/32-bit or float)")
    t.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="pace at X times real time; 0 = as fast as possible. A provider whose times are estimates from when "
        "its replies arrive (voicerun) gets the file at real time at most, and a note says so",
    )
    _add_session_args(t)

    lst = sub.add_parser("listen", help="caption an input device until Ctrl-C or --duration")
    lst.add_argument(
        "--device",
        help="device name (or part of it) or index; default input if omitted. System audio (what you hear) is "
        "listed by `captioner devices`: on Linux each speaker's monitor (a name ending in .monitor), on Windows "
        "each output's [Loopback], on macOS a loopback device such as BlackHole",
    )
    lst.add_argument(
        "--mix-with",
        metavar="DEVICE",
        help="also capture DEVICE and caption both mixed, e.g. --device Mic --mix-with monitor for your voice "
        "plus the meeting",
    )
    lst.add_argument("--duration", type=float, help="stop after S seconds of audio")
    _add_session_args(lst)

    sub.add_parser("devices", help="list input devices, system audio (what you hear) included")
    sub.add_parser("sessions", help="list saved sessions (newest first)")
    e = sub.add_parser("export", help="export a saved session")
    e.add_argument("session", help="session id (or a unique prefix) from `captioner sessions`, or a journal path")
    for fmt in EXPORT_FORMATS:
        e.add_argument(f"--{fmt}", metavar="FILE", help=f"write a {fmt.upper()} file")
    _add_cue_args(e)
    sub.add_parser("providers", help="list providers and what they can do")

    k = sub.add_parser("keys", help="store API keys in the OS keyring")
    ksub = k.add_subparsers(dest="keys_command", required=True)
    ks = ksub.add_parser("set", help="store a key (read from the terminal without echo, or stdin)")
    ks.add_argument("provider")
    ks.add_argument("--stdin", action="store_true", help="read the key from standard input")
    kd = ksub.add_parser("delete", help="remove a stored key")
    kd.add_argument("provider")
    ksub.add_parser("list", help="which providers have a key (never the key itself)")
    return parser


APP_HELP = """\
the desktop app (no command):
  captioner [--provider ID] [--device NAME] [--endpoint URL] [--start]
    opens the caption overlay and its control window
    --provider ID   a provider id (`captioner providers` lists them; local: built in, no key)
    --device NAME   input device name, or part of it (default: the system's default input)
    --endpoint URL  replace the provider's default URL
    --start         start captioning at once
"""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].split("=", 1)[0] in ("--provider", "--device", "--endpoint", "--start"):
        from captioner.app import main as app_main

        return app_main(argv)
    try:
        code = _main(argv)
        sys.stdout.flush()  # here, not at exit, where a closed pipe could only print a traceback
    except BrokenPipeError:
        _stdout_closed()
        code = EXIT_OK
    return code


def _stdout_closed() -> None:
    """The reader of stdout went away (`… | head -1`): stop writing there,
    quietly. Python's documented way (library/signal.html, "Note on SIGPIPE"):
    point stdout at devnull, so no later write or the exit flush raises."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "transcribe":
            return _run_async(_transcribe(args))
        if args.command == "listen":
            return _run_async(_listen(args))
        if args.command == "devices":
            return _devices()
        if args.command == "providers":
            return _providers()
        if args.command == "sessions":
            return _sessions()
        if args.command == "export":
            return _export_session(args)
        if args.command == "keys":
            return _keys(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    parser.print_help()
    return EXIT_USAGE


class _Aborted(KeyboardInterrupt):
    """A second stop signal: abort at once, exit 128 + the signal's number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _run_async(coro: Any) -> int:
    try:
        return asyncio.run(coro)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt as exc:
        print("error: interrupted", file=sys.stderr)
        return 128 + getattr(exc, "signum", signal.SIGINT)


# Signals that stop a session gracefully (what was captioned is exported).
# Ctrl-C is how `listen` is meant to end, so it keeps the session's own exit
# code; SIGTERM and SIGHUP come from outside (a service manager, a closed
# terminal), so the exit says the session was cut short: 128 + the number.
_STOP_SIGNALS = tuple(
    s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None
)


def _parse_options(args: argparse.Namespace) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in args.option:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CliError(f"--option takes KEY=VALUE, got {item!r}", EXIT_USAGE)
        values[name.strip()] = value
    if args.language:
        values["language"] = args.language
    return values


def _prepare(args: argparse.Namespace) -> tuple[Any, str, Any]:
    """Validate the provider, options and endpoint, and fetch the key — all
    before any audio is opened or any connection made. Returns the session,
    the provider id and the validated options."""
    from captioner import keys, logs
    from captioner.captioning import CaptionJob, MissingKey, make_session
    from captioner.stt.options import OptionError
    from captioner.stt.registry import UnknownProvider
    from captioner.stt.urls import EndpointError

    logs.setup_logging(args.verbose)
    session_log = logging.getLogger("captioner.stt.session")
    if _SHOWN_AS_WARNING not in session_log.filters:
        session_log.addFilter(_SHOWN_AS_WARNING)
    if not args.provider:
        from captioner.stt.registry import default_provider_id

        args.provider = default_provider_id(lambda pid: keys.key_source(pid) is not None)
        print(f"note: no --provider given: using {args.provider}", file=sys.stderr, flush=True)
    job = CaptionJob(args.provider, _parse_options(args), args.endpoint)
    try:
        provider, options, _ = job.validated()
        key = keys.get_key(provider.id) if provider.needs_key else ""  # the offline engine needs none
        if provider.needs_key and not key:
            raise MissingKey(provider)
    except (UnknownProvider, OptionError, EndpointError, MissingKey) as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    except keys.KeyStoreError as exc:
        raise CliError(f"no API key for {job.provider.name}: {exc}", EXIT_KEYRING) from None
    logs.add_secret(key)
    try:
        return make_session(job, key), provider.id, options
    except keys.BadKey as exc:  # make_session checks the key; say where it came from
        raise CliError(f"{exc} (it comes from the {keys.key_source(provider.id)})", EXIT_USAGE) from None


class _ShownAsWarning(logging.Filter):
    """Drops the session's log line for a bad frame: the frame also arrives
    as a retryable ProviderError, which the printer shows as one `warning:`
    line; both would say the same thing twice."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.WARNING and record.msg == "ignored a bad frame: %s")


_SHOWN_AS_WARNING = _ShownAsWarning()


def _printer(partials: bool) -> Any:
    from captioner.stt.events import Final, Gap, Partial, ProviderError, StateChanged
    from captioner.transcript.model import clean_text

    stdout_open = True

    def on_event(event: Any) -> None:
        nonlocal stdout_open
        if isinstance(event, Final):
            text = clean_text(event.text)  # one line per final, whatever the provider sent
            if text and stdout_open:
                try:
                    print(text, flush=True)
                except BrokenPipeError:  # `… | head -1`: captioning and the files go on
                    stdout_open = False
                    _stdout_closed()
        elif isinstance(event, Partial) and partials:
            print(f"… {clean_text(event.text)}", file=sys.stderr, flush=True)
        elif isinstance(event, Gap):
            print(f"warning: no captions for {event.end - event.start:.1f} s of audio: {event.reason}", file=sys.stderr, flush=True)
        elif isinstance(event, ProviderError) and event.retryable:
            print(f"warning: {event}", file=sys.stderr, flush=True)
        elif isinstance(event, StateChanged) and event.state.value == "reconnecting":
            print(f"warning: reconnecting ({event.detail})", file=sys.stderr, flush=True)

    return on_event


async def _caption(args: argparse.Namespace, source: Any, live: bool, banner: str = "") -> int:
    from captioner.audio.feed import AudioSourceError
    from captioner.captioning import caption_source, describe_options
    from captioner.stt.events import ProviderFailure
    from captioner.transcript.model import Transcript

    rules = _cue_rules(args)
    session, provider_id, options = _prepare(args)
    if not live:
        _note_pace(provider_id, getattr(session, "file_pace", None), args.speed)
    language, option_values = describe_options(options)
    code, message, error_code = EXIT_OK, "", ""
    transcript: Transcript | None = None
    loop = asyncio.get_running_loop()
    stopped_by: int | None = None  # the first stop signal

    def on_signal(signum: int) -> None:
        nonlocal stopped_by
        if stopped_by is not None:
            raise _Aborted(signum)
        stopped_by = signum
        if signum == signal.SIGINT:
            print("stopping… (Ctrl-C again to abort)", file=sys.stderr, flush=True)
        else:
            print(f"stopping on {signal.Signals(signum).name}… (send it again to abort)", file=sys.stderr, flush=True)
        session.stop()

    handled = []
    for signum in _STOP_SIGNALS:
        try:
            loop.add_signal_handler(signum, on_signal, signum)
            handled.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    duration = getattr(args, "duration", None)
    timers: list[asyncio.TimerHandle] = []

    def stop_at_duration(heard_before: float = -1.0, idle: int = 0) -> None:
        # S seconds of the audio's own time (lost stretches included), not of
        # the wall clock: after the computer slept, the session ended the
        # moment it woke, and the audio the sound server had kept was thrown
        # away. A source that delivers nothing for 5 s past the time still ends.
        heard = getattr(session, "audio_time", duration)
        idle = idle + 1 if heard <= heard_before else 0
        left = duration - heard
        if left <= 0.05 or idle >= 5:
            session.stop()
        else:  # checked every second: what a wake hands over comes within a few
            timers[:] = [loop.call_later(min(left, 1.0), stop_at_duration, heard, idle)]

    if duration:
        timers.append(loop.call_later(duration, stop_at_duration))
    listeners = [_printer(args.partials)]
    journal = None
    if not args.no_save:
        from captioner.transcript.journal import SessionJournal

        try:
            journal = await asyncio.to_thread(
                lambda: SessionJournal.create(provider_id, source.name, language=language, options=option_values)
            )
            listeners.append(journal)
        except OSError as exc:
            print(f"warning: the session will not be autosaved: {exc}", file=sys.stderr)
    try:
        try:
            async with source:
                if banner:  # said once the device is really open, so scripts can start playing
                    print(banner, file=sys.stderr, flush=True)
                transcript = await caption_source(source, session, listeners, live=live, provider=provider_id)
        except ProviderFailure as exc:
            transcript = getattr(exc, "transcript", None)
            code, message = EXIT_PROVIDER, f"{provider_id}: {exc.error.code}: {exc.error.message}"
            error_code = exc.error.code
            if error_code == "KEY_REJECTED":
                message += _key_fix(provider_id)
        except AudioSourceError as exc:
            transcript = getattr(exc, "transcript", None)
            code, message, error_code = EXIT_AUDIO, str(exc), "AUDIO_ERROR"
        finally:
            outcome = "failed" if code != EXIT_OK else "stopped" if stopped_by is not None else "completed"
            audio_duration = getattr(session, "audio_time", None)
            if journal is not None:
                close = lambda: journal.close(  # noqa: E731
                    code == EXIT_OK, audio_duration=audio_duration, outcome=outcome, error=error_code
                )
                await asyncio.to_thread(close)
                if journal.error is not None:
                    print(f"warning: the session journal is incomplete: {journal.error}", file=sys.stderr)
            for timer in timers:
                timer.cancel()
        if transcript is not None:
            transcript.audio_duration = audio_duration
            transcript.outcome, transcript.error = outcome, error_code
            transcript.language, transcript.options = language, option_values
            targets = [(fmt, getattr(args, fmt)) for fmt in EXPORT_FORMATS if getattr(args, fmt)]
            if not await asyncio.to_thread(_write_exports, transcript, targets, rules):
                code = code or EXIT_EXPORT
    finally:
        for signum in handled:  # kept until the files are written: a signal then only asks to stop
            try:
                loop.remove_signal_handler(signum)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
    stats = getattr(source, "stats", None)
    if live and stats is not None and (stats.device_overflows or stats.dropped_frames):
        print(
            f"warning: the input could not keep up: {stats.device_overflows} overflow(s) reported by the device, "
            f"{stats.dropped_frames / source.sample_rate:.1f} s of audio replaced by silence",
            file=sys.stderr,
        )
    if message:
        print(f"error: {message}", file=sys.stderr)
    if code == EXIT_OK and stopped_by is not None and stopped_by != signal.SIGINT:
        code = 128 + stopped_by
    return code


def _key_fix(provider_id: str) -> str:
    """Where to fix a refused key: the environment variable it came from (it
    overrides the keyring, so a new stored key would change nothing), else
    the keyring."""
    from captioner import keys

    var = keys.env_var(provider_id)
    if os.environ.get(var):
        return f"; the key comes from {var}: set a valid one there"
    return f"; store a new key with `captioner keys set {provider_id}`"


def _note_pace(provider_id: str, pace: float | None, speed: float) -> None:
    """One `note:` when the session paces files (the provider's times are
    estimates) slower than --speed asked, so a slow run is not a surprise."""
    from captioner.stt.registry import PROVIDERS

    provider = PROVIDERS[provider_id]
    if pace is None or not (speed == 0 or speed > pace):
        return
    asked = "as fast as possible" if speed == 0 else f"{speed:g}×"
    print(
        f"note: the file goes to {provider.name} at {pace:g}× real time, not {asked}: "
        "its caption times are estimated from when its replies arrive",
        file=sys.stderr,
        flush=True,
    )


def _write_exports(transcript: Any, targets: list[tuple[str, str]], rules: Any) -> bool:
    """Write every target it can; each failure is one `error:` line. True
    when all were written."""
    from captioner.transcript.export import ExportError, export

    ok = True
    for fmt, path in targets:
        try:
            export(transcript, fmt, path, rules)
        except ExportError as exc:
            print(f"error: {exc.strerror}", file=sys.stderr)
            ok = False
    return ok


def _check_outputs(args: argparse.Namespace, protected: str | None = None, what: str = "") -> None:
    """Refuse, before anything starts, an output that would replace `protected`
    (the input recording, the session's journal) or another output: the same
    path once links are resolved, or the same file through a hard link."""
    seen: dict[str, str] = {}
    for fmt in EXPORT_FORMATS:
        path = getattr(args, fmt)
        if not path:
            continue
        if protected is not None and _same_file(path, protected):
            raise CliError(f"--{fmt} {path} would overwrite {what} {protected}; choose another file name", EXIT_USAGE)
        for other_fmt, other in seen.items():
            if _same_file(path, other):
                raise CliError(f"--{fmt} and --{other_fmt} name the same file ({path}); give each its own", EXIT_USAGE)
        seen[fmt] = path


def _same_file(a: str, b: str) -> bool:
    try:
        if os.path.samefile(a, b):
            return True
    except OSError:
        pass  # one of them does not exist (yet)
    return os.path.realpath(a) == os.path.realpath(b)


async def _transcribe(args: argparse.Namespace) -> int:
    from captioner.audio.feed import AudioSourceError
    from captioner.audio.sources import WavFileSource

    if args.speed < 0:
        raise CliError("--speed must be 0 or more", EXIT_USAGE)
    _check_outputs(args, args.wav, "the input recording")
    try:
        source = WavFileSource(args.wav, speed=args.speed)
    except AudioSourceError as exc:
        raise CliError(str(exc), EXIT_AUDIO) from None
    return await _caption(args, source, live=False)


async def _listen(args: argparse.Namespace) -> int:
    from captioner.audio.feed import AudioSourceError
    from captioner.audio.sources import MicrophoneSource

    _check_outputs(args)
    try:
        source: Any = MicrophoneSource(args.device)
        if args.mix_with:
            from captioner.audio.mixer import MixedSource

            source = MixedSource(source, MicrophoneSource(args.mix_with))
    except AudioSourceError as exc:
        raise CliError(str(exc), EXIT_AUDIO) from None
    banner = f"listening on {source.name} ({source.sample_rate} Hz); Ctrl-C to stop"
    source.on_notice = lambda text: print(f"warning: {text}", file=sys.stderr, flush=True)
    return await _caption(args, source, live=True, banner=banner)


def _devices() -> int:
    from captioner.audio.feed import AudioSourceError
    from captioner.audio.sources import BACKEND_PORTAUDIO, NO_INPUT_FOUND, list_input_devices, system_audio_help

    try:
        devices = list_input_devices()
    except AudioSourceError as exc:
        raise CliError(str(exc), EXIT_AUDIO) from None
    if not devices:
        raise CliError(f"{NO_INPUT_FOUND}, then run `captioner devices` again", EXIT_AUDIO)
    for dev in devices:
        mark = "  (default)" if dev.is_default else ""
        if dev.is_system:
            mark += f"  (system audio: {dev.display_name})"
        index = dev.index if dev.backend == BACKEND_PORTAUDIO else "-"  # these are chosen by name
        print(f"{index}\t{dev.name}\t[{dev.hostapi}, {dev.channels} ch, {dev.default_rate:g} Hz]{mark}")
    hint = system_audio_help(devices)
    if hint:
        print(f"note: {hint}", file=sys.stderr)
    return EXIT_OK


def _sessions() -> int:
    from captioner.transcript.journal import error_text, list_sessions, sessions_dir

    try:
        infos = list_sessions()
    except OSError as exc:  # CAPTIONER_DATA_DIR is a file, an unwritable folder, HOME is a file…
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        raise CliError(f"cannot open the saved sessions folder{where}: {error_text(exc)}", EXIT_USAGE) from None
    if not infos:  # said on stderr: stdout stays a list (empty) for scripts
        print(f"no saved sessions in {sessions_dir()}", file=sys.stderr)
    for info in infos:
        state = "" if info.finished else "  (recording now)" if info.running else "  (unfinished)"
        title = f"  {info.title}" if info.title else ""
        # The audio's length when the journal recorded it; older and app-made
        # journals only tell where the last caption ends, and say so.
        if info.audio_duration is not None:
            length = f"{info.audio_duration:.0f} s"
        elif info.segments:
            length = f"captions up to {info.duration:.0f} s"
        else:
            length = "length not recorded"
        captions = "1 caption" if info.segments == 1 else f"{info.segments} captions"
        print(f"{info.id}\t{info.provider}\t{captions}, {length}\t{info.source}{title}{state}")
    return EXIT_OK


def _export_session(args: argparse.Namespace) -> int:
    from captioner.transcript.journal import find_session, load_journal

    try:
        path = find_session(args.session)
        transcript, _ = load_journal(path)
    except OSError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    rules = _cue_rules(args)
    targets = [(fmt, getattr(args, fmt)) for fmt in EXPORT_FORMATS if getattr(args, fmt)]
    if not targets:
        raise CliError("name at least one of --srt, --vtt, --txt, --json", EXIT_USAGE)
    _check_outputs(args, str(path), "the session's journal")
    return EXIT_OK if _write_exports(transcript, targets, rules) else EXIT_EXPORT


def _providers() -> int:
    from captioner.stt.options import describe_options
    from captioner.stt.registry import PROVIDERS

    def yn(flag: bool) -> str:
        return "yes" if flag else "no"

    for p in PROVIDERS.values():
        print(f"{p.id}\t{p.name}")
        print(f"  partials: {yn(p.partials)}   word times: {yn(p.word_times)}   speakers: {yn(p.diarization)}")
        print(f"  languages: {p.languages}")
        print(f"  auth: {p.auth}")
        print(f"  limits: {p.limits}")
        print(f"  endpoint: {p.default_endpoint or 'none (runs on this computer)'}")
        opts = ", ".join(f"{name}={default!r}" + (f" {{{'|'.join(map(str, ch))}}}" if ch else "") for name, default, _, ch in describe_options(p.options_class))
        print(f"  options: {opts}")
    return EXIT_OK


def _keys(args: argparse.Namespace) -> int:
    from captioner import keys
    from captioner.stt.registry import PROVIDERS, UnknownProvider, get_provider

    try:
        if args.keys_command == "list":
            sources, unavailable = keys.key_sources([p.id for p in PROVIDERS.values() if p.needs_key])
            for pid, source in sources.items():
                shown = source or ("keyring unavailable" if unavailable is not None else "no key")
                print(f"{pid}\t{shown}")
            if unavailable is not None:  # "no key" would be a guess: say why it cannot tell
                raise unavailable
            return EXIT_OK
        provider = get_provider(args.provider)
        if not provider.needs_key:
            raise CliError(f"the built-in engine ({provider.id}) runs on this computer and needs no key", EXIT_USAGE)
        if args.keys_command == "set":
            keys.check_keyring(provider.id)  # before the user types a key that could not be kept
            key = _read_key(provider.name, args.stdin)
            if not key:
                raise CliError("no key entered; nothing stored", EXIT_USAGE)
            keys.set_key(provider.id, key)
            print(f"stored the {provider.name} key in the OS keyring")
            return EXIT_OK
        if args.keys_command == "delete":
            if keys.delete_key(provider.id):
                print(f"deleted the {provider.name} key")
            else:
                print(f"no {provider.name} key was stored")
            return EXIT_OK
    except UnknownProvider as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    except keys.BadKey as exc:  # the keyring is fine: the key is not
        raise CliError(str(exc), EXIT_USAGE) from None
    except keys.KeyStoreError as exc:
        raise CliError(str(exc), EXIT_KEYRING) from None
    return EXIT_USAGE


def _read_key(name: str, from_stdin: bool) -> str:
    """The key typed at a hidden prompt, or the first line of stdin (a pipe,
    or --stdin); "" when none came: end of input (Ctrl-D), an empty line, or
    no stdin at all (`<&-`)."""
    if sys.stdin is None:
        return ""
    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().strip()
    try:
        return getpass.getpass(f"{name} API key (input hidden): ").strip()
    except EOFError:  # Ctrl-D: getpass leaves the cursor after its prompt
        if sys.stderr.isatty():
            print(file=sys.stderr)
        return ""
    except KeyboardInterrupt:
        print(file=sys.stderr)
        raise CliError("interrupted; nothing stored", 128 + signal.SIGINT) from None
