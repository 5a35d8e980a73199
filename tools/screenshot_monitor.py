"""``make screenshot``: the monitor of a real play, grabbed from a real X server.

Run it under Xvfb (``xvfb-run -a -s "-screen 0 1400x900x24" python
tools/screenshot_monitor.py docs/monitor.png``, which ``make screenshot`` does): it starts
a JACK dummy server of its own (the machine needs no sound card), plays the demo clip
through the default brain with the real :class:`~liveframe.live.engine.Engine`, opens the
monitor on Qt's X11 platform (``xcb``), lets it run for a few seconds and grabs the window
from the X server (not a widget rendering: what the server shows), then writes the PNG
(atomically: a failed run leaves the old file as it was).

The clip is the demo's (``tools/demo.py``: the real footage, fetched once, or the bundled
synthetic clip where the registry cannot be reached), unless ``--clip`` names one.

Needs the runtime install, Xvfb and jackd2 (``make screenshot`` installs them). Bad input
(no display, no such clip or brain, no jackd) is one line and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from liveframe.errors import LiveframeError  # noqa: E402

SIZE = (1280, 800)
"""The window's size in the screenshot (width, height)."""


def _args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default=str(REPO / "docs" / "monitor.png"),
                    help="PNG to write (default docs/monitor.png)")
    ap.add_argument("--clip", help="video to play (default: the demo clip)")
    ap.add_argument("--brain", default=None, help="brain file or name (default: default)")
    ap.add_argument("--seconds", type=float, default=6.0,
                    help="play this long before the grab (default 6)")
    return ap.parse_args(argv)


def _fail(msg: str) -> int:
    print(f"screenshot: {msg}", file=sys.stderr)
    return 2


def _clip(arg: str | None) -> Path:
    if arg is not None:
        return Path(arg)
    sys.path.insert(0, str(REPO / "tools"))
    from demo import demo_clip

    return demo_clip()


def shoot(clip: Path, brain_name: str | None, out: Path, seconds: float) -> dict[str, Any]:
    """Play ``clip`` through the brain to a JACK dummy server with the monitor open for
    ``seconds``, grab the window from the X server into ``out``; returns figures."""
    from liveframe.core.brain import Brain, resolve_brain_path
    from liveframe.live.capture import Capture, PyAVReader
    from liveframe.live.engine import Engine
    from liveframe.live.jackd import default_server, start_jackd, stop_jackd
    from liveframe.ui import monitor
    from liveframe.util.files import atomic_path

    brain = Brain.load(resolve_brain_path(brain_name))
    capture = Capture(PyAVReader(clip, loop=True), spec=brain.spec)
    server = start_jackd(f"lfshot-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    try:
        with default_server(server):
            engine = Engine(brain, capture, blocksize=256)
            win = monitor.open_monitor(engine, sr=engine.spec.sample_rate,
                                       fps=engine.spec.fps, close_when_stopped=False)
            app = monitor.ensure_app()
            try:
                win.resize(*SIZE)
                engine.start()
                from PySide6 import QtCore, QtGui

                grabbed: list[QtGui.QPixmap] = []

                def grab() -> None:
                    # from the X server: what it shows, not the widgets painted again; while
                    # the loop runs (quitting the application closes its windows first)
                    grabbed.append(win.screen().grabWindow(win.winId()))
                    app.quit()

                QtCore.QTimer.singleShot(round(seconds * 1000), grab)
                app.exec()
                pixmap = grabbed[0] if grabbed else QtGui.QPixmap()
                if pixmap.isNull() or pixmap.width() < 100:
                    raise LiveframeError("the X server gave no picture of the window")
                out.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(out) as tmp:
                    if not pixmap.save(str(tmp), "PNG"):
                        raise LiveframeError(f"{out}: Qt could not write the PNG")
                stats = engine.stats()
                return {"platform": app.platformName(), "width": pixmap.width(),
                        "height": pixmap.height(), "ticks": stats.get("ticks", 0),
                        "updates": win.updates, "errors": win.errors}
            finally:
                engine.stop()
                win.timer.stop()
                win.close()
                monitor.release_window(win)
    finally:
        stop_jackd(server)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    logging.basicConfig(level=logging.WARNING, format="screenshot: %(message)s")
    from liveframe.ui import monitor

    if not monitor.display_available():
        return _fail("no display to open the monitor on (DISPLAY is unset, or the line above "
                     "says why): run it under Xvfb, e.g. `make screenshot`")
    if not args.seconds > 0:
        return _fail(f"--seconds {args.seconds}: must be a positive number")
    clip = _clip(args.clip)
    if not clip.is_file():
        return _fail(f"{clip}: no such clip; give an existing video with --clip")
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        return _fail(f"{out}: the screenshot is a PNG; name it *.png")
    try:
        got = shoot(clip, args.brain, out, args.seconds)
    except LiveframeError as e:
        return _fail(str(e))
    except RuntimeError as e:  # jackd that did not come up
        return _fail(str(e).splitlines()[0])
    print(f"screenshot: wrote {out} ({got['width']}x{got['height']}, Qt platform "
          f"{got['platform']}, {got['ticks']} ticks of {clip.name}, {got['updates']} redraws, "
          f"{got['errors']} errors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
