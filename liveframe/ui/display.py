"""Can a window open here? Checked before Qt is loaded in this process.

Qt does not fail gently: a platform plugin that cannot load its libraries, or a display
that cannot be opened, ends the process with ``abort()`` (exit status 134) from inside the
QApplication's constructor -- no exception, no stats, and a message that may name the
wrong library (Qt 6.5+ blames ``libxcb-cursor0`` whatever is missing). So the monitor asks
first, without loading Qt here:

- :func:`missing_xcb_libraries`: the shared libraries that PySide6's X11 plugin
  (``plugins/platforms/libqxcb.so``, and through it ``libQt6XcbQpa``) needs and the system
  lacks, from ``ldd``; :data:`XCB_DEBS` names the Debian package of each (``make demo``
  installs them all: the Makefile's ``RUNTIME_DEBS``);
- :func:`probe`: a child Python opens a ``QGuiApplication`` on the display; if the child
  dies, its Qt message is boiled down to one line.

This module imports neither Qt nor anything from liveframe's Qt side, and can run as a
script: ``python liveframe/ui/display.py`` prints the reason a window cannot open (exit 1)
or nothing (exit 0); ``--debs`` prints :data:`XCB_DEBS`' packages.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

XCB_DEBS: dict[str, str] = {
    "libGL.so.1": "libgl1",
    "libEGL.so.1": "libegl1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
}
"""Debian package of every library the Qt xcb plugin chain (``libqxcb.so``,
``libQt6XcbQpa``, ``libQt6Gui``, ``libQt6Widgets``, ``libQt6DBus``) links directly, beyond
the C/C++ runtime and zlib/zstd that every Debian has (``objdump -p`` for the names,
``dpkg -S`` for the packages, PySide6 6.11 on Debian 12). Ubuntu 24.04 calls
``libglib2.0-0`` ``libglib2.0-0t64`` and provides the old name."""

PROBE_TIMEOUT_S = 30.0
"""How long the child may take to open the display (a hung X server is a failure)."""

_PROBE_CODE = (
    "import sys\n"
    "from PySide6.QtGui import QGuiApplication\n"
    "app = QGuiApplication([sys.argv[0] or 'liveframe'])\n"
    "print(app.platformName())\n"
)

# Qt's lines that say what went wrong, most telling first
_QT_REASONS = (
    re.compile(r"could not connect to display.*", re.I),
    re.compile(r"Failed to create wl_display.*", re.I),
    re.compile(r"Could not load the Qt platform plugin .*", re.I),
    re.compile(r"no Qt platform plugin could be initialized.*", re.I),
)


def qt_plugin_dir() -> Path | None:
    """PySide6's ``Qt/plugins/platforms`` folder, found without importing PySide6."""
    try:
        spec = importlib.util.find_spec("PySide6")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        d = Path(root) / "Qt" / "plugins" / "platforms"
        if d.is_dir():
            return d
    return None


def parse_ldd(text: str) -> list[str]:
    """The libraries ``ldd``'s output reports as ``not found``, each once, in order."""
    missing: list[str] = []
    for line in text.splitlines():
        name, sep, where = line.strip().partition("=>")
        if sep and where.strip().startswith("not found") and name.strip() not in missing:
            missing.append(name.strip())
    return missing


def missing_xcb_libraries(plugin: Path | None = None) -> list[str]:
    """Libraries the Qt xcb plugin needs that the dynamic linker cannot find.

    Parameters
    ----------
    plugin : Path, optional
        The plugin (default: PySide6's ``libqxcb.so``). Empty when there is none, or no
        ``ldd`` to ask (then :func:`probe` still catches a plugin that cannot load).
    """
    if plugin is None:
        d = qt_plugin_dir()
        plugin = d / "libqxcb.so" if d is not None else None
    ldd = shutil.which("ldd")
    if plugin is None or not plugin.is_file() or ldd is None:
        return []
    try:
        r = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=30,
                           check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_ldd(r.stdout)


def qt_platform(environ: dict[str, str] | os._Environ[str]) -> str:
    """The platform Qt will try first: ``QT_QPA_PLATFORM``'s first entry, else ``xcb``
    or (in a Wayland session) ``wayland`` on Linux and the BSDs."""
    chosen = environ.get("QT_QPA_PLATFORM", "").strip()
    if chosen:
        return chosen.split(";")[0].split(":")[0].strip().lower()
    if sys.platform == "darwin":
        return "cocoa"
    if sys.platform in ("win32", "cygwin"):
        return "windows"
    if environ.get("WAYLAND_DISPLAY") and environ.get("XDG_SESSION_TYPE") == "wayland":
        return "wayland"
    return "xcb"


def _qt_reason(stderr: str) -> str:
    """The line of a dead child's Qt output that says why (else its last line)."""
    for pattern in _QT_REASONS:
        m = pattern.search(stderr)
        if m:
            return m.group(0).strip().rstrip(".")
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"


def probe(environ: dict[str, str] | None = None, *, timeout: float = PROBE_TIMEOUT_S,
          ) -> str | None:
    """Why no window can open with ``environ``, in one line; None when one can.

    On X11 (``xcb``) the plugin's libraries are checked first (:func:`missing_xcb_libraries`:
    the reason names the Debian packages to install). Then a child Python opens a
    ``QGuiApplication`` with ``environ``: Qt's abort kills the child, not this process.

    Parameters
    ----------
    environ : dict, optional
        The environment the window would open in (default: ``os.environ``).
    timeout : float
        Seconds the child may take.
    """
    env = dict(os.environ if environ is None else environ)
    platform = qt_platform(env)
    if platform == "xcb":
        missing = missing_xcb_libraries()
        if missing:
            debs = sorted({XCB_DEBS.get(lib, lib) for lib in missing})
            return (f"Qt's X11 plugin cannot load: {', '.join(missing)} missing (install "
                    f"{' '.join(debs)}: `sudo apt-get install {' '.join(debs)}`, or "
                    "`make demo` in the repository)")
    var = {"xcb": "DISPLAY", "wayland": "WAYLAND_DISPLAY"}.get(platform)
    if var is None:
        what = f"Qt's {platform} platform"
    elif env.get(var):
        what = f"the display {env[var]}"
    else:
        what = f"the display: {var} is not set"
    try:
        r = subprocess.run([sys.executable, "-c", _PROBE_CODE], env=env, capture_output=True,
                           text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return f"cannot open {what}: no answer within {timeout:g} s"
    except OSError as e:
        return f"cannot check {what}: {e}"
    if r.returncode == 0:
        return None
    return f"cannot open {what} ({_qt_reason(r.stderr)})"


def main(argv: list[str] | None = None) -> int:
    """``display.py``: the reason no window can open (exit 1), or nothing (exit 0);
    ``display.py --debs``: the Debian packages of :data:`XCB_DEBS`, one line."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--debs"]:
        print(" ".join(sorted(set(XCB_DEBS.values()))))
        return 0
    why = probe()
    if why is None:
        return 0
    print(why)
    return 1


if __name__ == "__main__":
    sys.exit(main())
