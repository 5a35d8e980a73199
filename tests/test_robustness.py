"""Every command against bad input: one line, exit status 2, nothing written, inputs intact.

The table :data:`CASES` runs the real ``liveframe`` command (``python -m liveframe``) in a
folder of its own holding real inputs (a clip, a toy brain, a dataset and a checkpoint made
here) and the crafted files of :mod:`tests.robust_files`; a full disk is a real tmpfs of
16 KiB mounted for the case (this needs root, as on CI; without it the test fails, it never
skips). For every case the test asserts exit status 2, exactly one line on stderr that
holds the expected words and no traceback, the same files before and after (names, and a
hash of every regular file), and nothing new on disk.

``LIVEFRAME_ROBUSTNESS_MD=docs/ROBUSTNESS.md pytest tests/test_robustness.py -m slow``
rewrites the table of families in that file (tried and clean counts as counted here).
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import robust_files as F
from tests.helpers import mount_tmpfs

pytestmark = [pytest.mark.slow, pytest.mark.torch]

REPO = Path(__file__).resolve().parent.parent
TINY = "I,8,L"


# ------------------------------------------------------------------------------ the table
@dataclass
class Case:
    """One bad invocation: ``argv`` after ``liveframe``, run in a folder that ``make``
    prepared; ``expect`` must be in the one line on stderr, ``forbid`` must not."""

    family: str
    argv: list[str]
    expect: str
    make: Callable[[Path], object] | None = None
    full: bool = False
    forbid: tuple[str, ...] = field(default_factory=tuple)

    @property
    def name(self) -> str:
        return " ".join(self.argv)


OVERWRITE = "an output that is an input or another output"
FOLDER = "an output folder that is missing, or a folder as output"
VALUES = "option values out of range, non-finite or malformed"
CRAFTED = "crafted datasets, checkpoints and brains"
SOURCES = "sources that are no clip (FIFO, device, still picture, no frames, empty, text)"
FULL = "a full disk (16 KiB tmpfs)"
LEFTOVER = ("temporaries left by a SIGKILL, removed at the next run (live owners, another "
            "machine's and a user's look-alikes kept)")
FAMILIES = (OVERWRITE, FOLDER, VALUES, CRAFTED, SOURCES, FULL)

LEFTOVERS: list[int] = []
"""[tried, clean] of the leftovers test, for the table (it runs before the table test)."""

INPUT = "is an input of this command"
NO_FOLDER = "does not exist"
NOSPACE = "No space left on device"
PLAY = ["--no-gui", "--osc-port", "0"]


def _cases() -> list[Case]:
    c: list[Case] = []

    def add(family: str, argv: str | list[str], expect: str, **kw: object) -> None:
        c.append(Case(family, argv.split() if isinstance(argv, str) else argv, expect,
                      **kw))  # type: ignore[arg-type]

    # -- outputs that would destroy an input or each other
    add(OVERWRITE, "export ck.pt -o ck.pt", INPUT)
    add(OVERWRITE, "export ck.pt -o hard.pt", INPUT, make=lambda d: F.hardlink(d, "hard.pt",
                                                                              "ck.pt"))
    add(OVERWRITE, ["play", "clip.mkv", "--stats-json", "clip.mkv", *PLAY], INPUT)
    add(OVERWRITE, ["play", "clip.mkv", "--record", "r.wav", "--stats-json", "r.wav", *PLAY],
        "is also --record")
    add(OVERWRITE, ["play", "clip.mkv", "--record", "ln.wav", *PLAY], INPUT,
        make=lambda d: F.symlink(d, "ln.wav", "clip.mkv"))
    add(OVERWRITE, ["live", "--brain", "toy.onnx", "--record", "b.wav", *PLAY], INPUT,
        make=lambda d: F.symlink(d, "b.wav", "toy.onnx"))
    add(OVERWRITE, "pickle clip.mkv -o clip.mkv", INPUT)
    add(OVERWRITE, "render clip.mkv -o clip.mkv --brain toy.onnx", INPUT)
    add(OVERWRITE, "render clip.mkv -o hard.mkv --brain toy.onnx", INPUT,
        make=lambda d: F.hardlink(d, "hard.mkv", "clip.mkv"))
    add(OVERWRITE, "train ds.npz -o ds.npz", INPUT)
    # Csound's own recording (--csound starts it, --record X.wav: X.csound.wav) is an output
    add(OVERWRITE, ["play", "@", "--csound", "--record", "r.wav", *PLAY], INPUT,
        make=lambda d: F.copy(d, d / "clip.mkv", "r.csound.wav"))
    add(OVERWRITE, "eval toy.onnx clip.mkv --plot pic.png --modes ola", INPUT,
        make=lambda d: F.symlink(d, "pic.png", "clip.mkv"))
    # -- output folders
    add(FOLDER, "export ck.pt -o brains/mine.onnx", NO_FOLDER)
    add(FOLDER, "pickle clip.mkv -o nodir/d.npz", NO_FOLDER)
    add(FOLDER, "render clip.mkv -o nodir/x.wav --brain toy.onnx", NO_FOLDER)
    add(FOLDER, "train ds.npz -o nodir/c.pt", NO_FOLDER)
    add(FOLDER, ["play", "clip.mkv", "--stats-json", "nodir/s.json", *PLAY], NO_FOLDER)
    add(FOLDER, ["play", "clip.mkv", "--record", "nodir/r.wav", *PLAY], NO_FOLDER)
    add(FOLDER, "eval toy.onnx clip.mkv --plot nodir/p.png", NO_FOLDER)
    add(FOLDER, "render clip.mkv -o sub --brain toy.onnx", "is a directory",
        make=lambda d: (d / "sub").mkdir())
    # names the file system cannot hold (ENAMETOOLONG): an output, a source, a brain
    long = "n" * 300
    add(FOLDER, f"render clip.mkv -o {long}.wav --brain toy.onnx", "too long")
    add(FOLDER, f"render clip.mkv -o {'n' * 240}.wav --brain toy.onnx", "too long")
    add(SOURCES, ["play", f"{long}.mkv", *PLAY], "File name too long")
    add(SOURCES, ["render", f"{long}.mkv", "-o", "x.wav"], "File name too long")
    add(CRAFTED, ["info", long], "File name too long")
    add(CRAFTED, ["play", "clip.mkv", "--brain", f"{long}.onnx", *PLAY], "File name too long")
    # -- option values
    for argv, flag in [
        ("render clip.mkv -o x.wav --batch 100000000", "--batch"),
        ("render clip.mkv -o x.wav --seed -5", "--seed"),
        ("render clip.mkv -o x.wav --grain-density nan", "--grain-density"),
        ("render clip.mkv -o x.wav --grain-spread inf", "--grain-spread"),
        ("play clip.mkv --gain nan", "--gain"),
        ("play clip.mkv --gain inf", "--gain"),
        ("play clip.mkv --margin 1e12", "--margin"),
        ("play clip.mkv --speed 0", "--speed"),
        ("play clip.mkv --seconds inf", "--seconds"),
        ("play clip.mkv --blocksize 1000000000", "--blocksize"),
        ("play clip.mkv --samplerate 30000000000", "--samplerate"),
        ("play clip.mkv --latency nan", "--latency"),
        ("play clip.mkv --seed -5", "--seed"),
        ("live --camera /dev/sda", "--camera"),
        ("pickle clip.mkv -o d.npz --calibrate-silence inf", "--calibrate-silence"),
        ("pickle clip.mkv -o d.npz --fps 1e-300", "--fps"),
        ("pickle clip.mkv -o d.npz --sample-rate 3e10", "--sample-rate"),
        ("train ds.npz -o c.pt --layers 4096,100000000,L", "--layers"),
        ("train ds.npz -o c.pt --batch-size 0", "--batch-size"),
        ("train ds.npz -o c.pt --lr nan", "--lr"),
        ("train ds.npz -o c.pt --val-fraction 2", "--val-fraction"),
        ("train ds.npz -o c.pt --context 1000", "--context"),
        ("export ck.pt -o e.onnx --tolerance nan", "--tolerance"),
        ("eval toy.onnx clip.mkv --grain-density -1", "--grain-density"),
        ("eval toy.onnx clip.mkv --modes ,", "--modes"),
        ("eval toy.onnx clip.mkv --seed 99999999999", "--seed"),
    ]:
        extra = PLAY if argv.split()[0] in ("play", "live") else []
        add(VALUES, argv.split() + extra, flag)
    # -- crafted datasets, checkpoints and brains
    for maker, words, forbid in [
        (lambda d: F.empty(d, "empty.npz"), "empty", ()),
        (lambda d: F.text(d, "text.npz"), "not an .npz archive", ("allow_pickle", "objects")),
        (F.ds_bad_bounds, "inconsistent", ()),
        (F.ds_meta_list, "meta is a JSON list", ()),
        (F.ds_meta_types, "wrong type", ()),
        (F.ds_version_abc, "version 'abc'", ()),
        (F.ds_pickled, "not a liveframe dataset", ("allow_pickle",)),
        (F.ds_no_meta, "no meta", ()),
        (F.ds_nan_targets, "NaN", ("--lr", "learning rate")),
    ]:
        add(CRAFTED, ["train", "@", "-o", "c.pt", "--kind", "pcm", "--layers", TINY,
                      "--epochs", "1", "--quiet"], words, make=maker, forbid=forbid)
    for maker, words in [
        (lambda d: F.empty(d, "empty.pt"), "not a liveframe checkpoint"),
        (lambda d: F.text(d, "text.pt"), "not a liveframe checkpoint"),
        (F.ck_foreign, "not a liveframe checkpoint"),
        (lambda d: F.ck_version_abc(d, "ck.pt"), "version 'abc'"),
        (lambda d: F.ck_no_config(d, "ck.pt"), "lacks 'config'"),
        (lambda d: F.ck_spec_type(d, "ck.pt"), "bad 'spec'"),
    ]:
        add(CRAFTED, ["export", "@", "-o", "e.onnx"], words, make=maker)
    add(CRAFTED, "info empty.onnx", "empty", make=lambda d: F.empty(d, "empty.onnx"),
        forbid=("spec",))
    add(CRAFTED, "render clip.mkv -o x.wav --brain text.onnx", "not an ONNX brain",
        make=lambda d: F.text(d, "text.onnx"))
    # -- sources
    for cmd in (["play", "@", *PLAY], ["render", "@", "-o", "x.wav", "--brain", "toy.onnx"],
                ["pickle", "@", "-o", "d.npz"], ["eval", "toy.onnx", "@"]):
        add(SOURCES, cmd, "pipe", make=lambda d: F.fifo(d, "pipe.mkv"))
        add(SOURCES, cmd, "no picture" if cmd[0] == "play" else "noframes.mkv",
            make=F.no_frames_clip)
        add(SOURCES, cmd, "empty", make=lambda d: F.empty(d, "empty.mkv"))
        add(SOURCES, cmd, "not a readable video", make=lambda d: F.text(d, "text.mkv"))
    add(SOURCES, ["play", "/dev/null", *PLAY], "is a device", forbid=("empty",))
    add(SOURCES, ["render", "/dev/zero", "-o", "x.wav"], "is a device")
    add(SOURCES, ["play", "@", *PLAY], "still picture", make=F.still_png)
    add(SOURCES, ["play", "@", *PLAY], "directory", make=lambda d: (d / "dir.mkv").mkdir()
        or "dir.mkv")
    add(SOURCES, ["pickle", "@", "-o", "d.npz"], "no audio track",
        make=lambda d: F.copy(d, d / "noaudio.mkv", "silent.mkv"))
    # -- a full disk
    add(FULL, "pickle clip.mkv -o full/d.npz -q", NOSPACE, full=True)
    add(FULL, ["train", "ds.npz", "-o", "full/c.pt", "--kind", "pcm", "--layers", TINY,
               "--epochs", "1", "--quiet"], NOSPACE, full=True)
    add(FULL, "export ck.pt -o full/b.onnx", NOSPACE, full=True)
    add(FULL, "render clip.mkv -o full/x.wav --brain toy.onnx --quiet", NOSPACE, full=True)
    add(FULL, "render clip.mkv -o full/x.mkv --brain toy.onnx --quiet", NOSPACE, full=True)
    add(FULL, "eval toy.onnx clip.mkv --plot full/p.png --modes ola", NOSPACE, full=True)
    return c


CASES = _cases()


# ------------------------------------------------------------------------------ leftovers
def test_temporaries_of_killed_runs_are_removed_at_the_next_run(kit, tmp_path):
    """A writer killed with SIGKILL leaves its temporary, named for its process id; the
    next write in that folder removes it, and keeps one whose owner still runs."""
    out = tmp_path / "data.bin"
    code = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from liveframe.util.files import atomic_write
        with atomic_write({str(out)!r}) as (f, tmp):
            f.write(b"x" * 100000); f.flush()
            print(tmp, flush=True)
            time.sleep(60)
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    left = Path(p.stdout.readline().strip())
    p.send_signal(signal.SIGKILL)
    p.wait()
    p.stdout.close()
    assert left.is_file() and f".lftmp-{p.pid}-" in left.name, left
    # a folder left by pickle, a file left by render, one of a run still going (this one),
    # one of another machine (a shared folder), and files that only look like temporaries
    from liveframe.util.files import temp_prefix

    dead = F.dead_pid()
    ds_dir = tmp_path / (temp_prefix("d.npz", pid=dead) + "abcd1234")
    ds_dir.mkdir()
    (ds_dir / "frames.raw").write_bytes(b"\0" * 1000)
    render_tmp = tmp_path / (temp_prefix("x", pid=dead) + "abcdefgh.mkv")
    render_tmp.write_bytes(b"\0" * 1000)
    alive = tmp_path / (temp_prefix("y.npz") + "abcd1234")
    alive.write_bytes(b"")
    elsewhere = tmp_path / f".z.npz.lftmp-{dead}-000000-abcd1234"  # another host's tag
    elsewhere.write_bytes(b"")
    users = [tmp_path / ".photos.tmp-2024", tmp_path / f".report.tmp-{dead}",
             tmp_path / f".config.tmp-{dead}-abcd1234.bak"]
    users[0].mkdir()
    (users[0] / "a.jpg").write_bytes(b"jpeg")
    for u in users[1:]:
        u.write_bytes(b"mine")
    from liveframe.cli import main

    assert main(["pickle", str(kit / "clip.mkv"), "-o", str(tmp_path / "d.npz"), "-q"]) == 0
    kept = sorted(["d.npz", alive.name, elsewhere.name, *(u.name for u in users)])
    checks = [not left.exists(), not ds_dir.exists(), not render_tmp.exists(), alive.exists(),
              elsewhere.exists(), (users[0] / "a.jpg").exists(),
              sorted(p.name for p in tmp_path.iterdir()) == kept]
    LEFTOVERS[:] = [len(checks), sum(checks)]
    assert not left.exists() and not ds_dir.exists() and not render_tmp.exists()
    assert alive.exists(), "a temporary whose owner runs is never touched"
    assert elsewhere.exists(), "another machine's temporary is never touched"
    assert (users[0] / "a.jpg").exists(), "a user's own .NAME.tmp-N folder is not ours"
    assert sorted(p.name for p in tmp_path.iterdir()) == kept


# ------------------------------------------------------------------------------ running
@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real inputs every case starts from: a clip with and without sound, a toy brain, a
    dataset pickled from the clip and a checkpoint trained on it."""
    from liveframe.data.pickle import build_dataset
    from liveframe.data.toybrain import make_brain
    from liveframe.train.trainer import TrainConfig, train

    d = tmp_path_factory.mktemp("kit")
    F.good_clip(d / "clip.mkv")
    F.good_clip(d / "noaudio.mkv", audio=False)
    make_brain(d / "toy.onnx")
    build_dataset([d / "clip.mkv"], d / "ds.npz", progress=False)
    train(d / "ds.npz", d / "ck.pt", TrainConfig(kind="pcm", layers=TINY, epochs=1),
          threads=1, quiet=True)
    return d


