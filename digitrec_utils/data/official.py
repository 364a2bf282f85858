"""The official MNIST and Fashion-MNIST files: where they are, their checksums, a cache of arrays, a download."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from digitrec_utils import config
from digitrec_utils.data.readers import (
    compute_content_sha256,
    compute_sha256,
    read_idx_images,
    read_idx_labels,
    read_mnist_npz,
    validate_pair,
)
from digitrec_utils.exceptions import DatasetError
from digitrec_utils.utils.files import open_atomic

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
IDX_PARTS = {
    "train_images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train_labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test_images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test_labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


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
    expected = OFFICIAL_IDX_SHA256[name]
    return [Path(path).name for path, part in zip(files, IDX_PARTS, strict=True)
            if compute_content_sha256(Path(path)) != expected[part]]


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
    for part, stems in IDX_PARTS.items():
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
        return "idx", [found[part] for part in IDX_PARTS]
    if found:
        return f"incomplete: missing {', '.join(missing)}"
    return "no dataset files"


def read_official_files(kind: str, files: list[Path]) -> dict[str, np.ndarray]:
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


def read_with_cache(name: str, files: list[Path], parse, use_cache: bool):
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


def find_official_files(name: str, *, data_dir, download: bool) -> tuple[str, list[Path], str]:
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
