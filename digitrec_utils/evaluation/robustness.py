"""A model's scores on a batch of images, and its accuracy under corruption with the abstention threshold."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from digitrec_utils.data import corruptions
from digitrec_utils.data.preparation import prepare_image_batch
from digitrec_utils.evaluation import abstention, scores
from digitrec_utils.evaluation.evaluation import compute_accuracy_interval
from digitrec_utils.settings import check_value

# Severity of the headline numbers (the mean over corruptions, the worst ones).
HEADLINE_SEVERITY = 2


@dataclass
class Scored:
    """A model's answers for a set of images, prepared as ``digitrec predict`` prepares them.

    Attributes
    ----------
    probabilities : ndarray of shape (n_images, n_classes)
        Uniform for images in which the preparation found no ink.
    predicted : ndarray of shape (n_images,)
        -1 where the preparation found no ink (predict reports an error: no answer).
    usable : ndarray of shape (n_images,), bool
    """

    probabilities: np.ndarray
    predicted: np.ndarray
    usable: np.ndarray

    def correct(self, labels: np.ndarray) -> np.ndarray:
        return self.predicted == np.asarray(labels)

    def score(self, name: str) -> np.ndarray:
        """The confidence score ``name`` per image; 0 where there is no answer, so that it is never accepted."""
        return np.where(self.usable, scores.compute_score(self.probabilities, name), 0.0)


def score_images(model, images: np.ndarray, *, batch_size: int = 1000) -> Scored:
    """Prepare uint8 images as ``digitrec predict`` does and return the model's answers."""
    prepared, usable = prepare_image_batch(images)
    probabilities = np.asarray(model.predict(prepared[..., None], batch_size=batch_size, verbose=0), dtype=np.float64)
    n_classes = probabilities.shape[1]
    probabilities[~usable] = 1.0 / n_classes
    predicted = np.where(usable, probabilities.argmax(axis=1), -1)
    return Scored(probabilities, predicted, usable)


@dataclass
class Robustness:
    """Accuracy on corrupted copies of the test images, per corruption and severity, with the abstention.

    Attributes
    ----------
    table : DataFrame
        One row per corruption and severity: corruption, severity, seen (whether the model saw that kind in
        training), accuracy, accuracy_low, accuracy_high, answered (coverage at the threshold),
        answered_accuracy, answered_low, answered_high.
    examples : dict of str to (images, labels, predicted)
        Up to ``n_examples`` images of each corruption at the headline severity, as corrupted, with the
        model's answers: the misread ones first, then right ones, each in test order.
    severity : int
        The severity of the headline numbers.
    seconds : float
    """

    table: pd.DataFrame
    examples: dict
    severity: int
    seconds: float

    def at_headline(self) -> pd.DataFrame:
        return self.table[self.table["severity"] == self.severity]

    @property
    def mean_accuracy(self) -> float:
        return float(self.at_headline()["accuracy"].mean())

    @property
    def mean_unseen_accuracy(self) -> float:
        unseen = self.at_headline()[~self.at_headline()["seen"]]
        return float(unseen["accuracy"].mean()) if len(unseen) else float("nan")

    def worst(self, count: int = 3) -> pd.DataFrame:
        return self.at_headline().nsmallest(count, "accuracy")


def _choose_headline_severity(severities: Sequence[int]) -> int:
    """The middle severity when measured, else the middle of those measured."""
    ordered = sorted(set(severities))
    return HEADLINE_SEVERITY if HEADLINE_SEVERITY in ordered else ordered[len(ordered) // 2]


def measure_robustness(model, images: np.ndarray, labels: np.ndarray, *, names: Sequence[str],
                       severities: Sequence[int], score: str, threshold: float | None, seen: Sequence[str] = (),
                       seed: int = 0, n_examples: int = 10, progress: bool = True) -> Robustness:
    """Corrupt the test images with each corruption at each severity and score the model's answers.

    For reporting only: nothing here chooses anything. ``threshold`` (chosen on validation) gives the share
    answered and the accuracy of the answered under each corruption.
    """
    check_corruption_parameters(names, severities)
    started = time.perf_counter()
    severity = _choose_headline_severity(severities)
    rows, examples = [], {}
    for number, name in enumerate(names):
        for level in sorted(severities):
            corrupted = corruptions.corrupt(images, name, level, seed=seed + 1000 * number + level)
            scored = score_images(model, corrupted)
            correct = scored.correct(labels)
            outcome = abstention.measure_selective(scored.score(score), correct, threshold)
            low, high = compute_accuracy_interval(int(correct.sum()), len(correct))
            answered_low, answered_high = outcome.accuracy_ci95
            rows.append({"corruption": name, "severity": level, "seen": name in seen,
                         "accuracy": float(correct.mean()), "accuracy_low": low, "accuracy_high": high,
                         "answered": outcome.coverage, "answered_accuracy": outcome.accuracy,
                         "answered_low": answered_low, "answered_high": answered_high})
            if level == severity:
                # The misread images first (those are what a reader looks for), then right ones.
                shown = np.concatenate([np.flatnonzero(~correct), np.flatnonzero(correct)])[:n_examples]
                examples[name] = (corrupted[shown], np.asarray(labels)[shown], scored.predicted[shown])
        if progress:
            print(f"[{number + 1}/{len(names)}] {name}: accuracy "
                  + ", ".join(f"{row['accuracy']:.3f}" for row in rows[-len(severities):])
                  + f" at severities {', '.join(str(level) for level in sorted(severities))}", flush=True)
    return Robustness(pd.DataFrame(rows), examples, severity, time.perf_counter() - started)


def check_corruption_parameters(names: Sequence[str], severities: Sequence[int]) -> None:
    """Raise ParameterError naming the key for unknown corruptions or severities, or empty lists."""
    check_value("corruptions", list(names))
    check_value("severities", list(severities))
