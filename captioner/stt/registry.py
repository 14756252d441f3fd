"""The providers the app knows, with their capabilities, options and defaults.

Provider modules are imported on first use so that `captioner --version` and
the GUI's first paint do not pay for all of them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from captioner.stt.options import build_options
from captioner.stt.protocol import WireProtocol


@dataclass(frozen=True)
class ProviderInfo:
    id: str
    name: str
    module: str  # "captioner.stt.providers.x:ProtocolClass:OptionsClass" (local: SessionClass)
    default_endpoint: str
    auth: str
    partials: bool
    word_times: bool
    diarization: bool
    languages: str
    limits: str
    #: "cloud": a WireProtocol driven by StreamSession, needs a key.
    #: "local": an offline engine (LocalSession): no key, no endpoint, no network.
    kind: str = "cloud"

    @property
    def needs_key(self) -> bool:
        return self.kind != "local"

    def _load(self) -> tuple[type[WireProtocol], type]:
        mod_name, proto_name, opts_name = self.module.split(":")
        mod = importlib.import_module(mod_name)
        return getattr(mod, proto_name), getattr(mod, opts_name)

    @property
    def protocol_class(self) -> type[WireProtocol]:
        return self._load()[0]

    @property
    def options_class(self) -> type:
        return self._load()[1]

    def options(self, values: Mapping[str, Any] | None = None) -> Any:
        """Validated options from strings; raises OptionError in words."""
        return build_options(self.options_class, dict(values or {}))

    def factory(self, options: Any, key: str) -> Callable[[], WireProtocol]:
        """A protocol factory: one new protocol object per connection."""
        cls = self.protocol_class
        return lambda: cls(options, key)


PROVIDERS: dict[str, ProviderInfo] = {
    p.id: p
    for p in (
        ProviderInfo(
            id="uglabs",
            name="UG Labs",
            module="captioner.stt.providers.uglabs:UgLabsProtocol:UgLabsOptions",
            default_endpoint="wss://pug.stg.uglabs.app/interact",
            auth="API key → POST /api/auth/login → access token (~60 min), then `authenticate`",
            partials=False,
            word_times=False,
            diarization=False,
            languages="language_code per request (default en)",
            limits="≤30 s of audio per transcribe: pages cut at pauses",
        ),
        ProviderInfo(
            id="audiopod",
            name="AudioPod",
            module="captioner.stt.providers.audiopod:AudioPodProtocol:AudioPodOptions",
            default_endpoint="wss://api.audiopod.ai/api/v1/transcription/stream",
            auth="API key in the URL (?api_key=, redacted everywhere)",
            partials=True,
            word_times=True,
            diarization=True,
            languages="50+ with auto-detect",
            limits="max_duration_seconds per session (from `ready`), then a new session",
        ),
        ProviderInfo(
            id="voicerun",
            name="VoiceRun",
            module="captioner.stt.providers.voicerun:VoiceRunProtocol:VoiceRunOptions",
            default_endpoint="wss://transcribe.voicerun.com/ws",
            auth="Authorization: Bearer <key> (or a first `auth` message)",
            partials=True,
            word_times=False,
            diarization=False,
            languages="BCP-47 (default en, multi = auto)",
            limits="undocumented",
        ),
        ProviderInfo(
            id="smallest",
            name="Smallest.ai Waves",
            module="captioner.stt.providers.smallest:SmallestProtocol:SmallestOptions",
            default_endpoint="wss://api.smallest.ai/waves/v1/stt/live",
            auth="Authorization: Bearer <key>",
            partials=True,
            word_times=True,
            diarization=True,
            languages="en, hi, de, es, fr, it, nl, pt, ru, zh, ja, ko and Indic languages",
            limits="100 concurrent sessions (Standard); session length undocumented",
        ),
        ProviderInfo(
            id="inworld",
            name="Inworld STT",
            module="captioner.stt.providers.inworld:InworldProtocol:InworldOptions",
            default_endpoint="wss://api.inworld.ai/stt/v1/transcribe:streamBidirectional",
            auth="Authorization: Basic <key as copied from the Inworld portal>",
            partials=True,
            word_times=True,
            diarization=False,
            languages="BCP-47 (e.g. en-US), model-dependent",
            limits="undocumented",
        ),
        ProviderInfo(
            id="local",
            name="Built-in: basic accuracy, on this computer",
            module="captioner.stt.local.session:LocalSession:LocalOptions",
            default_endpoint="",
            auth="none: runs on this computer, audio never leaves it",
            partials=True,
            word_times=True,
            diarization=False,
            languages="US English",
            limits="basic accuracy, on this computer (PocketSphinx, built in); better with the Vosk model (40 MB, downloaded once)",
            kind="local",
        ),
    )
}


def default_provider_id(has_key: Callable[[str], bool] = lambda _pid: False) -> str:
    """The first cloud provider that has a key, else the built-in offline
    engine: a newcomer with no key gets captions at once."""
    for p in PROVIDERS.values():
        if p.needs_key and has_key(p.id):
            return p.id
    return "local"


class UnknownProvider(KeyError):
    def __str__(self) -> str:
        return f"unknown provider {self.args[0]!r}; choose one of: {', '.join(PROVIDERS)}"


def get_provider(provider_id: str) -> ProviderInfo:
    try:
        return PROVIDERS[provider_id]
    except KeyError:
        raise UnknownProvider(provider_id) from None
