"""Adapting a saved model to an office's digits: the pieces that ``digitrec adapt`` and its measurements share.

The fine-tuning itself is :func:`digitrec_utils.models.adaptation.fine_tune`; here are the parent's original
digits (to replay and to measure forgetting on), a model's answers on some of the office's digits, and the
confusions adapting fixed or made.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from digitrec_utils.data.labelled import LabelledDigits
from digitrec_utils.data.preprocessing import scale_images
from digitrec_utils.evaluation.scores import compute_score
from digitrec_utils.exceptions import DigitrecError
from digitrec_utils.models.acquisition import rebuild_split


@dataclass
class Reading:
    """A model's answers on some digits: predictions (-1 where an image could not be used) and scores."""

    predictions: np.ndarray
    scores: np.ndarray

    def correct(self, labels: np.ndarray) -> np.ndarray:
        return self.predictions == labels


def choose_augmentation_of(description: dict) -> str:
    """The geometric augmentation a saved model trained with (its JSON's ``augmentation``): mirrors only for
    clothes; ``digits`` where it recorded none."""
    return {"fashion": "fashion", "none": "none"}.get(str(description.get("augmentation")), "digits")


def load_original_digits(description: dict) -> tuple:
    """The parent's original training digits (to replay) and test digits (to measure forgetting).

    Returns
    -------
    replay, test : tuple of (images float32 in [0, 1], labels), or None
    problem : str
        Why they could not be loaded (the dataset's files absent, another checksum, no split recorded); "" when
        they were.
    """
    try:
        _, splits = rebuild_split(description)
    except DigitrecError as error:
        return None, None, str(error)
    return ((scale_images(splits.x_train), np.asarray(splits.y_train)),
            (scale_images(splits.x_test), np.asarray(splits.y_test)), "")


def predict_labels(model, images: np.ndarray) -> np.ndarray:
    """The class each of ``images`` (n, 28, 28), float32 in [0, 1], is read as."""
    return np.asarray(model.predict(np.asarray(images, dtype=np.float32)[..., None], verbose=0,
                                    batch_size=512)).argmax(axis=1)


def read_positions(model, digits: LabelledDigits, positions: np.ndarray, score_name: str) -> Reading:
    """A model's predictions and scores on ``positions``; an image that could not be used is wrong, score -1."""
    usable = digits.usable[positions]
    predictions = np.full(len(positions), -1)
    scores = np.full(len(positions), -1.0)
    if usable.any():
        probabilities = np.asarray(model.predict(digits.images[positions][usable][..., None], verbose=0,
                                                 batch_size=512), dtype=np.float64)
        predictions[usable] = probabilities.argmax(axis=1)
        scores[usable] = compute_score(probabilities, score_name)
    return Reading(predictions, scores)


def count_confusions(labels: np.ndarray, before: Reading, after: Reading) -> pd.DataFrame:
    """Per (true, read as) pair: how many check digits the parent and the adapted model misread that way."""
    rows = {}
    for name, reading in (("before", before), ("after", after)):
        for true_label, predicted in zip(labels, reading.predictions, strict=True):
            if predicted != true_label and predicted >= 0:
                rows.setdefault((int(true_label), int(predicted)), {"before": 0, "after": 0})[name] += 1
    table = pd.DataFrame([{"true": true_label, "read as": predicted, **counts}
                          for (true_label, predicted), counts in rows.items()],
                         columns=["true", "read as", "before", "after"])
    table["fixed"] = (table["before"] - table["after"]).clip(lower=0)
    table["new"] = (table["after"] - table["before"]).clip(lower=0)
    return table.sort_values(["before", "after"], ascending=False, kind="stable").reset_index(drop=True)


