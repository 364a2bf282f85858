"""Watching the unlabelled stream after deployment: has it changed, and how accurate is the model on it now?

Two questions, answered without labels (issue 53; ``digitrec monitor`` is to be built on these):

- **Has the stream changed?** Each measured property of the incoming digits (ink share, height, slant, the
  model's confidence, ...) is compared with the same property on the reference digits the model was chosen on,
  with SciPy's two-sample Kolmogorov-Smirnov test; the predicted-class shares with a chi-square test of the
  contingency table; the model's embeddings with the maximum mean discrepancy (MMD, Gretton et al., JMLR 2012)
  and a permutation p-value. Many tests at once would ring by chance, so the p-values are corrected for their
  number (Benjamini-Hochberg, SciPy's ``false_discovery_control``). Rabanser et al. ("Failing Loudly",
  NeurIPS 2019) found tests on a model's outputs the most reliable detectors of shift on image data.
- **How accurate is it now?** Average Thresholded Confidence (ATC, Garg et al., ICLR 2022): on the labelled
  reference digits, the confidence threshold above which the share of digits equals the accuracy there; on
  the incoming digits, the share above that threshold estimates their accuracy. The mean top probability does
  not (it missed by 0.10 to 0.15 in the issue's check, label smoothing keeping it low). The interval holds the
  sampling of the incoming and of the reference digits, not the method's own error under a shift, which has to
  be measured on labelled sources (docs/RESULTS.md, once measured).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

# The significance level of the corrected tests: a change is reported below it.
SIGNIFICANCE = 0.01


@dataclass(frozen=True)
class AccuracyEstimate:
    """An accuracy estimated without labels, with its 95% interval.

    Attributes
    ----------
    accuracy : float
    low, high : float
    n_images : int
    """

    accuracy: float
    low: float
    high: float
    n_images: int


@dataclass(frozen=True)
class AtcEstimator:
    """Average Thresholded Confidence fitted on labelled reference digits (see the module's docstring).

    Attributes
    ----------
    threshold : float
        The score above which the share of reference digits equals their accuracy.
    n_reference : int
        Reference digits it was fitted on: the threshold's own sampling error shrinks with them.
    """

    threshold: float
    n_reference: int

    def estimate(self, scores: np.ndarray) -> AccuracyEstimate:
        """Estimate the model's accuracy on unlabelled digits: the share of their scores above the threshold.

        The 95% interval adds the two sampling errors, of the incoming digits and of the reference digits that
        placed the threshold (normal approximation, clipped to [0, 1]); the method's own error under a shift
        is not in it.
        """
        scores = np.asarray(scores, dtype=np.float64)
        if not len(scores):
            raise ValueError("estimate needs at least one score.")
        share = float((scores > self.threshold).mean())
        spread = 1.96 * np.sqrt(share * (1 - share) * (1 / len(scores) + 1 / self.n_reference))
        return AccuracyEstimate(share, max(0.0, share - spread), min(1.0, share + spread), len(scores))


def fit_atc(scores: np.ndarray, correct: np.ndarray) -> AtcEstimator:
    """Fit ATC on labelled reference digits: the threshold above which their share equals their accuracy.

    Parameters
    ----------
    scores : ndarray of shape (n,)
        A confidence score of the reference digits, higher meaning surer (ATC's paper prefers the negative
        entropy of the probabilities; any score of :mod:`digitrec_utils.evaluation.scores` works).
    correct : ndarray of shape (n,), bool
        Whether the model read each reference digit right.

    Examples
    --------
    >>> fit_atc(np.array([0.1, 0.4, 0.6, 0.9]), np.array([True, False, True, True])).threshold
    0.1
    """
    scores = np.asarray(scores, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    if scores.shape != correct.shape or scores.ndim != 1 or not len(scores):
        raise ValueError("fit_atc needs one score and one correctness flag per reference digit.")
    n_wrong = int(len(scores) - correct.sum())
    # The share of scores strictly above the threshold must be the accuracy: the threshold is the
    # n_wrong-th smallest score (below every score when every digit is right).
    ordered = np.sort(scores)
    threshold = float(ordered[n_wrong - 1]) if n_wrong else float(np.nextafter(ordered[0], -np.inf))
    return AtcEstimator(threshold, len(scores))


def compare_properties(reference: dict[str, np.ndarray], incoming: dict[str, np.ndarray]) -> pd.DataFrame:
    """Test each property of the incoming digits against the reference: Kolmogorov-Smirnov, corrected p-values.

    Parameters
    ----------
    reference, incoming : dict of str to ndarray
        The same properties (ink share, height, the model's confidence, ...), one value per digit.

    Returns
    -------
    table : DataFrame
        One row per property, most changed first: ``property``, ``reference median``, ``incoming median``,
        ``statistic`` (KS's largest gap between the two distributions), ``p-value`` and ``corrected p-value``
        (Benjamini-Hochberg over the properties tested together) and ``changed`` (corrected p-value below
        :data:`SIGNIFICANCE`).
    """
    missing = sorted(set(reference) ^ set(incoming))
    if missing:
        raise ValueError(f"the reference and the incoming digits must have the same properties; {missing} differ.")
    rows = []
    for name in reference:
        result = stats.ks_2samp(np.asarray(reference[name], dtype=np.float64),
                                np.asarray(incoming[name], dtype=np.float64))
        rows.append({"property": name, "reference median": float(np.median(reference[name])),
                     "incoming median": float(np.median(incoming[name])), "statistic": float(result.statistic),
                     "p-value": float(result.pvalue)})
    return _correct(pd.DataFrame(rows))


def compare_class_shares(reference: np.ndarray, incoming: np.ndarray, n_classes: int) -> tuple[float, float]:
    """Chi-square test of the predicted classes' shares, reference against incoming; (statistic, p-value)."""
    counts = np.stack([np.bincount(np.asarray(reference), minlength=n_classes),
                       np.bincount(np.asarray(incoming), minlength=n_classes)])
    counts = counts[:, counts.sum(axis=0) > 0]  # A class neither predicts adds nothing (and divides by zero).
    if counts.shape[1] < 2:
        return 0.0, 1.0
    statistic, p_value, _, _ = stats.chi2_contingency(counts)
    return float(statistic), float(p_value)


def measure_mmd(reference: np.ndarray, incoming: np.ndarray, *, permutations: int = 200, seed: int = 0
                ) -> tuple[float, float]:
    """The squared maximum mean discrepancy between two samples of embeddings, and its permutation p-value.

    The kernel is Gaussian with the median distance between the pooled points as its width (the median
    heuristic); the p-value is the share of random relabellings of the pooled points whose MMD reaches the
    observed one (with the observed counted, so never 0).
    """
    reference = np.asarray(reference, dtype=np.float64).reshape(len(reference), -1)
    incoming = np.asarray(incoming, dtype=np.float64).reshape(len(incoming), -1)
    pooled = np.concatenate([reference, incoming])
    pairs = distance.pdist(pooled, "sqeuclidean")  # Each pair once; an (n, n, d) difference array would not fit.
    squared = distance.squareform(pairs)
    width = np.median(pairs) or 1.0
    kernel = np.exp(-squared / width)
    n = len(reference)

    def _mmd(order: np.ndarray) -> float:
        first, second = order[:n], order[n:]
        return float(kernel[np.ix_(first, first)].mean() + kernel[np.ix_(second, second)].mean()
                     - 2 * kernel[np.ix_(first, second)].mean())

    observed = _mmd(np.arange(len(pooled)))
    rng = np.random.default_rng(seed)
    reached = sum(_mmd(rng.permutation(len(pooled))) >= observed for _ in range(permutations))
    return observed, (reached + 1) / (permutations + 1)


def _correct(table: pd.DataFrame) -> pd.DataFrame:
    """Add the Benjamini-Hochberg corrected p-values and the verdict, most changed first."""
    table["corrected p-value"] = stats.false_discovery_control(table["p-value"].to_numpy(), method="bh")
    table["changed"] = table["corrected p-value"] < SIGNIFICANCE
    return table.sort_values("statistic", ascending=False, kind="stable").reset_index(drop=True)
