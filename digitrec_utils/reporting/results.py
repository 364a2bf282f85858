"""The results record: one JSON per notebook run, written atomically and validated on read.

The format (see ``docs/RESULTS.md``)::

    {"notebook": "04_cnn", "created": "...", "dataset": {...}, "params": {...}, "seed": 42,
     "models": [{"name": ..., "family": ..., "description": ..., "params_count": ..., "hyperparameters": {...},
                 "train_seconds": ..., "predict_ms_per_1k": ..., "val_accuracy": ..., "test_accuracy": ...,
                 "test_accuracy_ci95": [low, high], "macro_f1": ..., "per_class": [...],
                 "confusion_matrix": [[...]], "test_predictions": "7210414959..."}],
     "test_labels": "7210414959...",
     "selected_model": "...", "headline": "...", "timings": {...}, "environment": {...}}

``test_labels`` and each model's ``test_predictions`` are the labels of the test images, in the test
split's order, written as one digit per image: compact, and enough for a paired test such as McNemar's
between any two models of a run.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import fastjsonschema
import numpy as np
from scipy.stats import binomtest

from digitrec_utils.config import locate_record
from digitrec_utils.declarations import MODEL_NOTEBOOKS
from digitrec_utils.evaluation.evaluation import Evaluation
from digitrec_utils.exceptions import ResultsError
from digitrec_utils.utils.environment import collect_environment
from digitrec_utils.utils.files import write_text_atomic

# Version 2 added validation predictions and labels, and the experiments' and sweeps' predictions; version 1
# records still load.
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)

_NUMBER_OR_NULL = {"type": ["number", "null"]}
# Recorded accuracies may come from Keras's float32 metrics, which match the predictions to about 3e-8.
ACCURACY_TOLERANCE = 1e-6
_PART_NAMES = {"test": "test", "val": "validation"}
_LABEL_STRING = {"type": ["string", "null"], "pattern": "^[0-9]*$"}
_PER_CLASS_ROW = {
    "type": "object",
    "required": ["label", "precision", "recall", "f1", "support", "tp", "fp", "fn", "tn", "specificity"],
    "properties": {
        "label": {"type": "integer", "minimum": 0},
        "precision": {"type": "number", "minimum": 0, "maximum": 1},
        "recall": {"type": "number", "minimum": 0, "maximum": 1},
        "f1": {"type": "number", "minimum": 0, "maximum": 1},
        "specificity": {"type": "number", "minimum": 0, "maximum": 1},
        "support": {"type": "integer", "minimum": 0},
        "tp": {"type": "integer", "minimum": 0},
        "fp": {"type": "integer", "minimum": 0},
        "fn": {"type": "integer", "minimum": 0},
        "tn": {"type": "integer", "minimum": 0},
    },
}
_MODEL = {
    "type": "object",
    "required": ["name", "family", "description", "test_accuracy", "test_accuracy_ci95", "macro_f1",
                 "per_class", "confusion_matrix"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "family": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "params_count": {"type": ["integer", "null"], "minimum": 0},
        "hyperparameters": {"type": "object"},
        "train_seconds": _NUMBER_OR_NULL,
        "predict_ms_per_1k": _NUMBER_OR_NULL,
        "val_accuracy": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "test_accuracy": {"type": "number", "minimum": 0, "maximum": 1},
        "test_accuracy_ci95": {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1},
                               "minItems": 2, "maxItems": 2},
        "macro_f1": {"type": "number", "minimum": 0, "maximum": 1},
        "per_class": {"type": "array", "items": _PER_CLASS_ROW},
        "confusion_matrix": {"type": "array", "items": {"type": "array", "items": {"type": "integer", "minimum": 0}}},
        "test_predictions": _LABEL_STRING,
    },
}
RESULTS_SCHEMA = {
    "type": "object",
    "required": ["schema_version", "notebook", "created", "dataset", "params", "seed", "models", "selected_model",
                 "headline", "timings", "environment"],
    "properties": {
        "schema_version": {"enum": list(READABLE_VERSIONS)},
        "notebook": {"type": "string", "pattern": r"^\d\d_\w+$"},
        "created": {"type": "string"},
        "dataset": {"type": "object", "required": ["name", "sha256"]},
        "params": {"type": "object"},
        "seed": {"type": "integer"},
        "models": {"type": "array", "items": _MODEL},
        "test_labels": _LABEL_STRING,
        "val_labels": _LABEL_STRING,
        "experiments": {"type": "object", "additionalProperties": {"type": "array", "items": {
            "type": "object", "required": ["setting", "val_accuracy", "val_predictions"],
            "properties": {"setting": {"type": "string"}, "val_accuracy": {"type": "number"},
                           "val_predictions": _LABEL_STRING}}}},
        "selected_model": {"type": ["string", "null"]},
        "headline": {"type": "string"},
        "timings": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}},
        "environment": {"type": "object"},
        "training_precision": {"type": "object", "required": ["policy", "reason"],
                               "properties": {"policy": {"enum": ["float32", "mixed_bfloat16", "mixed_float16"]},
                                              "reason": {"type": "string"}}},
        "stability": {"type": "object", "required": ["seeds", "split", "models", "recommended", "lead", "lead_holds"]},
        "deployment": {"type": "object", "required": ["clean_accuracy", "mean_corrupted_accuracy", "worst_corruption",
                                                      "abstention"]},
        "adaptation": {"type": "object", "required": ["curve", "check_digits", "office_data", "office_sha256"]},
    },
}


# fastjsonschema compiles the schema to Python once; jsonschema's import alone parses an IRI grammar with Lark,
# which cost each notebook's kernel 2 to 4 seconds.
_validate_schema = fastjsonschema.compile(RESULTS_SCHEMA)


def build_model_record(
    name: str,
    family: str,
    description: str,
    evaluation: Evaluation,
    *,
    hyperparameters: dict | None = None,
    params_count: int | None = None,
    train_seconds: float | None = None,
    predict_ms_per_1k: float | None = None,
    val_accuracy: float | None = None,
    val_predictions=None,
) -> dict:
    """Return one model's entry of the results record.

    Parameters
    ----------
    name : str
        Unique within the notebook, e.g. ``"knn"``.
    family : str
        e.g. ``"classical"``, ``"dense"``, ``"cnn"``.
    description : str
        What it is and which report it reproduces.
    evaluation : Evaluation
        The single evaluation on the test split.
    hyperparameters : dict, optional
        The chosen settings.
    params_count, train_seconds, predict_ms_per_1k, val_accuracy : optional
        Cost and validation figures; None where they do not apply.
    val_predictions : ndarray of shape (n_val,), optional
        The predicted validation labels, for paired tests between models on validation data.
    """
    test = evaluation.to_dict()
    return _to_json_ready({
        "name": name,
        "family": family,
        "description": description,
        "params_count": params_count,
        "hyperparameters": hyperparameters or {},
        "train_seconds": train_seconds,
        "predict_ms_per_1k": predict_ms_per_1k,
        "val_accuracy": val_accuracy,
        "test_accuracy": test["accuracy"],
        "test_accuracy_ci95": test["accuracy_ci95"],
        "macro_f1": test["macro_f1"],
        "per_class": test["per_class"],
        "confusion_matrix": test["confusion_matrix"],
        "test_predictions": encode_labels(evaluation.y_pred),
        "val_predictions": None if val_predictions is None else encode_labels(val_predictions),
    })


def build_results(
    notebook: str,
    dataset: dict,
    params: dict,
    *,
    seed: int,
    models: list[dict] | None = None,
    selected_model: str | None = None,
    headline: str = "",
    timings: dict[str, float] | None = None,
    test_labels=None,
    val_labels=None,
    experiments: dict[str, dict] | None = None,
    recommendation: dict | None = None,
    deployment: dict | None = None,
    training_precision: dict | None = None,
    stability: dict | None = None,
    adaptation: dict | None = None,
) -> dict:
    """Return a complete results record for one notebook run, with the environment collected now.

    Parameters
    ----------
    notebook : str
        The notebook's stem, e.g. ``"01_eda"``.
    dataset : dict
        ``Dataset.to_dict()``.
    params : dict
        The notebook's parameters as run.
    seed : int
    models : list of dict, optional
        Entries from :func:`build_model_record`.
    selected_model : str, optional
        The name of the model chosen on validation data.
    headline : str
        One line for the index page; by default the selected model's test accuracy and interval.
    timings : dict of str to float, optional
        Seconds per step.
    test_labels : ndarray of shape (n_test,), optional
        The true test labels, in the order of the models' ``test_predictions``; required with models.
    val_labels : ndarray of shape (n_val,), optional
        The true validation labels, in the order of every ``val_predictions``.
    experiments : dict, optional
        Experiment (or sweep) name -> {setting: predicted validation labels}, for each setting a finding
        compares; stored with each setting's validation accuracy. Needs ``val_labels``.
    recommendation : dict, optional
        The comparison's recommended model and runner-ups (``comparison.summarize_ranking``), which the
        run's index page shows as its headline.
    deployment : dict, optional
        The deployment notebook's findings (``deployment.summarize``), which the comparison's model card reads.
    training_precision : dict, optional
        The dtype policy the notebook's networks trained under and why (``PrecisionChoice.to_dict()``).
    stability : dict, optional
        The stability notebook's summary of a seed sweep (``stability.summarize_for_record``).
    adaptation : dict, optional
        08_adaptation's learning curve and the office digits it was drawn on.
    """
    models = models or []
    if selected_model is not None and selected_model not in {model["name"] for model in models}:
        raise ResultsError(f"selected_model {selected_model!r} is not among the models {[m['name'] for m in models]}.")
    if not headline and selected_model is not None:
        chosen = next(model for model in models if model["name"] == selected_model)
        low, high = chosen["test_accuracy_ci95"]
        headline = f"{selected_model}: test accuracy {chosen['test_accuracy']:.4f} (95% CI {low:.4f}-{high:.4f})"
    return _to_json_ready({
        "schema_version": SCHEMA_VERSION,
        "notebook": notebook,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": dataset,
        "params": params,
        "seed": seed,
        "models": models,
        "test_labels": None if test_labels is None else encode_labels(test_labels),
        "val_labels": None if val_labels is None else encode_labels(val_labels),
        **({"experiments": _encode_experiments(experiments, val_labels)} if experiments else {}),
        "selected_model": selected_model,
        "headline": headline,
        "timings": timings or {},
        "environment": collect_environment(),
        **({"recommendation": recommendation} if recommendation is not None else {}),
        **({"deployment": deployment} if deployment is not None else {}),
        **({"training_precision": training_precision} if training_precision is not None else {}),
        **({"stability": stability} if stability is not None else {}),
        **({"adaptation": adaptation} if adaptation is not None else {}),
    })


def _encode_experiments(experiments: dict[str, dict], val_labels) -> dict[str, list]:
    """Return experiments' settings as record entries: setting, validation accuracy and predictions."""
    if val_labels is None:
        raise ResultsError("experiments need val_labels: their predictions are of the validation images.")
    truth = np.asarray(val_labels)
    return {name: [{"setting": str(setting), "val_accuracy": float(np.mean(np.asarray(predicted) == truth)),
                    "val_predictions": encode_labels(predicted)} for setting, predicted in settings.items()]
            for name, settings in experiments.items()}


