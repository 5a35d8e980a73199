#!/usr/bin/env python3
"""Export a training checkpoint to an ONNX brain: ``tools/export_onnx.py CKPT -o brains/NAME.onnx``.

The same as ``liveframe export``; refuses to write when onnxruntime and torch disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from liveframe.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["export", *sys.argv[1:]]))
