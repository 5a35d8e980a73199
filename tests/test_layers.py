"""The folder listing is the architecture: each layer imports only the layers before it.

Read from the source (every ``import`` and ``from ... import``, at any depth, lazy ones
included), so a violation fails here before anyone has to notice it in review.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "liveframe"

LAYERS = ("util", "core", "control", "live", "offline", "data", "train", "ui", "cli")
"""In order: a module may import its own layer and the layers before it."""

BASE = ("constants", "errors")
"""Top-level modules every layer may import."""


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "liveframe" or len(parts) < 2:
        return None
    return parts[1]


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:  # resolved against the module's own package
                pkg = ("liveframe", *path.relative_to(PACKAGE).parent.parts)
                base = pkg[: len(pkg) - node.level + 1]
                mod = ".".join((*base, mod) if mod else base)
            if mod == "liveframe":  # from liveframe import constants, errors, __version__
                found += [(node.lineno, f"liveframe.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, mod))
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE)


def test_every_module_is_in_a_known_layer() -> None:
    layers = {p.relative_to(PACKAGE).parts[0] for p in _modules()}
    data = {"brains", "patches"}  # package data mapped from the top-level folders
    assert layers - data <= set(LAYERS), layers - data - set(LAYERS)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_layer_imports_only_layers_before_it(path: Path) -> None:
    own = path.relative_to(PACKAGE).parts[0]
    if own not in LAYERS:
        return
    allowed = set(LAYERS[: LAYERS.index(own) + 1]) | set(BASE) | {"__version__"}
    bad = []
    for line, module in _imports(path):
        layer = _layer_of(module)
        if layer is not None and layer not in allowed:
            bad.append(f"line {line}: {module}")
    assert not bad, f"{path.relative_to(PACKAGE)} ({own}) imports a later layer: {bad}"


def test_the_base_modules_import_no_layer() -> None:
    for name in BASE:
        for line, module in _imports(PACKAGE / f"{name}.py"):
            assert _layer_of(module) in (None, *BASE), f"{name}.py:{line} imports {module}"
