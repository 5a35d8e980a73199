"""``liveframe train``: its options and their checks (the library never names a flag)."""

from __future__ import annotations

# TODO(restructure): the argparse code still lives in liveframe.train; it moves here.
from liveframe.train import add_arguments as add_arguments  # noqa: F401
from liveframe.train import run as run  # noqa: F401
