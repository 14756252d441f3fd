"""Build the Captioner bundle with PyInstaller, measure it, and smoke-test it.

    python packaging/build.py              # one-folder bundle in dist/captioner/
    python packaging/build.py --onefile    # one-file executable dist/captioner(.exe)
    python packaging/build.py --no-smoke   # build only

Prints the bundle's size (unpacked, .tar.gz, .tar.xz), the build time and the
bundled app's start time, and checks that the bundle runs: `--version`,
`providers`, and the GUI opening offscreen and closing cleanly.
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def write_platform_files() -> None:
    """Version info, icons and desktop entry the spec refers to."""
    from captioner import __version__

    icons = ROOT / "resources" / "icons"
    if sys.platform in ("win32", "darwin"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        from PySide6.QtGui import QGuiApplication, QImage

        app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841
        image = QImage(str(icons / "captioner-256.png"))
        image.save(str(icons / ("captioner.ico" if sys.platform == "win32" else "captioner.icns")))
    if sys.platform == "win32":
        major, minor, patch = (int(x) for x in __version__.split(".")[:3])
        (ROOT / "packaging" / "windows_version.txt").write_text(
            f"""VSVersionInfo(
  ffi=FixedFileInfo(filevers=({major}, {minor}, {patch}, 0), prodvers=({major}, {minor}, {patch}, 0)),
  kids=[StringFileInfo([StringTable('040904B0', [
    StringStruct('CompanyName', 'Captioner'),
    StringStruct('FileDescription', 'Captioner - live captions'),
    StringStruct('FileVersion', '{__version__}'),
    StringStruct('ProductName', 'Captioner'),
    StringStruct('ProductVersion', '{__version__}')])]),
    VarFileInfo([VarStruct('Translation', [1033, 1200])])]
)
""",
            encoding="utf-8",
        )


ICU_STUB_C = r"""
#include <stdint.h>
/* An empty ICU common-data package, laid out like ICU's own stubdata. */
typedef struct { uint16_t headerSize; uint8_t magic1, magic2; } MappedData;
typedef struct { uint16_t size, reservedWord; uint8_t isBigEndian, charsetFamily, sizeofUChar, reservedByte;
                 uint8_t dataFormat[4], formatVersion[4], dataVersion[4]; } UDataInfo;
typedef struct { MappedData hdr; UDataInfo info; char padding[8]; uint32_t count, reserved; int toc[4]; } Header;
__attribute__((visibility("default"), aligned(16)))
const Header SYMBOL = { {32, 0xda, 0x27}, {sizeof(UDataInfo), 0, 0, 0, 2, 0, {0x54, 0x6f, 0x43, 0x50}, {1, 0, 0, 0},
                        {0, 0, 0, 0}}, {0}, 0, 0, {0, 0, 0, 0} };
