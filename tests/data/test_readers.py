"""File readers: round trips through synthetic files and every corruption case."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from synthetic import make_images

from digitrec_utils.data.readers import (
    read_csv_images,
    read_csv_labels,
    read_idx_images,
    read_idx_labels,
    read_mnist_npz,
)
from digitrec_utils.exceptions import DatasetError


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_idx_images_round_trip(tmp_path, write_idx, name):
    images, _ = make_images(7)
    path = write_idx(tmp_path / name, images)
    loaded = read_idx_images(path)
    assert loaded.dtype == np.uint8
    np.testing.assert_array_equal(loaded, images)


def test_idx_labels_round_trip(tmp_path, write_idx):
    labels = np.array([0, 9, 3, 3, 1], dtype=np.uint8)
    np.testing.assert_array_equal(read_idx_labels(write_idx(tmp_path / "labels.gz", labels)), labels)


def test_wrong_magic_number_names_the_file(tmp_path, write_idx):
    labels_path = write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(5, dtype=np.uint8))
    with pytest.raises(DatasetError, match=r"train-labels-idx1-ubyte.*magic number 0x00000801"):
        read_idx_images(labels_path)


def test_images_that_are_not_28x28_are_rejected(tmp_path, write_idx):
    path = write_idx(tmp_path / "small.gz", np.zeros((3, 8, 8), dtype=np.uint8))
    with pytest.raises(DatasetError, match=r"small.gz: images are 8x8.*28x28"):
        read_idx_images(path)


def test_truncated_raw_idx_is_rejected(tmp_path, write_idx):
    path = write_idx(tmp_path / "images", make_images(4)[0])
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DatasetError, match=r"images: the header promises 3,136 bytes.*truncated"):
        read_idx_images(path)


def test_truncated_gzip_is_rejected(tmp_path, write_idx):
    path = write_idx(tmp_path / "images.gz", make_images(40)[0])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"images.gz: the gzip data is truncated or corrupt"):
        read_idx_images(path)


def test_corrupt_gzip_body_is_rejected(tmp_path, write_idx):
    path = write_idx(tmp_path / "images.gz", make_images(40)[0])
    data = bytearray(path.read_bytes())
    data[20:60] = b"\xff" * 40
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=r"images.gz: the gzip data is truncated or corrupt"):
        read_idx_images(path)


def test_gz_name_without_gzip_data_is_rejected(tmp_path):
    path = tmp_path / "images.gz"
    path.write_bytes(b"plain text, not gzip")
    with pytest.raises(DatasetError, match=r"named .gz but is not gzip data"):
        read_idx_images(path)


def test_labels_outside_0_to_9_are_rejected(tmp_path, write_idx):
    path = write_idx(tmp_path / "labels", np.array([1, 2, 12], dtype=np.uint8))
    with pytest.raises(DatasetError, match=r"labels: 1 labels lie outside 0-9 \(e.g. 12\)"):
        read_idx_labels(path)


def test_missing_file_says_so(tmp_path):
    with pytest.raises(DatasetError, match=r"absent.gz: file not found"):
        read_idx_images(tmp_path / "absent.gz")


def test_npz_round_trip(tmp_path, write_npz):
    expected = write_npz(tmp_path / "mnist.npz")
    for loaded, original in zip(read_mnist_npz(tmp_path / "mnist.npz"), expected, strict=True):
        np.testing.assert_array_equal(loaded, original)


def test_npz_missing_arrays_is_rejected(tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((2, 28, 28), dtype=np.uint8))
    with pytest.raises(DatasetError, match=r"mnist.npz: the npz lacks the arrays \['y_train', 'x_test', 'y_test'\]"):
        read_mnist_npz(tmp_path / "mnist.npz")


def test_npz_with_pickled_objects_is_refused(tmp_path):
    objects = np.array([{"a": 1}], dtype=object)
    np.savez(tmp_path / "mnist.npz", x_train=objects, y_train=objects, x_test=objects, y_test=objects)
    with pytest.raises(DatasetError, match=r"mnist.npz: not a readable npz archive"):
        read_mnist_npz(tmp_path / "mnist.npz")


def test_npz_image_label_count_mismatch_is_rejected(tmp_path):
    images, labels = make_images(10)
    np.savez(tmp_path / "mnist.npz", x_train=images, y_train=labels[:9], x_test=images, y_test=labels)
    with pytest.raises(DatasetError, match=r"holds 10 images but .* holds 9 labels"):
        read_mnist_npz(tmp_path / "mnist.npz")


def test_not_an_npz_is_rejected(tmp_path):
    path = tmp_path / "mnist.npz"
    path.write_bytes(gzip.compress(b"nonsense"))
    with pytest.raises(DatasetError, match=r"mnist.npz: not a readable npz archive"):
        read_mnist_npz(path)


def test_csv_round_trip(write_csv_pair):
    images_csv, labels_csv, images, labels = write_csv_pair(12)
    np.testing.assert_array_equal(read_csv_images(images_csv), images)
    np.testing.assert_array_equal(read_csv_labels(labels_csv), labels)


def test_csv_with_non_numeric_cell_names_row_and_column(tmp_path):
    path = tmp_path / "images.csv"
    rows = [",".join(["0"] * 784)] * 3
    rows[1] = ",".join(["0"] * 5 + ["abc"] + ["0"] * 778)
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DatasetError, match=r"images.csv: non-numeric value 'abc' at row 2, column 6"):
        read_csv_images(path)


def test_csv_with_header_row_is_rejected(tmp_path):
    path = tmp_path / "images.csv"
    header = ",".join(f"pixel{index}" for index in range(784))
    path.write_text(header + "\n" + ",".join(["0"] * 784) + "\n")
    with pytest.raises(DatasetError, match=r"non-numeric value 'pixel0' at row 1.*no header"):
        read_csv_images(path)


def test_csv_with_wrong_column_count_is_rejected(tmp_path):
    path = tmp_path / "images.csv"
    path.write_text("\n".join([",".join(["1"] * 783)] * 2) + "\n")
    with pytest.raises(DatasetError, match=r"images.csv: rows have 783 columns.*needs 784"):
        read_csv_images(path)


def test_csv_with_ragged_rows_is_rejected(tmp_path):
    path = tmp_path / "images.csv"
    path.write_text(",".join(["1"] * 784) + "\n" + ",".join(["1"] * 790) + "\n")
    with pytest.raises(DatasetError, match=r"images.csv: not a well-formed CSV"):
        read_csv_images(path)


def test_csv_pixels_out_of_range_are_rejected(tmp_path):
    path = tmp_path / "images.csv"
    path.write_text(",".join(["300"] + ["0"] * 783) + "\n")
    with pytest.raises(DatasetError, match=r"pixel values range from 0 to 300, outside 0-255"):
        read_csv_images(path)


def test_csv_labels_out_of_range_are_rejected(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("1\n10\n")
    with pytest.raises(DatasetError, match=r"labels.csv: 1 labels lie outside 0-9"):
        read_csv_labels(path)


def test_empty_csv_is_rejected(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("")
    with pytest.raises(DatasetError, match=r"labels.csv: the labels file is empty"):
        read_csv_labels(path)


@pytest.mark.parametrize("kind", ["IDX", "gzipped IDX", "NPZ", "CSV"])
def test_an_empty_file_of_each_kind_is_named_with_exit_2_and_no_traceback(tmp_path, capsys, kind):
    from digitrec_utils.cli import EXIT_REJECTED, main

    names = {"IDX": ("images-idx3-ubyte", "labels-idx1-ubyte"), "gzipped IDX": ("images.gz", "labels.gz"),
             "CSV": ("images.csv", "labels.csv")}
    if kind == "NPZ":
        (tmp_path / "mnist.npz").write_bytes(b"")
        status = main(["data", "mnist", "--data-dir", str(tmp_path)])
        expected = "mnist.npz: not a readable npz archive"
    else:
        images, labels = (tmp_path / name for name in names[kind])
        images.write_bytes(b"")
        labels.write_text("1\n")
        status = main(["evaluate", str(images), str(labels), "--model", str(tmp_path / "unused.keras")])
        expected = {"IDX": "images-idx3-ubyte: too short to be an IDX file (0 bytes)",
                    "gzipped IDX": "images.gz: named .gz but is not gzip data",
                    "CSV": "images.csv: the images file is empty"}[kind]
    error = capsys.readouterr().err
    assert status == EXIT_REJECTED and expected in error and "Traceback" not in error
    assert error.startswith("digitrec: error:") and error.count("\n") <= 2
