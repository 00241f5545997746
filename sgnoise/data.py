"""Data sets: MNIST, Fashion-MNIST, CIFAR-10 and the embedded offline sample ``mnist10k``.

``load(name)`` returns a :class:`Dataset` with images as float32 in [0, 1] of
shape (n, height * width * channels), flattened channels-last (784 values for
the 28 x 28 grey images, 3,072 for CIFAR-10's 32 x 32 colour ones), and labels
as int64 in 0..9.

Where the data come from, in order:

``"mnist10k"``
    The real MNIST test set (10,000 images) shipped inside the package
    (``sgnoise/_data/mnist10k``), split deterministically and stratified by
    class into 8,000 training and 2,000 test images. Always offline.
``"mnist"``, ``"fashion_mnist"`` (60,000 / 10,000 images)
    1. ``data_dir`` (or the environment variable ``SGNOISE_DATA``): the four
       IDX files (``.gz`` or uncompressed) or a keras-style ``.npz`` with
       ``x_train, y_train, x_test, y_test``;
    2. keras's own cache: ``$KERAS_HOME`` or ``~/.keras``, ``datasets/mnist.npz``
       and ``datasets/fashion-mnist/*.gz``;
    3. Fashion-MNIST only: Debian's ``/usr/share/datasets/fashion-mnist/``
       (``apt-get install dataset-fashion-mnist``);
    4. a download (``download=True``) from the public URLs keras uses, into
       keras's cache, verified by its hash before it is kept.
``"cifar10"`` (50,000 / 10,000 images)
    The official binary version, ``cifar-10-binary.tar.gz`` (Krizhevsky 2009):
    records of 1 label byte + 3,072 pixel bytes (the red, green and blue
    32 x 32 planes, row by row), read straight from the archive's six ``.bin``
    members (nothing is unpacked; the python version, which needs unpickling,
    is never read). Found in ``data_dir`` / ``SGNOISE_DATA``, then in keras's
    cache folder, else downloaded from the authors' page into that folder; the
    archive's SHA-256 is checked before it is read.

What is verified (:data:`KNOWN_HASHES`; ``verify=False`` turns it off, for files
changed on purpose; the IDX structure, sizes and label range are always checked):

- ``mnist10k``: the SHA-256 of both embedded files, against ``SHA256SUMS``, on every load.
- IDX files, ``.gz`` or not, from any folder: the SHA-256 of the uncompressed IDX
  payload where it is known (the MNIST test files; all four Fashion-MNIST files). It
  does not change when a distributor recompresses the ``.gz``, as Debian did. Else,
  for the MNIST training files, the published SHA-256 of the original ``.gz``
  (TensorFlow Datasets; the same files as torchvision's MD5s). An unpacked MNIST
  training file has no published hash and is read with a warning; a recompressed one
  fails the .gz check (we cannot tell it from a different file): unpack it, or pass
  verify=False.
- ``mnist.npz``: keras's published SHA-256 of the file. Another ``<name>.npz``: each
  array, as the payload of the IDX file it would be, where that hash is known.
- ``cifar-10-binary.tar.gz``: the SHA-256 of the archive (its MD5 is the one the
  authors publish), before it is read; a truncated archive, a member of the wrong size
  or a label outside 0..9 is an error naming the file.
- Downloads: the published SHA-256 of each file, before it is kept.
- ``use_keras=True``: keras checks its own files; we also check each array's payload
  where that hash is known (Fashion-MNIST, the MNIST test set).

A mismatch is an error that names the file, both hashes and the fix; we never delete
a user's file, and only re-download into our own cache.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gzip
import hashlib
import http.client
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request
import warnings
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from sgnoise.results import open_npz

DATASETS = ("mnist10k", "mnist", "fashion_mnist", "cifar10")
#: (height, width, channels) of each data set's images; a row of x is one image flattened
#: channels-last, ((y * width + x) * channels + c).
IMAGE_SHAPES = {
    "mnist10k": (28, 28, 1),
    "mnist": (28, 28, 1),
    "fashion_mnist": (28, 28, 1),
    "cifar10": (32, 32, 3),
}

EMBEDDED_DIR = Path(__file__).parent / "_data" / "mnist10k"
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
BASE_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
"""keras's download folder; the environment variable ``SGNOISE_DATA_URL`` overrides it."""
MNIST10K_TRAIN = 8000

#: CIFAR-10's binary version: the archive, where it is published, and its members.
CIFAR_ARCHIVE = "cifar-10-binary.tar.gz"
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/"
_CIFAR_MEMBERS = {
    "train": [f"cifar-10-batches-bin/data_batch_{i}.bin" for i in range(1, 6)],
    "test": ["cifar-10-batches-bin/test_batch.bin"],
}
_CIFAR_RECORD = 1 + 32 * 32 * 3  # label byte, then the red, green and blue planes

