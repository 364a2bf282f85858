"""Readers for the raw file formats of digit datasets: IDX (raw or gzipped), Keras's npz, and CSV.

Each reader validates what it reads and raises :class:`~digitrec_utils.exceptions.DatasetError`
naming the file, what is wrong with it, and how to fix it.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from digitrec_utils.exceptions import DatasetError

IMAGE_SIDE = 28
N_CLASSES = 10

# IDX magic numbers: two zero bytes, the element type (0x08 = unsigned byte), and the number of dims.
_IDX_UBYTE = 0x08
_IDX_IMAGES_MAGIC = 0x00000803
_IDX_LABELS_MAGIC = 0x00000801

_REDOWNLOAD_HINT = "Delete the file and copy or download a fresh one."


def compute_sha256(path: Path, chunk_size: int = 1 << 20) -> str:
    """Return the hex SHA-256 digest of a file.

    Parameters
    ----------
    path : Path
        The file to hash.
    chunk_size : int, default=1 MiB
        How many bytes to read at a time.

    Returns
    -------
    digest : str
        64 lowercase hex characters.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def compute_content_sha256(path: Path) -> str:
    """Return the hex SHA-256 digest of a file's content, decompressed first when it is gzipped.

    Two gzip files of the same bytes differ with the compressor and its settings; their content does not,
    so the official IDX files are recognised by this digest whatever compressed them.
    """
    return hashlib.sha256(_read_bytes(path)).hexdigest()


