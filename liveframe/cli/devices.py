"""``liveframe devices``: its options and their checks (the library never names a flag)."""

from __future__ import annotations

# TODO(restructure): the argparse code still lives in liveframe.live.audio; it moves here.
from liveframe.live.audio import add_arguments as add_arguments  # noqa: F401
from liveframe.live.audio import run as run  # noqa: F401