def _snapshot(d: Path) -> dict[str, str]:
    """Every path under ``d`` with its kind, and a regular file's sha256."""
    out = {}
    for root, dirs, files in os.walk(d):
        for n in dirs + files:
            p = Path(root) / n
            st = p.lstat()
            rel = str(p.relative_to(d))
            if stat.S_ISREG(st.st_mode):
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                out[rel] = "link -> " + os.readlink(p)
            else:
                out[rel] = "dir" if stat.S_ISDIR(st.st_mode) else f"mode {st.st_mode:o}"
    return out


def _run_case(i: int, case: Case, kit: Path, root: Path) -> list[str]:
    """Run one case; the problems found (none: clean)."""
    d = root / f"case{i:03d}"
    d.mkdir()
    for name in ("clip.mkv", "noaudio.mkv", "toy.onnx", "ds.npz", "ck.pt"):
        shutil.copy(kit / name, d / name)
    argv = list(case.argv)
    if case.make is not None:
        made = case.make(d)
        argv = [str(made) if a == "@" else a for a in argv]
    if case.full:
        mount_tmpfs(d / "full", "16k")
    try:
        before = _snapshot(d)
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(REPO)}
        r = subprocess.run([sys.executable, "-m", "liveframe", *argv], cwd=d, env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=300)
        after = _snapshot(d)
    finally:
        if case.full:
            subprocess.run(["umount", str(d / "full")], check=False)
    lines = r.stderr.strip().splitlines()
    problems = []
    if r.returncode != 2:
        problems.append(f"exit status {r.returncode}")
    if "Traceback" in r.stderr:
        problems.append("a traceback")
    if len(lines) != 1:
        problems.append(f"{len(lines)} lines on stderr")
    line = lines[-1] if lines else ""
    if case.expect not in line:
        problems.append(f"{case.expect!r} not in the message")
    problems += [f"{w!r} in the message" for w in case.forbid if w in line]
    if after != before:
        new = sorted(set(after) - set(before))
        changed = sorted(k for k in before if after.get(k) != before[k])
        problems.append(f"disk changed: new {new}, changed or gone {changed}")
    if problems:
        return [f"liveframe {' '.join(argv)}: {', '.join(problems)}; stderr: "
                f"{r.stderr.strip()[-600:]!r}"]
    return []