_IMAGES_MAGIC, _LABELS_MAGIC = 0x00000803, 0x00000801
_IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}

# Known hashes. "sha256": of the uncompressed IDX payload (robust to recompression), computed
# here from the embedded MNIST test files and from Debian's dataset-fashion-mnist
# (0.0~git20200523.55506a9-1), cross-checked against the published facts: 60,000/10,000
# images, 6,000/1,000 per class, first training labels 9 0 0 3 0 2 7 2 5 5, pixel mean 0.2860
# and std 0.3530. "gz_sha256": of the original .gz as published by TensorFlow Datasets
# (url_checksums/mnist.txt, fashion_mnist.txt) and keras (fashion_mnist.py FILE_HASHES); our
# embedded t10k .gz files match them and torchvision's MD5s. "npz": keras's mnist.npz.
KNOWN_HASHES: dict[str, dict[str, dict[str, str]]] = {
    "mnist": {
        "train-images-idx3-ubyte": {
            "gz_sha256": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
        },
        "train-labels-idx1-ubyte": {
            "gz_sha256": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
        },
        "t10k-images-idx3-ubyte": {
            "gz_sha256": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "sha256": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        },
        "t10k-labels-idx1-ubyte": {
            "gz_sha256": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            "sha256": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        "mnist.npz": {"npz": "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"},
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte": {
            "gz_sha256": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "sha256": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        },
        "train-labels-idx1-ubyte": {
            "gz_sha256": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "sha256": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        },
        "t10k-images-idx3-ubyte": {
            "gz_sha256": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "sha256": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        },
        "t10k-labels-idx1-ubyte": {
            "gz_sha256": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            "sha256": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
    },
    # The archive of 170,052,171 bytes whose MD5 the authors publish
    # (c32a1d4ab5d03f1284b67883e8d87530, https://www.cs.toronto.edu/~kriz/cifar.html);
    # its SHA-256 as TensorFlow Datasets records it.
    "cifar10": {
        CIFAR_ARCHIVE: {
            "sha256": "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
        },
    },
}


class DataError(ValueError):
    """A data file is missing, corrupt or not what it claims to be."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train and test arrays of one data set, checked on construction.

    Attributes
    ----------
    name : str
        One of :data:`DATASETS`.
    x_train, x_test : ndarray of float32, shape (n, height * width * channels)
        Images scaled to [0, 1], flattened channels-last (:data:`IMAGE_SHAPES`).
    y_train, y_test : ndarray of int64, shape (n,)
        Labels in 0..9.
    source : str
        Where the arrays were read from.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    def __post_init__(self) -> None:
        if self.name not in DATASETS:
            raise DataError(f"name must be one of {', '.join(DATASETS)}, got {self.name!r}")
        width = int(np.prod(IMAGE_SHAPES[self.name]))
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.dtype != np.float32 or x.ndim != 2 or x.shape[1] != width:
                raise DataError(
                    f"x_{split} must be float32 of shape (n, {width}), got {x.dtype} {x.shape}"
                )
            if y.dtype != np.int64 or y.shape != (len(x),):
                raise DataError(
                    f"y_{split} must be int64 of shape ({len(x)},), got {y.dtype} {y.shape}"
                )
            if x.size and not (x.min() >= 0 and x.max() <= 1):
                raise DataError(f"x_{split} must lie in [0, 1], got [{x.min()}, {x.max()}]")
            if y.size and not (y.min() >= 0 and y.max() <= 9):
                raise DataError(f"y_{split} must lie in 0..9, got [{y.min()}, {y.max()}]")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of an image (a row of x, flattened channels-last)."""
        return IMAGE_SHAPES[self.name]

    @property
    def display_name(self) -> str:
        """``"MNIST"``, ``"FashionMNIST"`` or ``"CIFAR10"``: the prefix of output folders."""
        return {"fashion_mnist": "FashionMNIST", "cifar10": "CIFAR10"}.get(self.name, "MNIST")

    def summary(self) -> str:
        """A few lines describing the data: source, shapes, per-class counts, pixel range."""
        lines = [f"dataset  {self.name} ({self.display_name})", f"source   {self.source}"]
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            lines.append(f"{split:<8} x {x.shape} {x.dtype}, y {y.shape} {y.dtype}")
        lines.append("class   " + "".join(f"{c:>6}" for c in range(10)))
        for split in ("train", "test"):
            counts = np.bincount(getattr(self, f"y_{split}"), minlength=10)
            lines.append(f"{split:<8}" + "".join(f"{n:>6}" for n in counts))
        low = min(self.x_train.min(), self.x_test.min())
        high = max(self.x_train.max(), self.x_test.max())
        lines.append(f"pixels   [{low:.3f}, {high:.3f}]")
        return "\n".join(lines)


def _keras_datasets_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"


def _read_bytes(path: Path) -> bytes:
    """The payload of ``path``, decompressed if it is a .gz; DataError if corrupt."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(
            f"{path}: cannot read ({err}). The file is truncated or corrupt: "
            "delete it (or fetch it again) and retry."
        ) from err


def parse_idx(payload: bytes, path: Path | str = "<bytes>", magic: int | None = None) -> np.ndarray:
    """Parse an IDX file (LeCun's format) of unsigned bytes.

    The header is two zero bytes, a type code (0x08 = ubyte), the number of
    dimensions, then one big-endian uint32 per dimension. ``magic``, if given, is
    the exact magic number expected: 0x00000803 for images, 0x00000801 for labels.
    """
    if len(payload) < 4 or payload[0] != 0 or payload[1] != 0 or payload[2] != 0x08:
        raise DataError(
            f"{path}: not an IDX file of unsigned bytes (magic number "
            f"{payload[:4].hex() or 'missing'}, expected 00000801 or 00000803)."
        )
    if magic is not None and int.from_bytes(payload[:4], "big") != magic:
        kind = "images" if magic == _IMAGES_MAGIC else "labels"
        raise DataError(
            f"{path}: IDX magic number {payload[:4].hex()}, expected {magic:08x} ({kind}). "
            "Are the image and label files swapped? Fix: put each file under its own name."
        )
    ndim = payload[3]
    header = 4 + 4 * ndim
    if len(payload) < header:
        raise DataError(f"{path}: IDX header is truncated.")
    shape = tuple(int(d) for d in np.frombuffer(payload, ">u4", ndim, 4))
    expected = int(np.prod(shape)) + header
    if len(payload) != expected:
        raise DataError(
            f"{path}: IDX header promises shape {shape} ({expected} bytes) but the file has "
            f"{len(payload)} bytes: it is truncated or corrupt."
        )
    return np.frombuffer(payload, np.uint8, offset=header).reshape(shape)


def read_cifar10(path: Path, sha256: str | None = None) -> dict[str, np.ndarray]:
    """The arrays of CIFAR-10's binary archive, images channels-last (n, 32, 32, 3) uint8.

    Each member ``cifar-10-batches-bin/*.bin`` is read from the archive (no file is
    unpacked) as records of :data:`_CIFAR_RECORD` bytes: the label, then the red,
    green and blue planes of 32 x 32 pixels, row by row; the planes are moved to
    the last axis. ``sha256``, if given, is checked against the archive first.

    Raises
    ------
    DataError
        A wrong hash, a truncated or corrupt archive, a missing member, a member
        that is not whole records, a label outside 0..9: one line naming the file and the fix.
    """
    if sha256 is not None:
        got = _file_hash(path)
        if got != sha256:
            raise DataError(
                f"{path}: SHA-256 is {got}, expected {sha256}. The archive is incomplete, "
                f"corrupt or not the published {CIFAR_ARCHIVE}: download it again (we do "
                f"not delete your files), or, {_ON_PURPOSE}"
            )
    arrays = {}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for split, members in _CIFAR_MEMBERS.items():
                parts = []
                for member in members:
                    try:
                        f = archive.extractfile(member)  # None if not a file
                    except KeyError:
                        f = None
                    if f is None:
                        raise DataError(
                            f"{path}: the archive has no member {member}: it is not "
                            f"{CIFAR_ARCHIVE} (the binary version; the python and matlab "
                            "versions are not read): replace it."
                        )
                    payload = f.read()
                    if not payload or len(payload) % _CIFAR_RECORD:
                        raise DataError(
                            f"{path}: {member} has {len(payload)} bytes, not a whole number "
                            f"of {_CIFAR_RECORD}-byte records: the archive is corrupt; "
                            "download it again."
                        )
                    parts.append(np.frombuffer(payload, np.uint8).reshape(-1, _CIFAR_RECORD))
                records = np.concatenate(parts)
                arrays[f"y_{split}"] = records[:, 0]
                planes = records[:, 1:].reshape(-1, 3, 32, 32)
                arrays[f"x_{split}"] = np.ascontiguousarray(planes.transpose(0, 2, 3, 1))
    except (OSError, EOFError, tarfile.TarError, zlib.error) as err:
        raise DataError(
            f"{path}: cannot read the archive ({err}). It is truncated or corrupt: download "
            "it again and retry."
        ) from err
    return arrays


def _magic(key: str) -> int:
    """The IDX magic number of the array named key ("x_..." images, "y_..." labels)."""
    return _IMAGES_MAGIC if key.startswith("x") else _LABELS_MAGIC


def _check_hash(
    path: Path, payload: bytes, known: dict[str, str] | None, label: str | None = None
) -> None:
    """Verify one file: its payload's SHA-256 if known, else the published .gz's SHA-256.

    ``known`` is None when verification is off. A file that no known hash applies to (an
    unpacked MNIST training file) is read with a warning. ``label`` names
    what is checked in messages (default: the path).
    """
    if known is None:
        return
    label = label or str(path)
    if "sha256" in known:
        got, want = hashlib.sha256(payload).hexdigest(), known["sha256"]
        kind = "SHA-256 of the uncompressed IDX payload"
    elif "gz_sha256" in known and path.suffix == ".gz":
        got, want, kind = _file_hash(path), known["gz_sha256"], "SHA-256 of the .gz"
    else:
        _check_count(path, payload, label)
        warnings.warn(
            f"{label}: no published hash is known for this form of the file (only for the "
            "original .gz); it was read unverified, its IDX structure and count checked.",
            stacklevel=4,
        )
        return
    if got != want:
        raise DataError(
            f"{label}: {kind} is {got}, expected {want}. The file is corrupt or not the "
            f"published one: replace it with a fresh copy (we do not delete your files), or, "
            f"{_ON_PURPOSE}"
        )


#: The fix a verification error offers for a file changed on purpose (a driver cannot skip it).
_ON_PURPOSE = (
    "if you changed it on purpose, read it in Python with sgnoise.data.load(..., verify=False) "
    "(the drivers always verify)."
)

#: Items in the published IDX files of MNIST and Fashion-MNIST, by the names' first word.
PUBLISHED_COUNTS = {"train": 60_000, "t10k": 10_000}


def _check_count(path: Path, payload: bytes, label: str) -> None:
    """An IDX file read unverified must hold the published number of items (its header's
    first dimension): the test set unpacked under the training set's name is refused."""
    want = PUBLISHED_COUNTS.get(path.name.split("-", 1)[0])
    got = int.from_bytes(payload[4:8], "big")
    if want is not None and got != want:
        raise DataError(
            f"{label}: holds {got:,} items, the published file {want:,}: it is not the "
            "published file (another split under this name?): replace it with a fresh copy, "
            f"or, {_ON_PURPOSE}"
        )


def _idx_payload(array: np.ndarray) -> bytes:
    """The IDX file (header, then bytes) that holds a uint8 array."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    return header + np.ascontiguousarray(array, np.uint8).tobytes()


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _find_idx(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _find_npz(folder: Path, name: str) -> Path | None:
    """``<name>.npz`` (keras's spelling: ``mnist.npz``; ``fashion-mnist.npz`` is accepted).

    Only these names: keras's cache also holds other data sets' .npz files (imdb.npz, ...).
    """
    for file_name in dict.fromkeys((f"{name}.npz", f"{name.replace('_', '-')}.npz")):
        if (folder / file_name).is_file():
            return folder / file_name
    return None


def _load_idx_folder(folder: Path, hashes: dict[str, dict[str, str]] | None) -> dict:
    arrays = {}
    for key, stem in _IDX_NAMES.items():
        path = _find_idx(folder, stem)
        if path is None:
            raise DataError(f"{folder}: missing {stem}.gz (all four IDX files are needed).")
        payload = _read_bytes(path)
        arrays[key] = parse_idx(payload, path, _magic(key))  # structure first: clearer errors
        _check_hash(path, payload, (hashes or {}).get(stem))
    return arrays


def _load_npz(path: Path, expected_sha256: str | None) -> dict:
    if expected_sha256 is not None:
        got = _file_hash(path)
        if got != expected_sha256:
            raise DataError(
                f"{path}: SHA-256 is {got}, expected {expected_sha256}. The file is corrupt "
                "or not keras's mnist.npz: replace it with a fresh copy."
            )
    try:
        with open_npz(path) as f:
            return {k: f[k] for k in _IDX_NAMES}
    except KeyError as err:
        raise DataError(
            f"{path}: a keras-style .npz needs arrays x_train, y_train, x_test, y_test; "
            f"missing {err}."
        ) from err
    except (OSError, ValueError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: cannot read the .npz ({err}); it is corrupt.") from err


def _to_dataset(name: str, arrays: dict, source: str) -> Dataset:
    """Check shapes and counts, scale images to float32 [0, 1]."""
    out = {}
    height, width, channels = IMAGE_SHAPES[name]
    shape = (height, width) if channels == 1 else (height, width, channels)
    for split in ("train", "test"):
        x, y = np.asarray(arrays[f"x_{split}"]), np.asarray(arrays[f"y_{split}"])
        if x.shape[1:] != shape:
            raise DataError(
                f"{source}: {split} images have shape {x.shape}, expected (n, "
                f"{', '.join(map(str, shape))})."
            )
        if x.dtype != np.uint8 or y.dtype.kind not in "iu":
            raise DataError(
                f"{source}: {split} images must be uint8 (0..255) and labels integers, as "
                f"published; got {x.dtype} and {y.dtype}. Fix: save the original arrays."
            )
        if y.ndim != 1 or len(y) != len(x):
            raise DataError(
                f"{source}: {len(x)} {split} images but {y.shape[0] if y.ndim else 0} labels; "
                "the image and label files do not belong together."
            )
        if y.size and (y.min() < 0 or y.max() > 9):
            raise DataError(f"{source}: {split} labels outside 0..9.")
        out[f"x_{split}"] = np.divide(x.reshape(len(x), -1), 255, dtype=np.float32)
        out[f"y_{split}"] = y.astype(np.int64)
    return Dataset(name=name, source=source, **out)


@functools.lru_cache(maxsize=1)
def _mnist10k() -> Dataset:
    sums = dict(
        line.split()[::-1] for line in (EMBEDDED_DIR / "SHA256SUMS").read_text().splitlines()
    )
    arrays = {}
    for key in ("x_test", "y_test"):
        path = EMBEDDED_DIR / f"{_IDX_NAMES[key]}.gz"
        if not path.is_file():
            raise DataError(f"{path}: the embedded MNIST sample is missing; reinstall sgnoise.")
        got = _file_hash(path)
        if got != sums[path.name]:
            raise DataError(
                f"{path}: SHA-256 is {got}, expected {sums[path.name]} (SHA256SUMS). The "
                f"embedded file is corrupt: restore it (git checkout -- {path}) or reinstall."
            )
        arrays[key] = parse_idx(_read_bytes(path), path, _magic(key))
    x, y = arrays["x_test"], arrays["y_test"]
    # Stratified, deterministic split: within each class, a fixed-seed permutation,
    # the first 80% to train. Train/test indices are then sorted back to file order.
    rng = np.random.default_rng(20190609)
    train_idx = []
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(y == c))
        train_idx.append(idx[: round(len(idx) * MNIST10K_TRAIN / len(y))])
    train = np.zeros(len(y), bool)
    train[np.concatenate(train_idx)] = True
    split = {"x_train": x[train], "y_train": y[train], "x_test": x[~train], "y_test": y[~train]}
    source = (
        f"{EMBEDDED_DIR} (embedded MNIST test set, SHA-256 verified; stratified "
        f"{train.sum()}/{(~train).sum()} split)"
    )
    data = _to_dataset("mnist10k", split, source)
    for array in (data.x_train, data.y_train, data.x_test, data.y_test):
        array.setflags(write=False)  # cached and shared: copy before changing
    return data


def _download(url: str, dest: Path, sha256: str) -> None:
    """Download ``url`` to ``dest`` via a temporary file, kept only if its SHA-256 matches."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    print(f"sgnoise: downloading {url} into {dest.parent}", file=sys.stderr)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=60) as r:
            shutil.copyfileobj(r, f)
        got = _file_hash(Path(tmp))
        if got != sha256:
            raise DataError(
                f"download of {url}: SHA-256 is {got}, expected {sha256}; the file was not "
                "kept. The server sent a different or damaged file: try again later."
            )
        os.replace(tmp, dest)
    except (OSError, http.client.HTTPException) as err:  # URLError, HTTPError, timeouts
        raise DataError(f"download of {url} failed ({err}).") from err
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _keras_cache(name: str) -> Path:
    """Where keras keeps (and we download) name: datasets/ or datasets/fashion-mnist/."""
    return _keras_datasets_dir() / ("fashion-mnist" if name == "fashion_mnist" else "")


def _download_dataset(name: str, base_url: str, hashes: dict) -> Dataset:
    """Fetch the files of name missing from keras's cache, or failing their hash, and read them.

    The URLs are keras's: ``base_url + "mnist.npz"`` and ``base_url + "<IDX name>.gz"``.
    """
    folder = _keras_cache(name)
    if name == "mnist":
        files = {"mnist.npz": hashes["mnist.npz"]["npz"]}
    elif name == "cifar10":
        files = {CIFAR_ARCHIVE: hashes[CIFAR_ARCHIVE]["sha256"]}
    else:
        files = {f"{stem}.gz": hashes[stem]["gz_sha256"] for stem in _IDX_NAMES.values()}
    for file_name, sha256 in files.items():
        dest = folder / file_name
        if not (dest.is_file() and _file_hash(dest) == sha256):
            _download(base_url + file_name, dest, sha256)
    return _load_folder(name, folder, hashes, verify=True, source=f"downloaded from {base_url}")


def _load_folder(
    name: str, folder: Path, hashes: dict, verify: bool, source: str = ""
) -> Dataset | None:
    """The data set in folder (the four IDX files, or ``<name>.npz``; CIFAR-10's archive), or
    None if absent."""
    if name == "cifar10":
        path = folder / CIFAR_ARCHIVE
        if not path.is_file():
            return None
        want = hashes.get(CIFAR_ARCHIVE, {}).get("sha256")
        return _to_dataset(
            name, read_cifar10(path, want), f"{path} ({source})" if source else str(path)
        )
    if _find_idx(folder, _IDX_NAMES["x_train"]) is not None:
        arrays, path = _load_idx_folder(folder, hashes), folder
    else:
        path = _find_npz(folder, name)
        if path is None:
            return None
        want = hashes.get(path.name, {}).get("npz")
        arrays = _load_npz(path, want)
        if want is None and verify:  # no hash of the file: check each array's payload
            for key, stem in _IDX_NAMES.items():
                payload = _idx_payload(arrays[key])
                _check_hash(path, payload, hashes.get(stem, {}), f"{path}[{key}]")
    return _to_dataset(name, arrays, f"{path} ({source})" if source else str(path))


def load(
    name: str,
    data_dir: str | Path | None = None,
    *,
    download: bool = True,
    use_keras: bool = False,
    verify: bool = True,
    base_url: str | None = None,
) -> Dataset:
    """Load a data set as float32 images in [0, 1] and int64 labels.

    Parameters
    ----------
    name : {"mnist10k", "mnist", "fashion_mnist"}
        ``"mnist10k"`` is the embedded offline sample (8,000 train / 2,000 test
        images from the real MNIST test set); it is parsed once per process and its
        arrays are read-only (copy them before changing them in place). The others
        are the full sets.
    data_dir : path, optional
        A folder with the four IDX files (``.gz`` or not) or a keras-style
        ``.npz``. Defaults to the environment variable ``SGNOISE_DATA``.
    download : bool
        Download into keras's cache if the data are found nowhere else, or if a
        file in keras's cache fails its check (fetched again once).
    use_keras : bool
        Call ``keras.datasets.<name>.load_data()`` instead (keras must import).
    verify : bool
        Check files against the published hashes. Turn off only for your own
        files that are not the published ones (e.g. a subset).
    base_url : str, optional
        Where to download from (default: keras's URLs, or ``SGNOISE_DATA_URL``).

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        Unknown name, missing, truncated or corrupt file, wrong IDX magic number,
        image/label count or shape mismatch, hash mismatch, failed download; the
        message names the file and the fix.

    References
    ----------
    .. [1] Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning
       applied to document recognition", Proc. IEEE 86(11), 1998 (MNIST; IDX
       format: http://yann.lecun.com/exdb/mnist/; CC BY-SA 3.0).
    .. [2] H. Xiao, K. Rasul, R. Vollgraf, "Fashion-MNIST: a novel image dataset for
       benchmarking machine learning algorithms", arXiv:1708.07747, 2017 (MIT).
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}.")
    if name == "mnist10k":
        return _mnist10k()
    hashes = KNOWN_HASHES[name] if verify else {}
    if use_keras and name == "cifar10":
        raise DataError(
            "use_keras=True is not offered for cifar10: keras reads the pickled python version, "
            f"which sgnoise never unpickles; drop the option (sgnoise reads {CIFAR_ARCHIVE})."
        )
    if use_keras:
        return _load_with_keras(name, hashes)
    origin = "data_dir (--data-dir)" if data_dir is not None else "SGNOISE_DATA"
    data_dir = data_dir if data_dir is not None else os.environ.get("SGNOISE_DATA")
    places: list[Path] = []
    if data_dir:
        if not Path(data_dir).expanduser().is_dir():
            raise DataError(f"{origin} {str(data_dir)!r} is not a folder; give an existing one.")
        places.append(Path(data_dir).expanduser())
    places.append(_keras_cache(name))
    if name == "fashion_mnist":
        places.append(DEBIAN_FASHION_DIR)
    for folder in places:
        if not folder.is_dir():
            continue
        try:
            found = _load_folder(name, folder, hashes, verify)
        except DataError:
            if folder != _keras_cache(name) or not download:
                raise
            break  # a bad file in keras's cache, where we download: fetch it again, once
        if found is not None:
            return found
    how = (
        "install Debian's package (`apt-get install dataset-fashion-mnist`), "
        if name == "fashion_mnist"
        else ""
    )
    files = CIFAR_ARCHIVE if name == "cifar10" else "the four IDX .gz files or a keras .npz"
    advice = (
        f"looked in {', '.join(str(p) for p in places)}. To get it: {how}put {files} in a "
        "folder and pass --data-dir / set SGNOISE_DATA, or download it (download=True, needs "
        "the network). Offline, the embedded sample 'mnist10k' always works."
    )
    if not download:
        raise DataError(f"{name}: no data found; {advice}")
    base_url = (
        base_url
        or os.environ.get("SGNOISE_DATA_URL")
        or (CIFAR_URL if name == "cifar10" else BASE_URL)
    )
    base_url = base_url if base_url.endswith("/") else base_url + "/"
    try:
        return _download_dataset(name, base_url, KNOWN_HASHES[name])
    except DataError as err:
        raise DataError(f"{err}\n{name}: not available locally either; {advice}") from err


def _load_with_keras(name: str, hashes: dict) -> Dataset:
    try:
        import keras  # noqa: PLC0415  (optional dependency)
    except Exception as err:  # keras 3 raises more than ImportError without a backend
        raise DataError(
            f"use_keras=True but keras cannot be imported ({err}); drop the option: sgnoise "
            "reads keras's cache files itself."
        ) from err
    source = f"keras.datasets.{name}.load_data()"
    try:
        (xtr, ytr), (xte, yte) = getattr(keras.datasets, name).load_data()
    except Exception as err:  # keras's own download and file errors, reported as ours
        raise DataError(f"{source} failed: {err}") from err
    arrays = {"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte}
    for key, stem in _IDX_NAMES.items():  # keras checks its files; we check the payloads we know
        if "sha256" in hashes.get(stem, {}):
            _check_hash(Path(source), _idx_payload(arrays[key]), hashes[stem], f"{source}[{key}]")
    return _to_dataset(name, arrays, source)


#: Fewest minibatches per split: with two, each standardised noise column is exactly +-1
#: (discrete), which no tail-index estimate can describe.
MIN_MINIBATCHES = 3
#: Where :func:`memory_mapped` puts the data when there is room (else the temporary directory).
SHARED_MEMORY = "/dev/shm"
_FIELDS = ("x_train", "y_train", "x_test", "y_test")


def subset(data: Dataset, n: int) -> Dataset:
    """The first ``n`` training images and the first ``max(n // 4, 1)`` test images (0: all)."""
    if not n:
        return data
    return replace(
        data,
        x_train=data.x_train[:n],
        y_train=data.y_train[:n],
        x_test=data.x_test[: max(n // 4, 1)],
        y_test=data.y_test[: max(n // 4, 1)],
    )


class BatchSizeError(ValueError):
    """A batch size the data cannot hold :data:`MIN_MINIBATCHES` minibatches of: a bad
    setting (a driver exits with code 2), not bad data."""


def check_batch_size(data: Dataset, batch_size: int) -> None:
    """Raise :class:`BatchSizeError` unless both splits hold :data:`MIN_MINIBATCHES`
    minibatches."""
    for split, x in (("training", data.x_train), ("test", data.x_test)):
        if len(x) < MIN_MINIBATCHES * batch_size:
            raise BatchSizeError(
                f"--batch-size must be at most 1/{MIN_MINIBATCHES} of the {split} set "
                f"({len(x)} images: the noise needs {MIN_MINIBATCHES} minibatches), got "
                f"{batch_size}: lower the batch size (--batch-size, or --batch-sizes in the "
                "batch study) or use more images (--subset 0 is all)"
            )


def fingerprint(data: Dataset) -> str:
    """SHA-256 of the four arrays as used (after any subset): the same on every machine."""
    h = hashlib.sha256()
    for field in _FIELDS:
        array = np.ascontiguousarray(getattr(data, field))
        h.update(f"{field}{array.dtype.str}{array.shape}".encode())
        h.update(memoryview(array).cast("B"))
    return h.hexdigest()


def prepare(
    name: str, data_dir: str | Path | None, n: int, batch_sizes: int | Sequence[int]
) -> Dataset:
    """A study's data: loaded, cut by :func:`subset`, every batch size checked."""
    data = subset(load(name, data_dir), n)
    for b in [batch_sizes] if isinstance(batch_sizes, int) else batch_sizes:
        check_batch_size(data, b)
    return data


def _shared_memory_folder(nbytes: int) -> str | None:
    """``/dev/shm`` (memory, as joblib uses) if it has room for twice nbytes, else None.

    None: the default temporary directory. Writing Fashion-MNIST's 220 MB
    there took 0.8 s on disk, 0.14 s in /dev/shm.
    """
    try:
        stat = os.statvfs(SHARED_MEMORY)
    except OSError:  # no such file system (not Linux)
        return None
    return SHARED_MEMORY if stat.f_bavail * stat.f_frsize >= 2 * nbytes else None


#: Prefix of :func:`memory_mapped`'s folders, followed by the pid of the process that made one.
SHARED_PREFIX = "sgnoise-data-"


@contextlib.contextmanager
def memory_mapped(data: Dataset) -> Iterator[Dataset]:
    """``data`` with its arrays in read-only memory-mapped files, for worker processes.

    The files are in a temporary folder ``sgnoise-data-<pid>-*``, in
    :data:`SHARED_MEMORY` if that has room for twice the data, else in the
    temporary directory (``$TMPDIR``). Worker processes get the folder's name
    (:func:`by_reference`), so they and this process read one copy of the data
    instead of one each: 220 MB a process for Fashion-MNIST. The folder is removed
    when the ``with`` block ends, however it ends (an exception, Ctrl-C, a SIGTERM
    turned into an exception by :mod:`sgnoise.sweep`); only SIGKILL leaves it behind
    (in /dev/shm it holds memory until removed), and :func:`remove_orphans`, called
    by every sweep, removes it once its process is gone. The mapped arrays stay
    readable after the block (the mapping outlives the file).
    """
    nbytes = sum(getattr(data, f).nbytes for f in _FIELDS)
    folder = tempfile.mkdtemp(
        prefix=f"{SHARED_PREFIX}{os.getpid()}-", dir=_shared_memory_folder(nbytes)
    )
    try:
        arrays = {}
        for field in _FIELDS:
            path = os.path.join(folder, f"{field}.npy")
            np.save(path, getattr(data, field))
            arrays[field] = np.load(path, mmap_mode="r")
        shared = replace(data, **arrays)
        del data  # the caller's copy can go when the caller lets it go
        yield shared
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class Mapped:
    """A data set in :func:`memory_mapped` files, as worker processes receive it: the
    folder and the names (a few hundred bytes to send, not the arrays)."""

    folder: str
    name: str
    source: str

    def open(self) -> Dataset:
        """The data set, its arrays mapped from the files (once per process)."""
        return _open_mapped(self)


@functools.lru_cache(maxsize=1)
def _open_mapped(mapped: Mapped) -> Dataset:
    arrays = {f: np.load(os.path.join(mapped.folder, f"{f}.npy"), mmap_mode="r") for f in _FIELDS}
    return Dataset(name=mapped.name, source=mapped.source, **arrays)


def by_reference(data: Dataset) -> Dataset | Mapped:
    """What to send a worker process: a :class:`Mapped` if ``data`` comes from
    :func:`memory_mapped` (its files still there), else ``data`` itself."""
    names = [getattr(getattr(data, f), "filename", None) for f in _FIELDS]
    folders = {os.path.dirname(n) for n in names if n}
    if len(folders) != 1 or None in names or not os.path.isdir(next(iter(folders))):
        return data
    return Mapped(folders.pop(), data.name, data.source)


def _alive(pid: int) -> bool:
    """Whether process pid exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: alive
        return True
    return True


def remove_orphans() -> list[str]:
    """Remove the :func:`memory_mapped` folders whose process is gone (a driver killed
    with SIGKILL), in :data:`SHARED_MEMORY` and the temporary directory; returns them.
    Only folders named ``sgnoise-data-<pid>-*`` whose pid is not a live process."""
    removed = []
    for parent in dict.fromkeys((SHARED_MEMORY, tempfile.gettempdir())):
        try:
            names = os.listdir(parent)
        except OSError:
            continue
        for name in names:
            pid = name.removeprefix(SHARED_PREFIX).split("-", 1)[0]
            if name.startswith(SHARED_PREFIX) and pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
                removed.append(os.path.join(parent, name))
    return removed


def main(argv: list[str] | None = None) -> None:
    """``python -m sgnoise.data [name] [--data-dir D]``: print a data summary."""
    parser = argparse.ArgumentParser(description="Load a data set and print a summary.")
    parser.add_argument("name", nargs="?", default="mnist10k", choices=DATASETS)
    parser.add_argument("--data-dir", default=None, help="folder with IDX .gz files or a .npz")
    parser.add_argument("--no-download", action="store_true", help="never download")
    args = parser.parse_args(argv)
    try:
        print(load(args.name, args.data_dir, download=not args.no_download).summary())
    except DataError as err:
        parser.exit(2, f"error: {err}\n")


if __name__ == "__main__":
    main()
