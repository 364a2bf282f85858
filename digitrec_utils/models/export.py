"""Export a saved model for runtimes without Keras: ONNX, LiteRT (TensorFlow Lite) or a TensorFlow SavedModel.

Keras's own ``Model.export`` writes all three (it converts to ONNX through tf2onnx's ``from_function``, which
works on Keras 3 where tf2onnx's ``from_keras`` does not). What Keras lacks is the rest of what a runtime
needs to read a digit: the class names, the input's shape and scaling, the image preparation's version,
what runs inside the model (the mirror average) and the confidence threshold. :func:`export_model` writes
them into a JSON file beside the exported one, from the model's own JSON at export time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

from digitrec_utils import __version__
from digitrec_utils.data.preparation import PREPARATION_VERSION
from digitrec_utils.exceptions import ExportError
from digitrec_utils.models.backend import keras
from digitrec_utils.models.inference import build_inference_model, describe_inference
from digitrec_utils.models.model_files import load_model_bundle, read_abstention
from digitrec_utils.utils.environment import get_git_commit
from digitrec_utils.utils.files import write_text_atomic

# Our format names, each with Keras's name for it, the usual suffix of its file and the packages it needs
# beyond TensorFlow (the import name, then the name pip installs).
EXPORT_FORMATS = {
    "onnx": {"keras_format": "onnx", "suffix": ".onnx",
             "needs": (("tf2onnx", "tf2onnx"), ("onnx", "onnx"))},
    "litert": {"keras_format": "litert", "suffix": ".tflite", "needs": ()},
    "savedmodel": {"keras_format": "tf_saved_model", "suffix": "", "needs": ()},
}
INPUT_NAME = "images"
SCALING = "pixel values divided by 255 (0 to 1), float32, light ink on a dark background as in MNIST"


def choose_export_path(model_path: str | os.PathLike, format_name: str) -> Path:
    """Return where an export goes when no ``out`` is given: beside the model, named after it.

    ``cnn_selected.keras`` becomes ``cnn_selected.onnx``, ``cnn_selected.tflite`` or the folder
    ``cnn_selected_savedmodel``.
    """
    model_path = Path(model_path)
    suffix = EXPORT_FORMATS[format_name]["suffix"] if format_name in EXPORT_FORMATS else ""
    return model_path.with_name(model_path.stem + (suffix or f"_{format_name}"))


def describe_export_path(path: str | os.PathLike) -> Path:
    """Return the JSON file that goes beside an exported model: its name with ``.json`` added."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def _check_converters(format_name: str) -> None:
    """Raise :class:`ExportError` naming what to install when a converter that ``format_name`` needs is missing."""
    missing = [package for module, package in EXPORT_FORMATS[format_name]["needs"]
               if importlib.util.find_spec(module) is None]
    if missing:
        raise ExportError(f"exporting to {format_name} needs {' and '.join(missing)}, which are not installed; run "
                          "`pip install 'digitrec[export]'` (or `pip install " + " ".join(missing) + "`).")


def _file_sha256(path: Path) -> str:
    """Return the SHA-256 of a file, or of a folder's files in name order (a SavedModel)."""
    digest = hashlib.sha256()
    files = sorted(item for item in path.rglob("*") if item.is_file()) if path.is_dir() else [path]
    for item in files:
        if path.is_dir():
            digest.update(str(item.relative_to(path)).encode())
        digest.update(item.read_bytes())
    return digest.hexdigest()


def _read_onnx_names(path: Path) -> tuple[str | None, str | None]:
    """Return the names of an ONNX graph's first input and output."""
    import onnx

    graph = onnx.load(str(path)).graph
    return graph.input[0].name, graph.output[0].name


