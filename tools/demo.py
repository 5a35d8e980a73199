"""``make demo``: play the bundled demo clip through the default brain.

Plays the shipped demo clip (``brains/demo.mkv``, package data) through the default brain
with ``liveframe play`` (the monitor opens when there is a display; play decides). On a
machine without a sound card it says so in one line and renders the clip offline instead,
with ``liveframe render``, to ``out/demo-rendered.mkv`` (the demo's pictures with the
brain's soundtrack).

Needs only the runtime install (no torch).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from liveframe.core.brain import resolve_brain_path
from liveframe.core.shipped import DEMO_CLIP, shipped_file
from liveframe.errors import BrainError

RENDERED = REPO / "out" / "demo-rendered.mkv"


def have_output_device() -> tuple[bool, str]:
    """Whether PortAudio sees an audio output, and if not, why (one line)."""
    try:
        import sounddevice as sd
    except OSError as e:  # libportaudio missing
        return False, f"PortAudio is not available ({e})"
    try:
        sd.query_devices(kind="output")
    except (sd.PortAudioError, ValueError) as e:
        return False, f"no audio output device on this machine ({str(e).splitlines()[0]})"
    return True, ""


def liveframe(*args: str) -> int:
    return subprocess.call([sys.executable, "-m", "liveframe", *args], cwd=REPO)


def main() -> int:
    clip = shipped_file(DEMO_CLIP)
    try:
        brain = resolve_brain_path(None)
    except BrainError as e:
        print(f"demo: {e}; rebuild it with `make brains`", file=sys.stderr)
        return 2
    if not clip.exists():
        print(f"demo: {clip} is missing; rebuild it with `make brains`", file=sys.stderr)
        return 2
    ok, why = have_output_device()
    if ok:
        print(f"demo: playing {clip} through {brain} (Ctrl-C stops)")
        rc = liveframe("play", str(clip), "--brain", str(brain))
        if rc in (0, 130):
            return 0
        print(
            "demo: live play did not work (see the line above); rendering offline instead",
            file=sys.stderr,
        )
    else:
        print(f"demo: {why}; rendering offline instead", file=sys.stderr)
    RENDERED.parent.mkdir(parents=True, exist_ok=True)
    rc = liveframe("render", str(clip), "--brain", str(brain), "-o", str(RENDERED))
    if rc != 0:
        return rc
    print(
        f"demo: wrote {RENDERED.relative_to(REPO)}: the demo clip with the default brain's "
        "sound; play it with any video player (e.g. `ffplay out/demo-rendered.mkv`)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
