"""05_deployment's logic: choices on validation only, the split rebuilt or refused, robustness, non-digits,
the saved threshold, and rejection of a run that would leave the notebook without a model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from reference import find_lowest_threshold
from spies import row_keys

from digitrec_utils.cli import EXIT_REJECTED, main
from digitrec_utils.data.loading import load_dataset
from digitrec_utils.data.preparation import PREPARATION_VERSION
from digitrec_utils.data.splits import make_splits
from digitrec_utils.engines import cnn, deployment
from digitrec_utils.evaluation import robustness
from digitrec_utils.exceptions import ModelFileError, ParameterError
from digitrec_utils.models import acquisition, convnets, training
from digitrec_utils.models.model_files import check_calibration
from digitrec_utils.params import resolve_parameters
from digitrec_utils.running.runner import check_deployment_model

SPLIT = {"seed": 3, "test_fraction": 0.2, "val_fraction": 0.1, "train_size": 1000}


class LinearReader:
    """A stand-in model: a fixed random linear map of the pixels and a softmax, with Keras's predict signature."""

    def __init__(self, seed: int = 0) -> None:
        self.weights = np.random.default_rng(seed).normal(0.0, 0.05, size=(784, 10))

    def predict(self, images, batch_size=None, verbose=0):
        logits = np.asarray(images, dtype=np.float64).reshape(len(images), -1) @ self.weights
        exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exponentials / exponentials.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def sample():
    loaded = load_dataset("mnist-sample", test_fraction=SPLIT["test_fraction"], seed=SPLIT["seed"])
    return loaded, make_splits(loaded, val_fraction=SPLIT["val_fraction"], seed=SPLIT["seed"],
                               train_size=SPLIT["train_size"])


def _sources(splits):
    from digitrec_utils.data.nondigits import make_nondigits

    for_choice, _ = make_nondigits(40, seed=1)
    for_report, _ = make_nondigits(40, seed=2)
    return [deployment.NonDigitSource("generated shapes", "shapes", for_choice, for_report)]


def test_the_score_and_threshold_are_chosen_from_validation_images_only(sample, monkeypatch):
    _, splits = sample
    sources = _sources(splits)
    scored_rows = []
    original = deployment.score_images

    def spy(model, images, **options):
        scored_rows.append(row_keys(np.asarray(images) / 255.0))
        return original(model, images, **options)

    monkeypatch.setattr(deployment, "score_images", spy)
    chosen = deployment.choose_on_validation(LinearReader(), splits.x_val, splits.y_val, sources, target=0.6)
    allowed = row_keys(splits.x_val / 255.0) | row_keys(sources[0].for_choice / 255.0)
    forbidden = row_keys(splits.x_test / 255.0) | row_keys(sources[0].for_report / 255.0)
    assert scored_rows and all(rows <= allowed and not rows & forbidden for rows in scored_rows)
    assert chosen.score in ("top_probability", "margin", "certainty")
    assert set(chosen.ranking["score"]) == {"top_probability", "margin", "certainty"}
    # The threshold is the lowest that reaches the target on the validation answers alone, tried one by one.
    expected = find_lowest_threshold(chosen.validation.score(chosen.score), chosen.validation.correct(splits.y_val),
                                     0.6)
    assert chosen.threshold.threshold == expected


def test_the_top_probability_stays_unless_another_score_separates_better():
    digits = robustness.Scored(np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0]]), np.array([0, 0]), np.array([True, True]))
    others = robustness.Scored(np.array([[0.5, 0.5, 0.0], [0.4, 0.3, 0.3]]), np.array([0, 0]), np.array([True, True]))
    name, ranking = deployment.choose_score(digits, others)
    assert name == "top_probability" and (ranking["auroc"] == 1.0).all()  # A tie keeps the top probability.


