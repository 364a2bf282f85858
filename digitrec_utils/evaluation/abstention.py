"""Selective prediction: answer only when sure enough, and hand the rest to a person.

A model answers an image when its confidence score reaches a threshold. The threshold is chosen on the
validation part (never on test) as the lowest that reaches a target accuracy on the accepted validation
images, which answers as many images as the target allows. On test it is then reported once: coverage
(the share answered) and the accuracy of the answered, each with its 95% Wilson interval, and the whole
accuracy-coverage curve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from digitrec_utils.evaluation.evaluation import compute_accuracy_interval, format_percent_interval
from digitrec_utils.exceptions import ParameterError


@dataclass(frozen=True)
class ThresholdChoice:
    """The threshold chosen on validation, and what it gave there.

    Attributes
    ----------
    threshold : float or None
        The lowest score whose accepted validation images reach ``target``; None when no threshold does
        (the model then answers everything).
    target : float
    coverage : float
        Share of validation images accepted at ``threshold`` (1.0 when it is None).
    accuracy : float
        Accuracy of the accepted validation images.
    n_images : int
    chosen_on : str
        Where it was chosen, in words ("validation" unless another set raised it).
    """

    threshold: float | None
    target: float
    coverage: float
    accuracy: float
    n_images: int
    chosen_on: str = "validation"

    @property
    def reached(self) -> bool:
        return self.threshold is not None

    def describe(self) -> str:
        """Say what was chosen on validation, or that nothing reached the target."""
        if not self.reached:
            return (f"No confidence threshold reaches {self.target:.2%} accuracy on the accepted validation images "
                    f"(answering everything gives {self.accuracy:.2%}), so the model keeps answering every image. "
                    "Lower the target, or improve the model.")
        if self.chosen_on != "validation":
            return (f"Threshold {self.threshold:.4f}, the lowest whose accepted digits reach {self.target:.2%} on "
                    f"each of {self.chosen_on}: it answers {self.coverage:.1%} of the {self.n_images:,} validation "
                    f"images, {self.accuracy:.2%} of them right.")
        return (f"Threshold {self.threshold:.4f}, the lowest whose accepted validation images reach "
                f"{self.target:.2%}: it answers {self.coverage:.1%} of the {self.n_images:,} validation images, "
                f"{self.accuracy:.2%} of them right.")


@dataclass(frozen=True)
class SelectiveOutcome:
    """Coverage and the accuracy of the answered images at one threshold, with 95% intervals."""

    threshold: float | None
    n_images: int
    n_answered: int
    n_answered_right: int

    @property
    def coverage(self) -> float:
        return self.n_answered / self.n_images if self.n_images else 0.0

    @property
    def coverage_ci95(self) -> tuple[float, float]:
        return compute_accuracy_interval(self.n_answered, self.n_images)

    @property
    def accuracy(self) -> float:
        return self.n_answered_right / self.n_answered if self.n_answered else float("nan")

    @property
    def accuracy_ci95(self) -> tuple[float, float]:
        if not self.n_answered:
            return float("nan"), float("nan")
        return compute_accuracy_interval(self.n_answered_right, self.n_answered)

    def describe(self, items: str = "digits") -> str:
        """Return the sentence an office needs: what share is answered, how well, and what goes to a person."""
        if not self.n_answered:
            return f"At this threshold no {items} are answered automatically; every one goes to a person."
        return (f"Answer {self.coverage:.1%} of {items} automatically (95% CI "
                f"{format_percent_interval(*self.coverage_ci95)}) at {self.accuracy:.2%} accuracy (95% CI "
                f"{format_percent_interval(*self.accuracy_ci95, decimals=2)}); route the other "
                f"{1 - self.coverage:.1%} to a person.")


def choose_threshold(scores: np.ndarray, correct: np.ndarray, target: float) -> ThresholdChoice:
    """Return the lowest score threshold whose accepted images reach ``target`` accuracy.

    Use it on the validation part only. An image is accepted when its score is at least the threshold.

    Parameters
    ----------
    scores : ndarray of shape (n_images,)
        Confidence scores in [0, 1], higher meaning surer.
    correct : ndarray of shape (n_images,) of bool
        Whether the model's answer for each image is right.
    target : float
        The accuracy the accepted images must reach, in (0, 1).

    Returns
    -------
    choice : ThresholdChoice
        With ``threshold`` None when no threshold reaches the target.
    """
    scores = np.asarray(scores, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    if scores.shape != correct.shape or scores.ndim != 1 or not len(scores):
        raise ValueError("choose_threshold needs one score and one correctness flag per image, at least one image.")
    if not 0.0 < target < 1.0:
        raise ValueError(f"target {target!r} must lie strictly between 0 and 1.")
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_correct = scores[order], correct[order]
    # Accepting every image whose score is at least sorted_scores[i] accepts the first `last + 1` images,
    # where `last` is the last position of that score value (ties are accepted together).
    distinct, first_positions = np.unique(-sorted_scores, return_index=True)
    last_positions = np.append(first_positions[1:], len(sorted_scores)) - 1
    right_so_far = np.cumsum(sorted_correct)
    accepted = last_positions + 1
    accuracies = right_so_far[last_positions] / accepted
    meeting = np.flatnonzero(accuracies >= target)
    if not meeting.size:
        return ThresholdChoice(None, target, 1.0, float(correct.mean()), len(scores))
    lowest = meeting[-1]  # Distinct scores run from the highest to the lowest: the last that meets it.
    return ThresholdChoice(float(-distinct[lowest]), target, float(accepted[lowest] / len(scores)),
                           float(accuracies[lowest]), len(scores))


def measure_selective(scores: np.ndarray, correct: np.ndarray, threshold: float | None) -> SelectiveOutcome:
    """Return coverage and the accuracy of the answered at ``threshold`` (None answers everything)."""
    scores = np.asarray(scores, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    answered = np.ones(len(scores), dtype=bool) if threshold is None else scores >= threshold
    return SelectiveOutcome(threshold, len(scores), int(answered.sum()), int((answered & correct).sum()))


def compute_coverage_curve(scores: np.ndarray, correct: np.ndarray) -> pd.DataFrame:
    """Return the accuracy-coverage curve: for each distinct threshold, coverage and accuracy of the answered.

    Returns
    -------
    curve : DataFrame with columns threshold, coverage, accuracy
        From the highest threshold (fewest answered) to the lowest (all answered).
    """
    scores = np.asarray(scores, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    order = np.argsort(-scores, kind="stable")
    distinct, first_positions = np.unique(-scores[order], return_index=True)
    last_positions = np.append(first_positions[1:], len(scores)) - 1
    right_so_far = np.cumsum(correct[order])
    return pd.DataFrame({"threshold": -distinct, "coverage": (last_positions + 1) / len(scores),
                         "accuracy": right_so_far[last_positions] / (last_positions + 1)})


def count_answers_to_confirm(target: float, confidence: float = 0.95) -> int:
    """Return how many answered images, all of them right, it takes for their interval to start at ``target``.

    Fewer answered images cannot show that the target is met, however many of them are right: with 0.995,
    600 answered digits all right give a 95% Wilson interval from 99.36%. scikit-learn and SciPy have no inverse of
    the interval, so the count is found by bisection over :func:`compute_accuracy_interval`.

    Parameters
    ----------
    target : float
        The accuracy to confirm, strictly between 0.5 and 1.
    confidence : float, default=0.95

    Returns
    -------
    n_answered : int
        About ``z**2 * target / (1 - target)``: 765 for 0.995, 381 for 0.99.
    """
    check_target(target)
    low, high = 1, 2
    while compute_accuracy_interval(high, high, confidence)[0] < target:
        low, high = high, 2 * high
    while low < high:
        middle = (low + high) // 2
        if compute_accuracy_interval(middle, middle, confidence)[0] >= target:
            high = middle
        else:
            low = middle + 1
    return low


def describe_too_few_to_confirm(outcome: SelectiveOutcome, target: float, *, items: str = "digits",
                                share: float = 1.0) -> str:
    """Say when ``outcome`` answered too few images to confirm ``target``; else return ''.

    The sentences give where the interval would start even if every answered image were right, and how many
    answered images, and at this coverage how many images in all, confirming the target would take.

    Parameters
    ----------
    outcome : SelectiveOutcome
    target : float
    items : str, default="digits"
    share : float, default=1.0
        The share of all the labelled images that ``outcome`` measured: 0.5 for ``calibrate``'s held-out half.
    """
    needed = count_answers_to_confirm(target)
    if not outcome.n_answered or outcome.n_answered >= needed:
        return ""
    best_case = compute_accuracy_interval(outcome.n_answered, outcome.n_answered)[0]
    in_all = int(np.ceil(needed / outcome.coverage / share))
    return (f"The {outcome.n_answered:,} answered {items} are too few to confirm {target:.1%}: even if all were "
            f"right, their 95% interval would start at {best_case:.2%}. Confirming it takes about {needed:,} "
            f"answered {items}, about {in_all:,} labelled {items} in all at this coverage.")


def check_target(target: float) -> None:
    """Raise ParameterError unless the target accuracy lies strictly between 0.5 and 1."""
    if not 0.5 < target < 1.0:
        raise ParameterError(f"target_accepted_accuracy = {target!r} must lie strictly between 0.5 and 1 "
                             "(e.g. 0.995: at most 5 errors in 1,000 answered digits).")
