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
import subprocess
import sys
import tarfile
import time
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
