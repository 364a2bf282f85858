"""Shared fixtures: an isolated environment and writers of small synthetic dataset files."""

from __future__ import annotations

import gzip
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from synthetic import encode_idx, make_images

matplotlib.use("Agg")


def pytest_configure(config):
    """Give the whole session a reports folder of its own and no network, nbval's kernels included.

    The kernels inherit this process's environment, so a notebook that looks for ``reports/latest``
    (06_model_comparison opened with no run) finds this empty folder, never what the machine ran before.
    """
    import os
    import tempfile

    config.digitrec_reports = tempfile.mkdtemp(prefix="digitrec-test-reports-")
    os.environ["DIGITREC_REPORTS"] = config.digitrec_reports
    os.environ["DIGITREC_OFFLINE"] = "1"
    # pytest-xdist's workers run side by side, as `digitrec run --jobs N` runs notebooks: each gets its share
    # of the cores for OpenMP and BLAS (where not set already), or their spinning threads slow each other
    # several times over (02's nbval run took 92 s beside another notebook against 47 s alone).
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        from digitrec_utils.running.execution import OPENMP_THREAD_VARIABLES, share_cores

        for name in OPENMP_THREAD_VARIABLES:
            os.environ.setdefault(name, str(share_cores(workers)))


def pytest_unconfigure(config):
    import shutil

    shutil.rmtree(getattr(config, "digitrec_reports", ""), ignore_errors=True)


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path_factory, monkeypatch):
    """Point every digitrec and Keras location at fresh temporary folders, and forbid real downloads."""
    root = tmp_path_factory.mktemp("environment")
    monkeypatch.setenv("DIGITREC_CACHE", str(root / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(root / "keras"))
    monkeypatch.delenv("DIGITREC_DATA", raising=False)
    monkeypatch.delenv("DIGITREC_DOWNLOAD_URL", raising=False)
    monkeypatch.setenv("DIGITREC_OFFLINE", "1")
    return root


@pytest.fixture
def write_idx():
    """Return a function that writes an array as an IDX file, gzipped when the name ends in .gz."""

    def _write(path: Path, array: np.ndarray) -> Path:
        payload = encode_idx(array)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)
        return path

    return _write


@pytest.fixture
def write_idx_dataset(write_idx):
    """Return a function that writes a full set of four IDX files into a folder."""

    def _write(folder: Path, n_train: int = 60, n_test: int = 20, gz: bool = True, dot: bool = False, seed=0):
        x_train, y_train = make_images(n_train, seed)
        x_test, y_test = make_images(n_test, seed + 1)
        suffix = ".gz" if gz else ""
        separator = "." if dot else "-"
        parts = {
            f"train-images{separator}idx3-ubyte": x_train,
            f"train-labels{separator}idx1-ubyte": y_train,
            f"t10k-images{separator}idx3-ubyte": x_test,
            f"t10k-labels{separator}idx1-ubyte": y_test,
        }
        for stem, array in parts.items():
            write_idx(folder / f"{stem}{suffix}", array)
        return x_train, y_train, x_test, y_test

    return _write


