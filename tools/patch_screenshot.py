"""Open a Pd patch in Pd's real GUI under Xvfb: screenshot it and check that no two boxes overlap.

    python tools/patch_screenshot.py patches/liveframe-control.pd -o docs/pd-patch.png

Needs ``pd`` with its Tk GUI, ``Xvfb`` and ImageMagick's ``import`` (Debian:
``apt-get install puredata-gui xvfb imagemagick``). Pd is started with a GUI plugin (a
``*-plugin.tcl`` on its search path) that, once the patch is drawn, writes every canvas
item's tags, type, text and bounding box as Tk drew it (so the real fonts and the real
label, comment and wrapping geometry); the items are grouped by the object they belong
to and every pair of objects whose bounding boxes intersect is reported. The exit status
is 1 when some overlap, 2 when a tool is missing; the screenshot is written (atomically)
either way. ``tests/test_patches.py`` checks the same layout from the .pd text alone, with
the metrics this tool measured.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from liveframe.util.files import atomic_path  # noqa: E402

PLUGIN = r"""
# liveframe layout dump: every item of every patch window, as Tk drew it
proc ::lf_dump {} {
    set f [open $::env(LF_DUMP) w]
    foreach w [winfo children .] {
        if {![winfo exists $w.c]} continue
        set c $w.c
        foreach i [$c find all] {
            set text ""
            if {[$c type $i] eq "text"} { set text [$c itemcget $i -text] }
            set text [string map [list "\n" " " "\t" " "] $text]
            puts $f "[join [$c gettags $i] ,]\t[$c type $i]\t[$c bbox $i]\t$text"
        }
    }
    close $f
    set done [open $::env(LF_DUMP).done w]
    close $done
}
after $::env(LF_DELAY) ::lf_dump
"""


def _need(tool: str) -> str:
    exe = shutil.which(tool)
    if exe is None:
        print(f"patch_screenshot: {tool} is not installed (Debian: apt-get install "
              "puredata-gui xvfb imagemagick)", file=sys.stderr)
        raise SystemExit(2)
    return exe


def _free_display() -> int:
    for n in range(90, 200):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise SystemExit("patch_screenshot: no free X display number")


def _wait(cond, timeout: float) -> bool:  # noqa: ANN001
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)  # polling: Xvfb and Pd give no readiness signal
    return False


def dump_layout(patch: Path, png: Path | None, *, size: str = "1100x1500") -> list[tuple]:
    """Open ``patch`` in Pd under Xvfb; return its items ``(tags, type, bbox, text)``."""
    pd, xvfb = _need("pd"), _need("Xvfb")
    imp = _need("import") if png is not None else None
    disp = _free_display()
    with tempfile.TemporaryDirectory(prefix="lf-pdshot-") as tmp:
        t = Path(tmp)
        (t / "lfdump-plugin.tcl").write_text(PLUGIN)
        dump = t / "layout.txt"
        env = dict(os.environ, DISPLAY=f":{disp}", LF_DUMP=str(dump), LF_DELAY="2500")
        x = subprocess.Popen([xvfb, f":{disp}", "-screen", "0", f"{size}x24", "-nolisten",
                              "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        p = None
        try:
            if not _wait(lambda: Path(f"/tmp/.X11-unix/X{disp}").exists(), 10):
                raise SystemExit("patch_screenshot: Xvfb did not start")
            p = subprocess.Popen([pd, "-noaudio", "-nomidi", "-noprefs", "-path", str(t),
                                  "-open", str(patch)], env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            if not _wait(lambda: Path(str(dump) + ".done").exists(), 30):
                raise SystemExit("patch_screenshot: Pd's GUI did not draw the patch")
            if png is not None and imp is not None:
                png.parent.mkdir(parents=True, exist_ok=True)
                window = _patch_window(patch, env)
                with atomic_path(png) as tmp_png:
                    subprocess.run([imp, "-display", f":{disp}", "-window", window, "-trim",
                                    "+repage", str(tmp_png)], check=True, env=env, timeout=30)
            items = []
            for line in dump.read_text().splitlines():
                items.append(_parse_item(line))
            return items
        finally:
            for proc in (p, x):
                if proc is not None and proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(5)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()


def _patch_window(patch: Path, env: dict[str, str]) -> str:
    """The X window of the patch (xdotool), else the whole screen."""
    xdo = shutil.which("xdotool")
    if xdo is None:
        return "root"
    r = subprocess.run([xdo, "search", "--name", patch.name], env=env, capture_output=True,
                       text=True, timeout=10, check=False)
    ids = r.stdout.split()
    return ids[-1] if ids else "root"


def _parse_item(line: str) -> tuple:
    """``tags<TAB>type<TAB>x1 y1 x2 y2<TAB>text`` as the plugin writes it; the box less
    the pixel that Tk's ``bbox`` adds on each side ("may be a few pixels larger")."""
    tags, kind, bbox, text = (line.split("\t") + ["", "", "", ""])[:4]
    box = None
    if bbox.strip():
        x1, y1, x2, y2 = (int(v) for v in bbox.split())
        box = (x1 + 1, y1 + 1, x2 - 1, y2 - 1)
    return tags, kind, box, text


def objects(items: list[tuple]) -> dict[str, dict]:
    """Items grouped by the Pd object they draw (the hex address in their tags): each
    object's union bounding box and its text."""
    objs: dict[str, dict] = {}
    for tags, kind, box, text in items:
        m = re.search(r"(?:\.t|^|,)(?:0x)?([0-9a-f]{8,})", tags)
        if m is None or box is None:
            continue
        o = objs.setdefault(m.group(1), {"box": list(box), "text": ""})
        b = o["box"]
        o["box"] = [min(b[0], box[0]), min(b[1], box[1]), max(b[2], box[2]), max(b[3], box[3])]
        if kind == "text" and text:
            o["text"] = (o["text"] + " " + text).strip()
    return objs


def overlaps(objs: dict[str, dict]) -> list[tuple[str, str]]:
    """Pairs of objects whose boxes intersect (touching edges do not count)."""
    vals = list(objs.values())
    bad = []
    for i, a in enumerate(vals):
        for b in vals[i + 1 :]:
            (a0, a1, a2, a3), (b0, b1, b2, b3) = a["box"], b["box"]
            if a0 < b2 and b0 < a2 and a1 < b3 and b1 < a3:
                bad.append((a["text"] or str(a["box"]), b["text"] or str(b["box"])))
    return bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("patch", type=Path)
    ap.add_argument("-o", "--output", type=Path, default=None, help="screenshot (.png)")
    ap.add_argument("--boxes", action="store_true", help="print every object's box")
    a = ap.parse_args(argv)
    if not a.patch.is_file():
        print(f"patch_screenshot: {a.patch}: no such patch", file=sys.stderr)
        return 2
    objs = objects(dump_layout(a.patch, a.output))
    if a.boxes:
        for o in objs.values():
            print(*o["box"], o["text"][:70], sep="\t")
    bad = overlaps(objs)
    for x, y in bad:
        print(f"overlap: {x[:50]!r} and {y[:50]!r}")
    print(f"{len(objs)} objects, {len(bad)} overlapping pairs"
          + (f"; screenshot {a.output}" if a.output else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
