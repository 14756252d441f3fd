"""Run one captioning session from a source to a transcript; shared by the CLI
and the GUI so both behave the same way."""

from __future__ import annotations

import dataclasses
import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Callable

from captioner import keys
from captioner.audio.sources import pcm_blocks
from captioner.stt.events import CaptionEvent
from captioner.stt.options import OptionError
from captioner.stt.registry import ProviderInfo, get_provider
from captioner.stt.session import RetryPolicy, SessionConfig, StreamSession
from captioner.stt.urls import carries_secret, redact_url, validate_endpoint
from captioner.transcript.model import Transcript


class MissingKey(LookupError):
    def __init__(self, provider: ProviderInfo) -> None:
        super().__init__(
            f"no API key for {provider.name}: run `captioner keys set {provider.id}` "
            f"or set {keys.env_var(provider.id)}"
        )


def describe_options(options: Any) -> tuple[str | None, dict[str, Any]]:
    """(language, every option's value) of a session, for its journal and
    JSON export, from the CLI and the app alike. Only plain values; keys are
    kept apart, and a value that carries credentials anyway (a model URL with
    user:password@ or ?token=) is written redacted."""
    if not dataclasses.is_dataclass(options):
        return None, {}
    values = {
        f.name: getattr(options, f.name)
        for f in dataclasses.fields(options)
        if isinstance(getattr(options, f.name), (str, int, float, bool, type(None)))
    }
    values = {k: redact_url(v) if isinstance(v, str) and carries_secret(v) else v for k, v in values.items()}
    language = values.get("language")
    return (language if isinstance(language, str) else None), values


@dataclass
class CaptionJob:
    """What the user chose: provider, its options, endpoint."""

    provider_id: str
    option_values: dict[str, Any] = field(default_factory=dict)
    endpoint: str | None = None

    @property
    def provider(self) -> ProviderInfo:
        return get_provider(self.provider_id)

    def validated(self) -> tuple[ProviderInfo, Any, str]:
        """(provider, options, endpoint), or an error in words before connecting."""
        provider = self.provider
        options = provider.options(self.option_values)
        if not provider.needs_key:  # the offline engine: nothing to connect to
            if self.endpoint:
                raise OptionError(f"{provider.name} runs on this computer and takes no endpoint")
            return provider, options, ""
        endpoint = validate_endpoint(self.endpoint or provider.default_endpoint)
        return provider, options, endpoint


def make_session(
    job: CaptionJob,
    key: str,
    config: SessionConfig | None = None,
    retry: RetryPolicy | None = None,
) -> Any:
    """A StreamSession, or a LocalSession for the offline engine (same surface)."""
    provider, options, endpoint = job.validated()
    problem = keys.key_problem(key) if provider.needs_key else None
    if problem is not None:  # from an environment variable (or stored before keys were checked)
        raise keys.BadKey(f"the {provider.name} key cannot be used: {problem}")
    if not provider.needs_key:
        from captioner.stt.local.session import LocalSession

        return LocalSession(options, config)
    if config is None:
        config = SessionConfig(endpoint)
    else:
        config.endpoint = endpoint
    return StreamSession(provider.factory(options, key), config, retry, secrets=(key,))


async def caption_source(
    source: Any,
    session: Any,
    listeners: list[Callable[[CaptionEvent], None]] = (),  # type: ignore[assignment]
    live: bool = True,
    on_level: Callable[[float], None] | None = None,
    provider: str = "",
) -> Transcript:
    """Stream `source` through `session` and return the transcript. On a fatal
    provider error the transcript so far is attached to the raised exception
    (`exc.transcript`) so nothing captured is lost."""
    transcript = Transcript(
        provider=provider,
        source=getattr(source, "name", ""),
        started_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )
    session.subscribe(transcript.apply)
    if hasattr(source, "on_gap"):
        source.on_gap = session.mark_gap  # a device outage is a visible gap, times stay true
    for listener in listeners:
        session.subscribe(listener)
    try:
        await session.run(pcm_blocks(source, session.sample_rate, on_level), live=live)
    except BaseException as exc:
        exc.transcript = transcript  # type: ignore[attr-defined]
        raise
    return transcript