@pytest.fixture
def write_npz():
    """Return a function that writes a Keras-style mnist.npz."""

    def _write(path: Path, n_train: int = 60, n_test: int = 20, seed: int = 0) -> tuple[np.ndarray, ...]:
        x_train, y_train = make_images(n_train, seed)
        x_test, y_test = make_images(n_test, seed + 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
        return x_train, y_train, x_test, y_test

    return _write


@pytest.fixture
def write_csv_pair(tmp_path):
    """Return a function that writes the first report's images and labels CSV files."""

    def _write(n_samples: int = 100, seed: int = 0) -> tuple[Path, Path, np.ndarray, np.ndarray]:
        images, labels = make_images(n_samples, seed)
        images_csv, labels_csv = tmp_path / "images.csv", tmp_path / "labels.csv"
        np.savetxt(images_csv, images.reshape(n_samples, -1), fmt="%d", delimiter=",")
        np.savetxt(labels_csv, labels, fmt="%d")
        return images_csv, labels_csv, images, labels

    return _write


QUICK_PROFILE = Path(__file__).parent / "fixtures" / "quick-profile.yaml"


@pytest.fixture(scope="session")
def rendered_run(tmp_path_factory) -> Path:
    """The folder of one whole run of the suite, rendered once per test session with the quick profile.

    The run gets environment variables of its own (a fresh cache, offline), like every test. Under
    pytest-xdist (make test runs two workers) the first worker to ask renders it into the folder the
    workers share, holding a lock, and the others wait for it and read the same run.
    """
    import os

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return _render_quick_run(tmp_path_factory.mktemp("rendered"))
    import fcntl

    root = tmp_path_factory.getbasetemp().parent / "rendered"
    with open(root.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # Released when the file closes.
        outcome = root / "outcome.txt"
        if not outcome.exists():
            try:
                _render_quick_run(root)
                outcome.write_text("ok")
            except BaseException:
                outcome.write_text("failed")
                raise
    assert outcome.read_text() == "ok", "the quick run of the whole suite failed in another worker; see its index.html"
    return root / "reports" / "quick"


def _render_quick_run(root: Path) -> Path:
    """Run the whole suite with the quick profile into ``root``/reports/quick, as a user types the command, and
    return that folder: through the ``digitrec`` console script installed beside this Python."""
    import os
    import subprocess
    import sys

    environment = {**os.environ, "DIGITREC_CACHE": str(root / "cache"), "KERAS_HOME": str(root / "keras"),
                   "DIGITREC_OFFLINE": "1"}
    environment.pop("DIGITREC_DATA", None)
    command = [str(Path(sys.executable).with_name("digitrec")), "run", str(QUICK_PROFILE), "--out",
               str(root / "reports"), "--name", "quick", "--jobs", "2", "--quiet"]
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"the quick run of the whole suite failed; see its index.html\n{result.stderr}"
    return root / "reports" / "quick"


@pytest.fixture(scope="session")
def splits():
    """mnist-sample's split with seed 42, as the sample profile makes it."""
    from digitrec_utils.data.loading import load_dataset
    from digitrec_utils.data.splits import make_splits

    return make_splits(load_dataset("mnist-sample", seed=42), val_fraction=0.1, seed=42)


@pytest.fixture(scope="session")
def saved_model(splits, tmp_path_factory):
    """A cnn_small trained here for two epochs, saved with its JSON like the notebook saves the selected model."""
    from digitrec_utils.engines import cnn
    from digitrec_utils.models.model_files import save_model_bundle

    settings = cnn.CnnSettings(networks=["cnn_small"], epochs=2, early_stopping=False)
    results = cnn.train_cnn_zoo(splits, settings, log=False)
    folder = tmp_path_factory.mktemp("models")
    return save_model_bundle(results["cnn_small"].model, folder, name="cnn_small", class_names=splits.class_names,
                             dataset={"name": "mnist-sample"})


@pytest.fixture(scope="session")
def test_images(splits) -> tuple[np.ndarray, np.ndarray]:
    """1,000 of mnist-sample's test digits as model inputs (n, 28, 28, 1) in [0, 1], and their labels."""
    return (splits.x_test[:1000, ..., None] / 255.0).astype(np.float32), splits.y_test[:1000]


def _build_mirrored_ensemble(splits, *, legacy: bool):
    """Two small cnn_modern members with every augmentation (fashion's flips, pen, noise, occlusion), trained one
    epoch on 600 digits, averaged and mirror-averaged as 04_cnn does for Fashion-MNIST.

    With ``legacy``, as in files an older digitrec saved: the members are trained under ``mixed_bfloat16``, the
    ensemble is built under it too (so each member's wrapper takes its inputs in bfloat16), and the mirror is
    the custom ``MirrorImages`` layer used before the mirror was built from Keras's own layers.
    """
    import keras

    from digitrec_utils.engines.cnn import build_average_model
    from digitrec_utils.models import convnets
    from digitrec_utils.models.layers import MirrorImages
    from digitrec_utils.models.precision import policy_scope

    keras.utils.set_random_seed(3)
    images, labels = splits.x_train[:600, ..., None] / 255.0, keras.utils.to_categorical(splits.y_train[:600], 10)
    members = []
    for seed in (1, 2):
        with policy_scope("mixed_bfloat16" if legacy else "float32"):
            member = convnets.build_modern_cnn(filters=(8, 16), convs_per_block=1, dense_units=32, total_steps=10,
                                               augmentation="fashion", robustness=("pen", "noise", "occlusion"),
                                               seed=seed)
            member.fit(images, labels, epochs=1, batch_size=64, verbose=0)
        members.append(member)
    if not legacy:
        return convnets.build_mirror_average(build_average_model(members, "cnn_modern", member_name="member"))
    with policy_scope("mixed_bfloat16"):  # As an older 04 built its ensembles: each wrapper takes bfloat16.
        inputs = keras.Input(shape=(28, 28, 1))
        wrapped = [keras.Sequential([member], name=f"member_{number}") for number, member in enumerate(members, 1)]
        outputs = keras.layers.Average(name="mean_probability", dtype="float32")([member(inputs) for member in wrapped])
        ensemble = keras.Model(inputs, outputs, name="cnn_modern")
    inputs = keras.Input(shape=(28, 28, 1))
    mirrored = MirrorImages(name="mirror")(inputs)
    outputs = keras.layers.Average(name="mean_of_mirrors")([ensemble(inputs), ensemble(mirrored)])
    return keras.Model(inputs, outputs, name="cnn_modern_mirror_average")


@pytest.fixture(scope="session")
def mirrored_model(splits, tmp_path_factory):
    """A trained mirror-averaged ensemble with every training-only layer inside, and its saved ``.keras`` file."""
    from digitrec_utils.models.model_files import save_model_bundle

    model = _build_mirrored_ensemble(splits, legacy=False)
    path = save_model_bundle(model, tmp_path_factory.mktemp("mirrored"), name="cnn_modern",
                             class_names=splits.class_names, dataset={"name": "mnist-sample"})
    return model, path


@pytest.fixture(scope="session")
def legacy_model_file(splits, tmp_path_factory):
    """A model file as digitrec saved it before format_version 3: the trained model itself, with
    ``RandomMailChanges`` and ``MirrorImages`` inside, and a version-2 JSON. Returns the model and the path."""
    import json

    model = _build_mirrored_ensemble(splits, legacy=True)
    path = tmp_path_factory.mktemp("legacy") / "cnn_selected.keras"
    model.save(path)
    description = {"format_version": 2, "model": "cnn_modern", "file": path.name, "class_names": splits.class_names,
                   "preprocessing": "28x28", "input_shape": [28, 28, 1], "dataset": {"name": "mnist-sample"},
                   "split": {}, "computes_in": "float32"}
    path.with_suffix(".json").write_text(json.dumps(description))
    return model, path
