"""Speech models that are downloaded once, verified, and then used offline.

One table pins each model's URL, SHA-256 and size. A download goes to
`<folder>/<id>.zip.part`, resumes with an HTTP Range request after an
interruption, is checked against the pinned SHA-256, and is unpacked into
`<folder>/<id>/` with a `.verified` marker. After that nothing touches the
network. A model whose checksum is not pinned is refused unless the user opts
in (`allow_unverified`), because an unverified archive could be anything.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from captioner.stt.urls import redact_url

Progress = Callable[[int, "int | None"], None]  # (bytes done, total or None)

CHUNK = 64 * 1024
MARKER = ".verified"


@dataclass(frozen=True)
class ModelSpec:
    id: str
    engine: str
    url: str
    sha256: str | None  # None: no trustworthy checksum known; see `note`
    size: int | None  # bytes of the archive, when known
    folder: str  # the top-level folder inside the archive
    label: str
    note: str = ""


MODELS: dict[str, ModelSpec] = {
    m.id: m
    for m in (
        ModelSpec(
            id="vosk-small-en-us-0.15",
            engine="vosk",
            url="https://alphacephei.com/vosk/models/vosk-model-small-en-us-0.15.zip",
            # alphacephei.com publishes no checksums. This SHA-256 and size are
            # the values pinned independently by several public projects that
            # downloaded the archive; they could NOT be verified from the
            # machine this was written on (alphacephei.com unreachable). A
            # mismatch fails closed with both hashes in the message.
            sha256="30f26242c4eb449f948e42cb302dd7a686cb29a3423a8367f99ff41780942498",
            size=41_205_931,
            folder="vosk-model-small-en-us-0.15",
            label="Vosk small US English (40 MB download, Apache-2.0)",
            note="checksum from independent public pins, not published upstream",
        ),
    )
}


class ModelError(RuntimeError):
    """A model cannot be used; the message says why and what to do."""


def default_model_root() -> Path:
    """`CAPTIONER_MODEL_DIR`, else the per-user data folder."""
    env = os.environ.get("CAPTIONER_MODEL_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("captioner", appauthor=False)) / "models"


def model_path(spec: ModelSpec, root: Path) -> Path:
    return root / spec.id / spec.folder


def is_installed(spec: ModelSpec, root: Path) -> bool:
    return (root / spec.id / MARKER).is_file() and model_path(spec, root).is_dir()


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise ModelError(f"refusing to download a model over {parts.scheme or 'no scheme'}: only https:// (or http:// on loopback)")


def ensure_model(
    spec: ModelSpec,
    root: Path,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    allow_unverified: bool = False,
    url: str | None = None,
    timeout: float = 30.0,
) -> Path:
    """The model's folder, downloading and unpacking it first if needed.
    Blocking: call it from a worker. `url` replaces the pinned one (mirrors,
    tests); the pinned checksum still applies."""
    if is_installed(spec, root):
        return model_path(spec, root)
    if spec.sha256 is None and not allow_unverified:
        raise ModelError(
            f"{spec.label}: no SHA-256 checksum is pinned for this model, so a download cannot be verified; "
            "set the option allow_unverified=true to use it anyway"
        )
    root.mkdir(parents=True, exist_ok=True)
    part = root / f"{spec.id}.zip.part"
    _download(url or spec.url, part, spec, progress, cancel, timeout)
    digest = _sha256(part)
    if spec.sha256 is not None and digest != spec.sha256:
        part.unlink(missing_ok=True)  # complete but wrong: resuming it cannot help
        raise ModelError(
            f"{spec.label}: the download is corrupt or not the pinned file (SHA-256 {digest}, expected "
            f"{spec.sha256}); it was deleted, try again"
        )
    _unpack(part, root / spec.id, spec)
    (root / spec.id / MARKER).write_text(f"{digest}\n", encoding="ascii")
    part.unlink(missing_ok=True)
    return model_path(spec, root)


def _download(
    url: str, part: Path, spec: ModelSpec, progress: Progress | None, cancel: threading.Event | None, timeout: float
) -> None:
    _check_url(url)
    have = part.stat().st_size if part.exists() else 0
    if spec.size is not None and have == spec.size:
        return  # complete already (verified by the caller)
    if spec.size is not None and have > spec.size:
        part.unlink()
        have = 0
    request = urllib.request.Request(url, headers={"User-Agent": "captioner-model-download"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (scheme checked)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            return  # nothing left to send: the part is whole (the checksum decides)
        raise ModelError(f"{spec.label}: the server answered HTTP {exc.code} for {redact_url(url)}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        host = urlsplit(url).hostname or "the server"  # never the netloc: it may hold user:password@
        raise ModelError(f"{spec.label}: cannot reach {host}: {redact_url(str(reason))}") from None
    with response:
        if have and response.status == 206:
            first = _content_range_start(response.headers.get("Content-Range", ""))
            if first != have:
                raise ModelError(f"{spec.label}: the server resumed at byte {first}, not {have}; delete {part} and retry")
            mode = "ab"
        else:
            have, mode = 0, "wb"  # the server ignored Range: start over
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else spec.size
        if spec.size is not None and total is not None and total != spec.size:
            raise ModelError(f"{spec.label}: the server offers {total} bytes, expected {spec.size}")
        done = have
        with open(part, mode) as out:
            while True:
                if cancel is not None and cancel.is_set():
                    raise ModelError(f"{spec.label}: download cancelled at {done} bytes; it resumes next time")
                try:
                    chunk = response.read(CHUNK)
                except OSError as exc:
                    raise ModelError(
                        f"{spec.label}: download interrupted at {done} of {total or '?'} bytes ({exc}); "
                        "start again to resume"
                    ) from None
                if not chunk:
                    break
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
    if total is not None and done < total:
        raise ModelError(f"{spec.label}: download interrupted at {done} of {total} bytes; start again to resume")


def _content_range_start(value: str) -> int | None:
    # "bytes 100-999/1000"
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _unpack(archive: Path, dest: Path, spec: ModelSpec) -> None:
    """Unzip into a temporary folder, refusing entries that escape it, then
    move it into place so a half-unpacked model is never used."""
    tmp = dest.with_name(dest.name + ".unpacking")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            base = tmp.resolve()
            for name in zf.namelist():
                target = (tmp / name).resolve()
                if target != base and base not in target.parents:
                    raise ModelError(f"{spec.label}: the archive has an unsafe path {name!r}")
            zf.extractall(tmp)
    except zipfile.BadZipFile as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        archive.unlink(missing_ok=True)
        raise ModelError(f"{spec.label}: the archive is damaged ({exc}); it was deleted, try again") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not (tmp / spec.folder).is_dir():
        shutil.rmtree(tmp, ignore_errors=True)
        raise ModelError(f"{spec.label}: the archive has no folder {spec.folder!r}")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
