"""Property tests of the audio conversions (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from captioner.audio.dsp import (
    SILENCE_DBFS,
    PcmConverter,
    StreamResampler,
    downmix,
    int16le_to_float,
    level_dbfs,
    to_int16le,
)

floats = st.floats(-4.0, 4.0, allow_nan=False, width=32)


@given(arrays(np.float32, st.tuples(st.integers(0, 200), st.integers(1, 6)), elements=floats))
def test_downmix_is_the_channel_mean(block):
    mono = downmix(block)
    assert mono.shape == (block.shape[0],) and mono.dtype == np.float32
    np.testing.assert_allclose(mono, block.mean(axis=1), rtol=1e-5, atol=1e-6)


@given(arrays(np.float32, st.integers(0, 300), elements=floats))
def test_int16_clips_instead_of_wrapping(block):
    pcm = to_int16le(block)
    assert len(pcm) == 2 * len(block)
    back = np.frombuffer(pcm, "<i2")
    assert np.all(back[block >= 1.0] == 32767)
    assert np.all(back[block <= -1.0] <= -32767)
    inside = np.abs(block) < 1.0
    np.testing.assert_allclose(back[inside] / 32767.0, block[inside], atol=1 / 32767)
    # sign is preserved everywhere (no wrap-around)
    assert np.all(np.sign(back[np.abs(block) > 1e-4]) == np.sign(block[np.abs(block) > 1e-4]))


def test_int16_is_little_endian():
    assert to_int16le(np.array([0.5], np.float32)) == (16384).to_bytes(2, "little")
    np.testing.assert_allclose(int16le_to_float((16384).to_bytes(2, "little")), [0.5])


@given(st.floats(0.001, 1.0))
def test_level_of_a_sine_is_its_rms_in_dbfs(amplitude):
    t = np.arange(4800) / 48000
    sine = (amplitude * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    assert abs(level_dbfs(sine) - 20 * np.log10(amplitude / np.sqrt(2))) < 0.05


def test_level_of_silence_is_the_floor():
    assert level_dbfs(np.zeros(100, np.float32)) == SILENCE_DBFS
    assert level_dbfs(np.zeros(0, np.float32)) == SILENCE_DBFS


def _sine(rate: int, hz: float, seconds: float) -> np.ndarray:
    return np.sin(2 * np.pi * hz * np.arange(int(rate * seconds)) / rate).astype(np.float32)


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from([(48000, 16000), (44100, 16000), (22050, 16000), (8000, 16000), (16000, 16000), (48000, 24000)]),
    st.lists(st.integers(1, 3000), min_size=1, max_size=40),
)
def test_streaming_resampler_is_independent_of_block_boundaries(rates, sizes):
    """Block by block gives the same samples as one block: state carries over
    (no clicks at block edges), and the total length is right."""
    in_rate, out_rate = rates
    signal = _sine(in_rate, 440.0, 1.0)
    whole = StreamResampler(in_rate, out_rate)
    expected = np.concatenate([whole.process(signal), whole.flush()])
    r = StreamResampler(in_rate, out_rate)
    pieces, at = [], 0
    for size in sizes:
        pieces.append(r.process(signal[at : at + size]))
        at += size
    pieces.append(r.process(signal[at:]))
    pieces.append(r.flush())
    got = np.concatenate(pieces)
    assert abs(len(got) - len(signal) * out_rate / in_rate) <= 2
    n = min(len(got), len(expected))
    np.testing.assert_allclose(got[:n], expected[:n], atol=2e-4)


def test_resampler_removes_content_above_the_new_nyquist():
    """Anti-aliasing: a 12 kHz tone at 48 kHz must not fold back into 16 kHz audio."""
    r = StreamResampler(48000, 16000)
    out = np.concatenate([r.process(_sine(48000, 12000.0, 1.0)), r.flush()])
    assert level_dbfs(out[1000:-1000]) < -60


def test_resampler_keeps_in_band_tones():
    r = StreamResampler(44100, 16000)
    out = np.concatenate([r.process(_sine(44100, 1000.0, 1.0) * 0.5), r.flush()])
    assert abs(level_dbfs(out[1000:-1000]) - level_dbfs(_sine(16000, 1000.0, 1.0) * 0.5)) < 0.1


def test_converter_stereo_48k_to_16k_int16():
    conv = PcmConverter(48000, 16000)
    stereo = np.stack([_sine(48000, 500, 0.1), _sine(48000, 500, 0.1)], axis=1)
    pcm = conv.convert(stereo) + conv.flush()
    assert abs(len(pcm) // 2 - 1600) <= 2