def validate_results(record: dict, source: str = "results record") -> dict:
    """Raise ResultsError naming ``source`` and the failing field unless ``record`` fits the schema."""
    try:
        _validate_schema(record)
    except fastjsonschema.JsonSchemaValueException as error:
        where = "/".join(str(part) for part in error.path[1:]) or "(top level)"
        raise ResultsError(f"{source}: invalid at {where}: {error.message}") from None
    n_classes = len(record["dataset"].get("class_names", [])) or None
    for model in record["models"]:
        matrix = model["confusion_matrix"]
        size = len(matrix)
        if any(len(row) != size for row in matrix) or (n_classes and size != n_classes):
            raise ResultsError(f"{source}: model {model['name']!r} has a confusion matrix that is not square "
                               f"with one row per class.")
        _check_predictions(record, model, source)
        _check_accuracies(record, model, source)
    _check_selected_beats_the_commonest_class(record, source)
    return record


def encode_labels(labels) -> str:
    """Write integer labels 0-9 as a string of digits, one per image.

    Raises
    ------
    ResultsError
        When a label is outside 0-9.
    """
    labels = np.asarray(labels).astype(int).ravel()
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ResultsError(f"labels must lie in 0-9 to be stored as digits; got {labels.min()} to {labels.max()}.")
    return (labels.astype(np.uint8) + ord("0")).tobytes().decode("ascii")


