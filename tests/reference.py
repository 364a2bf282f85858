"""Slow, obvious computations that tests compare the package's fast ones against (another route to each answer)."""

from __future__ import annotations

import numpy as np


def find_lowest_threshold(scores: np.ndarray, correct: np.ndarray, target: float) -> float | None:
    """The lowest score, among those seen, at which the images scoring at least it are right ``target`` of the time.

    Tries every distinct score one by one, as the definition reads; None when none reaches ``target``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    reaching = [value for value in np.unique(scores) if correct[scores >= value].mean() >= target]
    return float(min(reaching)) if reaching else None