def test_the_saved_split_is_rebuilt_exactly_or_refused(sample):
    loaded, splits = sample
    description = {"format_version": 2, "dataset": {"name": "mnist-sample", "sha256": loaded.sha256}, "split": SPLIT}
    _, rebuilt = acquisition.rebuild_split(description)
    np.testing.assert_array_equal(rebuilt.val_indices, splits.val_indices)
    np.testing.assert_array_equal(rebuilt.train_indices, splits.train_indices)
    with pytest.raises(ModelFileError, match="does not say how its split was made"):
        acquisition.rebuild_split({"dataset": {"name": "mnist-sample"}, "model": "old"})
    with pytest.raises(ModelFileError, match="files found now have checksum"):
        acquisition.rebuild_split({**description, "dataset": {"name": "mnist-sample", "sha256": "0" * 64}})


def test_a_missing_model_is_named_with_the_fix(tmp_path):
    with pytest.raises(ModelFileError, match="model_path .*no such file"):
        acquisition.find_model(str(tmp_path / "nothing.keras"), "")
    with pytest.raises(ModelFileError, match="--only cnn deployment"):
        acquisition.find_model("", str(tmp_path))
    assert acquisition.find_model("", "") is None  # No run folder: the notebook trains a small CNN.


def test_without_fashion_mnist_the_note_names_the_fix_and_no_folder_of_this_machine(monkeypatch, tmp_path):
    from digitrec_utils.exceptions import DatasetError

    def missing(name, **options):
        raise DatasetError(f"Cannot find the {name!r} dataset. Places tried, in order:\n  - {tmp_path}/fashion-mnist")

    monkeypatch.setattr(deployment, "load_dataset", missing)
    sources, notes = deployment.collect_nondigit_sources("mnist-sample", n_images=20, seed=0)
    assert [source.name for source in sources] == ["generated shapes"] and len(notes) == 1
    assert "dataset-fashion-mnist" in notes[0] and str(tmp_path) not in notes[0] and "tried" not in notes[0]


def test_robustness_is_measured_per_corruption_and_severity_reproducibly(sample):
    _, splits = sample
    images, labels = splits.x_test[:30], splits.y_test[:30]
    options = {"names": ["rotation", "gaussian_noise"], "severities": [1, 2, 3], "score": "top_probability",
               "threshold": 0.2, "seen": ["gaussian_noise"], "seed": 5, "n_examples": 4, "progress": False}
    first = robustness.measure_robustness(LinearReader(), images, labels, **options)
    again = robustness.measure_robustness(LinearReader(), images, labels, **options)
    assert len(first.table) == 6 and first.severity == 2
    assert first.table.equals(again.table)
    assert first.table.set_index("corruption")["seen"].to_dict() == {"rotation": False, "gaussian_noise": True}
    assert (first.table["accuracy_low"] <= first.table["accuracy"]).all()
    assert (first.table["accuracy"] <= first.table["accuracy_high"]).all()
    assert first.mean_accuracy == pytest.approx(first.at_headline()["accuracy"].mean())
    assert first.mean_unseen_accuracy == pytest.approx(
        first.table.query("severity == 2 and corruption == 'rotation'")["accuracy"].iloc[0])
    corrupted, shown_labels, read = first.examples["rotation"]
    assert corrupted.shape == (4, 28, 28) and list(shown_labels) == list(labels[:4]) and len(read) == 4
    with pytest.raises(ParameterError, match="corruptions = 'smudge' is not allowed"):
        robustness.measure_robustness(LinearReader(), images, labels, **{**options, "names": ["smudge"]})


def test_blank_images_get_no_answer_and_count_as_wrong():
    images = np.zeros((3, 28, 28), dtype=np.uint8)
    images[1, 8:20, 12:15] = 255
    scored = robustness.score_images(LinearReader(), images)
    assert scored.usable.tolist() == [False, True, False]
    assert scored.predicted[0] == -1 and not scored.correct(np.zeros(3, dtype=int))[0]
    assert scored.score("top_probability")[0] == 0.0  # Never accepted, whatever the threshold.