def decode_labels(text: str) -> np.ndarray:
    """Read a string written by :func:`encode_labels` back into an int array."""
    return np.frombuffer(text.encode("ascii"), dtype=np.uint8).astype(int) - ord("0")


def _check_predictions(record: dict, model: dict, source: str) -> None:
    """Check a model's test predictions against the record's test labels and the model's confusion matrix."""
    predictions = model.get("test_predictions")
    if predictions is None:
        return
    labels = record.get("test_labels")
    if labels is None:
        raise ResultsError(f"{source}: model {model['name']!r} has test_predictions but the record has no "
                           "test_labels; pass test_labels to build_results.")
    if len(labels) != len(predictions):
        raise ResultsError(f"{source}: model {model['name']!r} has {len(predictions)} test predictions for "
                           f"{len(labels)} test labels.")
    size = len(model["confusion_matrix"])
    rebuilt = np.bincount(decode_labels(labels) * size + decode_labels(predictions), minlength=size * size)
    matrix = np.asarray(model["confusion_matrix"])
    if rebuilt.size != size * size or not np.array_equal(rebuilt.reshape(size, size), matrix):
        raise ResultsError(f"{source}: model {model['name']!r}: its test_predictions do not match its "
                           "confusion_matrix. Re-run the notebook.")
    validation = model.get("val_predictions")
    if validation is not None and len(validation) != len(record.get("val_labels") or ""):
        raise ResultsError(f"{source}: model {model['name']!r} has {len(validation)} validation predictions for "
                           f"{len(record.get('val_labels') or '')} validation labels; pass val_labels to "
                           "build_results.")


