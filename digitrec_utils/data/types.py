"""What every dataset source gives: a Dataset (train and test parts, class names, its files), and Splits."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from digitrec_utils.data.readers import (
    N_CLASSES,
)

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


# Images in each source's training part when it has an official split, else in the whole source.
OFFICIAL_TRAIN_SIZES = {"mnist": 60_000, "fashion-mnist": 60_000}


SOURCE_SIZES = {"mnist-sample": 5_000, "digits": 1_797}


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
