"""Paths used by digitrec, all derived from this file's location or from environment variables.

Environment variables
---------------------
DIGITREC_DATA
    A folder holding one sub-folder per dataset, e.g. ``$DIGITREC_DATA/mnist/mnist.npz``.
DIGITREC_CACHE
    Where parsed arrays are cached (default ``~/.cache/digitrec``).
DIGITREC_OFFLINE
    When set to ``1``, datasets are never downloaded.
DIGITREC_NOTEBOOKS
    A folder of the suite's notebooks to run instead of the project's ``notebooks/`` (a copy with
    changes of your own; the tests use it for notebooks that fail or sleep on purpose).

Run from a checkout, digitrec uses the checkout's ``notebooks/``, ``params/`` and ``reports/``. Installed
from a wheel, it uses the notebooks and profiles installed with the package (``suite/`` in the package,
links to the checkout's folders when the wheel was built) and writes ``reports/`` in the current folder.
KERAS_HOME
    Keras's own home (default ``~/.keras``); its ``datasets/`` folder is searched for downloads.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
# The notebooks and profiles shipped inside the package, for an installed wheel.
BUNDLED_DIR = PACKAGE_DIR / "suite"
# A checkout has its own notebooks and profiles beside the package; they win over the bundled copies.
IN_CHECKOUT = (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "notebooks").is_dir()
_SUITE_ROOT = PROJECT_ROOT if IN_CHECKOUT else BUNDLED_DIR
NOTEBOOKS_DIR = Path(os.environ.get("DIGITREC_NOTEBOOKS") or _SUITE_ROOT / "notebooks").expanduser()
PARAMS_DIR = _SUITE_ROOT / "params"
# The reports folder that `digitrec run` writes to and the model commands look in when --out and --model are
# not given: $DIGITREC_REPORTS where it is set, else the checkout's reports/, else reports/ in the working folder.
REPORTS_DIR = Path(os.environ.get("DIGITREC_REPORTS")
                   or (PROJECT_ROOT / "reports" if IN_CHECKOUT else Path.cwd() / "reports")).expanduser()
TEMPLATES_DIR = PACKAGE_DIR / "reporting" / "templates"

# Debian's `dataset-fashion-mnist` package installs the real files here.
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


# Where the CNN notebook saves its chosen model inside a run folder.
SAVED_MODEL_NAME = Path("models") / "cnn_selected.keras"
# The notebook that compares the seeds of a sweep (digitrec run --seeds). It runs only in a sweep, at the top
# of the sweep folder, where its page and record are stability.html and stability.json.
STABILITY_NOTEBOOK = "07_stability"
STABILITY_NAME = "stability"


def describe_suite_source() -> str:
    """Say whose notebooks and profiles a run uses: the checkout's, or those installed with the package."""
    if os.environ.get("DIGITREC_NOTEBOOKS"):
        return f"Notebooks from $DIGITREC_NOTEBOOKS ({NOTEBOOKS_DIR}), profiles from {PARAMS_DIR}."
    if IN_CHECKOUT:
        return f"Notebooks and profiles from the checkout at {PROJECT_ROOT}."
    return f"Notebooks and profiles installed with the package ({BUNDLED_DIR}); reports go to {REPORTS_DIR}."


def name_page(notebook: str) -> str:
    """Return the file stem of a notebook's executed copy and page in its run folder (``stability`` for 07)."""
    return STABILITY_NAME if notebook == STABILITY_NOTEBOOK else notebook


def locate_record(output_dir: str | os.PathLike, notebook: str) -> Path:
    """Return where a notebook's results record lies in its run folder.

    ``results/<notebook>.json``, except the stability report's, which is ``stability.json`` at the top of
    the sweep folder.
    """
    if notebook == STABILITY_NOTEBOOK:
        return Path(output_dir) / f"{STABILITY_NAME}.json"
    return Path(output_dir) / "results" / f"{notebook}.json"


def get_data_root() -> Path | None:
    """Return ``$DIGITREC_DATA`` as a path, or None when it is not set."""
    value = os.environ.get("DIGITREC_DATA")
    return Path(value).expanduser() if value else None


def resolve_data_root() -> Path | None:
    """Make a relative ``$DIGITREC_DATA`` absolute, in this process's environment too, and return it.

    ``digitrec`` calls it once where it starts: its notebooks' kernels run in ``notebooks/`` and Dask
    workers wherever they were started, so a relative folder would name one place in the run's checks and
    another in the kernels. Everything started afterwards inherits the absolute path.
    """
    root = get_data_root()
    if root is None:
        return None
    root = root.resolve()
    os.environ["DIGITREC_DATA"] = str(root)
    return root


def get_cache_dir() -> Path:
    """Return the folder for cached parsed arrays (``$DIGITREC_CACHE`` or ``~/.cache/digitrec``)."""
    value = os.environ.get("DIGITREC_CACHE")
    if value:
        return Path(value).expanduser()
    xdg_cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg_cache).expanduser() if xdg_cache else Path.home() / ".cache"
    return base / "digitrec"


def get_keras_datasets_dir() -> Path:
    """Return Keras's download cache for datasets (``$KERAS_HOME/datasets`` or ``~/.keras/datasets``)."""
    keras_home = os.environ.get("KERAS_HOME")
    base = Path(keras_home).expanduser() if keras_home else Path.home() / ".keras"
    return base / "datasets"


def is_offline() -> bool:
    """Return True when ``$DIGITREC_OFFLINE`` asks digitrec never to download."""
    return os.environ.get("DIGITREC_OFFLINE", "").strip().lower() in {"1", "true", "yes"}
