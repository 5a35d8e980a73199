"""``liveframe pickle``: its options and their checks (the library never names a flag)."""

from __future__ import annotations

# TODO(restructure): the argparse code still lives in liveframe.data.dataset; it moves here.
from liveframe.data.dataset import add_arguments as add_arguments  # noqa: F401
from liveframe.data.dataset import run as run  # noqa: F401
