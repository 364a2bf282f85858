"""How well a model's confidence matches its accuracy: a reliability table, its expected calibration error, and
the correct answers given with the least confidence (04_cnn's reliability section)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def compute_reliability(y_true: np.ndarray, probabilities: np.ndarray, n_bins: int = 10) -> tuple[pd.DataFrame, float]:
    """Bin predictions by confidence and compare each bin's mean confidence with its accuracy.

    Parameters
    ----------
    y_true : ndarray of shape (n_samples,)
    probabilities : ndarray of shape (n_samples, n_classes)
    n_bins : int, default=10
        Equal-width confidence bins over [0, 1].

    Returns
    -------
    table : DataFrame
        One row per non-empty bin: bin low, bin high, images, mean confidence, accuracy.
    expected_calibration_error : float
        The image-weighted mean of |accuracy - confidence| over the bins.
    """
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(y_true)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    frame = pd.DataFrame({"bin": bins, "confidence": confidence, "correct": correct})
    grouped = frame.groupby("bin").agg(images=("correct", "size"), mean_confidence=("confidence", "mean"),
                                       accuracy=("correct", "mean")).reset_index()
    grouped.insert(1, "bin low", edges[grouped["bin"]])
    grouped.insert(2, "bin high", edges[grouped["bin"] + 1])
    table = grouped.drop(columns="bin").rename(columns={"mean_confidence": "mean confidence"})
    error = float(np.sum(table["images"] * (table["accuracy"] - table["mean confidence"]).abs()) / len(confidence))
    return table, error


def describe_reliability(table: pd.DataFrame, calibration_error: float) -> str:
    """One computed sentence: is the model over- or under-confident, and by how much."""
    gap = float(np.sum(table["images"] * (table["mean confidence"] - table["accuracy"])) / table["images"].sum())
    if abs(gap) < 0.005:
        direction = "well calibrated: its confidence matches its accuracy to within half a point on average"
    elif gap > 0:
        direction = f"over-confident: its confidence exceeds its accuracy by {gap:.3f} on average"
    else:
        direction = (f"under-confident: its accuracy exceeds its confidence by {-gap:.3f} on average (label "
                     "smoothing trains for softer probabilities)")
    return f"Expected calibration error {calibration_error:.4f}: the model is {direction}."


def find_low_confidence_correct(y_true: np.ndarray, probabilities: np.ndarray, count: int = 20) -> np.ndarray:
    """Return the positions of the correct predictions with the lowest confidence, lowest first."""
    predicted = probabilities.argmax(axis=1)
    correct = np.flatnonzero(predicted == np.asarray(y_true))
    confidence = probabilities[correct, predicted[correct]]
    return correct[np.argsort(confidence, kind="stable")[:count]]
