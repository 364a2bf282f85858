"""A saved model's answers on labelled digits, a batch at a time: what ``evaluate``, ``calibrate`` and 05 measure.

:func:`score_labelled_digits` runs a model over labelled digits (:mod:`digitrec_utils.data.labelled`) a batch at a
time, keeping per image only its label and probabilities (and the images of the mistakes, for examples), so that
memory stays bounded whatever their number.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from digitrec_utils.data.labelled import LabelledSource, count_kinds
from digitrec_utils.evaluation.scores import compute_score

# The images of at most this many mistakes are kept for the examples of the most confused pairs.
MAX_KEPT_MISTAKES = 2_000
# The roles of a set of other writers' digits in 05_deployment: it helped choose the threshold, or it is only
# reported (an honest estimate).
ROLE_CHOOSES = "chose the threshold"
ROLE_REPORTS = "reported only"


@dataclass
class ScoredDigits:
    """A model's probabilities for every labelled digit of a source.

    Attributes
    ----------
    source : LabelledSource
    names : list of str
    labels : ndarray of shape (n_images,)
    probabilities : ndarray of shape (n_images, n_classes)
        Zeros where the image could not be used.
    usable : ndarray of shape (n_images,), bool
    errors : list of str
        One message per image that could not be used.
    kinds : dict of str to int
        How many images were prepared each way (``field``, ``scan``, ``photo``).
    mistakes : dict of int to ndarray
        Prepared images of (some of) the misclassified digits, by position.
    class_names : list of str
    """

    source: LabelledSource
    names: list[str]
    labels: np.ndarray
    probabilities: np.ndarray
    usable: np.ndarray
    errors: list[str]
    kinds: dict[str, int]
    mistakes: dict[int, np.ndarray] = field(repr=False)
    class_names: list[str] = field(default_factory=list)

    @property
    def predictions(self) -> np.ndarray:
        """The predicted label of each image; -1 where the image could not be used."""
        return np.where(self.usable, self.probabilities.argmax(axis=1), -1)

    @property
    def correct(self) -> np.ndarray:
        return self.predictions == self.labels

    def compute_scores(self, score: str) -> np.ndarray:
        """The confidence score of each image (see :mod:`digitrec_utils.evaluation.scores`); -1 where unusable."""
        scores = compute_score(np.where(self.usable[:, None], self.probabilities, 1.0 / self.probabilities.shape[1]),
                               score)
        return np.where(self.usable, scores, -1.0)


def score_labelled_digits(source: LabelledSource, model, *, class_names=None, batch_size: int | None = None,
                          progress: bool | None = None) -> ScoredDigits:
    """Run ``model`` over every digit of ``source``, a batch at a time.

    Parameters
    ----------
    source : LabelledSource
        From :func:`digitrec_utils.data.labelled.open_labelled_source`.
    model : keras.Model
        Takes (n, 28, 28, 1) inputs in [0, 1] and outputs probabilities.
    class_names : sequence of str, optional
        The digits 0-9 by default.
    batch_size : int, optional
    progress : bool, optional
        A progress bar on standard error; by default for more than a few hundred images.
    """
    names, labels, rows, usable, errors, kinds, mistakes = [], [], [], [], [], [], {}
    for batch in source.iterate_batches(batch_size=batch_size, progress=progress):
        offset = len(names)
        names += batch.names
        labels.append(batch.labels)
        errors += list(batch.errors.values())
        kinds += batch.kinds
        probabilities = None
        if len(batch.images):
            probabilities = np.asarray(model.predict(batch.images[..., None], verbose=0), dtype=np.float64)
        n_classes = probabilities.shape[1] if probabilities is not None else len(class_names or range(10))
        block = np.zeros((len(batch.names), n_classes))
        fits = np.zeros(len(batch.names), dtype=bool)
        if probabilities is not None:
            block[batch.positions] = probabilities
            fits[batch.positions] = True
            wrong = np.flatnonzero(probabilities.argmax(axis=1) != batch.labels[batch.positions])
            for number in wrong:
                if len(mistakes) < MAX_KEPT_MISTAKES:
                    mistakes[offset + batch.positions[number]] = batch.images[number]
        rows.append(block)
        usable.append(fits)
    probabilities = np.concatenate(rows)
    names_of_classes = list(class_names or [str(digit) for digit in range(probabilities.shape[1])])
    return ScoredDigits(source, names, np.concatenate(labels).astype(int), probabilities, np.concatenate(usable),
                        errors, count_kinds(kinds), mistakes, names_of_classes)


def find_where_chosen(abstention: dict | None, sha256: str) -> str | None:
    """Say whether a saved threshold was chosen on the digits whose SHA-256 is ``sha256``.

    Returns
    -------
    where : {"half", "all"} or None
        ``"half"`` when ``calibrate`` chose it on one half of them (its entry's ``data_sha256``), ``"all"`` when
        05_deployment chose it on them (a ``threshold_field_data`` set of its entry's ``field``), else None.
    """
    abstention = abstention or {}
    if not sha256:
        return None
    if abstention.get("data_sha256") == sha256:
        return "half"
    chose = [row.get("sha256") for row in abstention.get("field") or [] if row.get("role") == ROLE_CHOOSES]
    return "all" if sha256 in chose else None
