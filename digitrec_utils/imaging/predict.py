"""Classify image files with a saved model, each prepared as MNIST's digits were.

The preparation itself is :mod:`digitrec_utils.data.preparation`; this module feeds its batches to a model
and turns the probabilities into entries (label, probability, the top labels, score and acceptance).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from digitrec_utils.data.loading import load_dataset
from digitrec_utils.data.preparation import BATCH_SIZE, prepare_image_files
from digitrec_utils.evaluation.scores import compute_score
from digitrec_utils.exceptions import ModelFileError


def iterate_predictions(paths: Sequence[str | os.PathLike], model, *, class_names: Sequence[str] | None = None,
                        top: int = 3, abstention: dict | None = None, batch_size: int = BATCH_SIZE,
                        progress: bool | None = None) -> Iterator[dict]:
    """Classify image files a batch at a time, yielding each file's entry as soon as its batch is done.

    Takes the arguments of :func:`predict_images`, plus ``batch_size`` and ``progress`` (see
    :func:`prepare_image_files`), and yields its entries in the order of ``paths``.
    """
    if top < 1:
        raise ValueError(f"top = {top}: list at least one label per image.")
    for batch in prepare_image_files(paths, batch_size=batch_size, progress=progress):
        entries = [{"path": name} for name in batch.paths]
        for position, message in batch.errors.items():
            entries[position]["error"] = message
        if len(batch.images):
            probabilities = np.asarray(model.predict(batch.images[..., None], verbose=0), dtype=np.float64)
            ranked_entries = _describe_probabilities(probabilities, class_names=class_names, top=top,
                                                    abstention=abstention)
            for position, kind, ranked in zip(batch.positions, batch.kinds, ranked_entries, strict=True):
                entries[position].update(ranked, prepared_as=kind)
        yield from entries


def _describe_probabilities(probabilities: np.ndarray, *, class_names: Sequence[str] | None = None, top: int = 3,
                           abstention: dict | None = None) -> list[dict]:
    """Turn the model's probabilities into entries: label, probability, the ``top`` labels, score and acceptance.

    Raises
    ------
    ModelFileError
        When the number of class names differs from the model's outputs.
    """
    names = list(class_names or [str(digit) for digit in range(probabilities.shape[1])])
    if len(names) != probabilities.shape[1]:
        raise ModelFileError(f"the model outputs {probabilities.shape[1]} classes but {len(names)} class names "
                             "were given; use the JSON saved beside the model.")
    scores = compute_score(probabilities, abstention.get("score", "top_probability")) if abstention else None
    threshold = (abstention or {}).get("threshold") or 0.0
    entries = []
    for number, row in enumerate(probabilities):
        order = np.argsort(-row, kind="stable")[:top]
        ranked = [{"label": names[index], "probability": float(row[index])} for index in order]
        entry = {"label": ranked[0]["label"], "probability": ranked[0]["probability"], "top": ranked}
        if scores is not None:
            entry.update(score=float(scores[number]), accepted=bool(scores[number] >= threshold))
        entries.append(entry)
    return entries


def predict_images(paths: Sequence[str | os.PathLike], model, *, class_names: Sequence[str] | None = None,
                   top: int = 3, abstention: dict | None = None) -> list[dict]:
    """Classify image files; a bad file gives an entry with an error and does not stop the others.

    Parameters
    ----------
    paths : sequence of path-like
        Image files (see :func:`collect_image_files` for folders).
    model : keras.Model
        A model taking (n, 28, 28, 1) inputs in [0, 1]. A saved model with its threshold is loaded by
        :func:`digitrec_utils.application.models.load_model_in_use` (or classified by
        :func:`digitrec_utils.application.images.predict_files`).
    class_names : sequence of str, optional
        Label names; the digits 0-9 by default.
    top : int, default=3
        How many labels to list per image, most probable first.
    abstention : dict, optional
        ``{"score": name, "threshold": value}`` (see :mod:`digitrec_utils.evaluation.scores`): each entry then gains
        ``score`` and ``accepted`` (the score reaches the threshold); a threshold of 0 or None accepts every image.

    Returns
    -------
    predictions : list of dict
        In the order of ``paths``: ``{"path", "label", "probability", "top": [{"label", "probability"}],
        "prepared_as"}`` (plus ``score`` and ``accepted`` with ``abstention``), or ``{"path", "error"}`` for
        a file that could not be used. ``prepared_as`` says how the image was prepared: ``field`` (a 28x28
        image), ``scan`` or ``photo`` (see :func:`prepare_image`).

    Raises
    ------
    ModelFileError
        When the class names do not match the model's outputs.
    """
    return list(iterate_predictions(paths, model, class_names=class_names, top=top, abstention=abstention))


def format_prediction(entry: dict) -> str:
    """Return one line for an entry of :func:`predict_images`: ``path: 4 (0.98), 9 (0.01), 7 (0.00)``, with
    ``unsure (score 0.41)`` after it when the score is below the threshold."""
    if "error" in entry:
        return f"error: {entry['error']}"
    ranked = ", ".join(f"{item['label']} ({item['probability']:.2f})" for item in entry["top"])
    unsure = f"  unsure (score {entry['score']:.2f})" if entry.get("accepted") is False else ""
    return f"{entry['path']}: {ranked}{unsure}"


def render_digit_photo(digit: np.ndarray, path: str | os.PathLike, *, offset: tuple[int, int] = (20, -15),
                       size: int = 200, scale: int = 5, colour: bool = True) -> Path:
    """Write a 28x28 MNIST-style digit as a large black-on-white image, shifted from the centre by ``offset``.

    It stands in for a photographed or scanned digit in the notebook's example and in the tests.

    Parameters
    ----------
    digit : ndarray of shape (28, 28), uint8
        Light ink on a dark background, as in MNIST.
    path : path-like
        Where to write it; the suffix picks the format.
    offset : tuple of int
        (right, down) shift in pixels of the output.
    size : int, default=200
    scale : int, default=5
    colour : bool, default=True
        Save as RGB rather than grayscale.
    """

    ink = Image.fromarray(255 - np.asarray(digit, dtype=np.uint8)).resize((28 * scale, 28 * scale),
                                                                          Image.Resampling.BICUBIC)
    canvas = Image.new("L", (size, size), 255)
    canvas.paste(ink, ((size - ink.width) // 2 + offset[0], (size - ink.height) // 2 + offset[1]))
    path = Path(path)
    (canvas.convert("RGB") if colour else canvas).save(path)
    return path


def render_example_photo(path: str | os.PathLike, *, index: int = 0) -> tuple[Path, str]:
    """Render image ``index`` of the embedded mnist-sample as a photo-like file; return the path and its label."""
    sample = load_dataset("mnist-sample")
    if not 0 <= index < len(sample.y_train):
        raise ValueError(f"example_digit = {index}: choose an index from 0 to {len(sample.y_train) - 1}.")
    return render_digit_photo(sample.x_train[index], path), sample.class_names[int(sample.y_train[index])]
