"""Stage the app for documentation screenshots under Xvfb (see take.sh).

Runs the real app classes (control window, overlay) with a temporary settings
file and an in-memory keyring, feeds them a scripted conversation through the
same event path a provider session uses, and takes screenshots with
ImageMagick's `import`. It also checks click-through: with the overlay pinned
over xmessage's button, an xdotool click must reach xmessage (which exits).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs"


async def run(cmd: list[str]) -> int:
    proc = await asyncio.create_subprocess_exec(*cmd)
    return await proc.wait()


async def shoot(name: str, crop: str | None = None) -> None:
    cmd = ["import", "-window", "root"]
    if crop:
        cmd += ["-crop", crop]
    await run(cmd + ["-strip", "-define", "png:compression-level=9", str(OUT / name)])
    print(f"wrote docs/{name} ({(OUT / name).stat().st_size // 1024} KB)")


CLICK = (os.environ.get("CLICK_X", "332"), os.environ.get("CLICK_Y", "710"))  # xmessage's okay button


def exited(pid: int) -> bool | None:
    """Whether the process has exited (a zombie counts), None if unknown."""
    if not pid:
        return None
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


async def stage(capp, xmessage_pid: int) -> int:  # noqa: ANN001
    from PySide6.QtCore import QRect

    from captioner.stt.events import Final, Partial, SessionState, StateChanged

    w, ov = capp.window, capp.overlay
    w.move(20, 20)
    w.resize(1000, 660)
    ov.setGeometry(QRect(1040, 700, 540, ov.height_for_lines()))  # out of the control window's way
    emit = w._on_caption_event
    emit(StateChanged(SessionState.CONNECTING))
    w._on_state("connecting", "")
    await asyncio.sleep(0.3)
    w._on_state("live", "")
    w._on_running(True)  # how the window looks while a session runs (before its captions, as in a session)
    script = [
        ("0", "Good morning everyone, thanks for joining the weekly planning call."),
        ("0", "First item: the captioning release is on track for next Thursday."),
        ("1", "Great. Can we also review the accessibility checklist before then?"),
    ]
    for speaker, text in script:
        emit(Final(text, 0.0, 1.0, speaker=speaker))
    emit(Partial("Yes, I will share the high contrast screenshots", speaker="0"))
    w._on_level(-18.0)
    w.timer_label.setText("00:04:37")
    w.statusBar().showMessage("Saving the session to the sessions folder as it runs")
    await asyncio.sleep(0.8)
    g = w.frameGeometry()  # the window may be wider than asked: its columns' minimum
    await shoot("control-window.png", f"{g.width()}x{g.height()}+{g.x()}+{g.y()}")

    w.hide()
    ov.setGeometry(QRect(300, 560, 1000, ov.height_for_lines()))
    # click-through: xmessage's "okay" button lies under the overlay. Unpinned,
    # the overlay takes the click; pinned, the click must reach xmessage.
    click = ["xdotool", "mousemove", CLICK[0], CLICK[1], "click", "1"]
    await asyncio.sleep(0.8)
    await run(click)
    await asyncio.sleep(0.8)
    blocked = exited(xmessage_pid) is False
    ov.set_pinned(True)
    await asyncio.sleep(1.0)
    await shoot("overlay-pinned.png", "1200x560+200+340")
    await run(click)
    await asyncio.sleep(0.8)
    reached = exited(xmessage_pid) is True
    print(f"unpinned overlay took the click: {'yes' if blocked else 'NO'}; "
          f"pinned overlay let it through to xmessage: {'yes' if reached else 'NO'}")
    alive = not (blocked and reached)

    from captioner.ui.theme import PRESETS

    ov.set_style(PRESETS["High contrast"])
    ov.setGeometry(QRect(300, 560, 1000, ov.height_for_lines()))
    await asyncio.sleep(0.6)
    await shoot("overlay-high-contrast.png", "1200x440+200+460")
    ov.set_pinned(False)
    ov.set_style(PRESETS["Standard"])
    w.show()
    capp.open_settings()
    d = capp.dialog
    d.move(300, 80)
    d.tabs.setCurrentIndex(1)
    await asyncio.sleep(0.8)
    g = d.frameGeometry()
    await shoot("settings-style.png", f"{g.width()}x{g.height()}+{g.x()}+{g.y()}")
    d.reject()
    return 0 if not alive else 1


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="captioner-shots-"))
    os.environ["CAPTIONER_SETTINGS_FILE"] = str(tmp / "settings.ini")
    os.environ["CAPTIONER_DATA_DIR"] = str(tmp / "data")
    import keyring

    from tests.conftest import MemoryKeyring

    keyring.set_keyring(MemoryKeyring())
    keyring.set_password("captioner", "audiopod", "demo-key-not-real")
    from PySide6.QtWidgets import QApplication

    from captioner.app import CaptionerApp, MainThreadGC, build_parser
    from captioner.settings import Settings
    from captioner.ui.event_loop import CaptionerEventLoop
    from captioner.ui.theme import app_icon

    app = QApplication(sys.argv[:1])
    app.setWindowIcon(app_icon())
    loop = CaptionerEventLoop(app)
    asyncio.set_event_loop(loop)
    collector = MainThreadGC()  # noqa: F841
    xmessage_pid = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    capp = CaptionerApp(Settings(), build_parser().parse_args(["--provider", "audiopod"]), device_lister=lambda: [])
    capp.show()

    async def go() -> int:
        await capp.after_first_paint()
        code = await stage(capp, xmessage_pid)
        await capp.shutdown()
        await capp.settle()
        return code

    with loop:
        return loop.run_until_complete(go())


if __name__ == "__main__":
    raise SystemExit(main())