def test_bad_input_table(kit, tmp_path):
    """The whole table, two cases at a time; every failure is listed at the end."""
    t0 = time.monotonic()
    with cf.ThreadPoolExecutor(2) as ex:
        results = list(ex.map(lambda ic: _run_case(*ic, kit, tmp_path), enumerate(CASES)))
    seconds = time.monotonic() - t0
    counts = {f: [0, 0] for f in FAMILIES}
    for case, problems in zip(CASES, results):
        counts[case.family][0] += 1
        counts[case.family][1] += not problems
    md = os.environ.get("LIVEFRAME_ROBUSTNESS_MD")
    if md:
        _write_table(Path(md), counts, seconds)
    failures = [p for ps in results for p in ps]
    assert not failures, f"{len(failures)} of {len(CASES)} cases not clean:\n" + "\n".join(
        failures)


BEGIN, END = "<!-- robustness table: begin -->", "<!-- robustness table: end -->"


def _write_table(path: Path, counts: dict[str, list[int]], seconds: float) -> None:
    """Replace the table between the markers of ``path`` (written by this test)."""
    rows = ["| family | tried | clean |", "|---|---:|---:|"]
    rows += [f"| {f} | {t} | {c} |" for f, (t, c) in counts.items()]
    if LEFTOVERS:
        counts = {**counts, LEFTOVER: list(LEFTOVERS)}
        rows.append(f"| {LEFTOVER} | {LEFTOVERS[0]} | {LEFTOVERS[1]} |")
    total = [sum(v[0] for v in counts.values()), sum(v[1] for v in counts.values())]
    rows.append(f"| **all** | **{total[0]}** | **{total[1]}** |")
    block = "\n".join([BEGIN, *rows, "", f"({len(CASES)} cases, {seconds:.0f} s with two "
                       "workers when this table was written.)", END])
    text = path.read_text() if path.exists() else ""
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text + "\n" + block + "\n"
    path.write_text(text)




