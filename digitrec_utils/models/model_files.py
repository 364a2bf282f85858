"""Saved models: a ``.keras`` file with a JSON description beside it, written atomically and read back with checks.

The JSON says what the model needs and what it was measured at: its name, class names, the preprocessing
of its inputs, the dataset, and its test accuracy with the 95% interval. ``digitrec predict`` reads both.
"""

from __future__ import annotations

import json
import os
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

from digitrec_utils import __version__
from digitrec_utils.config import SAVED_MODEL_NAME
from digitrec_utils.data.preparation import PREPARATION_VERSION
from digitrec_utils.exceptions import ModelFileError
from digitrec_utils.models import layers  # noqa: F401  (registers digitrec's layers, so saved models load)
from digitrec_utils.models.backend import keras
from digitrec_utils.models.inference import build_inference_model, describe_inference
from digitrec_utils.models.reference import build_reference_from_arrays, save_reference
from digitrec_utils.utils.environment import get_git_commit
from digitrec_utils.utils.files import write_text_atomic

SELECTED_MODEL_FILE = "cnn_selected.keras"
# Version 2 added format_version itself and "split" (how the model's train / validation / test split was
# made); readers accept files without them (version 1). Version 3: the .keras file holds the network that
# predicts, from Keras's own layers only (plain Keras loads it), and "inference" says what runs in it.
FORMAT_VERSION = 3
PREPROCESSING = ("28x28 grayscale, light ink on a dark background (MNIST's convention), pixel values divided by "
                 "255, shape (28, 28, 1)")