def _check_accuracies(record: dict, model: dict, source: str) -> None:
    """Check that a model's recorded test and validation accuracies are those of its own predictions, and that
    its test interval holds its test accuracy: a figure that disagrees with the predictions beside it is wrong."""
    for part in ("test", "val"):
        predictions, labels = model.get(f"{part}_predictions"), record.get(f"{part}_labels")
        recorded = model.get(f"{part}_accuracy")
        if not predictions or not labels or recorded is None or len(predictions) != len(labels):
            continue
        right = float(np.mean(decode_labels(predictions) == decode_labels(labels)))
        if abs(right - recorded) > ACCURACY_TOLERANCE:
            named = _PART_NAMES[part]
            raise ResultsError(f"{source}: model {model['name']!r} records {named} accuracy {recorded:.4f}, but its "
                               f"own {named} predictions are right on {right:.4f} of the images: "
                               "the evaluation is wrong. Re-run the notebook, and report it if it stays.")
    low, high = model.get("test_accuracy_ci95") or (None, None)
    accuracy = model.get("test_accuracy")
    tolerance = ACCURACY_TOLERANCE
    if low is not None and accuracy is not None and not low - tolerance <= accuracy <= high + tolerance:
        raise ResultsError(f"{source}: model {model['name']!r} has test accuracy {accuracy:.4f} outside its own 95% "
                           f"interval ({low:.4f}-{high:.4f}): the interval is wrong. Re-run the notebook.")


