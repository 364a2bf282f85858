"""Which unlabelled digits to label first: the least certain, spread over what the model confuses.

Uncertainty sampling alone picks many near-copies of one confusion (a hundred open-topped 4s); diversity
alone picks digits the model already reads. Cluster-margin sampling (Citovsky et al., NeurIPS 2021) does
both: it keeps the digits with the smallest margin between the model's two most probable classes, groups
them by what the model hesitates between (k-means on their probabilities: a 4-or-9 group, a 3-or-5 group,
...), and takes the least certain digit of each group in turn. Here the candidates are the ``pool_factor``
times ``count`` least certain digits; scikit-learn's k-means makes the groups.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans

# Candidates kept per digit to suggest: the least certain ``POOL_FACTOR * count`` digits are grouped.
POOL_FACTOR = 5


def measure_margins(probabilities: np.ndarray) -> np.ndarray:
    """Return each row's margin: its highest probability minus its second highest (0: torn, 1: sure).

    Examples
    --------
    >>> measure_margins(np.array([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2]])).round(2).tolist()
    [0.5, 0.0]
    """
    ordered = np.sort(np.asarray(probabilities, dtype=np.float64), axis=1)
    return ordered[:, -1] - ordered[:, -2]


def suggest_digits_to_label(probabilities: np.ndarray, count: int, *, seed: int = 0,
                            pool_factor: int = POOL_FACTOR) -> np.ndarray:
    """Return the positions of the ``count`` digits whose labels should help most, in the order to label them.

    Parameters
    ----------
    probabilities : ndarray of shape (n, n_classes)
        The model's probabilities for the unlabelled digits.
    count : int
        How many to suggest; all of them when it reaches ``n``.
    seed : int
        Seeds k-means.
    pool_factor : int
        The least certain ``pool_factor * count`` digits are the candidates.

    Returns
    -------
    positions : ndarray of int
        Each group's least certain digit, groups taken from the least certain, round after round.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if count < 1:
        raise ValueError(f"count = {count}: suggest at least one digit.")
    margins = measure_margins(probabilities)
    by_margin = np.argsort(margins, kind="stable")
    if count >= len(by_margin):
        return by_margin
    candidates = by_margin[:min(len(by_margin), pool_factor * count)]
    n_groups = min(count, len(candidates))
    groups = KMeans(n_clusters=n_groups, n_init=1, random_state=seed).fit_predict(
        np.log(np.clip(probabilities[candidates], 1e-6, 1.0)))
    # Each group's members from the least certain; the groups ordered by their least certain member.
    members = {group: candidates[groups == group] for group in range(n_groups)}
    queues = sorted(members.values(), key=lambda positions: margins[positions[0]])
    chosen: list[int] = []
    depth = 0
    while len(chosen) < count:
        for queue in queues:
            if depth < len(queue) and len(chosen) < count:
                chosen.append(int(queue[depth]))
        depth += 1
    return np.asarray(chosen, dtype=int)
