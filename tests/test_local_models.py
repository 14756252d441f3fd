"""Model downloads against a loopback HTTP server: resume with Range after an
interruption, pinned-checksum verification, unverified models refused,
unpacking, and offline use afterwards."""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from captioner.stt.local.models import MARKER, ModelError, ModelSpec, ensure_model, is_installed


def make_zip(folder: str = "tiny-model", payload: bytes = b"") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:  # stored: the size is predictable
        zf.writestr(f"{folder}/am/final.mdl", payload or bytes(range(256)) * 1024)
        zf.writestr(f"{folder}/conf/model.conf", "--sample-frequency=16000\n")
    return buf.getvalue()


class ModelServer:
    """Serves one file at /model.zip with Range support and faults on demand."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.cut_after: int | None = None  # the next response stops after this many bytes
        self.honour_range = True
        self.requests: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                server.requests.append({k.lower(): v for k, v in self.headers.items()} | {"path": self.path})
                if self.path != "/model.zip":
                    self.send_error(404)
                    return
                body, start = server.body, 0
                rng = self.headers.get("Range")
                if rng and server.honour_range:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                chunk = body[start:]
                if server.cut_after is not None:
                    chunk, server.cut_after = chunk[: server.cut_after], None
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(chunk)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/model.zip"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "ModelServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def spec_for(body: bytes, sha: str | None = "auto", size: int | None | str = "auto") -> ModelSpec:
    return ModelSpec(
        id="tiny",
        engine="vosk",
        url="https://models.invalid/tiny.zip",
        sha256=hashlib.sha256(body).hexdigest() if sha == "auto" else sha,
        size=len(body) if size == "auto" else size,  # type: ignore[arg-type]
        folder="tiny-model",
        label="Tiny test model",
    )


def test_download_verifies_unpacks_and_is_offline_afterwards(tmp_path: Path) -> None:
    body = make_zip()
    seen: list[tuple[int, int | None]] = []
    with ModelServer(body) as server:
        path = ensure_model(spec_for(body), tmp_path, progress=lambda d, t: seen.append((d, t)), url=server.url)
    assert path == tmp_path / "tiny" / "tiny-model"
    assert (path / "am" / "final.mdl").read_bytes() == bytes(range(256)) * 1024
    assert (tmp_path / "tiny" / MARKER).read_text().strip() == hashlib.sha256(body).hexdigest()
    assert not (tmp_path / "tiny.zip.part").exists()
    assert seen[-1] == (len(body), len(body)) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    # The server is gone: the installed model is used without any network.
    assert ensure_model(spec_for(body), tmp_path, url=server.url) == path
    assert is_installed(spec_for(body), tmp_path)


def test_interrupted_download_resumes_from_the_byte_it_stopped_at(tmp_path: Path) -> None:
    body = make_zip()
    with ModelServer(body) as server:
        server.cut_after = 100_000
        with pytest.raises(ModelError, match=r"interrupted at 100000 of \d+ bytes.*start again to resume"):
            ensure_model(spec_for(body), tmp_path, url=server.url)
        part = tmp_path / "tiny.zip.part"
        assert part.read_bytes() == body[:100_000]  # kept for resume
        seen: list[int] = []
        path = ensure_model(spec_for(body), tmp_path, progress=lambda d, t: seen.append(d), url=server.url)
    assert "range" not in server.requests[0]
    assert server.requests[1]["range"] == "bytes=100000-"
    assert seen[0] > 100_000 and seen[-1] == len(body)
    assert (path / "conf" / "model.conf").is_file() and not part.exists()


def test_server_that_ignores_range_restarts_cleanly(tmp_path: Path) -> None:
    body = make_zip()
    with ModelServer(body) as server:
        server.cut_after = 50_000
        with pytest.raises(ModelError, match="interrupted"):
            ensure_model(spec_for(body), tmp_path, url=server.url)
        server.honour_range = False  # answers 200 with the whole file
        ensure_model(spec_for(body), tmp_path, url=server.url)
    assert server.requests[1]["range"] == "bytes=50000-"
    assert is_installed(spec_for(body), tmp_path)


def test_checksum_mismatch_is_a_clear_error_and_the_file_is_removed(tmp_path: Path) -> None:
    body = make_zip()
    wrong = "0" * 64
    with ModelServer(body) as server:
        with pytest.raises(ModelError) as info:
            ensure_model(spec_for(body, sha=wrong), tmp_path, url=server.url)
    message = str(info.value)
    assert f"SHA-256 {hashlib.sha256(body).hexdigest()}, expected {wrong}" in message
    assert "it was deleted, try again" in message
    assert not (tmp_path / "tiny.zip.part").exists()  # complete but wrong: resuming cannot help
    assert not (tmp_path / "tiny").exists()


def test_complete_part_left_by_a_crash_is_verified_without_downloading(tmp_path: Path) -> None:
    body = make_zip()
    (tmp_path / "tiny.zip.part").write_bytes(body)
    with ModelServer(body) as server:
        ensure_model(spec_for(body), tmp_path, url=server.url)
    assert server.requests == [] and is_installed(spec_for(body), tmp_path)


def test_unverified_model_is_refused_unless_the_user_opts_in(tmp_path: Path) -> None:
    body = make_zip()
    with ModelServer(body) as server:
        with pytest.raises(ModelError, match="no SHA-256 checksum is pinned.*allow_unverified=true"):
            ensure_model(spec_for(body, sha=None), tmp_path, url=server.url)
        assert server.requests == []  # refused before downloading anything
        path = ensure_model(spec_for(body, sha=None), tmp_path, url=server.url, allow_unverified=True)
    assert path.is_dir()


def test_wrong_size_and_plain_http_and_unsafe_archives_are_refused(tmp_path: Path) -> None:
    body = make_zip()
    with ModelServer(body) as server:
        with pytest.raises(ModelError, match=f"offers {len(body)} bytes, expected 12"):
            ensure_model(spec_for(body, size=12), tmp_path / "a", url=server.url)
    with pytest.raises(ModelError, match="only https://"):
        ensure_model(spec_for(body), tmp_path / "b", url="http://example.com/model.zip")
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("tiny-model/ok.txt", "ok")
        zf.writestr("../../escaped.txt", "no")
    evil_body = evil.getvalue()
    with ModelServer(evil_body) as server:
        with pytest.raises(ModelError, match="unsafe path"):
            ensure_model(spec_for(evil_body), tmp_path / "c", url=server.url)
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path.parent / "escaped.txt").exists()


def test_the_pinned_table_is_honest() -> None:
    from captioner.stt.local.models import MODELS

    for spec in MODELS.values():
        assert spec.url.startswith("https://")
        assert spec.sha256 is None or (len(spec.sha256) == 64 and int(spec.sha256, 16) >= 0)
        assert spec.note, "say where the checksum comes from (or that there is none)"


def test_a_model_url_with_credentials_never_shows_them(tmp_path: Path) -> None:
    """A private mirror's URL may carry user:password@ or ?token=: the
    errors name the server, never those."""
    body = make_zip()
    with ModelServer(body) as server:
        port = server.httpd.server_address[1]
        with pytest.raises(ModelError) as missing:  # HTTP 404 from the mirror
            ensure_model(spec_for(body), tmp_path, url=f"http://127.0.0.1:{port}/nope.zip?token=TOKLEAK77")
    with pytest.raises(ModelError) as gone:  # nothing listens there any more
        ensure_model(spec_for(body), tmp_path, url=f"http://alice:PWLEAK99@127.0.0.1:{port}/model.zip?token=TOKLEAK77")
    for exc in (missing.value, gone.value):
        assert "PWLEAK99" not in str(exc) and "TOKLEAK77" not in str(exc), str(exc)
    assert "HTTP 404" in str(missing.value) and "cannot reach 127.0.0.1" in str(gone.value)
    # (urllib takes no user:password@ in an http URL: it looks the whole up as a host name)


def test_journal_options_keep_no_credentials() -> None:
    """Options go into the journal and the JSON export: a value carrying a
    password or token is written redacted (Settings refuses to store one)."""
    from captioner.captioning import describe_options
    from captioner.stt.registry import get_provider

    options = get_provider("local").options({"model_url": "https://alice:PWLEAK99@mirror.example/m.zip?token=TOKLEAK77"})
    _, values = describe_options(options)
    assert "PWLEAK99" not in str(values) and "TOKLEAK77" not in str(values)
    assert values["model_url"].startswith("https://***@mirror.example/m.zip")
