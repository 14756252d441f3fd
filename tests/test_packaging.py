"""The PyInstaller recipe: it keeps every Qt module the app imports, and the
Linux bundle builds, stays within its size targets and runs (`--version`,
`providers`, the GUI opening offscreen and closing cleanly)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_spec_keeps_every_qt_module_the_app_imports():
    spec = (ROOT / "packaging" / "captioner.spec").read_text()
    kept = set(re.search(r"QT_KEEP = \{([^}]*)\}", spec).group(1).replace('"', "").replace(" ", "").split(","))
    used = set()
    for path in (ROOT / "captioner").rglob("*.py"):
        used |= set(re.findall(r"PySide6\.(Qt\w+)", path.read_text()))
    assert used, "no Qt imports found: the scan is broken"
    assert used <= kept, f"excluded from the bundle but imported: {sorted(used - kept)}"


def test_desktop_entry_and_metainfo_are_shipped():
    from importlib.resources import files

    res = files("captioner.resources")
    desktop = res.joinpath("captioner.desktop").read_text()
    assert "Exec=captioner" in desktop and "Icon=captioner" in desktop
    assert "<id>app.captioner.Captioner</id>" in res.joinpath("app.captioner.Captioner.metainfo.xml").read_text()
    assert res.joinpath("icons", "captioner-256.png").is_file()


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the bundle is proven on Linux")
def test_linux_bundle_builds_fits_and_runs():
    if importlib.util.find_spec("PyInstaller") is None:
        pytest.fail("PyInstaller is missing: it is part of the [test] extra")
    out = subprocess.run(
        [sys.executable, str(ROOT / "packaging" / "build.py"), "--xz"],
        capture_output=True, text=True, timeout=600, cwd=ROOT, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "smoke test: passed (--version, providers, offline engine, GUI offscreen)" in out.stdout
    unpacked = float(re.search(r"unpacked size:\s+([\d.]+) MB", out.stdout).group(1))
    # The built-in offline engine's model (37 MB) compresses poorly: gzip lands
    # at ~82 MB, xz under the 70 MB target (see README, "Installable app").
    packed = float(re.search(r"compressed tar.xz:\s+([\d.]+) MB", out.stdout).group(1))
    assert unpacked < 180 and packed < 70, out.stdout
    print(out.stdout)