def export_keras_model(model, *, format_name: str, out: str | os.PathLike) -> Path:
    """Export an in-memory Keras model to ``out`` in ``format_name``, without a JSON (see :func:`export_model`).

    The model is rebuilt for inference first (:func:`~digitrec_utils.models.inference.build_inference_model`),
    so that a model with training-only or custom layers inside exports too. The export is written under a
    temporary name and renamed into place, so that a failed export leaves an earlier file at ``out`` as it was.

    Parameters
    ----------
    model : keras.Model
        Taking images of one shape, (28, 28, 1) for digitrec's networks.
    format_name : {"onnx", "litert", "savedmodel"}
    out : path-like
        The file to write (a folder for ``savedmodel``); its folder must exist.

    Returns
    -------
    out : Path

    Raises
    ------
    ExportError
        For an unknown format, a missing converter (naming what to install), a missing folder or a failed
        conversion.
    """

    if format_name not in EXPORT_FORMATS:
        raise ExportError(f"--format {format_name!r} is not known; choose one of {', '.join(EXPORT_FORMATS)}.")
    _check_converters(format_name)
    out = Path(out)
    if not out.parent.is_dir():
        raise ExportError(f"{out.parent}: no such folder for --out; create it first or choose another path.")
    model = build_inference_model(model)
    signature = [keras.InputSpec(shape=(None, *model.input_shape[1:]), dtype="float32", name=INPUT_NAME)]
    temporary = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.")) / f"export{out.suffix}"
    try:
        try:
            with warnings.catch_warnings():  # Keras's patch of tf2onnx for NumPy 2 asks NumPy about np.object.
                warnings.filterwarnings("ignore", message="In the future `np.object`", category=FutureWarning)
                model.export(str(temporary), format=EXPORT_FORMATS[format_name]["keras_format"], verbose=False,
                             input_signature=signature)
        except Exception as error:  # The converters raise many types; the message keeps theirs.
            raise ExportError(f"Keras could not export {model.name} to {format_name} ({type(error).__name__}: "
                              f"{error}).") from error
        _replace_path(temporary, out)
    finally:
        shutil.rmtree(temporary.parent, ignore_errors=True)
    return out


def export_model(model_path: str | os.PathLike, *, format_name: str, out: str | os.PathLike) -> Path:
    """Export the ``.keras`` model at ``model_path`` to ``out`` in ``format_name``, with its JSON beside it.

    A file saved by an older digitrec (with training-only or custom layers inside) exports too. The JSON
    (``out`` with ``.json`` added, :func:`describe_export_path`) is written from the model's JSON: class names,
    the input's name, shape and scaling, the preparation version, what runs inside the model, the confidence
    threshold in use (``abstention``, None when none was saved), the test accuracy and where it came from.

    Parameters
    ----------
    model_path : path-like
        A ``.keras`` file saved by the suite, with its JSON beside it.
    format_name : {"onnx", "litert", "savedmodel"}
    out : path-like
        The file to write (a folder for ``savedmodel``).

    Returns
    -------
    out : Path

    Raises
    ------
    ExportError
        As :func:`export_keras_model`.
    ModelFileError
        When the model or its JSON cannot be read.
    """
    if format_name in EXPORT_FORMATS:
        _check_converters(format_name)  # Before the model is loaded, which takes seconds.
    model, description = load_model_bundle(model_path)
    out = export_keras_model(model, format_name=format_name, out=out)
    names = _read_onnx_names(out) if format_name == "onnx" else (INPUT_NAME, None)
    write_text_atomic(describe_export_path(out), json.dumps(
        _describe_export(out, format_name, Path(model_path), description, model, *names),
        indent=2) + "\n")
    return out


def _replace_path(new: Path, out: Path) -> None:
    """Move ``new`` (a file or a folder) to ``out``, replacing what is there only once ``new`` is complete."""
    if out.is_dir() and not out.is_symlink():
        retired = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, retired)
        os.replace(new, out)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(new, out)


def _describe_export(out: Path, format_name: str, model_path: Path, description: dict, model, input_name,
                     output_name) -> dict:
    """The exported model's JSON: what a runtime needs to feed it and read its answer."""
    abstention = read_abstention(description)
    return {
        "format": format_name, "file": out.name, "sha256": _file_sha256(out),
        "model": description.get("model"), "class_names": description.get("class_names"),
        "input": {"name": input_name, "shape": [None, *model.input_shape[1:]], "dtype": "float32",
                  "scaling": SCALING, "preprocessing": description.get("preprocessing")},
        "output": {"name": output_name, "shape": [None, len(description.get("class_names") or [])],
                   "meaning": "class probabilities in the order of class_names"},
        "preparation_version": PREPARATION_VERSION,
        "inference": describe_inference(model),
        "abstention": ({key: abstention.get(key) for key in ("score", "threshold", "target", "chosen_on",
                                                              "preparation_version")} if abstention else None),
        "test_accuracy": description.get("test_accuracy"), "test_accuracy_ci95": description.get("test_accuracy_ci95"),
        "dataset": description.get("dataset"),
        "exported_from": {"file": model_path.name, "format_version": description.get("format_version"),
                          "sha256": _file_sha256(model_path)},
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "digitrec_version": __version__,
        "git_commit": get_git_commit().get("commit"),
    }