"""


def build_icu_stub(out_dir: Path) -> Path | None:
    """Compile an empty libicudata matching the ICU version PySide6 ships
    (Linux only; needs a C compiler). Returns None when it cannot."""
    if not sys.platform.startswith("linux"):
        return None
    import PySide6

    libs = sorted((Path(PySide6.__file__).parent / "Qt" / "lib").glob("libicudata.so.*"))
    cc = shutil.which("cc") or shutil.which("gcc")
    if not libs or cc is None:
        print("note: keeping ICU's full data (no bundled libicudata or no C compiler)")
        return None
    soname = libs[0].name
    version = soname.split(".so.")[1].split(".")[0]
    out_dir.mkdir(parents=True, exist_ok=True)
    source = out_dir / "icudata_stub.c"
    source.write_text(ICU_STUB_C.replace("SYMBOL", f"icudt{version}_dat"))
    target = out_dir / soname
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(target), f"-Wl,-soname,{soname}", str(source)], check=True)
    return target


# ------------------------------------------------------------ Qt plugins (Linux)

#: Qt plugins the app cannot do without on Linux: X11, Wayland with the shell every
#: desktop compositor speaks and a title bar for desktops that leave it to the app
#: (GNOME), and offscreen (the smoke test). The spec fails the build without them.
REQUIRED_PLUGINS = (
    "platforms/libqxcb.so", "platforms/libqwayland.so", "platforms/libqoffscreen.so",
    "wayland-shell-integration/libxdg-shell.so", "wayland-decoration-client/libbradient.so",
)
PLUGINS_DIR = "PySide6/Qt/plugins/"


def elf_needed(path: Path) -> list[str]:
    """The libraries an ELF file links directly (DT_NEEDED), read from its
    dynamic section: ldd would answer with the build host's libraries."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF":
        return []
    end = "<" if data[5] == 1 else ">"
    if data[4] == 2:  # 64-bit
        (shoff,), (shentsize, shnum) = struct.unpack_from(end + "Q", data, 0x28), struct.unpack_from(end + "HH", data, 0x3A)
        header, dyn = end + "IIQQQQIIQQ", end + "qQ"
    else:
        (shoff,), (shentsize, shnum) = struct.unpack_from(end + "I", data, 0x20), struct.unpack_from(end + "HH", data, 0x2E)
        header, dyn = end + "IIIIIIIIII", end + "iI"
    sections = [struct.unpack_from(header, data, shoff + i * shentsize) for i in range(shnum)]
    for _name, kind, _flags, _addr, offset, size, link, *_ in sections:
        if kind != 6:  # SHT_DYNAMIC
            continue
        strings = sections[link][4]
        names = []
        for entry in range(offset, offset + size, struct.calcsize(dyn)):
            tag, value = struct.unpack_from(dyn, data, entry)
            if tag == 0:
                break
            if tag == 1:  # DT_NEEDED
                start = strings + value
                names.append(data[start : data.index(b"\0", start)].decode())
        return names
    return []


def left_to_the_system(name: str) -> bool:
    """True for libraries PyInstaller never bundles because every desktop has
    its own (glibc and its loader, the GL/EGL stack, libxcb, libwayland-*)."""
    from PyInstaller.depend.dylib import include_library

    return name.startswith(("ld-linux", "ld64.so")) or not include_library(name)


def bundled_files(binaries: Iterable[tuple[str, str, str]]) -> dict[str, Path | None]:
    """Name → source file of every binary in the bundle (None for a symlink
    whose target is not itself listed)."""
    sources = {os.path.normpath(dest): Path(src) for dest, src, kind in binaries if kind != "SYMLINK"}
    files: dict[str, Path | None] = {}
    for dest, src, kind in binaries:
        target = os.path.normpath(os.path.join(os.path.dirname(dest), src)) if kind == "SYMLINK" else dest
        files.setdefault(os.path.basename(dest), sources.get(os.path.normpath(target)))
    return files


def unresolved_plugin_libraries(
    binaries: Iterable[tuple[str, str, str]],
    needed: Callable[[Path], list[str]] = elf_needed,
    system: Callable[[str], bool] = left_to_the_system,
) -> dict[str, set[str]]:
    """For each Qt plugin in the bundle, the libraries it needs (directly or
    through bundled ones) that are neither bundled nor left to the system: Qt
    cannot load that plugin on a user's machine (for the xcb platform plugin
    the app aborts on every X11 desktop)."""
    binaries = list(binaries)
    files = bundled_files(binaries)
    problems: dict[str, set[str]] = {}
    for dest, src, kind in binaries:
        dest = dest.replace("\\", "/")
        if kind == "SYMLINK" or PLUGINS_DIR not in dest:
            continue
        missing, seen, todo = set(), set(), [Path(src)]
        while todo:
            for name in needed(todo.pop()):
                if name in seen:
                    continue
                seen.add(name)
                if name in files:
                    if files[name] is not None:
                        todo.append(files[name])
                elif not system(name):
                    missing.add(name)
        if missing:
            problems[dest.split(PLUGINS_DIR, 1)[1]] = missing
    return problems


def debian_package(soname: str) -> str:
    """The Debian package that ships a library: dpkg's answer when the build
    host has it, else Debian's naming rule (stem + major version)."""
    out = subprocess.run(["dpkg", "-S", f"/{soname}"], capture_output=True, text=True) if shutil.which("dpkg") else None
    if out is not None and out.returncode == 0:
        return out.stdout.split(":")[0]
    stem, _, version = soname.partition(".so.")
    stem, major = stem.lower(), version.split(".")[0]
    return f"{stem}-{major}" if stem[-1:].isdigit() else f"{stem}{major}"


