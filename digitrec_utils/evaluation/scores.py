"""Confidence scores of a prediction: one number in [0, 1], higher meaning surer.

One threshold on one score decides whether a model answers (see :mod:`digitrec_utils.evaluation.abstention`); the
same score and threshold serve ``digitrec predict`` and the reports, so the score must mean the same
everywhere. Saved models output probabilities (a softmax), so the scores are computed from them:

``top_probability``
    The largest probability.
``margin``
    The largest probability minus the second largest: low when two classes compete.
``certainty``
    One minus the entropy of the probabilities divided by its largest possible value, log(n_classes):
    1 for a one-hot answer, 0 for a uniform one.

(An energy score needs the logits, which a softmax output no longer carries up to a constant.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from digitrec_utils.exceptions import ParameterError

SCORE_NAMES = ("top_probability", "margin", "certainty")


def compute_score(probabilities: np.ndarray, name: str = "top_probability") -> np.ndarray:
    """Return one confidence score per row of ``probabilities``, in [0, 1].

    Parameters
    ----------
    probabilities : ndarray of shape (n_images, n_classes)
        Each row sums to 1.
    name : {"top_probability", "margin", "certainty"}

    Returns
    -------
    scores : ndarray of shape (n_images,)
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[1] < 2:
        raise ValueError(f"compute_score needs probabilities of shape (n_images, n_classes), not "
                         f"{probabilities.shape}.")
    if name == "top_probability":
        scores = probabilities.max(axis=1)
    elif name == "margin":
        ordered = np.sort(probabilities, axis=1)
        scores = ordered[:, -1] - ordered[:, -2]
    elif name == "certainty":
        clipped = np.clip(probabilities, 1e-12, 1.0)
        entropy = -(clipped * np.log(clipped)).sum(axis=1)
        scores = 1.0 - entropy / np.log(probabilities.shape[1])
    else:
        raise ParameterError(f"score {name!r} is unknown; allowed values are {', '.join(SCORE_NAMES)}.")
    return np.clip(scores, 0.0, 1.0)


def rank_scores(known: np.ndarray, unknown: np.ndarray) -> pd.DataFrame:
    """Rank the scores by how well they separate known images (digits) from unknown ones (not digits).

    Use it on validation images only. The measure is the area under the ROC curve (scikit-learn's
    ``roc_auc_score``) of the score, known images being the positive class: 1 separates perfectly,
    0.5 not at all.

    Parameters
    ----------
    known, unknown : ndarray of shape (n, n_classes)
        The model's probabilities for images of its classes, and for images of none of them.

    Returns
    -------
    ranking : DataFrame with columns score and auroc, best first (ties: the order of SCORE_NAMES)
    """

    truth = np.concatenate([np.ones(len(known)), np.zeros(len(unknown))])
    rows = [{"score": name, "auroc": float(roc_auc_score(truth, np.concatenate(
        [compute_score(known, name), compute_score(unknown, name)])))} for name in SCORE_NAMES]
    return pd.DataFrame(rows).sort_values("auroc", ascending=False, kind="stable").reset_index(drop=True)
