"""Evaluation with scikit-learn's metrics: accuracy with a Wilson interval, per-class counts, confusions."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import binomtest
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    multilabel_confusion_matrix,
    precision_recall_fscore_support,
)


@dataclass
class Evaluation:
    """What :func:`evaluate_model` measured on one set of predictions.

    Attributes
    ----------
    accuracy : float
    accuracy_ci95 : tuple of (float, float)
        The 95% Wilson score interval of the accuracy.
    macro_f1 : float
    confusion_matrix : ndarray of shape (n_classes, n_classes)
        Rows are true classes, columns predicted classes.
    per_class : DataFrame
        One row per class: label, name, precision, recall, f1, support, tp, fp, fn, tn, specificity.
    confused_pairs : DataFrame
        Off-diagonal cells sorted by count: true, predicted, count, share of the true class.
    n_samples : int
    y_pred : ndarray of shape (n_samples,)
    y_proba : ndarray of shape (n_samples, n_classes) or None
    """

    accuracy: float
    accuracy_ci95: tuple[float, float]
    macro_f1: float
    confusion_matrix: np.ndarray
    per_class: pd.DataFrame
    confused_pairs: pd.DataFrame
    n_samples: int
    y_pred: np.ndarray = field(repr=False)
    y_proba: np.ndarray | None = field(default=None, repr=False)

    def headline(self) -> str:
        """Return e.g. ``"accuracy 0.9712 (95% CI 0.9603-0.9794) on 1,000 images"``."""
        low, high = self.accuracy_ci95
        return f"accuracy {self.accuracy:.4f} (95% CI {low:.4f}-{high:.4f}) on {self.n_samples:,} images"

    def to_dict(self) -> dict:
        """Return the JSON-ready fields of the results record."""
        return {
            "accuracy": float(self.accuracy),
            "accuracy_ci95": [float(self.accuracy_ci95[0]), float(self.accuracy_ci95[1])],
            "macro_f1": float(self.macro_f1),
            "per_class": self.per_class.to_dict(orient="records"),
            "confusion_matrix": self.confusion_matrix.tolist(),
        }


def compute_accuracy_interval(n_correct: int, n_total: int, confidence: float = 0.95) -> tuple[float, float]:
    """Return the Wilson score interval of a proportion, with scipy's ``binomtest``.

    Parameters
    ----------
    n_correct : int
        Number of correct predictions.
    n_total : int
        Number of predictions; must be positive.
    confidence : float, default=0.95

    Returns
    -------
    low, high : float
    """
    if n_total <= 0:
        raise ValueError("n_total must be positive to compute an interval.")
    interval = binomtest(int(n_correct), int(n_total)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(interval.low), float(interval.high)


def evaluate_model(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    y_proba: np.ndarray | None = None,
    class_names: tuple[str, ...] | list[str] = tuple(str(digit) for digit in range(10)),
    top_pairs: int = 10,
) -> Evaluation:
    """Evaluate predictions: accuracy with its 95% interval, macro F1, confusions, and per-class counts.

    Parameters
    ----------
    y_true : ndarray of shape (n_samples,)
        True labels, 0 to n_classes - 1.
    y_pred : ndarray of shape (n_samples,)
        Predicted labels.
    y_proba : ndarray of shape (n_samples, n_classes), optional
        Predicted probabilities, kept for confidence plots.
    class_names : sequence of str
        One name per label; its length sets the number of classes.
    top_pairs : int, default=10
        How many of the most-confused (true, predicted) pairs to list.

    Returns
    -------
    evaluation : Evaluation
        A class that is never predicted gets precision 0 (scikit-learn's ``zero_division=0``), never NaN.
    """
    y_true = np.asarray(y_true).astype(int)
    y_pred = np.asarray(y_pred).astype(int)
    labels = np.arange(len(class_names))
    accuracy = accuracy_score(y_true, y_pred)
    n_correct = int(np.sum(y_true == y_pred))
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    one_vs_rest = multilabel_confusion_matrix(y_true, y_pred, labels=labels)
    true_negative, false_positive = one_vs_rest[:, 0, 0], one_vs_rest[:, 0, 1]
    false_negative, true_positive = one_vs_rest[:, 1, 0], one_vs_rest[:, 1, 1]
    negatives = true_negative + false_positive
    specificity = np.divide(true_negative, negatives, out=np.zeros(len(labels)), where=negatives > 0)
    per_class = pd.DataFrame({
        "label": labels,
        "name": list(class_names),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": support,
        "tp": true_positive,
        "fp": false_positive,
        "fn": false_negative,
        "tn": true_negative,
        "specificity": specificity,
    })
    return Evaluation(
        accuracy=float(accuracy),
        accuracy_ci95=compute_accuracy_interval(n_correct, len(y_true)),
        macro_f1=float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        confusion_matrix=matrix,
        per_class=per_class,
        confused_pairs=find_confused_pairs(matrix, class_names, top=top_pairs),
        n_samples=len(y_true),
        y_pred=y_pred,
        y_proba=None if y_proba is None else np.asarray(y_proba),
    )


def find_confused_pairs(matrix: np.ndarray, class_names, top: int = 10) -> pd.DataFrame:
    """Return the off-diagonal cells of a confusion matrix, largest first.

    Parameters
    ----------
    matrix : ndarray of shape (n_classes, n_classes)
        Rows are true classes.
    class_names : sequence of str
    top : int, default=10

    Returns
    -------
    pairs : DataFrame with columns true, predicted, count, share_of_true
        Only cells with a positive count; ``share_of_true`` is the count over the true class's support.
    """
    matrix = np.asarray(matrix)
    off_diagonal = matrix.copy()
    np.fill_diagonal(off_diagonal, 0)
    true_index, predicted_index = np.nonzero(off_diagonal)
    counts = off_diagonal[true_index, predicted_index]
    order = np.lexsort((predicted_index, true_index, -counts))[:top]
    row_totals = matrix.sum(axis=1)
    names = list(class_names)
    return pd.DataFrame({
        "true": [names[index] for index in true_index[order]],
        "predicted": [names[index] for index in predicted_index[order]],
        "count": counts[order].astype(int),
        "share_of_true": counts[order] / np.maximum(row_totals[true_index[order]], 1),
    })


def summarize_evaluations(evaluations: dict[str, Evaluation], val_accuracies: dict[str, float]) -> pd.DataFrame:
    """Return one row per model: validation accuracy, then test accuracy with its interval and macro F1.

    Parameters
    ----------
    evaluations : dict of str to Evaluation
        Each model's single evaluation on the test split.
    val_accuracies : dict of str to float
        Each model's validation accuracy, the basis of the choice.
    """
    return pd.DataFrame([{
        "model": name,
        "val accuracy": val_accuracies[name],
        "test accuracy": evaluation.accuracy,
        "95% CI low": evaluation.accuracy_ci95[0],
        "95% CI high": evaluation.accuracy_ci95[1],
        "macro F1": evaluation.macro_f1,
    } for name, evaluation in evaluations.items()])


def describe_selection(evaluations: dict[str, Evaluation], val_accuracies: dict[str, float], selected: str,
                       family: str) -> str:
    """Return a conclusion: the choice on validation, its single test result, and where it fails.

    Parameters
    ----------
    evaluations : dict of str to Evaluation
    val_accuracies : dict of str to float
    selected : str
        The model chosen on validation.
    family : str
        How to call the models in the text, e.g. ``"classical model"``.
    """
    chosen = evaluations[selected]
    low, high = chosen.accuracy_ci95
    ranking = sorted(evaluations, key=lambda name: evaluations[name].accuracy, reverse=True)
    weakest = chosen.per_class.loc[chosen.per_class["recall"].idxmin()]
    text = (f"On validation, **{selected}** was the best {family} ({val_accuracies[selected]:.4f}). "
            f"On the test split, evaluated once, it scored {chosen.accuracy:.4f} (95% CI {low:.4f}-{high:.4f}), "
            f"so on unseen images of the same distribution expect an accuracy in that interval. "
            f"Test accuracy by model: " + ", ".join(f"{name} {evaluations[name].accuracy:.4f}" for name in ranking)
            + f". Its weakest class is {weakest['name']} (recall {weakest['recall']:.4f})")
    if len(chosen.confused_pairs):
        pair = chosen.confused_pairs.iloc[0]
        text += (f", and its most frequent confusion is {pair['true']} read as {pair['predicted']} "
                 f"({pair['count']} images)")
    text += "."
    overlapping = [name for name in ranking if name != selected
                   and evaluations[name].accuracy_ci95[1] >= low and evaluations[name].accuracy_ci95[0] <= high]
    if overlapping:
        text += (f" The 95% intervals of {', '.join(overlapping)} overlap with its interval, so these test "
                 "accuracies alone do not establish that it is better than them.")
    better = [name for name in ranking if evaluations[name].accuracy > chosen.accuracy]
    if better:
        text += (f" {', '.join(better)} scored higher on test, but the choice stands: it was made on validation "
                 "before the test split was read, and switching now would tune on test.")
    return text
