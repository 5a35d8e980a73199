"""The Pd and Max patches are laid out so that no box or comment overlaps another.

The extents are computed from the patch files alone, with the metrics of each program's
default font (no GUI needed). ``tools/patch_screenshot.py`` opens the Pd patch in Pd's
real GUI under Xvfb, reads back every item's bounding box as Tk drew it and checks the
same thing (and writes ``docs/pd-patch.png``); the Pd metrics below are what it measured
on Pd 0.53.1.

Pd (vanilla 0.53, font size 12, zoom 1): Pd's font table (``sys_fontspec`` in
``s_main.c``) gives size 12 a 7 x 16 pixel cell, and the GUI picks the DejaVu Sans Mono
size that fits it; measured boxes (Tk's ``bbox`` less its one-pixel margin):

- object box ``[obj]``: 7 px a character + 4, 15 px a line + 5 (one line: 20 px); the text
  wraps at 60 characters (``, f N`` sets another width), so a long ``[route ...]`` is two
  lines tall;
- message box: as an object box, + 5 px for its flag; boxes are at least 3 characters wide;
- comment: starts 2 px right and 3 px below its position, 7 px a character, 15 px a line,
  wrapped at 60 characters on word boundaries;
- floatatom of width W: 7 W + 2 px by 20; its label (position 2: above) is 15 px tall, just
  above it, at 7 px a character (the label font is the patch's); a label on the right
  (position 1) starts a character after the box, on its middle line;
- IEM GUIs: ``tgl`` and ``bng`` of size S are S x S (+1), their label at (dx, dy) in the
  label's font size (10: 6 x 13 px a character); ``hsl`` of W x H is W + 6 by H (its knob
  overhangs 3 px each side); ``nbx`` of D digits and height H is 7 D + H + 5 by H.

Max 8 (Arial 12 by default): ``patching_rect`` is each box's rectangle; an object or
message box whose text is wider than its rectangle wraps and grows taller, so a box's
height is the larger of its rectangle's and its wrapped text's (Arial's advance widths at
12 px, 5 px of padding each side, 15 px a line + 7); comments wrap in their width the same
way.
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CONTROL_PD = REPO / "patches" / "liveframe-control.pd"
CONTROL_MAX = REPO / "patches" / "liveframe-control.maxpat"

Box = tuple[float, float, float, float]  # x1, y1, x2, y2

# -- Pd ---------------------------------------------------------------------------------
CW, LH = 7, 15  # Pd 0.53 at font 12: pixels a character, a line
WRAP = 60  # characters a line of a comment or of a box without ", f N"
LABEL_CW, LABEL_H = 6, 13  # IEM labels at font size 10


def _pd_records(text: str) -> list[list[str]]:
    """The patch's records (``#X obj 10 20 route a b``), split into atoms, with Pd's
    escapes (``\\,`` ``\\;``) kept as one atom each."""
    records = re.split(r"(?<!\\);\s*\n", text)
    return [r.replace("\n", " ").split() for r in records if r.strip()]


def _wrap(words: list[str], width: int) -> list[str]:
    return textwrap.wrap(" ".join(w.replace("\\", "") for w in words), width,
                         break_long_words=True, break_on_hyphens=False) or [""]


def _text_box(x: float, y: float, words: list[str], *, extra: int = 0) -> Box:
    """An object or message box; wrapped text makes the box the full wrap width wide."""
    width = WRAP
    if len(words) >= 3 and words[-3:-1] == ["\\,", "f"]:  # ", f N": a width of its own
        width, words = int(words[-1]), words[:-3]
    lines = _wrap(words, width)
    chars = width if len(lines) > 1 else max(3, len(lines[0]))  # at least 3 wide
    return (x, y, x + CW * chars + 4 + extra, y + LH * len(lines) + 5)


def _iem_label(x: float, y: float, label: str, dx: float, dy: float) -> Box | None:
    if label in ("empty", "-", ""):
        return None
    return (x + dx, y + dy - LABEL_H / 2, x + dx + LABEL_CW * len(label), y + dy + LABEL_H / 2)


def pd_boxes(text: str) -> list[tuple[str, Box]]:
    """Every box, comment and label of the top-level canvas: ``(what, (x1, y1, x2, y2))``."""
    out: list[tuple[str, Box]] = []
    depth = 0
    for r in _pd_records(text):
        if r[:2] == ["#N", "canvas"]:
            depth += 1
            continue
        if r[:2] == ["#X", "restore"]:
            depth -= 1
        if depth != 1 or r[0] != "#X" or len(r) < 4:
            continue
        kind, x, y, rest = r[1], float(r[2]), float(r[3]), r[4:]
        what = f"{kind} {' '.join(rest)}"[:60]
        if kind == "text":
            lines = _wrap(rest, WRAP)
            out.append((what, (x + 2, y + 3, x + 2 + CW * max(map(len, lines)),
                               y + 3 + LH * len(lines))))
        elif kind == "msg":
            out.append((what, _text_box(x, y, rest, extra=5)))
        elif kind == "floatatom":
            w, label, pos = int(rest[0]), rest[4], int(rest[3])
            out.append((what, (x, y, x + CW * w + 2, y + 20)))
            if label not in ("-", "empty"):
                assert pos in (1, 2), f"{what}: put the label right of (1) or above (2) the box"
                if pos == 2:
                    out.append((f"label {label}", (x, y - 15, x + CW * len(label), y)))
                else:  # right of the box, a character's gap, on its middle line
                    x2 = x + CW * w + 2
                    out.append((f"label {label}", (x2 + CW, y + 2, x2 + CW * (1 + len(label)),
                                                   y + 17)))
        elif kind == "obj" and rest and rest[0] in ("tgl", "bng"):
            s = float(rest[1])
            out.append((what, (x, y, x + s + 1, y + s + 1)))
            # tgl SIZE INIT SEND RECEIVE LABEL DX DY ..., bng SIZE HOLD INTR INIT SEND RECEIVE
            # LABEL DX DY ...
            i = 5 if rest[0] == "tgl" else 7
            lab = _iem_label(x, y, rest[i], float(rest[i + 1]), float(rest[i + 2]))
            if lab is not None:
                out.append((f"label {rest[i]}", lab))
        elif kind == "obj" and rest and rest[0] == "hsl":
            w, h = float(rest[1]), float(rest[2])
            out.append((what, (x - 3, y, x + w + 3, y + h + 1)))
        elif kind == "obj" and rest and rest[0] == "nbx":
            d, h = int(rest[1]), float(rest[2])
            out.append((what, (x, y, x + CW * d + h + 5, y + h + 1)))
        elif kind == "obj":
            out.append((what, _text_box(x, y, rest)))
    return out


def overlapping(boxes: list[tuple[str, Box]]) -> list[tuple[str, str]]:
    """Pairs of boxes that intersect (sharing an edge does not count)."""
    bad = []
    for i, (a, (a0, a1, a2, a3)) in enumerate(boxes):
        for b, (b0, b1, b2, b3) in boxes[i + 1 :]:
            if a0 < b2 and b0 < a2 and a1 < b3 and b1 < a3:
                bad.append((a, b))
    return bad


def test_no_box_of_the_pd_patch_overlaps_another() -> None:
    boxes = pd_boxes(CONTROL_PD.read_text())
    assert len(boxes) > 80
    assert overlapping(boxes) == []
    assert all(b[0] >= 0 and b[1] >= 0 for _, b in boxes), "nothing left of or above (0, 0)"


def test_the_pd_metrics_catch_what_the_issue_saw() -> None:
    """The old layout's overlaps, as Pd 0.53 drew them (issue 15): the top comment over
    ``loadbang`` and the connect box, the wrapped ``route`` over ``t a b``, the three long
    ``oscformat`` boxes, the ``s liveframe-*`` boxes of the analysis."""
    old = textwrap.dedent("""\
        #N canvas 40 40 1000 960 12;
        #X text 20 10 liveframe control: every OSC address of the instrument. Sends to 127.0.0.1 9000 (edit the connect box). Analysis and status replies arrive on port 9001 (liveframe play --osc-out 127.0.0.1:9001). Other patches can drive it with [s liveframe-ctl] <address-without-/liveframe/> <value> e.g. 'gain 0.5' or 'grain/density 2'.;
        #X obj 20 60 loadbang;
        #X msg 20 85 connect 127.0.0.1 9000;
        #X obj 420 85 route gain mute panic brain mode freeze source grain/density grain/spread status connect listen;
        #X obj 420 110 t a b;
        #X obj 400 570 oscformat liveframe grain density;
        #X obj 590 570 oscformat liveframe grain spread;
        #X obj 780 570 oscformat liveframe status;
        #X obj 200 915 s liveframe-brightness;
        #X obj 330 915 s liveframe-motion;
        """)  # noqa: E501
    bad = {frozenset((a.split()[1], b.split()[1])) for a, b in overlapping(pd_boxes(old))}
    for a, b in (("liveframe", "loadbang"), ("liveframe", "connect"), ("route", "t"),
                 ("oscformat", "oscformat"), ("s", "s")):
        assert frozenset((a, b)) in bad, (a, b, bad)


def test_pd_box_metrics_match_pd_053() -> None:
    """Boxes Pd 0.53.1's GUI drew (``pd -d 1`` and Tk's bbox, see the module docstring)."""
    got = dict(pd_boxes(textwrap.dedent("""\
        #N canvas 0 0 400 400 12;
        #X obj 20 60 loadbang;
        #X msg 20 85 connect 127.0.0.1 9000;
        #X obj 420 85 route gain mute panic brain mode freeze source grain/density grain/spread status connect listen;
        """)))  # noqa: E501
    assert got["obj loadbang"] == (20, 60, 80, 80)
    assert got["msg connect 127.0.0.1 9000"] == (20, 85, 183, 105)
    assert got[next(k for k in got if k.startswith("obj route"))] == (420, 85, 844, 120)


# -- Max --------------------------------------------------------------------------------
_ARIAL = {  # advance widths of Arial, units of 1/2048 em
    **dict.fromkeys("abdeghnopqu0123456789_", 1139), **dict.fromkeys("ckszvxy", 1024),
    **dict.fromkeys("fjt./:;,! []'\"", 569), "i": 455, "l": 455, "j": 455, "m": 1706,
    "w": 1479, "r": 682, "-": 682, "(": 682, ")": 682, "|": 532, "*": 797, "%": 1821,
}


def arial_width(text: str, size: float = 12.0) -> float:
    """Pixels ``text`` takes in Arial at ``size`` px (capitals and others: 1366 units)."""
    return sum(_ARIAL.get(ch, 1366) for ch in text) * size / 2048


def _max_lines(text: str, width: float) -> int:
    n = 0
    for para in text.split("\n"):
        line = ""
        n += 1
        for word in para.split(" "):
            trial = f"{line} {word}".strip()
            if line and arial_width(trial) > width:
                n += 1
                line = word
            else:
                line = trial
    return n


def max_boxes(patcher: dict) -> list[tuple[str, Box]]:
    """Every box's rectangle, taller where its text wraps (see the module docstring)."""
    out = []
    for b in patcher["boxes"]:
        box = b["box"]
        x, y, w, h = box["patching_rect"]
        text = box.get("text", "")
        if box["maxclass"] in ("newobj", "message", "comment") and text:
            h = max(h, 15 * _max_lines(text, w - 10) + 7)
        out.append((f"{box['maxclass']} {text}"[:60], (x, y, x + w, y + h)))
    return out


def test_no_box_of_the_max_patch_overlaps_another() -> None:
    patcher = json.loads(CONTROL_MAX.read_text())["patcher"]
    boxes = max_boxes(patcher)
    assert len(boxes) > 40
    assert overlapping(boxes) == []
    # object and message boxes hold their text on one line: nothing to guess about wrapping
    for b in patcher["boxes"]:
        box = b["box"]
        if box["maxclass"] in ("newobj", "message"):
            assert arial_width(box["text"]) + 10 <= box["patching_rect"][2], box["text"]


# "abc ": 22.7 px, 7 words a line of 150 px
@pytest.mark.parametrize(("text", "lines"), [("a" * 10, 1), ("abc " * 30, 5)])
def test_max_wrapping_model(text: str, lines: int) -> None:
    assert _max_lines(text.strip(), 160) == lines
    assert math.isclose(arial_width("a"), 1139 * 12 / 2048)
