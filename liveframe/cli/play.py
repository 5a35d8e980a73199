"""``liveframe play`` and ``liveframe live``: options, checks, and the play loop."""

from __future__ import annotations

# TODO(restructure): the argparse code still lives in liveframe.live.engine; it moves here.
from liveframe.live.engine import add_live_arguments, add_play_arguments, run_live, run_play  # noqa: F401
