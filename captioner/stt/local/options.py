"""Options of the built-in offline engine (validated like a provider's)."""

from __future__ import annotations

from dataclasses import dataclass

from captioner.stt.local.models import MODELS
from captioner.stt.options import OptionError, option

#: Engine id → what the user is told. Accuracy figures: bench/local_engine.py.
ENGINES: dict[str, str] = {
    "pocketsphinx": "basic accuracy, on this computer, nothing to download (PocketSphinx, US English)",
    "vosk-small-en-us-0.15": "better accuracy, on this computer, 40 MB model downloaded once (Vosk, US English)",
}


@dataclass(frozen=True)
class LocalOptions:
    engine: str = option("pocketsphinx", "offline recognizer: pocketsphinx is built in; Vosk downloads a model once", tuple(ENGINES))
    language: str = option("en-us", "language of the speech (the built-in models are US English)", ("en-us",))
    model_dir: str | None = option(None, "folder for downloaded models (default: your data folder, or CAPTIONER_MODEL_DIR)")
    allow_unverified: bool = option(False, "use a downloaded model whose checksum is not pinned (not recommended)")
    model_url: str | None = option(None, "download the model from this mirror instead (the pinned checksum still applies)")

    def validate(self) -> None:
        if self.engine != "pocketsphinx" and self.engine not in MODELS:
            raise OptionError(f"unknown engine {self.engine!r}")
