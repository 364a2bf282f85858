"""``digitrec predict`` and ``digitrec read``: a saved model's answers on image files, one entry per image.

A bad file gives an entry with its error and does not stop the others; entries come as soon as their batch is
done, so a caller can print each at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitrec_utils.application.models import ModelInUse, check_min_confidence, ignore, load_model_in_use
from digitrec_utils.data.preparation import collect_image_files, describe_skipped, prepare_image_files
from digitrec_utils.exceptions import ImageError, ParameterError
from digitrec_utils.imaging.predict import format_prediction, iterate_predictions
from digitrec_utils.imaging.reading import format_reading, iterate_readings


@dataclass
class ImageAnswers:
    """The answers of a saved model on image files.

    Attributes
    ----------
    model : ModelInUse
    entries : iterator of dict
        One per image, in the order of the files (see :func:`digitrec_utils.imaging.predict.predict_images` and
        :func:`digitrec_utils.imaging.reading.read_images`); an entry with ``error`` for a file that could not be
        used.
    format_entry : callable
        One line of text for an entry.
    """

    model: ModelInUse
    entries: Iterator[dict]
    format_entry: Callable[[dict], str]


def classify_images(images: Sequence[str | os.PathLike], *, model: str | Path | None = None, top: int = 3,
                    min_confidence: float | None = None, notify: Callable[[str], None] = ignore) -> ImageAnswers:
    """Classify image files, or folders of them, with a saved model (``digitrec predict``).

    Parameters
    ----------
    images : sequence of path-like
        Image files, or folders of them (walked with their sub-folders; files that are not images are named
        once through ``notify`` and left out).
    model : path-like, optional
        The saved model; by default the newest good run's (:func:`~.models.load_model_in_use`).
    top : int
        Labels listed per image.
    min_confidence : float, optional
        Answer only images whose score reaches it, instead of the saved threshold.
    notify : callable
    """
    if top < 1:
        raise ParameterError(f"--top {top}: list at least one label per image.")
    paths, in_use = _open_images(images, model, min_confidence, "classify", notify)
    entries = iterate_predictions(paths, in_use.model, class_names=in_use.class_names, top=top,
                                  abstention=in_use.abstention)
    return ImageAnswers(in_use, entries, format_prediction)


def read_images(images: Sequence[str | os.PathLike], *, model: str | Path | None = None,
                expect_digits: int | None = None, debug_dir: str | os.PathLike | None = None,
                min_confidence: float | None = None, notify: Callable[[str], None] = ignore) -> ImageAnswers:
    """Read the digit string in each photo or scan, left to right (``digitrec read``).

    Takes the arguments of :func:`classify_images`, with ``expect_digits`` (a reading of another length is not
    accepted) and ``debug_dir`` (where each image's cleaned ink, boxes and prepared digits are written).
    """
    if expect_digits is not None and expect_digits < 1:
        raise ParameterError(f"--expect-digits {expect_digits}: give the number of digits each image holds (at "
                             "least 1).")
    paths, in_use = _open_images(images, model, min_confidence, "read", notify)
    entries = iterate_readings(paths, in_use.model, class_names=in_use.class_names, abstention=in_use.abstention,
                               expect_digits=expect_digits, debug_dir=debug_dir)
    return ImageAnswers(in_use, entries, format_reading)


def predict_files(paths: Sequence[str | os.PathLike], model: str | Path, *, top: int = 3) -> list[dict]:
    """Classify image files with the saved model at ``model`` and its saved threshold; a list of entries.

    For notebooks and scripts; :func:`classify_images` is the command's service.
    """
    in_use = load_model_in_use(model)
    return list(iterate_predictions(paths, in_use.model, class_names=in_use.class_names, top=top,
                                    abstention=in_use.abstention))


def _open_images(images, model, min_confidence, what: str, notify) -> tuple[list[Path], ModelInUse]:
    """The image files (folders expanded, the rest named), then the model: no model loads for no images."""
    check_min_confidence(min_confidence)  # Before the folders are walked.
    paths = find_image_files(images, what=what, notify=notify)
    return paths, load_model_in_use(model, min_confidence=min_confidence, describe_threshold=True, notify=notify)


def find_image_files(images: Sequence[str | os.PathLike], *, what: str,
                     notify: Callable[[str], None] = ignore) -> list[Path]:
    """The image files of ``images`` (folders walked); the other files the folders held are named once.

    Raises
    ------
    ImageError
        When there is no image file at all, saying what it was needed for (``what``: "classify", ...).
    """
    paths, skipped = collect_image_files(images)
    if skipped:
        notify(describe_skipped(skipped))
    if not paths:
        raise ImageError(f"{', '.join(str(image) for image in images)}: no image files to {what} (the folders hold "
                         "no PNG, JPEG, BMP or GIF files).")
    return paths


def read_prepared_images(paths: Sequence[Path], *, notify: Callable[[str], None] = ignore
                         ) -> tuple[list[Path], np.ndarray, list[str]]:
    """Every image of ``paths`` prepared as ``predict`` prepares it, held in memory (a few thousand at most).

    Returns
    -------
    names : list of Path
        The files that could be used, in order.
    images : ndarray of shape (n, 28, 28), float32 in [0, 1]
    errors : list of str
        One message per file that could not be used (each also given to ``notify``; the others go through).
    """
    names, prepared, errors = [], [], []
    for batch in prepare_image_files(paths, progress=None):
        errors += list(batch.errors.values())
        names += [batch.paths[position] for position in batch.positions]
        prepared.append(batch.images)
    for error in errors:
        notify(f"error: {error} (left out)")
    images = np.concatenate(prepared) if prepared else np.zeros((0, 28, 28), dtype=np.float32)
    return names, images, errors
