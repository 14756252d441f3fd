"""The one event the offline engine adds to the normalized stream (kept in a
tiny module so the GUI can import it without loading anything else)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ModelProgress:
    """A model download in progress (bytes). Consumers that do not know this
    event ignore it; the control window shows it as a progress bar."""

    done: int
    total: int | None

    @property
    def fraction(self) -> float | None:
        return None if not self.total else min(1.0, self.done / self.total)

    def shifted(self, offset: float) -> "ModelProgress":
        return self
