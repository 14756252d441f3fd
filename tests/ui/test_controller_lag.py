"""The lag the overlay shows ("behind by N s") counts the audio that has not
reached the session yet, not only what the provider has not answered."""

from __future__ import annotations

import types

from captioner.ui.controller import CaptionController


def test_the_lag_shown_adds_the_inputs_delay_to_the_sessions_lag(qapp):
    c = CaptionController()
    c.session = types.SimpleNamespace(lag=0.25)
    lags: list[float] = []
    c.lag_changed.connect(lags.append)
    c._source = types.SimpleNamespace(input_delay=6.5)  # a starved process reads the sound server late
    c._poll_lag()
    c._source = object()  # an input that cannot say (a file, mixed inputs)
    c._poll_lag()
    c._lag_timer.stop()
    assert lags == [6.75, 0.25]