def plugin_report(binaries: Iterable[tuple[str, str, str]]) -> str:
    """Empty when every required Qt plugin is bundled and every bundled one can
    load; else what is wrong and how to fix it (for the build's error)."""
    binaries = list(binaries)
    kept = {dest.replace("\\", "/").split(PLUGINS_DIR, 1)[1] for dest, _s, _k in binaries if PLUGINS_DIR in dest.replace("\\", "/")}
    lines = [f"the Qt plugin {name} is not in the bundle (the spec's DROP list removes it)"
             for name in REQUIRED_PLUGINS if name not in kept]
    problems = unresolved_plugin_libraries(binaries)
    qt_libs = {Path(p).name for p in _pyside_libs()}
    host: set[str] = set()
    for plugin, missing in sorted(problems.items()):
        lines.append(f"the Qt plugin {plugin} cannot load: {', '.join(sorted(missing))} not in the bundle")
        for name in sorted(missing):
            if name in qt_libs:
                lines.append(f"  {name} is PySide6's: the spec's DROP list removes it; keep it or drop the plugin")
            else:
                host.add(debian_package(name))
    if host:
        lines.append("the build host lacks libraries the bundle must carry; install them and build again:\n"
                     f"  sudo apt-get install -y {' '.join(sorted(host))}")
    return "\n".join(lines)


def _pyside_libs() -> list[Path]:
    try:
        import PySide6
    except ImportError:
        return []
    return list((Path(PySide6.__file__).parent / "Qt" / "lib").glob("lib*.so*"))


def strip_binaries(target: Path) -> None:
    """Strip debug symbols from shared libraries (Linux), except those that
    auditwheel patched (in `*.libs/` folders): stripping those breaks them."""
    strip = shutil.which("strip")
    if not sys.platform.startswith("linux") or strip is None:
        return
    files = [
        p for p in target.rglob("*.so*")
        if p.is_file() and not p.is_symlink() and not any(part.endswith(".libs") for part in p.parts)
    ]
    for chunk in range(0, len(files), 200):
        subprocess.run([strip, "--strip-unneeded", *map(str, files[chunk : chunk + 200])], check=False,
                       capture_output=True)


