"""Labelled digits from files: a tree of label folders, an IDX pair or a CSV pair, read and prepared in batches.

A labelled folder tree is ``<root>/<label>/*`` with PNG, JPEG, BMP or GIF files, the layout of Keras's
``image_dataset_from_directory`` and torchvision's ``ImageFolder``. Every image is prepared as
``digitrec predict`` prepares it (:func:`digitrec_utils.data.preparation.prepare_image`). It serves the ``folder``
dataset (:func:`digitrec_utils.data.loading.load_dataset`), ``digitrec evaluate`` and ``digitrec calibrate``
(:mod:`digitrec_utils.evaluation.labelled`).

Rules of a tree, each broken one a :class:`~digitrec_utils.exceptions.DatasetError` before anything is read:
a label folder must be named after a class (``0`` to ``9``); a label folder holds files, not folders; the
tree holds at least one image. A file that is not an image by its suffix (a README) is skipped and listed
once; an image that cannot be read or holds no ink is named, and the others go on.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitrec_utils import config
from digitrec_utils.data.preparation import BATCH_SIZE, IMAGE_SUFFIXES, prepare_image_batch, prepare_image_files
from digitrec_utils.data.readers import (
    compute_sha256,
    read_csv_images,
    read_csv_labels,
    read_idx_images,
    read_idx_labels,
    validate_pair,
)
from digitrec_utils.data.types import DIGIT_CLASS_NAMES
from digitrec_utils.exceptions import DatasetError, ParameterError

# Files that are models, not digits: given among the labelled data, they are refused with the way to pass them.
MODEL_SUFFIXES = (".keras", ".h5", ".onnx", ".tflite")


@dataclass(frozen=True)
class LabelledFiles:
    """The image files of a labelled folder tree.

    Attributes
    ----------
    root : Path
    paths : list of Path
        Sorted by label folder, then by name.
    labels : ndarray of shape (n_files,), uint8
    skipped : list of Path
        Files that are not images by their suffix, left out.
    """

    root: Path
    paths: list[Path]
    labels: np.ndarray
    skipped: list[Path] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Files per label folder."""
        return {str(label): int(count) for label, count in sorted(Counter(self.labels.tolist()).items())}

    def compute_sha256(self) -> str:
        """One SHA-256 over every image's path relative to the root and its bytes' digest."""
        digest = hashlib.sha256()
        for path in self.paths:
            digest.update(path.relative_to(self.root).as_posix().encode())
            digest.update(compute_sha256(path).encode())
        return digest.hexdigest()