def test_the_threshold_goes_into_the_saved_model_json(tmp_path):
    from PIL import Image

    from digitrec_utils.application.images import predict_files
    from digitrec_utils.models.model_files import save_model_bundle

    model = convnets.build_modern_cnn(filters=(4,), convs_per_block=1, dense_units=8, augmentation="none",
                                      total_steps=5)
    path = save_model_bundle(model, tmp_path, name="cnn_modern", class_names=[str(d) for d in range(10)],
                             dataset={"name": "mnist-sample"}, split=SPLIT)
    deployment.save_abstention(path, score="certainty", threshold=0.999, target=0.995)
    saved = json.loads(path.with_suffix(".json").read_text())
    assert {key: saved["abstention"][key] for key in ("score", "threshold", "target", "chosen_on")} == {
        "score": "certainty", "threshold": 0.999, "target": 0.995, "chosen_on": "validation"}
    assert saved["abstention"]["preparation_version"] == PREPARATION_VERSION
    assert check_calibration(saved) is None
    assert "re-run 05_deployment" in check_calibration({"abstention": {"threshold": 0.5}})
    # The same preparation under another digitrec version gets the milder warning, naming both versions.
    other_version = check_calibration({"abstention": {**saved["abstention"], "digitrec_version": "0.0.1"}})
    assert "chosen with digitrec 0.0.1" in other_version and "prepare images the same way" in other_version
    assert saved["split"] == SPLIT
    digit = np.zeros((28, 28), dtype=np.uint8)
    digit[6:22, 12:16] = 255
    Image.fromarray(digit).save(tmp_path / "one.png")
    entry = predict_files([tmp_path / "one.png"], path)[0]
    assert entry["accepted"] is False  # An untrained model is never that certain.
    deployment.save_abstention(path, score="top_probability", threshold=None, target=0.995)
    assert json.loads(path.with_suffix(".json").read_text())["abstention"]["threshold"] == 0.0


def test_outliers_join_training_with_a_uniform_label_and_no_validation_or_test_rows(sample):
    _, splits = sample
    x_train = cnn.prepare_images(splits.x_train[:100])
    images, labels = cnn.add_outliers(x_train, splits.y_train[:100], 0.2, seed=3)
    assert images.shape[1:] == x_train.shape[1:] and 10 < len(images) - 100 <= 20  # Blank ones are left out.
    assert (labels[100:] == training.OUTLIER_LABEL).all()
    added = row_keys(images[100:])
    assert not added & (row_keys(cnn.prepare_images(splits.x_val)) | row_keys(cnn.prepare_images(splits.x_test)))
    dataset = training.make_dataset(images[95:105, ..., 0], labels[95:105], 10, shuffle=False, seed=0,
                                    one_hot_classes=10)
    _, targets = next(iter(dataset))
    targets = np.asarray(targets)
    np.testing.assert_allclose(targets[5:], 0.1)
    assert (targets[:5].max(axis=1) == 1.0).all()


@pytest.mark.parametrize("overrides, message", [
    (["deployment.target_accepted_accuracy=1.0"], "target_accepted_accuracy"),
    (["deployment.target_accepted_accuracy=0.4"], "target_accepted_accuracy"),
    (["deployment.corruptions=[smudge]"], "corruptions"),
    (["deployment.severities=[4]"], "severities"),
])
def test_deployment_parameters_are_checked_before_the_run(overrides, message):
    with pytest.raises(ParameterError, match=message):
        resolve_parameters({}, ["05_deployment"], overrides=overrides)


def test_a_run_that_leaves_the_notebook_without_a_model_is_rejected(tmp_path, capsys):
    with pytest.raises(ParameterError, match="--only cnn deployment"):
        check_deployment_model({"05_deployment": {"model_path": ""}})
    with pytest.raises(ParameterError, match="no saved model there"):
        check_deployment_model({"05_deployment": {"model_path": str(tmp_path / "gone.keras")}, "04_cnn": {}})
    check_deployment_model({"05_deployment": {"model_path": ""}, "04_cnn": {}})  # The run trains it.
    with pytest.raises(ParameterError, match="--only cnn adaptation"):
        check_deployment_model({"08_adaptation": {"model_path": ""}})
    status = main(["run", "--only", "deployment", "--out", str(tmp_path / "reports")])
    assert status == EXIT_REJECTED and "04_cnn" in capsys.readouterr().err
    assert not (tmp_path / "reports").exists() or list((tmp_path / "reports").iterdir()) == []


