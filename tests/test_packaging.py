"""The PyInstaller recipe: it keeps every Qt module the app imports and every
library its kept Qt plugins link, the build refuses a bundle whose plugins could
not load on a user's machine, the bundle finds its icons, and the Linux bundle
builds, stays within its size targets and runs (`--version`, `providers`, the
GUI opening offscreen and closing cleanly)."""

from __future__ import annotations

import ast
import importlib.resources
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


build = _load(ROOT / "packaging" / "build.py", "captioner_build")


def _spec_drop() -> tuple[str, ...]:
    """The spec's DROP list, read without running PyInstaller."""
    tree = ast.parse((ROOT / "packaging" / "captioner.spec").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "DROP" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("no DROP in captioner.spec")


def _folder_binaries(root: Path) -> list[tuple[str, str, str]]:
    """A built bundle's libraries as PyInstaller's TOC lists them."""
    out = []
    for path in root.rglob("*.so*"):
        dest = str(path.relative_to(root))
        out.append((dest, os.readlink(path), "SYMLINK") if path.is_symlink() else (dest, str(path), "BINARY"))
    return out


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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Qt plugins are ELF files on Linux")
def test_elf_needed_reads_what_a_qt_plugin_links():
    import PySide6

    xcb = Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    needed = build.elf_needed(xcb)
    assert {"libQt6XcbQpa.so.6", "libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libc.so.6"} <= set(needed)
    assert build.elf_needed(ROOT / "packaging" / "build.py") == []  # not ELF


def test_plugin_check_names_what_a_kept_plugin_cannot_load_and_the_package_to_install():
    """A plugin linking a library that is neither bundled nor one every desktop
    has fails the build, with the Debian package for the build host."""
    links = {
        "/q/libqxcb.so": ["libQt6XcbQpa.so.6", "libxcb.so.1", "libc.so.6"],
        "/q/libQt6XcbQpa.so.6.11.3": ["libxcb-icccm.so.4", "libX11-xcb.so.1", "libxkbcommon-x11.so.0"],
        "/q/libX11-xcb.so.1": [],
        "/q/libqoffscreen.so": ["libQt6Gui.so.6"],
        "/q/libQt6Gui.so.6": ["libGL.so.1"],
    }
    binaries = [
        ("PySide6/Qt/plugins/platforms/libqxcb.so", "/q/libqxcb.so", "BINARY"),
        ("PySide6/Qt/plugins/platforms/libqoffscreen.so", "/q/libqoffscreen.so", "BINARY"),
        ("libQt6XcbQpa.so.6.11.3", "/q/libQt6XcbQpa.so.6.11.3", "BINARY"),
        ("libQt6XcbQpa.so.6", "libQt6XcbQpa.so.6.11.3", "SYMLINK"),
        ("libX11-xcb.so.1", "/q/libX11-xcb.so.1", "BINARY"),
        ("libQt6Gui.so.6", "/q/libQt6Gui.so.6", "BINARY"),
    ]
    system = {"libxcb.so.1", "libc.so.6", "libGL.so.1"}.__contains__
    problems = build.unresolved_plugin_libraries(binaries, needed=lambda p: links[str(p)], system=system)
    assert problems == {"platforms/libqxcb.so": {"libxcb-icccm.so.4", "libxkbcommon-x11.so.0"}}
    assert build.debian_package("libxcb-icccm.so.4") == "libxcb-icccm4"
    assert build.debian_package("libxkbcommon-x11.so.0.0.0") == "libxkbcommon-x11-0"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Qt plugins are ELF files on Linux")
def test_spec_keeps_every_pyside_library_its_kept_qt_plugins_link():
    """A plugin the spec keeps but whose Qt library it drops can never load
    (Wayland's adwaita title bars without libQt6Svg, the graphics integrations
    without libQt6OpenGL); the plugins the app needs are all kept."""
    import PySide6

    qt = Path(PySide6.__file__).parent / "Qt"
    drop = _spec_drop()
    files = [("PySide6/Qt/" + str(p.relative_to(qt)), str(p), "BINARY")
             for p in [*(qt / "plugins").rglob("*.so"), *(qt / "lib").glob("lib*.so*")] if not p.is_symlink()]
    kept = [f for f in files if not any(part in f[0] for part in drop)]
    pyside = {Path(f[1]).name for f in files}
    problems = build.unresolved_plugin_libraries(kept, system=lambda name: name not in pyside)
    assert problems == {}, problems
    kept_plugins = {dest.split("plugins/", 1)[1] for dest, _, _ in kept if "/plugins/" in dest}
    assert set(build.REQUIRED_PLUGINS) <= kept_plugins


def test_bundle_finds_its_packed_icons(tmp_path, monkeypatch):
    """In the bundle captioner.resources is not importable; its files are packed
    beside the captioner package, and the theme must look there (it fell back to
    a folder that does not exist, and the app drew a 64 px icon)."""
    package = tmp_path / "_internal" / "captioner"
    (package / "ui").mkdir(parents=True)
    shutil.copy(ROOT / "captioner" / "ui" / "theme.py", package / "ui" / "theme.py")
    shutil.copytree(ROOT / "resources" / "icons", package / "resources" / "icons")

    def not_importable(name):
        raise ModuleNotFoundError(f"No module named {name!r}")

    monkeypatch.setattr(importlib.resources, "files", not_importable)
    theme = _load(package / "ui" / "theme.py", "bundled_theme")
    assert theme.RESOURCES == package / "resources"
    assert theme.icon_path("captioner-256.png").is_file()
    # the source checkout still finds the repository's folder
    checkout = _load(ROOT / "captioner" / "ui" / "theme.py", "checkout_theme")
    assert checkout.RESOURCES == ROOT / "resources"


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
    internal = ROOT / "dist" / "captioner" / "_internal"
    # every kept Qt plugin can load (the spec checked the list; this checks what was written)
    assert build.plugin_report(_folder_binaries(internal)) == ""
    assert (internal / "libxcb-icccm.so.4").exists() and (internal / "libxcb-keysyms.so.1").exists()
    resources = internal / "captioner" / "resources"
    assert (resources / "icons" / "captioner-256.png").is_file() and (resources / "captioner.desktop").is_file()
    assert (resources / "app.captioner.Captioner.metainfo.xml").is_file()
    print(out.stdout)