def find_labelled_files(root: str | os.PathLike, *, class_names: Sequence[str] = DIGIT_CLASS_NAMES) -> LabelledFiles:
    """List the images of a labelled folder tree, ``<root>/<label>/*``, checking its layout.

    Parameters
    ----------
    root : path-like
    class_names : sequence of str
        The allowed label folder names; a folder's position in it is its label.

    Returns
    -------
    files : LabelledFiles

    Raises
    ------
    DatasetError
        When ``root`` is not a folder, a label folder is not named after a class, a label folder holds a
        folder, or the tree holds no image; the message names the folder and the fix.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder; give a folder with one sub-folder per label "
                           f"({', '.join(class_names)}), each holding that label's images.")
    positions = {name: position for position, name in enumerate(class_names)}
    paths, labels, skipped = [], [], []
    for child in sorted(root.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_file():
            skipped.append(child)
            continue
        if child.name not in positions:
            raise DatasetError(f"{child}: a label folder must be named after its class ({', '.join(class_names)}); "
                               "rename it, or move it out of the tree.")
        for item in sorted(child.iterdir()):
            if item.name.startswith("."):
                continue
            if item.is_dir():
                raise DatasetError(f"{item}: a folder inside the label folder {child.name}/; a label folder holds "
                                   "image files only. Move its images up into it, or the folder out of the tree.")
            if item.suffix.lower() in IMAGE_SUFFIXES:
                paths.append(item)
                labels.append(positions[child.name])
            else:
                skipped.append(item)
    if not paths:
        raise DatasetError(f"{root}: no images in the tree (PNG, JPEG, BMP or GIF files in label folders "
                           f"{', '.join(class_names)}); put each label's images in a folder named after it.")
    return LabelledFiles(root, paths, np.asarray(labels, dtype=np.uint8), skipped)


@dataclass
class LabelledBatch:
    """A batch of labelled digits, prepared for the model.

    Attributes
    ----------
    names : list of str
        The images' names (a file's path, or ``file#index`` for an IDX or CSV row).
    labels : ndarray of shape (n,), uint8
    images : ndarray of shape (n_prepared, 28, 28), float32
    positions : list of int
        For each prepared image, its position in ``names``.
    kinds : list of str
        How each prepared image was prepared (``field``, ``scan``, ``photo``).
    errors : dict of int to str
        The images that could not be used, and why.
    """

    names: list[str]
    labels: np.ndarray
    images: np.ndarray
    positions: list[int]
    kinds: list[str]
    errors: dict[int, str]


@dataclass(frozen=True)
class LabelledSource:
    """Labelled digits to read: a folder tree, or arrays from an IDX or CSV pair.

    Attributes
    ----------
    name : str
        A short name for pages: the folder's name, or the images file's.
    description : str
    n_images : int
    files : LabelledFiles or None
        For a folder tree.
    arrays : tuple of (images, labels) or None
        For an IDX or CSV pair: uint8 images (n, 28, 28) in MNIST's convention, and labels.
    sha256 : str
    """

    name: str
    description: str
    n_images: int
    files: LabelledFiles | None
    arrays: tuple[np.ndarray, np.ndarray] | None
    sha256: str

    @property
    def skipped(self) -> list[Path]:
        return self.files.skipped if self.files is not None else []

    def iterate_batches(self, *, batch_size: int | None = None, progress: bool | None = None
                        ) -> Iterator[LabelledBatch]:
        """Read and prepare the digits a batch at a time (memory bounded whatever their number)."""
        batch_size = batch_size or BATCH_SIZE
        if self.files is not None:
            start = 0
            for batch in prepare_image_files(self.files.paths, batch_size=batch_size, progress=progress):
                labels = self.files.labels[start:start + len(batch.paths)]
                start += len(batch.paths)
                yield LabelledBatch(batch.paths, labels, batch.images, batch.positions, batch.kinds, batch.errors)
            return
        images, labels = self.arrays
        for start in range(0, len(labels), batch_size):
            chunk = images[start:start + batch_size]
            prepared, usable = prepare_image_batch(chunk)
            kept = np.flatnonzero(usable)
            names = [f"{self.name}#{index}" for index in range(start, start + len(chunk))]
            errors = {int(position): f"{names[position]}: no ink found (the image is blank or uniform)."
                      for position in np.flatnonzero(~usable)}
            yield LabelledBatch(names, labels[start:start + len(chunk)], prepared[kept], kept.tolist(),
                                ["field"] * len(kept), errors)


def open_labelled_source(data: Sequence[str | os.PathLike]) -> LabelledSource:
    """Open labelled digits given on the command line: one folder tree, or an IDX pair, or a CSV pair.

    Parameters
    ----------
    data : sequence of path-like
        One folder (``<root>/<label>/*``), or two files: images then labels, as IDX files
        (``*-idx3-ubyte[.gz]`` and ``*-idx1-ubyte[.gz]``) or CSV files (784 columns of 0-255, no header, and
        one label per line), the formats the ``mnist`` and ``csv`` datasets read.

    Raises
    ------
    ParameterError
        When ``data`` is neither.
    DatasetError
        When the files are missing or malformed (the readers' messages).
    """
    paths = [Path(item).expanduser() for item in data]
    models = [path for path in paths if path.suffix.lower() in MODEL_SUFFIXES]
    if models:
        raise ParameterError(f"{models[0]}: this is a saved model, not labelled digits; give it as --model "
                             f"{models[0]} and the digits as a folder tree or an IDX or CSV pair.")
    if len(paths) == 1 and not paths[0].is_file():
        files = find_labelled_files(paths[0])
        return LabelledSource(paths[0].name, f"the folder tree {paths[0].name}/ ({len(files.paths):,} images)",
                              len(files.paths), files, None, files.compute_sha256())
    if len(paths) == 2 and not any(path.is_dir() for path in paths):
        images_path, labels_path = paths
        for path in paths:
            if not path.is_file():
                raise DatasetError(f"{path}: no such file; give the images file, then the labels file.")
        if all(".csv" in path.name.lower() for path in paths):
            images, labels = read_csv_images(images_path), read_csv_labels(labels_path)
            kind = "CSV"
        else:
            images, labels = read_idx_images(images_path), read_idx_labels(labels_path)
            kind = "IDX"
        validate_pair(images, labels, images_path, labels_path)
        digest = hashlib.sha256((compute_sha256(images_path) + compute_sha256(labels_path)).encode()).hexdigest()
        return LabelledSource(images_path.name, f"the {kind} files {images_path.name} and {labels_path.name} "
                              f"({len(labels):,} images)", len(labels), None, (images, labels), digest)
    raise ParameterError(f"{' '.join(str(path) for path in paths)}: give one folder tree (<root>/<label>/*), or two "
                         "files, images then labels (an IDX pair or a CSV pair).")


def read_labelled_folder(root: str | os.PathLike, *, progress: bool | None = None
                         ) -> tuple[np.ndarray, np.ndarray, LabelledFiles, list[str]]:
    """Read a labelled folder tree as a dataset holds digits: uint8 28x28 arrays, prepared as ``predict`` does.

    Returns
    -------
    images : ndarray of shape (n_usable, 28, 28), uint8
        Light ink on dark, 0-255 (the prepared image times 255, rounded).
    labels : ndarray of shape (n_usable,), uint8
    files : LabelledFiles
    errors : list of str
        One message per image that could not be used (unreadable, no ink).
    """
    files = find_labelled_files(root)
    source = LabelledSource(Path(root).name, "", len(files.paths), files, None, "")
    images, labels, errors = [], [], []
    for batch in source.iterate_batches(progress=progress):
        images.append(np.clip(np.rint(batch.images * 255.0), 0, 255).astype(np.uint8))
        labels.append(batch.labels[batch.positions])
        errors += list(batch.errors.values())
    return np.concatenate(images), np.concatenate(labels).astype(np.uint8), files, errors


def count_kinds(kinds: Sequence[str]) -> dict[str, int]:
    """How many images were prepared each way, in a fixed order."""
    counted = Counter(kinds)
    return {kind: counted[kind] for kind in ("field", "scan", "photo") if counted[kind]}


def resolve_field_folder(folder: str, *, data_dir: str | None = None) -> Path:
    """Return a labelled folder tree's root: an absolute path as it is, a relative one under ``data_dir``, then
    under ``$DIGITREC_DATA`` (``field/semeion`` finds the shared field sets).

    Raises
    ------
    DatasetError
        Naming every place tried and the fix.
    """
    path = Path(folder).expanduser()
    candidates = [path] if path.is_absolute() else [
        *([Path(data_dir).expanduser() / path] if data_dir else []),
        *([config.get_data_root() / path] if config.get_data_root() is not None else []),
        path]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise DatasetError(f"{folder}: no such labelled folder tree (tried {', '.join(str(item) for item in candidates)});"
                       " give an absolute path, or one relative to data_dir or $DIGITREC_DATA.")


def check_field_folders(folders, *, data_dir: str | None = None) -> list[str]:
    """Check every labelled folder tree before a run starts (layout, at least one image); return their roots."""
    return [str(find_labelled_files(resolve_field_folder(folder, data_dir=data_dir)).root) for folder in folders]


@dataclass
class LabelledDigits:
    """Every digit of a labelled source, prepared and held in memory (for fine-tuning on them).

    Attributes
    ----------
    images : ndarray of shape (n, 28, 28), float32 in [0, 1]
        Zeros where the image could not be used.
    labels : ndarray of shape (n,)
    usable : ndarray of shape (n,), bool
    names : list of str
    errors : list of str
        One message per image that could not be used.
    source : LabelledSource
    """

    images: np.ndarray
    labels: np.ndarray
    usable: np.ndarray
    names: list[str]
    errors: list[str]
    source: LabelledSource


def read_labelled_digits(source: LabelledSource, *, progress: bool | None = None) -> LabelledDigits:
    """Read and prepare every digit of ``source`` as ``predict`` prepares images, keeping their order."""
    images, labels, usable, names, errors = [], [], [], [], []
    for batch in source.iterate_batches(progress=progress):
        block = np.zeros((len(batch.names), 28, 28), dtype=np.float32)
        fits = np.zeros(len(batch.names), dtype=bool)
        if len(batch.positions):
            block[batch.positions] = batch.images
            fits[batch.positions] = True
        images.append(block)
        usable.append(fits)
        labels.append(np.asarray(batch.labels, dtype=np.int64))
        names += batch.names
        errors += list(batch.errors.values())
    return LabelledDigits(np.concatenate(images), np.concatenate(labels), np.concatenate(usable), names, errors,
                          source)