def save_model_bundle(model, directory: str | Path, *, name: str, class_names: Sequence[str], dataset: dict,
                      evaluation=None, extra: dict | None = None, split: dict | None = None,
                      file_name: str = SELECTED_MODEL_FILE, reference_digits: tuple | None = None,
                      reference_source: str = "") -> Path:
    """Save ``model`` as ``directory/file_name`` with a JSON description beside it, each written atomically.

    The JSON holds its ``format_version``, the model's name, class names, the preprocessing its inputs
    need, the dataset, how its split was made (``split``: seed, test_fraction, val_fraction, train_size,
    so that an analysis can rebuild exactly the validation and test images it never trained on), what runs
    at inference (``inference``) and the test accuracy with its 95% interval. ``digitrec predict`` reads both.

    The file holds the network that predicts (:func:`digitrec_utils.models.inference.build_inference_model`):
    no augmentation or dropout, Keras's own layers only, float32 (``computes_in``) even when it trained in
    bfloat16 or float16. ``keras.saving.load_model`` reads it in a Python without digitrec.

    ``reference_digits`` (images, labels), the digits the model was chosen on, become its monitoring reference
    (:mod:`digitrec_utils.models.reference`), saved beside it as ``<name>.reference.npz`` and named in the JSON
    with ``reference_source``, what they are.

    Returns
    -------
    path : Path
        The ``.keras`` file.
    """
    model = build_inference_model(model)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / file_name
    temporary = directory / f".{path.stem}-{os.getpid()}.keras"
    model.save(temporary)
    os.replace(temporary, path)
    description = {"format_version": FORMAT_VERSION, "model": name, "file": path.name,
                   "class_names": list(class_names),
                   "preprocessing": PREPROCESSING, "input_shape": [28, 28, 1],
                   "dataset": {key: dataset.get(key) for key in ("name", "sha256", "n_train", "n_test")
                               if key in dataset},
                   "split": dict(split or {}), "computes_in": "float32", "inference": describe_inference(model),
                   "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if reference_digits is not None:
        images, labels = reference_digits
        reference = build_reference_from_arrays(model, path, images, labels, source=reference_source)
        description["monitoring_reference"] = _describe_reference(reference, save_reference(reference, path))
    if evaluation is not None:
        description.update(test_accuracy=evaluation.accuracy, test_accuracy_ci95=list(evaluation.accuracy_ci95),
                           test_images=evaluation.n_samples)
    description.update(extra or {})
    write_text_atomic(path.with_suffix(".json"), json.dumps(description, indent=2) + "\n")
    return path


def attach_reference(reference, model_path: str | Path) -> Path:
    """Save a monitoring reference beside a saved model, and name it in the model's JSON (``monitoring_reference``).

    Returns
    -------
    path : Path
        The reference file.
    """
    model_path = Path(model_path)
    path = save_reference(reference, model_path)
    json_path = model_path.with_suffix(".json")
    description = json.loads(json_path.read_text(encoding="utf-8"))
    description["monitoring_reference"] = _describe_reference(reference, path)
    write_text_atomic(json_path, json.dumps(description, indent=2) + "\n")
    return path


def _describe_reference(reference, path: Path) -> dict:
    """The JSON's entry for a monitoring reference: its file, how many digits, what they are."""
    return {"file": path.name, "digits": len(reference.correct), "source": reference.source}


def find_latest_model(reports_dir: str | Path) -> Path:
    """Return the saved CNN of the newest run, under ``reports_dir``, whose CNN notebook succeeded.

    ``reports/latest`` plays no part: a later run that failed, or ran only some notebooks, does not hide
    the last good model. A run counts when its ``run.json`` says 04_cnn finished with status ``ok`` and
    its folder holds ``models/cnn_selected.keras``; the newest by the ``started`` time of ``run.json`` wins.
    The run folders of a seed sweep (``<run>-seeds/seed<k>/``) count like any other; among the seeds of
    one sweep, which share a start time, the lowest seed wins.

    Parameters
    ----------
    reports_dir : path-like
        The reports folder, ``reports/`` by default in the command line.

    Returns
    -------
    path : Path
        The ``.keras`` file.

    Raises
    ------
    ModelFileError
        When no run under ``reports_dir`` has a usable saved model; the message says how to make one.
    """
    reports_dir = Path(reports_dir)
    candidates = []
    manifests = [*reports_dir.glob("*/run.json"), *reports_dir.glob("*-seeds/seed*/run.json")]
    for manifest_path in manifests:
        run_folder = manifest_path.parent
        top_folder = run_folder if run_folder.parent == reports_dir else run_folder.parent
        if top_folder.is_symlink():  # ``latest`` points at a folder found on its own.
            continue
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        cnn_ok = any(run.get("notebook") == "04_cnn" and run.get("status") == "ok"
                     for run in manifest.get("notebooks", []))
        model_path = manifest_path.parent / SAVED_MODEL_NAME
        if cnn_ok and model_path.is_file():
            seed = run_folder.name.removeprefix("seed")
            order = -int(seed) if top_folder != run_folder and seed.isdigit() else 0
            candidates.append((str(manifest.get("started", "")), order, model_path))
    if not candidates:
        raise ModelFileError(f"no saved model under {reports_dir}: no run there has a 04_cnn notebook that "
                             f"succeeded and saved {SAVED_MODEL_NAME}. Run `digitrec run` (or "
                             "`digitrec run --only cnn`), or pass --model PATH.")
    return max(candidates, key=lambda candidate: candidate[:2])[2]


def check_model_files(path: str | Path) -> None:
    """Raise :class:`ModelFileError`, naming the file and the fix, when a saved model or its JSON is missing.

    Cheap (nothing is loaded), so that a command given several models can refuse a missing one first.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file. Run `digitrec run` (its 04_cnn notebook saves "
                             "models/cnn_selected.keras in the run folder) or pass --model PATH.")
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        size = path.stat().st_size
        what = "it is empty" if size == 0 else f"its {size:,} bytes are not a zip archive, as a .keras file is"
        raise ModelFileError(f"{path}: not a Keras model file ({what}): truncated, or another kind of file; copy or "
                             "save the model again.")
    description_path = path.with_suffix(".json")
    if not description_path.is_file():
        raise ModelFileError(f"{description_path}: the JSON description beside {path.name} is missing; save models "
                             "with digitrec_utils.models.model_files.save_model_bundle, which writes both.")


def load_model_bundle(path: str | Path):
    """Load a model saved by :func:`save_model_bundle` and its JSON description.

    A file saved by an older digitrec (``format_version`` below 3) is rebuilt for inference as it loads
    (:func:`digitrec_utils.models.inference.build_inference_model`), so that digitrec predicts with the same
    network that ``digitrec export`` writes from it.

    Returns
    -------
    model : keras.Model
    description : dict

    Raises
    ------
    ModelFileError
        Naming the file, when the model or its JSON is missing or unreadable.
    """

    path = Path(path)
    description_path = path.with_suffix(".json")
    check_model_files(path)
    try:
        description = json.loads(description_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelFileError(f"{description_path}: not readable JSON ({error}); copy or save the model "
                             "again.") from error
    description.setdefault("format_version", 1)  # Files saved before the version was recorded.
    if description["format_version"] > FORMAT_VERSION:
        raise ModelFileError(f"{description_path}: format_version {description['format_version']} is newer than "
                             f"this digitrec reads ({FORMAT_VERSION}); update digitrec.")
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises several types for a damaged archive.
        raise ModelFileError(f"{path}: not a readable Keras model ({type(error).__name__}: {error}); "
                             "save the model again.") from error
    if description["format_version"] < 3:
        # Saved by an older digitrec: training-only and custom layers inside, and a network trained in
        # bfloat16 still rounding its inputs to bfloat16. Rebuilt, it predicts as its exports do.
        model = build_inference_model(model)
    return model, description


def read_abstention(description: dict) -> dict | None:
    """Return the newest threshold of a model's JSON (``{"score", "threshold", ...}``), or None when it has none.

    ``abstention`` always holds the newest entry of ``abstention_history`` (files written before the history
    existed have ``abstention`` only).
    """
    abstention = description.get("abstention")
    return dict(abstention) if abstention else None


def describe_threshold_in_use(abstention: dict | None, *, from_option: bool = False) -> str:
    """Say which threshold is in use, where it came from, and what happens below it (the text after "threshold: ").

    Parameters
    ----------
    abstention : dict or None
        The threshold in use (``{"score", "threshold", ...}``, as :func:`read_abstention` returns it), or None.
    from_option : bool
        Whether the threshold was given on the command line (``--min-confidence``) rather than saved.

    Returns
    -------
    text : str
        For example "certainty score 0.4653, chosen on validation and semeion for 99.5% of answers right;
        answers below it are marked unsure, for a person."
    """
    if not abstention:
        return ("none is saved with the model, so every image is answered; give --min-confidence X, or choose one "
                "on your own labelled digits with `digitrec calibrate DIGITS --write`.")
    threshold = abstention.get("threshold") or 0.0
    chosen_on = abstention.get("chosen_on", "validation")
    origin = "--min-confidence" if from_option else "saved with the model"
    if threshold == 0.0:
        return f"0 ({origin}), so every image is answered."
    text = f"{str(abstention.get('score', 'top_probability')).replace('_', ' ')} score {threshold:.4f}"
    if from_option:
        text += " (--min-confidence)"
    else:
        text += f", chosen on {chosen_on}"
        if abstention.get("target") is not None:
            text += f" for {abstention['target']:.1%} of answers right"
    text += "; answers below it are marked unsure, for a person."
    if not from_option and chosen_on == "validation":
        text += (" It was chosen on validation digits alone, which are like the training digits; on other writers' "
                 "digits more of its answers may be wrong: `digitrec calibrate DIGITS --write` chooses it on yours.")
    return text


def record_abstention(model_path: str | Path, *, score: str, threshold: float | None, target: float,
                      chosen_on: str, **details) -> dict:
    """Add a threshold to the saved model's JSON, newest last in ``abstention_history``, and make it the one in use.

    ``abstention`` becomes the new entry (``predict`` and ``read`` use it); earlier thresholds stay in the
    history, with where and when each was chosen. A threshold of None (none reached the target) is saved
    as 0, which accepts every image. The file is written atomically.

    Parameters
    ----------
    model_path : path-like
        The ``.keras`` file; its JSON beside it is updated.
    score : str
        The confidence score the threshold applies to (:mod:`digitrec_utils.evaluation.scores`).
    threshold : float or None
    target : float
        The accuracy of the answered the threshold was chosen for.
    chosen_on : str
        Where it was chosen, in words: ``"validation"``, ``"validation and semeion"``, ``"scans/ (half A, 797
        digits)"``.
    **details
        More JSON-ready fields to keep with it (the figures it gave where it was chosen, a seed).

    Returns
    -------
    entry : dict
        The entry written, with ``chosen_at``, the preparation version, the digitrec version and git commit.
    """
    description_path = Path(model_path).with_suffix(".json")
    try:
        description = json.loads(description_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelFileError(f"{description_path}: cannot read the model's JSON to add a threshold ({error}); save "
                             "the model again.") from error
    entry = {"score": score, "threshold": threshold or 0.0, "target": target, "chosen_on": chosen_on,
             "chosen_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "preparation_version": PREPARATION_VERSION,
             "digitrec_version": __version__, "git_commit": get_git_commit().get("commit"), **details}
    history = list(description.get("abstention_history") or [])
    if not history and description.get("abstention"):
        history.append(description["abstention"])  # A threshold saved before the history existed.
    description["abstention_history"] = [*history, entry]
    description["abstention"] = entry
    write_text_atomic(description_path, json.dumps(description, indent=2) + "\n")
    return entry


def check_calibration(description: dict) -> str | None:
    """Say why a saved threshold may not hold, or return None.

    05_deployment chooses the threshold on images prepared by this digitrec's ``prepare_image``; it records
    the preparation's version and its own version with it. A model whose threshold was chosen with another
    preparation (or before the version was recorded) gets a warning, since its images now look different
    to the model; one chosen by another digitrec version with the same preparation gets a milder one.
    """
    abstention = description.get("abstention")
    if not abstention:
        return None
    version = abstention.get("preparation_version")
    if version == PREPARATION_VERSION:
        calibrated, installed = abstention.get("digitrec_version"), __version__
        if calibrated and calibrated != installed:
            return (f"the model's confidence threshold was chosen with digitrec {calibrated} and this is digitrec "
                    f"{installed}; both prepare images the same way (version {PREPARATION_VERSION}), but re-run "
                    "05_deployment if the threshold should belong to this code.")
        return None
    made = f"preparation version {version}" if version is not None else "an older preparation"
    return (f"the model's confidence threshold was chosen on images prepared with {made}, and this digitrec "
            f"prepares images with version {PREPARATION_VERSION}; re-run 05_deployment (`digitrec run --only "
            "cnn deployment`) to choose it again, or pass --min-confidence.")


def describe_model_origin(description: dict) -> str:
    """The model's name, and for an adapted model what it was adapted from and on: ``cnn_modern, adapted from
    cnn_selected.keras on 636 digits of semeion``."""
    name = str(description.get("model", "unnamed"))
    adapted = description.get("adapted")
    if not adapted:
        return name
    counts = adapted.get("counts") or {}
    return (f"{name}, adapted from {adapted.get('parent_model', 'another model')} on {counts.get('train', 0):,} "
            f"digits of {adapted.get('data_name', 'the office')}")