def _read_bytes(path: Path) -> bytes:
    """Read a file, transparently decompressing it when it is gzipped."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found. Check the path, or copy the file there.") from None
    except OSError as error:
        raise DatasetError(f"{path}: cannot be read ({error}). Check its permissions.") from None
    if raw[:2] != b"\x1f\x8b":
        if path.suffix == ".gz":
            raise DatasetError(f"{path}: named .gz but is not gzip data. {_REDOWNLOAD_HINT}")
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise DatasetError(
            f"{path}: the gzip data is truncated or corrupt ({error}). {_REDOWNLOAD_HINT}"
        ) from None


def _parse_idx(path: Path, expected_magic: int, kind: str) -> np.ndarray:
    """Parse an IDX file of unsigned bytes and check its magic number and its length."""
    data = _read_bytes(path)
    if len(data) < 4:
        raise DatasetError(f"{path}: too short to be an IDX file ({len(data)} bytes). {_REDOWNLOAD_HINT}")
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        raise DatasetError(
            f"{path}: wrong IDX magic number 0x{magic:08x}; IDX {kind} files start with "
            f"0x{expected_magic:08x}. Is this the right file (images vs labels)? {_REDOWNLOAD_HINT}"
        )
    n_dims = data[3]
    header_size = 4 + 4 * n_dims
    if len(data) < header_size:
        raise DatasetError(f"{path}: the IDX header is truncated. {_REDOWNLOAD_HINT}")
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dims)]
    expected_size = int(np.prod(dims, dtype=np.int64))
    actual_size = len(data) - header_size
    if actual_size != expected_size:
        raise DatasetError(
            f"{path}: the header promises {expected_size:,} bytes of data for shape {tuple(dims)}, "
            f"but the file holds {actual_size:,}; it is truncated or corrupt. {_REDOWNLOAD_HINT}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(dims)


def check_idx_header(path: Path, kind: str) -> tuple[int, ...]:
    """Check an IDX file's header and length without reading its data; return its shape.

    A raw file's length must match its header. A gzipped file is not decompressed: its trailer records
    the uncompressed length (modulo 2**32), which a truncated or corrupt download gets wrong.

    Parameters
    ----------
    path : Path
        An IDX file, raw or gzipped.
    kind : {"image", "label"}

    Returns
    -------
    shape : tuple of int

    Raises
    ------
    DatasetError
        Naming the file, what is wrong with it and the fix.
    """
    expected_magic = _IDX_IMAGES_MAGIC if kind == "image" else _IDX_LABELS_MAGIC
    path = Path(path)
    try:
        with path.open("rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
        opener = gzip.open if gzipped else open
        with opener(path, "rb") as stream:
            magic_bytes = stream.read(4)
            if len(magic_bytes) < 4:
                raise DatasetError(f"{path}: too short to be an IDX file. {_REDOWNLOAD_HINT}")
            magic = int.from_bytes(magic_bytes, "big")
            if magic != expected_magic:
                raise DatasetError(
                    f"{path}: wrong IDX magic number 0x{magic:08x}; IDX {kind} files start with "
                    f"0x{expected_magic:08x}. Is this the right file (images vs labels)? {_REDOWNLOAD_HINT}")
            dims_bytes = stream.read(4 * magic_bytes[3])
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found. Check the path, or copy the file there.") from None
    except (OSError, EOFError, zlib.error) as error:
        raise DatasetError(f"{path}: cannot be read ({error}). {_REDOWNLOAD_HINT}") from None
    if len(dims_bytes) < 4 * magic_bytes[3]:
        raise DatasetError(f"{path}: the IDX header is truncated. {_REDOWNLOAD_HINT}")
    shape = tuple(int.from_bytes(dims_bytes[4 * i: 4 * i + 4], "big") for i in range(magic_bytes[3]))
    if kind == "image" and shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise DatasetError(f"{path}: images are {'x'.join(map(str, shape[1:]))}, but digitrec needs 28x28. "
                           "Resize them to 28x28 first, or use a 28x28 dataset.")
    expected_size = 4 + len(dims_bytes) + int(np.prod(shape, dtype=np.int64))
    if gzipped:
        with path.open("rb") as raw:
            raw.seek(-4, 2)
            recorded = int.from_bytes(raw.read(4), "little")
        actual, wanted = recorded, expected_size % 2**32
    else:
        actual, wanted = path.stat().st_size, expected_size
    if actual != wanted:
        raise DatasetError(f"{path}: the header promises {expected_size:,} bytes for shape {shape}, but the file "
                           f"holds {actual:,}; it is truncated or corrupt. {_REDOWNLOAD_HINT}")
    return shape


def check_csv_columns(path: Path, what: str, n_columns: int) -> None:
    """Check that a header-less CSV exists and that its first row has ``n_columns`` integers.

    Parameters
    ----------
    path : Path
    what : str
        ``"images"`` or ``"labels"``, for messages.
    n_columns : int

    Raises
    ------
    DatasetError
        Naming the file and the fix; the rest of the file is checked when it is read.
    """
    path = Path(path)
    try:
        with path.open(encoding="utf-8", errors="replace") as stream:
            first = next((line for line in stream if line.strip()), "")
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found. Check the path given for the {what}.") from None
    except OSError as error:
        raise DatasetError(f"{path}: cannot be read ({error}). Check its permissions.") from None
    fields = [field.strip() for field in first.strip().split(",")] if first else []
    if not fields:
        raise DatasetError(f"{path}: the {what} file is empty.")
    if len(fields) != n_columns:
        raise DatasetError(f"{path}: the first row has {len(fields)} columns, but the {what} file needs "
                           f"{n_columns} (no header, no label column in the images).")
    if not all(field.lstrip("+-").isdigit() for field in fields):
        raise DatasetError(f"{path}: the first row is not all integers; the {what} file must have no header row.")


def read_idx_images(path: Path) -> np.ndarray:
    """Read an IDX3 image file (raw or gzipped).

    Parameters
    ----------
    path : Path
        e.g. ``train-images-idx3-ubyte.gz``.

    Returns
    -------
    images : ndarray of shape (n_samples, 28, 28), dtype uint8

    Raises
    ------
    DatasetError
        On a wrong magic number, truncated or corrupt data, or images that are not 28x28.
    """
    images = _parse_idx(path, _IDX_IMAGES_MAGIC, "image")
    if images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise DatasetError(
            f"{path}: images are {images.shape[1]}x{images.shape[2]}, but digitrec needs 28x28. "
            "Resize them to 28x28 first, or use a 28x28 dataset."
        )
    return images


def read_idx_labels(path: Path) -> np.ndarray:
    """Read an IDX1 label file (raw or gzipped).

    Parameters
    ----------
    path : Path
        e.g. ``train-labels-idx1-ubyte.gz``.

    Returns
    -------
    labels : ndarray of shape (n_samples,), dtype uint8

    Raises
    ------
    DatasetError
        On a wrong magic number, truncated or corrupt data, or labels outside 0-9.
    """
    labels = _parse_idx(path, _IDX_LABELS_MAGIC, "label")
    validate_labels(labels, path)
    return labels


def validate_labels(labels: np.ndarray, path: Path | str) -> None:
    """Raise a DatasetError naming ``path`` when any label lies outside 0-9."""
    if labels.size and (labels.min() < 0 or labels.max() >= N_CLASSES):
        bad = labels[(labels < 0) | (labels >= N_CLASSES)]
        raise DatasetError(
            f"{path}: {bad.size:,} labels lie outside 0-9 (e.g. {bad[0]}). "
            "digitrec expects ten classes labelled 0 to 9; fix or remove those rows."
        )


def validate_pair(images: np.ndarray, labels: np.ndarray, images_path: Path, labels_path: Path) -> None:
    """Raise a DatasetError when the image count differs from the label count."""
    if len(images) != len(labels):
        raise DatasetError(
            f"{images_path} holds {len(images):,} images but {labels_path} holds {len(labels):,} labels. "
            "They must come from the same release; replace the mismatched file."
        )


def read_mnist_npz(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read Keras's ``mnist.npz`` without unpickling anything.

    Parameters
    ----------
    path : Path
        A file with the arrays ``x_train``, ``y_train``, ``x_test`` and ``y_test``.

    Returns
    -------
    x_train : ndarray of shape (n_train, 28, 28), dtype uint8
    y_train : ndarray of shape (n_train,), dtype uint8
    x_test : ndarray of shape (n_test, 28, 28), dtype uint8
    y_test : ndarray of shape (n_test,), dtype uint8
    """
    keys = ("x_train", "y_train", "x_test", "y_test")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in keys if key not in archive.files]
            if missing:
                raise DatasetError(
                    f"{path}: the npz lacks the arrays {missing}; Keras's mnist.npz has {list(keys)}. "
                    f"{_REDOWNLOAD_HINT}"
                )
            arrays = [archive[key] for key in keys]
    except DatasetError:
        raise
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found. Check the path, or copy the file there.") from None
    except (OSError, ValueError, EOFError, zlib.error) as error:
        raise DatasetError(f"{path}: not a readable npz archive ({error}). {_REDOWNLOAD_HINT}") from None
    x_train, y_train, x_test, y_test = arrays
    for name, images in (("x_train", x_train), ("x_test", x_test)):
        if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
            raise DatasetError(
                f"{path}: {name} has shape {images.shape}, but digitrec needs (n, 28, 28). "
                f"{_REDOWNLOAD_HINT}"
            )
    for name, labels in (("y_train", y_train), ("y_test", y_test)):
        validate_labels(labels, f"{path} ({name})")
    validate_pair(x_train, y_train, Path(f"{path} (x_train)"), Path(f"{path} (y_train)"))
    validate_pair(x_test, y_test, Path(f"{path} (x_test)"), Path(f"{path} (y_test)"))
    return (
        x_train.astype(np.uint8, copy=False),
        y_train.astype(np.uint8, copy=False),
        x_test.astype(np.uint8, copy=False),
        y_test.astype(np.uint8, copy=False),
    )