def _check_selected_beats_the_commonest_class(record: dict, source: str) -> None:
    """Refuse a record whose selected model is no better, on validation, than always answering the commonest class.

    Any classifier worth choosing beats that by far on digits or clothes; one that does not means something
    upstream is broken (labels shuffled against images, predictions of another split), and a page that
    recommended it would mislead. Judged with a one-sided binomial test at 0.001, on 50 validation images or
    more.
    """

    selected = next((model for model in record["models"] if model["name"] == record.get("selected_model")), None)
    labels = record.get("val_labels")
    if selected is None or not labels or not selected.get("val_predictions") or len(labels) < 50:
        return
    truth = decode_labels(labels)
    if len(selected["val_predictions"]) != len(truth):
        return
    right = int(np.sum(decode_labels(selected["val_predictions"]) == truth))
    commonest = np.bincount(truth).max() / len(truth)
    if binomtest(right, len(truth), commonest, alternative="greater").pvalue > 0.001:
        raise ResultsError(f"{source}: the selected model {selected['name']!r} is right on {right:,} of "
                           f"{len(truth):,} validation images ({right / len(truth):.1%}), no better than always "
                           f"answering the commonest class ({commonest:.1%}): something upstream is broken (labels "
                           "against the wrong images, or predictions of another split). Check the data and re-run.")


def save_results(record: dict, output_dir: str | Path | None) -> Path | None:
    """Validate and write ``record`` to ``<output_dir>/results/<notebook>.json`` atomically.

    The stability report's record goes to ``<output_dir>/stability.json`` instead
    (:func:`digitrec_utils.config.locate_record`).

    Parameters
    ----------
    record : dict
        From :func:`build_results`.
    output_dir : path-like or None
        The run folder. When empty or None (a notebook opened by hand, or nbval), nothing is written.

    Returns
    -------
    path : Path or None
    """
    validate_results(record, f"results record of {record.get('notebook', '?')}")
    if not output_dir:
        print("output_dir is empty, so the results record is not saved (digitrec run sets it).")
        return None
    path = locate_record(output_dir, record["notebook"])
    write_text_atomic(path, json.dumps(record, indent=1, allow_nan=False) + "\n")
    return path


def load_results(path: str | Path) -> dict:
    """Read and validate a results record.

    Raises
    ------
    ResultsError
        When the file is missing, is not JSON, or does not fit the schema; the message names the path.
    """
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"{path}: results file not found. Run the notebook with digitrec run first.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResultsError(f"{path}: not a readable JSON results file ({error}). Re-run the notebook.") from None
    if not isinstance(record, dict):
        raise ResultsError(f"{path}: a results file must hold a JSON object. Re-run the notebook.")
    return validate_results(record, str(path))


def load_run_results(results_dir: str | Path) -> dict[str, dict]:
    """Read every ``*.json`` record in a folder, keyed by notebook name, sorted by name."""
    return {path.stem: load_results(path) for path in sorted(Path(results_dir).glob("*.json"))}


def load_model_records(run_dir: str | Path) -> dict[str, dict]:
    """Read the model notebooks' records (02, 03 and 04) of a run folder's ``results/``; empty where it has none."""
    results = Path(run_dir) / "results"
    records = load_run_results(results) if results.is_dir() else {}
    return {name: record for name, record in records.items() if name in MODEL_NOTEBOOKS}


def _to_json_ready(value):
    """Convert numpy scalars and arrays, tuples and NaN to plain JSON values (NaN becomes None)."""
    if isinstance(value, dict):
        return {str(key): _to_json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json_ready(item) for item in value]
    if isinstance(value, np.ndarray):
        return _to_json_ready(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