def test_the_summary_says_when_no_threshold_reached_the_target():
    findings = {"model": "cnn_modern", "clean_accuracy": 0.9, "clean_accuracy_ci95": [0.88, 0.92], "severity": 2,
                "mean_corrupted_accuracy": 0.8, "mean_unseen_corrupted_accuracy": 0.8,
                "worst_corruption": {"name": "gaussian_noise", "accuracy": 0.5, "accuracy_ci95": [0.4, 0.6]},
                "abstention": {"score": "top_probability", "threshold": None, "target": 0.999, "coverage": 1.0,
                               "coverage_ci95": [0.99, 1.0], "answered_accuracy": 0.9,
                               "answered_accuracy_ci95": [0.88, 0.92]},
                "nondigits": [{"source": "generated shapes", "answered": 1.0, "auroc": 0.5}]}
    text = deployment.describe_deployment(findings)
    assert "No confidence threshold reached 99.9% on validation, so the model answers every digit" in text
    assert "worst under gaussian noise (50.00%)" in text and "100.0% of generated shapes" in text
    assert "per second" not in text
    findings["speed"] = {"runtime": "Keras", "images_per_second": 1500.0, "latency_median_ms": 3.3}
    findings["onnx_speed"] = {"runtime": "ONNX Runtime", "images_per_second": 21100.0, "latency_median_ms": 0.14}
    text = deployment.describe_deployment(findings)
    assert "1,500 digits per second in batches, and one in 3 ms (exported to ONNX, 21,100 per second and one in " \
           "0.14 ms)." in text


def test_speed_is_timed_in_keras_and_onnx_runtime_side_by_side_or_says_why_not(monkeypatch):
    import importlib.util

    import keras

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    images = np.random.default_rng(0).random((20, 28, 28, 1)).astype(np.float32)
    speeds, note = deployment.measure_runtime_speeds(model, images, batch_size=64)
    assert [speed.runtime for speed in speeds] == ["Keras", "ONNX Runtime"]
    assert all(speed.images_per_second > 0 and speed.batch_size == 64 for speed in speeds)
    difference = float(note.split("at most ")[1].rstrip("."))
    assert difference < 1e-5
    table = deployment.tabulate_speeds(speeds)
    assert list(table["runtime"]) == ["Keras", "ONNX Runtime"] and table["one image, median"].str.endswith(" ms").all()
    sentence = deployment.describe_speeds(speeds, note)
    ratio = speeds[1].images_per_second / speeds[0].images_per_second
    assert f"({ratio:.1f} times as many)" in sentence and sentence.endswith(note)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "onnxruntime" else real_find_spec(name, *rest))
    speeds, note = deployment.measure_runtime_speeds(model, images, batch_size=64)
    assert [speed.runtime for speed in speeds] == ["Keras"] and "ONNX Runtime is not installed" in note


def test_the_threshold_is_kept_only_in_a_model_of_this_run(saved_model, tmp_path):
    run_folder = tmp_path / "run"
    (run_folder / "models").mkdir(parents=True)
    for source in (saved_model, saved_model.with_suffix(".json")):  # A copy: the session's model stays as it is.
        (run_folder / "models" / source.name).write_bytes(source.read_bytes())
    saved_model = run_folder / "models" / saved_model.name
    outside = deployment.keep_threshold(saved_model, str(tmp_path / "other-run"), score="margin", threshold=0.5,
                                        target=0.995, chosen_on="validation")
    assert "outside this run's folder" in outside and "--min-confidence 0.5000" in outside
    assert "abstention" not in json.loads(saved_model.with_suffix(".json").read_text())
    assert "nothing to update" in deployment.keep_threshold(None, str(tmp_path), score="margin", threshold=0.5,
                                                            target=0.995, chosen_on="validation")
    inside = deployment.keep_threshold(saved_model, str(run_folder), score="margin", threshold=0.5,
                                       target=0.995, chosen_on="validation")
    assert inside == "Saved the margin threshold 0.5000 into cnn_selected.json beside the run's model."
    assert json.loads(saved_model.with_suffix(".json").read_text())["abstention"]["threshold"] == 0.5