# ------------------------------------------------------------------------------ small items
def test_camera_is_an_index_or_a_video_device_path():
    import argparse

    from liveframe.cli.options import camera_arg

    assert camera_arg("0") == 0 and camera_arg("/dev/video2") == 2
    for bad in ("/dev/sda", "/dev/video", "-1", "64", "cam"):
        with pytest.raises(argparse.ArgumentTypeError):
            camera_arg(bad)


def test_an_exported_brain_carries_no_build_paths():
    from liveframe.train.export import public_provenance

    prov = {"data": "/tmp/build-x/data.npz", "checkpoint": "/home/me/secret/ck.pt",
            "sources": ["/tmp/build-x/film/reel000.mkv", "black"], "epochs": 3}
    assert public_provenance(prov) == {"data": "data.npz", "checkpoint": "ck.pt",
                                       "sources": ["reel000.mkv", "black"], "epochs": 3}


def test_info_prints_readable_facts_and_json_on_request(kit):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "liveframe", "info", str(kit / "toy.onnx")],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "sees      64x64 grey" in r.stdout and "{" not in r.stdout
    r = subprocess.run([sys.executable, "-m", "liveframe", "info", "--json",
                        str(kit / "toy.onnx")], capture_output=True, text=True, env=env,
                       timeout=60)
    assert r.returncode == 0 and '"format": "liveframe-brain"' in r.stdout
