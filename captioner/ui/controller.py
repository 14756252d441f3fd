"""The GUI's captioning controller: one session at a time, run on the qasync
loop, reported to the windows through Qt signals.

Everything that can block (keyring, opening a device, creating or closing the
journal, exports) runs in a worker thread. The audio source is made by an
injectable factory so tests can feed WAV files instead of a microphone.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
import time
from typing import Any, AsyncIterator, Awaitable, Callable

from PySide6.QtCore import QObject, QTimer, Signal

from captioner.stt.events import CaptionEvent, ProviderFailure, SessionState, StateChanged
from captioner.stt.urls import redact_text

log = logging.getLogger(__name__)

SourceFactory = Callable[[str | None], Any]
KeyGetter = Callable[[str], Awaitable[str | None]]

#: The state detail while the input device is lost and being reopened. The
#: overlay shows it as "Reconnecting… input device lost"; the control window
#: as "Reconnecting… (input device lost)".
INPUT_LOST = "input device lost"

NETWORK_CODES = {"CONNECT_FAILED", "NETWORK", "NOT_READY", "WATCHDOG", "LOGIN_FAILED", "DRAIN_TIMEOUT", "ENDED"}


def microphone_factory(device: str | None) -> Any:
    """The real app's source: a capture device (blocking: queries PortAudio).
    With mixing, the controller calls it once per device and wraps both in a
    MixedSource: MixedSource(MicrophoneSource(mic), MicrophoneSource(monitor))."""
    from captioner.audio.sources import MicrophoneSource

    return MicrophoneSource(device or None)


async def _get_key(provider: str) -> str | None:
    from captioner import keys  # imports keyring: only when first needed

    return await keys.get_key_async(provider)


def _journal_factory(provider: str, source: str, **facts: Any) -> Any:
    """`facts`: the session's language and options, for the journal's header."""
    from captioner.transcript.journal import SessionJournal

    return SessionJournal.create(provider, source, **facts)


#: Error codes that mean the provider refused the key: storing a new key
#: answers them (the rest of what a provider says stays until it is retried).
_KEY_REFUSED = frozenset({"KEY_REJECTED", "INVALID_API_KEY", "UNAUTHORIZED", "AUTHENTICATION_FAILED", "UNAUTHENTICATED"})


class CaptionController(QObject):
    """Starts and stops captioning sessions and publishes what happens."""

    caption_event = Signal(object)  # every CaptionEvent, in order
    state_changed = Signal(str, str)  # idle | connecting | live | reconnecting | draining | error, detail
    level = Signal(float)  # input level in dBFS, at most ~20 per second
    lag_changed = Signal(float)  # seconds captions trail the audio
    running_changed = Signal(bool)
    notice = Signal(str)  # something to tell the user in words
    monitoring_changed = Signal(bool)  # the meter-only input test opened / closed

    MONITOR_SECONDS = 30.0  # a forgotten input test does not keep the microphone open

    LAG_INTERVAL = 0.5  # seconds between looks at how far behind captions are
    LEVEL_INTERVAL = 0.1  # meter updates per second: 10 follow speech; more only repaint

    def __init__(
        self,
        source_factory: SourceFactory | None = None,
        key_getter: KeyGetter | None = None,
        journal_factory: Callable[[str, str], Any] | None = _journal_factory,
        session_config: Callable[[str], Any] | None = None,
        retry: Any = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.source_factory = source_factory or microphone_factory
        self.key_getter = key_getter or _get_key
        self.journal_factory = journal_factory
        self.session_config = session_config
        self.retry = retry
        self.session: Any = None
        self.transcript: Any = None
        self.journal: Any = None
        self.provider_id = ""
        self.source_name = ""
        self.state = "idle"
        self.detail = ""
        #: What the error shown is about, so it goes once that is fixed: ("key",
        #: provider) none or a refused one, ("keyring", provider), ("provider",
        #: provider) anything else that provider's session said; None (the
        #: input, our own failure) stays until the next start.
        self.error_cause: tuple[str, str] | None = None
        self._task: asyncio.Task | None = None
        self._starting = False
        self._started_at: float | None = None
        self._stopped_at: float | None = None
        self._last_level_at = 0.0
        self._peak = -120.0
        self._secret = ""
        self._lag_polled_at = 0.0
        self._lag_timer = QTimer(self)
        # Only the fallback for when no audio block comes: blocks poll every
        # LAG_INTERVAL (`_on_level`), and a timer as short would always win
        # the race and wake the app twice a second on its own.
        self._lag_timer.setInterval(round(self.LAG_INTERVAL * 2000))
        self._lag_timer.timeout.connect(self._poll_lag)
        self._monitor_task: asyncio.Task | None = None
        self._monitor_gen = 0  # bumped by every start/stop, so a stale open is dropped
        self.monitor_source: Any = None
        self._source: Any = None  # the input of the running session
        self._losses_shown = (0, 0)
        self._stop_requested = False  # how the session ended, for its journal
        self._input_lost = False  # the input device is gone and being reopened
        self._session_state = ("connecting", "")  # the session's own, shown again once the input is back

    # --------------------------------------------------------------- state
    @property
    def running(self) -> bool:
        return self._starting or (self._task is not None and not self._task.done())

    @property
    def elapsed(self) -> float:
        """Seconds since the session started (frozen once it ended)."""
        if self._started_at is None:
            return 0.0
        end = self._stopped_at if self._stopped_at is not None else time.monotonic()
        return max(0.0, end - self._started_at)

    def _set_state(self, state: str, detail: str = "", cause: tuple[str, str] | None = None) -> None:
        self.state, self.detail = state, detail
        self.error_cause = cause if state == "error" else None
        self.state_changed.emit(state, detail)

    def _fail(self, message: str, cause: tuple[str, str] | None = None) -> None:
        self._set_state("error", redact_text(message, (self._secret,) if self._secret else ()), cause)

    # An error about something the user has since fixed must not stay on an
    # always-on-top overlay (nor in the window); one still true stays.
    def key_stored(self, provider_id: str) -> None:
        """A key was stored for `provider_id`: "no API key", "rejected the
        API key" (about the old one) and "keyring not available" are no
        longer true."""
        cause = self.error_cause
        if cause is not None and (cause[0] == "keyring" or cause == ("key", provider_id)):
            self._clear_error()

    def provider_selected(self, provider_id: str) -> None:
        """Another provider was chosen: what the last session said about
        its own provider (key, options, endpoint, service) does not apply to
        it. A keyring failure still does to any provider that needs a key."""
        cause = self.error_cause
        if cause is None or cause[1] == provider_id:
            return
        if cause[0] == "keyring":
            from captioner.stt.registry import PROVIDERS

            provider = PROVIDERS.get(provider_id)
            if provider is None or provider.needs_key:
                return
        self._clear_error()

    def _clear_error(self) -> None:
        if self.state == "error" and not self.running:
            self._set_state("idle", "")

    # --------------------------------------------------------------- start
    async def start(
        self,
        provider_id: str,
        options: dict[str, Any] | None = None,
        endpoint: str | None = None,
        device: str | None = None,
        mix_with: str | None = None,
    ) -> bool:
        """Validate, fetch the key, open the source, and start streaming.
        `mix_with` names a second device (system audio) captioned mixed with
        `device`. Returns False (with the reason in `state_changed`) when it cannot."""
        if self.running:
            return False
        self._starting = True
        self._stop_requested = False
        self._started_at = self._stopped_at = None  # the clock reads 0 while connecting, not the last session's time
        self.running_changed.emit(True)
        try:
            await self.stop_monitor()  # never two streams on one device
            ok = await self._start(provider_id, options or {}, endpoint or None, device, mix_with)
        except Exception as exc:  # anything unexpected is shown, never swallowed
            log.exception("could not start captioning")
            self._fail(f"could not start: {exc}")
            ok = False
        finally:
            self._starting = False
        if not ok:
            self.running_changed.emit(False)
        return ok

    async def _start(
        self, provider_id: str, options: dict[str, Any], endpoint: str | None, device: str | None, mix_with: str | None = None
    ) -> bool:
        from captioner.audio.feed import AudioSourceError
        from captioner.captioning import CaptionJob, describe_options, make_session
        from captioner.stt.options import OptionError
        from captioner.stt.registry import UnknownProvider
        from captioner.stt.session import SessionConfig
        from captioner.stt.urls import EndpointError

        self._set_state("connecting", "checking settings")
        job = CaptionJob(provider_id, {k: v for k, v in options.items() if v not in (None, "")}, endpoint)
        try:
            provider, provider_options, valid_endpoint = job.validated()
        except (UnknownProvider, OptionError, EndpointError) as exc:
            self._fail(str(exc), ("provider", provider_id))
            return False
        except ImportError as exc:
            self._fail(f"the {provider_id} provider is not available in this build ({exc.name})", ("provider", provider_id))
            return False
        from captioner import keys

        try:
            # The built-in offline engine needs no key (and no keyring).
            key = await self.key_getter(provider.id) if provider.needs_key else ""
        except keys.KeyStoreError as exc:
            self._fail(str(exc), ("keyring", provider.id))
            return False
        if provider.needs_key and not key:
            self._fail(f"no API key for {provider.name}: add one in Settings → API keys", ("key", provider.id))
            return False
        self._secret = key
        from captioner import logs

        logs.add_secret(key)
        try:
            source = await asyncio.to_thread(self.make_source, device, mix_with)
        except AudioSourceError as exc:
            self._fail(str(exc))
            return False
        config = self.session_config(valid_endpoint) if self.session_config else SessionConfig(valid_endpoint)
        try:
            session = make_session(job, key, config, self.retry)
        except (OptionError, EndpointError) as exc:
            self._fail(str(exc), ("provider", provider.id))
            return False
        except keys.BadKey as exc:  # a pasted character in a key from the environment
            self._fail(str(exc), ("key", provider.id))
            return False
        del key
        self.session = session
        self.provider_id = provider.id
        self.source_name = getattr(source, "name", "")
        if hasattr(source, "on_notice"):
            source.on_notice = self.notice.emit  # "the device stopped…", "capturing again from…"
        if hasattr(source, "on_device_state"):
            source.on_device_state = self._on_device_state
        self._input_lost = False
        self._session_state = ("connecting", "")
        self._source = source
        self._losses_shown = (0, 0)
        self.journal = None
        language, option_values = describe_options(provider_options)
        if self.journal_factory is not None:
            try:
                self.journal = await asyncio.to_thread(
                    self.journal_factory, provider.id, self.source_name, language=language, options=option_values
                )
            except OSError as exc:
                self.notice.emit(f"captions will not be saved to disk: {exc}")
            else:
                self._watch_journal(self.journal)
        from captioner.transcript.model import Transcript

        # Our own copy, fed by the same events, so exports work mid-session.
        self.transcript = Transcript(
            provider=provider.id,
            source=self.source_name,
            started_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            language=language,
            options=option_values,
        )
        session.subscribe(self.transcript.apply)
        session.subscribe(self._on_event)
        self._started_at, self._stopped_at = time.monotonic(), None
        self._task = asyncio.ensure_future(self._run(source, session))
        self._lag_timer.start()
        if self._stop_requested:  # Stop was pressed while this session was being set up
            session.stop()
        return True

    async def _run(self, source: Any, session: Any) -> None:
        from captioner.audio.feed import AudioSourceError
        from captioner.audio.sources import WavFileSource
        from captioner.captioning import caption_source

        listeners = [self.journal] if self.journal is not None else []
        live = not isinstance(source, WavFileSource)
        finished = False
        error_code = ""
        try:
            async with source:
                await caption_source(source, session, listeners, live=live, on_level=self._on_level, provider=self.provider_id)
            finished = True
        except ProviderFailure as exc:
            name = _provider_name(self.provider_id)
            error_code = exc.error.code
            kind = "key" if exc.error.code in _KEY_REFUSED else "provider"
            self._fail(f"{name}: {exc.error.message} ({exc.error.code})", (kind, self.provider_id))
        except AudioSourceError as exc:
            error_code = "AUDIO_ERROR"
            self._fail(str(exc))
        except Exception as exc:
            log.exception("captioning failed")
            error_code = "INTERNAL_ERROR"
            self._fail(f"captioning stopped: {exc}")
        finally:
            self._lag_timer.stop()
            self._stopped_at = time.monotonic()
            journal, self.journal = self.journal, None
            outcome = "failed" if error_code else "completed" if finished and not self._stop_requested else "stopped"
            audio_duration = getattr(session, "audio_time", None)
            if self.transcript is not None:
                # The window's export says how the session ended, as `captioner export` of its journal does.
                self.transcript.audio_duration = audio_duration
                self.transcript.outcome, self.transcript.error = outcome, error_code
            if journal is not None:
                # Every end the app sees is closed in the journal (a failed
                # session too): only a crash leaves one to recover.
                close = lambda: journal.close(  # noqa: E731
                    finished, audio_duration=audio_duration, outcome=outcome, error=error_code
                )
                await asyncio.shield(asyncio.to_thread(close))
                error = getattr(journal, "error", None)
                if error is not None:
                    self.notice.emit(
                        f"The saved session misses captions ({_error_text(error)}): "
                        "export it now to keep every caption."
                    )
            if self.state != "error":
                self._set_state("idle", "")
            self.level.emit(-120.0)
            self.running_changed.emit(False)

    # ---------------------------------------------------------- journal
    def _watch_journal(self, journal: Any) -> None:
        """Tell the user at once when captions stop reaching the disk, and
        when they do again (the journal reports from its writer thread)."""
        watch = getattr(journal, "watch", None)
        if watch is None:
            return
        loop = asyncio.get_running_loop()

        def report(status: Any) -> None:
            try:
                loop.call_soon_threadsafe(self._journal_status, status)
            except RuntimeError:
                pass  # the loop is closed: the app is quitting

        watch(report)

    def _journal_status(self, status: Any) -> None:
        if status.error is not None:
            self.notice.emit(
                f"Captions are not being saved to disk: {_error_text(status.error)}. They are kept in memory "
                "and saved as soon as writing works again; Export also has them all."
            )
            return
        text = "Captions are being saved to disk again"
        if status.written > 1:
            text += f" ({status.written} lines that waited in memory are saved too)"
        if status.dropped:
            text += f"; {status.dropped} caption(s) could not wait in memory and are missing from the saved session: Export still has them"
        self.notice.emit(text + ".")

    def make_source(self, device: str | None, mix_with: str | None = None) -> Any:
        """The source to caption (blocking: call it off the loop): `device`, or
        `device` and `mix_with` mixed into one stream."""
        from captioner.audio.feed import AudioSourceError

        if mix_with and mix_with == (device or ""):
            raise AudioSourceError(f"{mix_with!r} is chosen twice: choose a different device to mix with")
        first = self.source_factory(device)
        if not mix_with:
            return first
        from captioner.audio.mixer import MixedSource

        return MixedSource(first, self.source_factory(mix_with))

    # ------------------------------------------------------------- input test
    @property
    def monitoring(self) -> bool:
        return self._monitor_task is not None and not self._monitor_task.done()

    async def start_monitor(self, device: str | None, mix_with: str | None = None, seconds: float | None = None) -> bool:
        """Open the input for the level meter only ("Test microphone"), until
        stop_monitor(), start() or `seconds` pass. False when captioning or the
        device cannot be opened (the reason goes to `notice`)."""
        from captioner.audio.feed import AudioSourceError

        await self.stop_monitor()
        if self.running:
            return False
        gen = self._monitor_gen
        try:
            source = await asyncio.to_thread(self.make_source, device, mix_with)
        except AudioSourceError as exc:
            self.notice.emit(f"Input test: {exc}")
            return False
        if self.running or gen != self._monitor_gen:  # started or stopped meanwhile
            return False
        self.monitor_source = source
        self._monitor_task = asyncio.ensure_future(self._monitor(source, seconds or self.MONITOR_SECONDS))
        self.monitoring_changed.emit(True)
        return True

    async def _monitor(self, source: Any, seconds: float) -> None:
        from captioner.audio.dsp import downmix, level_dbfs
        from captioner.audio.feed import AudioSourceError

        async def meter() -> None:
            async for block in source:
                self._on_level(level_dbfs(downmix(block)))

        try:
            async with source:
                await asyncio.wait_for(meter(), seconds)
        except asyncio.TimeoutError:
            pass
        except AudioSourceError as exc:
            self.notice.emit(f"Input test: {exc}")
        finally:
            self.monitor_source = None
            self.level.emit(-120.0)
            self.monitoring_changed.emit(False)

    async def stop_monitor(self) -> None:
        """Close the meter-only stream and wait until it is closed."""
        self._monitor_gen += 1
        task, self._monitor_task = self._monitor_task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _on_event(self, event: CaptionEvent) -> None:
        if isinstance(event, StateChanged):
            if event.state is SessionState.FAILED:
                pass  # the failure is reported with its reason by _run
            elif event.state is SessionState.CLOSED:
                self._set_state("idle", "")
            elif event.state in _SESSION_RUNNING:
                self._session_state = (event.state.value, event.detail)
                if self._input_lost:
                    return  # "input device lost" stays shown (here and on the overlay) until it is back
                self._set_state(event.state.value, event.detail)
            else:
                self._set_state(event.state.value, event.detail)
        self.caption_event.emit(event)

    def _on_device_state(self, ok: bool) -> None:
        """The input device was lost (False) or delivers again (True): say so
        where the state is shown — the overlay too, not only the window's
        notices — with the meter at silence meanwhile (no block moves it)."""
        if not ok:
            if not self._input_lost and self.state in ("connecting", "live", "reconnecting"):
                self._input_lost = True
                self._set_state("reconnecting", INPUT_LOST)
            self._peak = -120.0
            self.level.emit(-120.0)
        elif self._input_lost:
            self._input_lost = False
            if self.state == "reconnecting" and self.detail == INPUT_LOST:
                self._set_state(*self._session_state)

    def _on_level(self, dbfs: float) -> None:
        """Emit the loudest block of each interval, so short peaks still show.
        While blocks flow they also drive the lag poll: the app is awake for
        them anyway, and the lag timer then never has to wake it."""
        self._peak = max(self._peak, float(dbfs))
        now = time.monotonic()
        if now - self._last_level_at >= self.LEVEL_INTERVAL:
            self._last_level_at = now
            self.level.emit(self._peak)
            self._peak = -120.0
        if now - self._lag_polled_at >= self.LAG_INTERVAL and self._lag_timer.isActive():
            self._poll_lag()

    def _poll_lag(self) -> None:
        self._lag_polled_at = time.monotonic()
        self._lag_timer.start()  # the fallback waits a full interval again
        if self.session is not None:
            # what the provider has not captioned yet, and what has not reached the session
            self.lag_changed.emit(float(self.session.lag) + float(getattr(self._source, "input_delay", 0.0)))
        self._report_input_losses()

    def _report_input_losses(self) -> None:
        """Say so when the input overflowed (PortAudio's flag, or our feed was
        full): that audio reached the provider as silence."""
        stats = getattr(getattr(self, "_source", None), "stats", None)
        if stats is None:
            return
        now = (int(stats.device_overflows), int(stats.dropped_frames))
        if now == self._losses_shown:
            return
        self._losses_shown = now
        rate = getattr(self._source, "sample_rate", 0) or 1
        self.notice.emit(
            f"The input could not keep up: {now[0]} overflow(s) reported by the audio device, "
            f"{now[1] / rate:.1f} s of audio replaced by silence so far"
        )

    # ---------------------------------------------------------------- stop
    def stop(self) -> None:
        """Graceful: the provider finishes the words it has. Pressed while a
        session is still being set up (key, device, journal), it is stopped
        as soon as it exists."""
        if self._starting:
            self._stop_requested = True
        elif self.session is not None and self.running:
            self._stop_requested = True
            self.session.stop()

    async def wait(self) -> None:
        """Until the current session (if any) has fully ended."""
        task = self._task
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    async def stop_and_wait(self, timeout: float = 10.0) -> None:
        await self.stop_monitor()
        self.stop()
        task = self._task
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except asyncio.TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        except Exception:
            pass

    # --------------------------------------------------------------- export
    def live_transcript(self) -> Any:
        """The transcript of the current or last session (None before any)."""
        return self.transcript

    async def export(self, fmt: str, path: str) -> None:
        """Write the transcript so far; raises ExportError (in words) or LookupError."""
        from captioner.transcript.export import export

        transcript = self.live_transcript()
        if transcript is None:
            raise LookupError("nothing to export yet: start captioning first")
        await asyncio.to_thread(export, transcript, fmt, path)


_SESSION_RUNNING = (SessionState.CONNECTING, SessionState.LIVE, SessionState.RECONNECTING)


def _error_text(exc: BaseException | None) -> str:
    from captioner.transcript.journal import error_text  # not at import: start-up stays light

    return error_text(exc)


def _provider_name(provider_id: str) -> str:
    from captioner.stt.registry import PROVIDERS

    p = PROVIDERS.get(provider_id)
    return p.name if p else provider_id


# ------------------------------------------------------------------ key test

async def _silence(rate: int, seconds: float = 1.0, block_ms: int = 100) -> AsyncIterator[bytes]:
    block = bytes(2 * rate * block_ms // 1000)
    for _ in range(int(seconds * 1000 / block_ms)):
        yield block
        await asyncio.sleep(0)


async def test_key(
    provider_id: str,
    key: str,
    endpoint: str | None = None,
    options: dict[str, Any] | None = None,
    timeout: float = 12.0,
) -> tuple[bool | None, str]:
    """Open a session with `key` and stream one second of silence.

    Returns (True, "accepted…"), (False, "refused: reason") or (None, reason)
    when the provider could not be reached, so the answer is not a guess."""
    from captioner.captioning import CaptionJob, make_session
    from captioner.stt.session import RetryPolicy, SessionConfig

    key = key.strip()
    if not key:
        return False, "enter a key first"
    job = CaptionJob(provider_id, {k: v for k, v in (options or {}).items() if v not in (None, "")}, endpoint or None)
    try:
        provider, _, valid_endpoint = job.validated()
        config = SessionConfig(valid_endpoint, open_timeout=min(8.0, timeout), drain_timeout=3.0, watchdog_seconds=5.0)
        session = make_session(job, key, config, RetryPolicy(max_attempts=0, max_quick_deaths=1))
    except ImportError as exc:
        return None, f"the {provider_id} provider is not available in this build ({exc.name})"
    except Exception as exc:
        return False, redact_text(str(exc), (key,))
    live = False

    def watch(event: CaptionEvent) -> None:
        nonlocal live
        if isinstance(event, StateChanged) and event.state is SessionState.LIVE:
            live = True

    session.subscribe(watch)
    try:
        await asyncio.wait_for(session.run(_silence(session.sample_rate), live=False), timeout)
    except ProviderFailure as exc:
        err = exc.error
        message = redact_text(err.message, (key,))
        if live and err.code in NETWORK_CODES:
            return True, f"accepted by {provider.name} (the connection then ended: {message})"
        if err.code in NETWORK_CODES:
            return None, f"could not reach {provider.name}: {message}"
        return False, f"refused by {provider.name}: {message} ({err.code})"
    except asyncio.TimeoutError:
        if live:
            return True, f"accepted by {provider.name}"
        return None, f"{provider.name} did not answer within {timeout:g} s"
    except Exception as exc:
        return None, f"could not test the key: {redact_text(str(exc), (key,))}"
    if live:
        return True, f"accepted by {provider.name}"
    return None, f"{provider.name} closed the session without accepting or refusing it"


test_key.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