def du(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def archive_sizes(target: Path, out_dir: Path, xz: bool) -> dict[str, int]:
    """Sizes of the bundle as .tar.gz (always) and .tar.xz (with --xz; the
    multi-threaded `xz` tool when present, else Python's lzma)."""
    sizes = {}
    gz = out_dir / f"captioner-{sys.platform}.tar.gz"
    with tarfile.open(gz, "w:gz") as tar:
        tar.add(target, arcname=target.name)
    sizes["tar.gz"] = gz.stat().st_size
    if xz:
        archive = out_dir / f"captioner-{sys.platform}.tar.xz"
        tool = shutil.which("xz")
        if tool:
            plain = out_dir / f"captioner-{sys.platform}.tar"
            with tarfile.open(plain, "w") as tar:
                tar.add(target, arcname=target.name)
            subprocess.run([tool, "-6", "-T0", "-f", str(plain)], check=True)
        else:
            with tarfile.open(archive, "w:xz") as tar:
                tar.add(target, arcname=target.name)
        sizes["tar.xz"] = archive.stat().st_size
    return sizes


def run(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def smoke(binary: Path) -> dict[str, float]:
    """Run the bundle as a user would; raise on any failure."""
    from captioner import __version__

    figures = {}
    starts = []
    for _ in range(3):
        t0 = time.perf_counter()
        out = run([str(binary), "--version"])
        starts.append(time.perf_counter() - t0)
        if out.returncode != 0 or out.stdout.strip() != f"captioner {__version__}":
            raise SystemExit(f"smoke: --version failed: {out.returncode} {out.stdout!r} {out.stderr!r}")
    figures["version_s"] = min(starts)
    out = run([str(binary), "providers"])
    if out.returncode != 0 or "audiopod" not in out.stdout or "inworld" not in out.stdout:
        raise SystemExit(f"smoke: providers failed: {out.stderr}")
    espeak = shutil.which("espeak-ng")
    if espeak:
        # The built-in offline engine in the bundle: its worker process is the
        # frozen executable again, and its model must have been packed.
        folder = ROOT / "build" / "smoke-data"
        folder.mkdir(parents=True, exist_ok=True)
        wav = folder / "digits.wav"
        subprocess.run([espeak, "-v", "en-us+f2", "-w", str(wav), "seven three nine four one"], check=True)
        t0 = time.perf_counter()
        out = run([str(binary), "transcribe", str(wav), "--provider", "local", "--speed", "0", "--no-save"], timeout=120)
        figures["local_s"] = time.perf_counter() - t0
        heard = set(out.stdout.lower().split())
        # accuracy is measured by tests/test_local_engine.py; here: it runs, and hears digits
        if out.returncode != 0 or len(heard & {"seven", "three", "nine", "four", "one"}) < 2:
            raise SystemExit(f"smoke: the offline engine failed ({out.returncode}): {out.stdout!r} {out.stderr[-1500:]}")
        figures["local_text"] = out.stdout.strip()
    else:
        print("note: espeak-ng is not installed, so the offline engine was not tried in the bundle")
    env = {
        "QT_QPA_PLATFORM": "offscreen",
        "CAPTIONER_SMOKE_TEST": "1",
        "CAPTIONER_DATA_DIR": str(ROOT / "build" / "smoke-data"),
        "CAPTIONER_SETTINGS_FILE": str(ROOT / "build" / "smoke-data" / "settings.ini"),
    }
    t0 = time.perf_counter()
    out = run([str(binary)], env=env, timeout=60)
    figures["gui_open_close_s"] = time.perf_counter() - t0
    if out.returncode != 0 or "smoke test: first paint" not in out.stderr:
        raise SystemExit(f"smoke: the GUI did not open and close cleanly ({out.returncode}): {out.stderr[-2000:]}")
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--onefile", action="store_true", help="build a single executable")
    parser.add_argument("--no-smoke", action="store_true", help="skip running the bundle")
    parser.add_argument("--xz", action="store_true", help="also measure a .tar.xz (slow)")
    args = parser.parse_args()
    write_platform_files()
    dist = ROOT / "dist" / ("onefile" if args.onefile else "")
    work = ROOT / "build" / ("onefile" if args.onefile else "onedir")
    t0 = time.perf_counter()
    env = {**os.environ, "ONEFILE": "1" if args.onefile else "0"}
    stub = build_icu_stub(ROOT / "build" / "icu")
    if stub is not None:
        env["ICU_STUB"] = str(stub)
    subprocess.run(
        [sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
         "--distpath", str(dist), "--workpath", str(work), str(ROOT / "packaging" / "captioner.spec")],
        check=True, env=env, cwd=ROOT,
    )
    if not args.onefile:
        strip_binaries(dist / "captioner")
    build_s = time.perf_counter() - t0
    exe_name = "captioner.exe" if sys.platform == "win32" else "captioner"
    target = dist / exe_name if args.onefile else dist / "captioner"
    binary = target if args.onefile else target / exe_name
    size = du(target)
    archives = archive_sizes(target, dist, args.xz)
    print(f"bundle: {target}")
    print(f"build time:         {build_s:6.1f} s")
    print(f"unpacked size:      {size / 1e6:6.2f} MB   (target < 180 MB)")
    print(f"compressed tar.gz:  {archives['tar.gz'] / 1e6:6.1f} MB")
    if "tar.xz" in archives:
        print(f"compressed tar.xz:  {archives['tar.xz'] / 1e6:6.1f} MB   (target < 70 MB)")
    if not args.no_smoke:
        figures = smoke(binary)
        print(f"start (--version):  {figures['version_s'] * 1000:6.0f} ms (best of 3, warm)")
        print(f"GUI open → close:   {figures['gui_open_close_s'] * 1000:6.0f} ms (offscreen, includes shutdown)")
        if "local_s" in figures:
            print(f"offline engine:     {figures['local_s'] * 1000:6.0f} ms for 3 s of speech → {figures['local_text']!r}")
        print("smoke test: passed (--version, providers, offline engine, GUI offscreen)")
    shutil.rmtree(ROOT / "build" / "smoke-data", ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
