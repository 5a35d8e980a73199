"""``liveframe export``: its options and their checks (the library never names a flag)."""

from __future__ import annotations

# TODO(restructure): the argparse code still lives in liveframe.train.export; it moves here.
from liveframe.train.export import add_arguments as add_arguments  # noqa: F401
from liveframe.train.export import run as run  # noqa: F401
