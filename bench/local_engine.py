"""The built-in offline engine: word error rate and real-time factor.

    .venv/bin/python bench/local_engine.py [--quick]

Speech: espeak-ng sentences (tests/speech.py, voice en-us+f2) and, when
Debian's `pocketsphinx-testdata` is installed (or PS_TESTDATA points at its
data folder), five LibriVox recordings of real read speech with their
reference transcripts. RTF = engine CPU seconds (time.process_time, in this
process) / seconds of audio, fed in 100 ms blocks as the app does; lower is
faster, < 1 keeps up with live audio. Vosk rows need `pip install vosk` and
its model installed in the model folder; otherwise they say why not.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import Result, na  # noqa: E402

TESTDATA = Path(os.environ.get("PS_TESTDATA", "/usr/share/pocketsphinx/test/data"))
BLOCK = 3200  # bytes: 100 ms at 16 kHz


def _espeak_set(quick: bool) -> tuple[str, list[tuple[str, bytes]]]:
    from tests.speech import SENTENCES, read_wav, sentence_wav

    sentences = SENTENCES[:3] if quick else SENTENCES
    folder = Path(tempfile.mkdtemp(prefix="captioner-bench-"))
    items = []
    for i, text in enumerate(sentences):  # one clip per sentence, each with the lead silence
        (folder / str(i)).mkdir()
        wav, _ = sentence_wav(folder / str(i), [text])
        items.append((text, read_wav(wav)[0].tobytes()))
    return f"espeak-ng {len(items)} sentences", items


def _librivox_set() -> tuple[str, list[tuple[str, bytes]]] | None:
    from tests.speech import read_wav, to_16k

    folder = TESTDATA / "librivox"
    if not (folder / "transcription").is_file():
        return None
    items = []
    for line in (folder / "transcription").read_text().splitlines():
        ref = line.split("<s>")[1].split("</s>")[0].strip()
        fid = line.rsplit("(", 1)[1].rstrip(")")
        items.append((ref, to_16k(*read_wav(folder / f"{fid}.wav")).tobytes()))
    return f"LibriVox {len(items)} clips", items


def _measure(make: Callable[[], Any], items: list[tuple[str, bytes]]) -> tuple[float, float, float]:
    """(WER over all items, RTF, engine load seconds). One engine for the set,
    as in a session; clips are separated by 0.5 s of silence."""
    from tests.speech import wer

    t0 = time.perf_counter()
    engine = make()
    load = time.perf_counter() - t0
    silence = b"\0\0" * 8000
    stream = b"".join(pcm + silence for _, pcm in items)
    cpu0 = time.process_time()
    finals = []
    for i in range(0, len(stream), BLOCK):
        finals += [r.text for r in engine.accept(stream[i : i + BLOCK]) if r.final]
    finals += [r.text for r in engine.finish() if r.final]
    cpu = time.process_time() - cpu0
    reference = " ".join(ref for ref, _ in items)
    return wer(reference, " ".join(finals)), cpu / (len(stream) / 32000), load


def run(quick: bool = False) -> list[Result]:
    from captioner.stt.local.engines import PocketSphinxEngine

    sets = [_espeak_set(quick)]
    libri = None if quick else _librivox_set()
    if libri is not None:
        sets.append(libri)
    engines: list[tuple[str, Callable[[], Any]]] = [
        ("pocketsphinx", PocketSphinxEngine),
        ("pocketsphinx 1-pass", lambda: PocketSphinxEngine(two_pass=False)),
    ]
    vosk_why = _vosk_factory()
    if callable(vosk_why):
        engines.append(("vosk small-en", vosk_why))
    results: list[Result] = []
    for name, make in engines:
        for label, items in sets:
            error, rtf, load = _measure(make, items)
            results.append(Result(f"{name}: WER {label}", f"{error:.3f}", "info", None, f"load {load:.2f} s"))
            results.append(Result(f"{name}: RTF {label}", f"{rtf:.3f}", "< 1 (live)", rtf < 1.0, "engine CPU / audio seconds"))
    if libri is None and not quick:
        results.append(na("LibriVox real speech", "info", f"pocketsphinx-testdata not found at {TESTDATA} (apt-get install pocketsphinx-testdata or set PS_TESTDATA)"))
    if not callable(vosk_why):
        results.append(na("vosk small-en", "info", str(vosk_why)))
    return results


def _vosk_factory() -> Callable[[], Any] | str:
    try:
        import vosk  # noqa: F401
    except ImportError:
        return "vosk is not installed (pip install 'captioner[vosk]')"
    from captioner.stt.local.engines import VoskEngine
    from captioner.stt.local.models import MODELS, default_model_root, is_installed, model_path

    spec = MODELS["vosk-small-en-us-0.15"]
    root = default_model_root()
    if not is_installed(spec, root):
        return f"the Vosk model is not installed in {root} (run a session with engine={spec.id} once)"
    return lambda: VoskEngine(model_path(spec, root))


def main() -> int:
    quick = "--quick" in sys.argv[1:]
    print(f"{'benchmark':<46} {'figure':>10}  {'target':<11} {'result':<6} note")
    for r in run(quick):
        print(f"{r.name:<46} {r.figure:>10}  {r.target:<11} {r.verdict:<6} {r.note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
