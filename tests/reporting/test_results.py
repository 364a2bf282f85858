"""Results records: build, save atomically, load with validation, and clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from digitrec_utils.evaluation.evaluation import evaluate_model
from digitrec_utils.exceptions import ResultsError
from digitrec_utils.reporting.results import (
    build_model_record,
    build_results,
    decode_labels,
    encode_labels,
    load_results,
    load_run_results,
    save_results,
    validate_results,
)

DATASET = {"name": "mnist-sample", "sha256": "ab" * 32, "class_names": [str(digit) for digit in range(10)]}


def _record(selected="knn"):
    generator = np.random.default_rng(0)
    y_true = generator.integers(0, 10, 200)
    y_pred = np.where(generator.random(200) < 0.8, y_true, (y_true + 1) % 10)
    model = build_model_record("knn", "classical", "k-nearest neighbours", evaluate_model(y_true, y_pred),
                               hyperparameters={"k": np.int64(3)}, train_seconds=np.float64(0.5), val_accuracy=0.8)
    return build_results("02_classical_baselines", DATASET, {"seed": 1}, seed=1, models=[model],
                         selected_model=selected, timings={"fit": 0.5}, test_labels=y_true)


def test_round_trip_and_default_headline(tmp_path):
    record = _record()
    path = save_results(record, tmp_path)
    assert path == tmp_path / "results" / "02_classical_baselines.json"
    loaded = load_results(path)
    assert loaded["models"][0]["hyperparameters"] == {"k": 3}
    assert loaded["headline"].startswith("knn: test accuracy 0.")
    assert loaded["environment"]["packages"]["numpy"] == np.__version__
    assert list(load_run_results(tmp_path / "results")) == ["02_classical_baselines"]
    assert [item.name for item in (tmp_path / "results").iterdir()] == ["02_classical_baselines.json"]


def test_empty_output_dir_writes_nothing(tmp_path, capsys):
    assert save_results(_record(), "") is None
    assert "not saved" in capsys.readouterr().out


def test_selected_model_must_exist():
    with pytest.raises(ResultsError, match="selected_model 'svm' is not among the models"):
        _record(selected="svm")


def test_malformed_json_names_the_file(tmp_path):
    path = tmp_path / "03_dense_nets.json"
    path.write_text("{not json")
    with pytest.raises(ResultsError, match=r"03_dense_nets.json: not a readable JSON results file"):
        load_results(path)


def test_schema_violation_names_the_file_and_field(tmp_path):
    record = _record()
    record["models"][0]["test_accuracy"] = 1.7
    path = tmp_path / "02_classical_baselines.json"
    path.write_text(json.dumps(record))
    with pytest.raises(ResultsError, match=r"02_classical_baselines.json: invalid at models/0/test_accuracy"):
        load_results(path)


def test_ragged_confusion_matrix_is_rejected(tmp_path):
    record = _record()
    record["models"][0]["confusion_matrix"][3] = [1, 2]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(record))
    with pytest.raises(ResultsError, match="confusion matrix that is not square"):
        load_results(path)


def test_missing_file_says_how_to_fix(tmp_path):
    with pytest.raises(ResultsError, match="results file not found. Run the notebook"):
        load_results(tmp_path / "absent.json")


def test_test_predictions_round_trip_and_rebuild_the_confusion_matrix(tmp_path):
    record = _record()
    loaded = load_results(save_results(record, tmp_path))
    labels = decode_labels(loaded["test_labels"])
    predictions = decode_labels(loaded["models"][0]["test_predictions"])
    assert len(labels) == len(predictions) == 200
    rebuilt = evaluate_model(labels, predictions)
    assert rebuilt.confusion_matrix.tolist() == loaded["models"][0]["confusion_matrix"]
    assert rebuilt.accuracy == loaded["models"][0]["test_accuracy"]


def test_encode_labels_is_compact_and_rejects_labels_above_nine():
    assert encode_labels(np.array([7, 2, 1, 0])) == "7210"
    np.testing.assert_array_equal(decode_labels("7210"), [7, 2, 1, 0])
    with pytest.raises(ResultsError, match="0-9"):
        encode_labels([3, 12])


@pytest.mark.parametrize("corrupt, message", [
    (lambda record: record.update(test_labels=None), "no test_labels"),
    (lambda record: record.update(test_labels=record["test_labels"][:-1]), "199 test labels"),
    (lambda record: record["models"][0].update(
        test_predictions=record["models"][0]["test_predictions"][::-1]), "do not match its confusion_matrix"),
    (lambda record: record.update(test_labels="12a"), "test_labels"),
])
def test_inconsistent_predictions_are_rejected(corrupt, message):
    record = _record()
    corrupt(record)
    with pytest.raises(ResultsError, match=message):
        validate_results(record, "record")


def test_version_2_keeps_validation_predictions_and_experiments_and_version_1_still_loads(tmp_path):
    generator = np.random.default_rng(1)
    y_true, y_val = generator.integers(0, 10, 200), generator.integers(0, 10, 100)
    val_pred = np.where(generator.random(100) < 0.7, y_val, (y_val + 3) % 10)
    model = build_model_record("knn", "classical", "kNN", evaluate_model(y_true, y_true),
                               val_accuracy=float(np.mean(val_pred == y_val)), val_predictions=val_pred)
    record = build_results("02_classical_baselines", DATASET, {}, seed=1, models=[model], selected_model="knn",
                           test_labels=y_true, val_labels=y_val,
                           experiments={"knn": {"k=1": val_pred, "k=3": y_val}})
    loaded = load_results(save_results(record, tmp_path))
    assert loaded["schema_version"] == 2
    np.testing.assert_array_equal(decode_labels(loaded["models"][0]["val_predictions"]), val_pred)
    np.testing.assert_array_equal(decode_labels(loaded["val_labels"]), y_val)
    settings = loaded["experiments"]["knn"]
    assert [entry["setting"] for entry in settings] == ["k=1", "k=3"] and settings[1]["val_accuracy"] == 1.0
    assert settings[0]["val_accuracy"] == pytest.approx(np.mean(val_pred == y_val))

    old = {key: value for key, value in _record().items() if key != "val_labels"}
    old["schema_version"] = 1
    for entry in old["models"]:
        entry.pop("val_predictions")
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert load_results(tmp_path / "old.json")["schema_version"] == 1

    record["val_labels"] = encode_labels(y_val[:50])
    with pytest.raises(ResultsError, match="100 validation predictions for 50 validation labels"):
        validate_results(record)
    with pytest.raises(ResultsError, match="experiments need val_labels"):
        build_results("03_dense_nets", DATASET, {}, seed=1, experiments={"width": {"16": val_pred}})


def _consistent_record(right_share: float, seed: int = 2) -> dict:
    """A record of one kNN whose validation predictions are right on about ``right_share`` of 200 images."""
    generator = np.random.default_rng(seed)
    y_test, y_val = generator.integers(0, 10, 300), generator.integers(0, 10, 200)
    test_pred = np.where(generator.random(300) < 0.9, y_test, (y_test + 1) % 10)
    val_pred = np.where(generator.random(200) < right_share, y_val, (y_val + 1) % 10)
    model = build_model_record("knn", "classical", "kNN", evaluate_model(y_test, test_pred),
                               val_accuracy=float(np.mean(val_pred == y_val)), val_predictions=val_pred)
    return build_results("02_classical_baselines", DATASET, {}, seed=1, models=[model], selected_model="knn",
                         test_labels=y_test, val_labels=y_val)


@pytest.mark.parametrize("field, value, message", [
    ("test_accuracy", 0.95, r"records test accuracy 0.9500, but its own test predictions are right on 0.9"),
    ("val_accuracy", 0.5, r"records validation accuracy 0.5000, but its own validation predictions are right on"),
    ("test_accuracy_ci95", [0.5, 0.6], r"outside its own 95% interval \(0.5000-0.6000\)"),
])
def test_a_figure_that_disagrees_with_its_own_predictions_is_refused(tmp_path, field, value, message):
    record = _consistent_record(0.9)
    assert load_results(save_results(record, tmp_path))["models"][0]["name"] == "knn"
    record["models"][0][field] = value
    with pytest.raises(ResultsError, match=message):
        save_results(record, tmp_path / "other")
    assert not (tmp_path / "other").exists()


def test_a_selected_model_no_better_than_the_commonest_class_is_refused(tmp_path):
    # About 12% right on ten balanced classes: chance, as when labels are paired with the wrong images.
    record = _consistent_record(0.02)
    with pytest.raises(ResultsError, match=r"no better than always answering the commonest class \(1[0-9].[0-9]%\)"):
        save_results(record, tmp_path)
    save_results(_consistent_record(0.5), tmp_path)  # Far better than 10%, though far from good: kept.
