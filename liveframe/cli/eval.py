"""``liveframe eval``: its options and their checks (the library never names a flag)."""

from __future__ import annotations

# TODO(restructure): the argparse code still lives in liveframe.offline.metrics; it moves here.
from liveframe.offline.metrics import add_arguments as add_arguments  # noqa: F401
from liveframe.offline.metrics import run as run  # noqa: F401
