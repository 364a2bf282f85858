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
``unit_logit``
    The largest logit once the logits are centred and scaled to length 1. The probabilities' logarithms are the
    logits less one constant per digit, which the centring removes; the scaling removes their size, which can
    shrink on thinner or fainter strokes while the same class wins. It is the same for ``softmax(z)`` and
    ``softmax(k * z)`` for any k > 0 (while no probability falls below 1e-12), and lies between 0 (a uniform
    answer) and sqrt((n - 1) / n), about 0.95 for ten classes. ``digitrec monitor`` estimates accuracy with it
    (:data:`digitrec_utils.evaluation.monitoring.ATC_SCORE`); no threshold is chosen on it.

(An energy score needs the logits themselves, constant included, which a softmax output no longer carries.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from digitrec_utils.exceptions import ParameterError

# The scores a threshold is chosen among (05 ranks them with rank_scores).
SCORE_NAMES = ("top_probability", "margin", "certainty")
# Every score compute_score knows.
ALL_SCORE_NAMES = (*SCORE_NAMES, "unit_logit")


def compute_score(probabilities: np.ndarray, name: str = "top_probability") -> np.ndarray:
    """Return one confidence score per row of ``probabilities``, in [0, 1].

    Parameters
    ----------
    probabilities : ndarray of shape (n_images, n_classes)
        Each row sums to 1.
    name : {"top_probability", "margin", "certainty", "unit_logit"}

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
    elif name == "unit_logit":
        logits = np.log(np.clip(probabilities, 1e-12, 1.0))
        centred = logits - logits.mean(axis=1, keepdims=True)
        length = np.linalg.norm(centred, axis=1)
        scores = np.divide(centred.max(axis=1), length, out=np.zeros(len(length)), where=length > 0)
    else:
        raise ParameterError(f"score {name!r} is unknown; allowed values are {', '.join(ALL_SCORE_NAMES)}.")
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
