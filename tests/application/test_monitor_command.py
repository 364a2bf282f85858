"""digitrec monitor: a real small model and its reference, a stream of its own kind of digits and one turned a
quarter, the page, and each bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from digitrec_utils import cli
from digitrec_utils.models.model_files import attach_reference, load_model_bundle
from digitrec_utils.models.reference import (
    build_embedding_model,
    build_reference_from_arrays,
    find_reference_path,
    load_reference,
)

N_DIGITS = 300


def _write_digits(folder, images, labels):
    folder.mkdir(parents=True)
    for number, (image, label) in enumerate(zip(images, labels, strict=True)):
        Image.fromarray(image).save(folder / f"{number:04d}_{label}.png")
    return folder


@pytest.fixture(scope="module")
def watched(saved_model, splits, tmp_path_factory):
    """The session's small model with a reference of its validation digits, and two streams of 300 test digits:
    as they are, and turned a quarter (which the model reads badly)."""
    root = tmp_path_factory.mktemp("monitor")
    model_path = root / "model" / "cnn_selected.keras"
    model_path.parent.mkdir()
    for suffix in (".keras", ".json"):
        shutil.copy(saved_model.with_suffix(suffix), model_path.with_suffix(suffix))
    model, _ = load_model_bundle(model_path)
    attach_reference(build_reference_from_arrays(model, model_path, splits.x_val, splits.y_val,
                                                 source="the validation digits of mnist-sample"), model_path)
    images, labels = splits.x_test[:N_DIGITS], splits.y_test[:N_DIGITS]
    return {"model": model_path, "labels": labels, "same": _write_digits(root / "same", images, labels),
            "turned": _write_digits(root / "turned", np.rot90(images, axes=(1, 2)), labels), "root": root}


def _monitor(capsys, *arguments):
    status = cli.main(["monitor", *map(str, arguments)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_its_own_kind_of_digits_raise_nothing_and_the_estimate_is_near_the_truth(watched, capsys):
    status, out, _ = _monitor(capsys, watched["same"], "--model", watched["model"], "--window", "100", "--json",
                              "--fail-on-drift")
    findings = json.loads(out)
    assert status == cli.EXIT_OK and findings["verdict"] == "no change", findings["summary"]
    assert [window["images"] for window in findings["windows"]] == [100, 100, 100]
    labels = watched["labels"]
    assert findings["windows"][0]["first"] == f"0000_{labels[0]}.png"
    assert findings["windows"][-1]["last"] == f"0299_{labels[-1]}.png"
    model, _ = load_model_bundle(watched["model"])
    probabilities = model.predict(np.stack([np.asarray(Image.open(path)) for path in
                                            sorted(watched["same"].iterdir())])[..., None] / 255.0, verbose=0)
    truth = float(np.mean(probabilities.argmax(1) == watched["labels"]))
    estimate = findings["stream"]["estimated_accuracy"]
    assert abs(estimate["accuracy"] - truth) < 0.05 and estimate["ci95"][0] < estimate["accuracy"]


def test_turned_digits_are_judged_worse_named_and_fail_a_scheduled_job(watched, capsys, tmp_path):
    page = tmp_path / "monitor.html"
    status, out, err = _monitor(capsys, watched["turned"], "--model", watched["model"], "--window", "100",
                                "--html", page, "--fail-on-drift")
    assert status == cli.EXIT_FAILED
    assert out.startswith("Worse: the estimated accuracy") and "digitrec evaluate" in out.splitlines()[0]
    labels = watched["labels"]
    assert f"window 3 (100 digits, 0200_{labels[200]}.png to 0299_{labels[299]}.png): worse" in out
    html = page.read_text()
    order = [html.index(text) for text in ('id="Summary"', "Worse: the estimated accuracy", 'id="Window-by-window"',
                                           'id="What-moved"')]
    assert order == sorted(order)
    assert str(tmp_path) not in html and str(watched["root"]) not in html  # No machine paths.
    assert "window 1: worse" in err
    status, _, _ = _monitor(capsys, watched["turned"], "--model", watched["model"], "--window", "100")
    assert status == cli.EXIT_OK  # Without --fail-on-drift the finding is the output, not a failure.


def test_a_bad_image_is_named_and_the_others_are_still_checked(watched, capsys, tmp_path):
    stream = tmp_path / "stream"
    shutil.copytree(watched["same"], stream)
    (stream / "0100_broken.png").write_bytes(b"not a png")
    status, out, err = _monitor(capsys, stream, "--model", watched["model"], "--window", "100", "--json")
    findings = json.loads(out)
    assert status == cli.EXIT_FAILED and findings["stream"]["images"] == N_DIGITS
    assert "0100_broken.png" in err and len(findings["errors"]) == 1


def test_a_stream_shorter_than_a_window_is_one_window_with_a_note(watched, capsys, tmp_path):
    short = tmp_path / "short"
    short.mkdir()
    for path in sorted(watched["same"].iterdir())[:60]:
        shutil.copy(path, short / path.name)
    status, out, _ = _monitor(capsys, short, "--model", watched["model"], "--json")
    findings = json.loads(out)
    assert status == cli.EXIT_OK and len(findings["windows"]) == 1
    assert findings["notes"][-1].startswith("Only 60 digits, fewer than a window of 500")


def test_a_model_without_a_reference_or_with_another_models_is_refused(watched, saved_model, capsys, tmp_path):
    bare = tmp_path / "bare.keras"
    for suffix in (".keras", ".json"):
        shutil.copy(saved_model.with_suffix(suffix), bare.with_suffix(suffix))
    status, _, err = _monitor(capsys, watched["same"], "--model", bare)
    assert status == cli.EXIT_REJECTED and "has no monitoring reference" in err and "calibrate" in err
    # Another model's reference beside it: the checksum tells.
    shutil.copy(find_reference_path(watched["model"]), find_reference_path(bare))
    bare.write_bytes(bare.read_bytes() + b"\0")  # Another file than the reference was made for.
    status, _, err = _monitor(capsys, watched["same"], "--model", bare)
    assert status == cli.EXIT_REJECTED and "checksums differ" in err


@pytest.mark.parametrize(("arguments", "message"), [
    (["--window", "10"], "--window 10: give at least 50"),
    (["--order", "size"], "--order 'size': give one of name, time"),
])
def test_bad_options_and_empty_folders_are_refused_before_any_image_is_read(watched, capsys, tmp_path, arguments,
                                                                            message):
    status, _, err = _monitor(capsys, watched["same"], "--model", watched["model"], *arguments)
    assert status == cli.EXIT_REJECTED and message in err
    empty = tmp_path / "empty"
    empty.mkdir()
    status, _, err = _monitor(capsys, empty, "--model", watched["model"])
    assert status == cli.EXIT_REJECTED and "no image files to monitor" in err


def test_the_reference_round_trips_and_the_embedding_is_the_layer_before_the_output(watched):
    model, _ = load_model_bundle(watched["model"])
    reference = load_reference(watched["model"])
    assert reference.probabilities.shape[1] == 10 and len(reference.correct) == len(reference.embeddings)
    assert set(reference.properties) >= {"slant", "file width", "dark ink"}
    # The embedding is what the output layer takes: applying that layer to it gives the model's probabilities.
    images = np.random.default_rng(0).uniform(size=(5, 28, 28, 1)).astype(np.float32)
    embedding = build_embedding_model(model).predict(images, verbose=0)
    output_layer = model.layers[-1]
    assert np.allclose(output_layer(embedding).numpy(), model.predict(images, verbose=0), atol=1e-5)