def read_mnist_npz_keys(path: Path) -> list[str]:
    """Check that ``path`` is an npz archive with Keras's four mnist arrays, reading only its index.

    Raises
    ------
    DatasetError
        Naming the file when it is not an npz archive or lacks an array.
    """
    keys = ("x_train", "y_train", "x_test", "y_test")
    try:
        with np.load(path, allow_pickle=False) as archive:
            files = list(archive.files)
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found. Check the path, or copy the file there.") from None
    except (OSError, ValueError, EOFError, zlib.error) as error:
        raise DatasetError(f"{path}: not a readable npz archive ({error}). {_REDOWNLOAD_HINT}") from None
    missing = [key for key in keys if key not in files]
    if missing:
        raise DatasetError(f"{path}: the npz lacks the arrays {missing}; Keras's mnist.npz has {list(keys)}. "
                           f"{_REDOWNLOAD_HINT}")
    return files


def _read_numeric_csv(path: Path, what: str) -> np.ndarray:
    """Read a header-less CSV of integers into a 2-D int64 array, with clear errors."""

    try:
        frame = pd.read_csv(path, header=None, dtype=str, skip_blank_lines=True)
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found. Check the path given for the {what}.") from None
    except pd.errors.EmptyDataError:
        raise DatasetError(f"{path}: the {what} file is empty.") from None
    except pd.errors.ParserError as error:
        raise DatasetError(
            f"{path}: not a well-formed CSV ({error}). Every row must have the same number of columns."
        ) from None
    numeric = frame.apply(pd.to_numeric, errors="coerce")
    if numeric.isna().to_numpy().any():
        row, column = np.argwhere(numeric.isna().to_numpy())[0]
        raise DatasetError(
            f"{path}: non-numeric value {frame.iat[row, column]!r} at row {row + 1}, column {column + 1}. "
            f"The {what} file must hold integers only, with no header row."
        )
    values = numeric.to_numpy()
    if not np.all(values == np.round(values)):
        raise DatasetError(f"{path}: the {what} must be whole numbers; found fractional values.")
    return values.astype(np.int64)


def read_csv_images(path: Path) -> np.ndarray:
    """Read the first report's image CSV: one image per row, 784 integers from 0 to 255, no header.

    Parameters
    ----------
    path : Path
        The images CSV.

    Returns
    -------
    images : ndarray of shape (n_samples, 28, 28), dtype uint8
    """
    values = _read_numeric_csv(path, "images")
    n_pixels = IMAGE_SIDE * IMAGE_SIDE
    if values.shape[1] != n_pixels:
        raise DatasetError(
            f"{path}: rows have {values.shape[1]} columns, but a 28x28 image needs {n_pixels}. "
            "Write one flattened image per row, with no header and no label column."
        )
    if values.min() < 0 or values.max() > 255:
        raise DatasetError(
            f"{path}: pixel values range from {values.min()} to {values.max()}, outside 0-255. "
            "Rescale the images to 0-255 integers."
        )
    return values.astype(np.uint8).reshape(-1, IMAGE_SIDE, IMAGE_SIDE)


def read_csv_labels(path: Path) -> np.ndarray:
    """Read the first report's label CSV: one integer label from 0 to 9 per row, no header.

    Parameters
    ----------
    path : Path
        The labels CSV.

    Returns
    -------
    labels : ndarray of shape (n_samples,), dtype uint8
    """
    values = _read_numeric_csv(path, "labels")
    if values.shape[1] != 1:
        raise DatasetError(
            f"{path}: rows have {values.shape[1]} columns, but the labels file needs exactly one label per row."
        )
    labels = values[:, 0]
    validate_labels(labels, path)
    return labels.astype(np.uint8)
