"""Evaluation with scikit-learn's metrics: accuracy with a Wilson interval, per-class counts, confusions."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from mlxtend.evaluate import mcnemar, mcnemar_table
from scipy.stats import binomtest, norm
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


def format_percent_interval(low: float, high: float, *, decimals: int = 1, separator: str = "-") -> str:
    """Return an interval of a share in percent, ``99.56%-99.78%``, with as many decimals as keep its bounds apart.

    An interval printed with bounds that read alike ("100.0%-100.0%" for 10,000 of 10,000) says there is no
    uncertainty, which is never so: up to three more decimals are added until the bounds differ
    ("99.96%-100.00%").

    Parameters
    ----------
    low, high : float
        The bounds, as shares between 0 and 1.
    decimals : int, default=1
        Decimals of the percentages when they already differ.
    separator : str, default="-"
        Between the bounds: a hyphen in sentences, an en dash in tables.

    Returns
    -------
    text : str
        A dash alone when either bound is missing.
    """
    if low is None or high is None or np.isnan(low) or np.isnan(high):
        return "–"
    for places in range(decimals, decimals + 4):
        low_text, high_text = f"{low:.{places}%}", f"{high:.{places}%}"
        if low_text != high_text or low == high:
            break
    return f"{low_text}{separator}{high_text}"


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


def summarize_evaluations(evaluations: dict[str, Evaluation], val_accuracies: dict[str, float],
                          reported: dict[str, float] | None = None) -> pd.DataFrame:
    """Return one row per model: validation accuracy, then test accuracy with its interval and macro F1.

    Parameters
    ----------
    evaluations : dict of str to Evaluation
        Each model's single evaluation on the test split.
    val_accuracies : dict of str to float
        Each model's validation accuracy, the basis of the choice.
    reported : dict of str to float, optional
        The test accuracy an original report printed for a model on the same data (MNIST): adds the
        columns "the original report printed" and "ours against it" (:func:`compare_with_report`).
    """
    rows = []
    for name, evaluation in evaluations.items():
        row = {"model": name, "val accuracy": val_accuracies[name], "test accuracy": evaluation.accuracy,
               "95% CI low": evaluation.accuracy_ci95[0], "95% CI high": evaluation.accuracy_ci95[1],
               "macro F1": evaluation.macro_f1}
        if reported:
            figure = reported.get(name)
            row["the original report printed"] = figure
            row["ours against it"] = compare_with_report(evaluation, figure) if figure is not None else ""
        rows.append(row)
    return pd.DataFrame(rows)


def compare_with_report(evaluation: Evaluation, reported: float) -> str:
    """Say where an original report's figure lies against our test accuracy and its 95% interval.

    Returns
    -------
    verdict : {"at or above", "within our interval", "below"}
        ``at or above`` where our accuracy reaches the report's; ``within our interval`` where it does not
        but the report's figure lies inside our 95% interval (the test set cannot tell them apart);
        ``below`` otherwise.
    """
    if evaluation.accuracy >= reported:
        return "at or above"
    return "within our interval" if reported <= evaluation.accuracy_ci95[1] else "below"


def describe_against_reports(evaluations: dict[str, Evaluation], reported: dict[str, float],
                             notes: dict[str, str] | None = None) -> str:
    """Return a finding on the reproduced models against the figures their original reports printed.

    Parameters
    ----------
    evaluations : dict of str to Evaluation
    reported : dict of str to float
        Each reproduced model's report's figure.
    notes : dict of str to str, optional
        Why a report's figure is not comparable with ours, by model (its own split, for example); said
        for a model that does not reach its report's figure, after "For <model>," (so it starts in lower case).
    """
    notes = notes or {}
    verdicts = {name: compare_with_report(evaluations[name], figure)
                for name, figure in reported.items() if name in evaluations}
    if not verdicts:
        return ""
    parts = [f"{name} {evaluations[name].accuracy:.4f} against {reported[name]:.4f} ({verdict})"
             for name, verdict in verdicts.items()]
    short = [name for name, verdict in verdicts.items() if verdict != "at or above"]
    text = "Against what the original reports printed on MNIST: " + "; ".join(parts) + "."
    below = [name for name in short if verdicts[name] == "below"]
    within = [name for name in short if verdicts[name] == "within our interval"]
    if below:
        text += f" Below the report's figure beyond our 95% interval: {', '.join(below)}."
    if within:
        text += (f" {', '.join(within)} {'lies' if len(within) == 1 else 'lie'} below the report's figure but "
                 "within our interval: the 10,000 test digits cannot tell the two apart, and our training length "
                 "is chosen on validation alone; choosing it on the test digits, as watching a test curve does, "
                 "would make the figure no longer an estimate.")
    if not short:
        text += " Each reproduction reaches its report's figure."
    return text + "".join(f" For {name}, {notes[name]}" for name in short if name in notes)


def describe_selection(evaluations: dict[str, Evaluation], val_accuracies: dict[str, float], selected: str,
                       family: str, *, y_true) -> str:
    """Return a conclusion: the choice on validation, its single test result, and where it fails.

    Which models the test images cannot tell from the chosen one is decided by McNemar's exact test on the
    test predictions (:func:`compare_paired`), the rule of every page.

    Parameters
    ----------
    evaluations : dict of str to Evaluation
    val_accuracies : dict of str to float
    selected : str
        The model chosen on validation.
    family : str
        How to call the models in the text, e.g. ``"classical model"``.
    y_true : ndarray of shape (n_test,)
        The test labels, in the order of the evaluations' predictions.
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
    paired = compare_paired(y_true, {name: evaluations[name].y_pred for name in ranking}, best=selected)
    within = paired.within_noise()
    if within:
        text += (f" On the test images McNemar's exact test cannot tell {', '.join(within)} from it at the "
                 f"{paired.significance:.0%} level, so these test accuracies do not establish that it is better "
                 f"than {'it' if len(within) == 1 else 'them'}.")
    better = [name for name in ranking if evaluations[name].accuracy > chosen.accuracy]
    if better:
        text += (f" {', '.join(better)} scored higher on test, but the choice stands: it was made on validation "
                 "before the test split was read, and switching now would tune on test.")
    return text


# Paired comparisons: which settings the validation images can tell apart (issue 14).

SIGNIFICANCE = 0.05
POWER = 0.8
# Settings named in a sentence before the rest are counted ("and 12 more").
NAMED_IN_A_SENTENCE = 5


@dataclass
class PairedComparison:
    """Every setting against the best one, on the same images, with McNemar's exact test.

    Attributes
    ----------
    best : object
        The setting with the highest accuracy (the first of equals, in the order given).
    table : DataFrame
        One row per setting, best first and then in the order given: setting, accuracy, 95% CI low,
        95% CI high, only best right, only this right (images where exactly one of the two is right),
        p-value (McNemar's exact test against the best; 1.0 for the best itself) and distinguishable
        (p-value below the significance level).
    n_images : int
    significance : float
    """

    best: object
    table: pd.DataFrame
    n_images: int
    significance: float = SIGNIFICANCE

    def annotate(self, table: pd.DataFrame, settings) -> pd.DataFrame:
        """Return a copy of ``table`` with each row's interval, p-value against the best and verdict.

        Parameters
        ----------
        table : DataFrame
            One row per setting, e.g. an experiment's or a sweep's.
        settings : sequence
            Each row's setting, as keyed in the predictions given to :func:`compare_paired`.

        Returns
        -------
        annotated : DataFrame
            With ``95% CI low``, ``95% CI high``, ``p-value vs best`` and ``vs best`` (``best``, ``within
            noise`` or ``worse``) added.
        """
        rows = self.table.set_index("setting")
        annotated = table.copy()
        annotated["95% CI low"] = [rows.loc[setting, "95% CI low"] for setting in settings]
        annotated["95% CI high"] = [rows.loc[setting, "95% CI high"] for setting in settings]
        annotated["p-value vs best"] = [rows.loc[setting, "p-value"] for setting in settings]
        annotated["vs best"] = ["best" if setting == self.best else "worse" if rows.loc[setting, "distinguishable"]
                                else "within noise" for setting in settings]
        return annotated

    def within_noise(self) -> list:
        """Return the other settings that the test cannot tell apart from the best."""
        others = self.table.iloc[1:]
        return list(others.loc[~others["distinguishable"], "setting"])

    def describe(self, what: str, *, data: str = "validation", subject: str = "the experiment") -> str:
        """Return a finding: the best setting with its interval, and which others are within noise of it.

        Parameters
        ----------
        what : str
            What varies, e.g. ``"hidden layers"`` or ``"k"``.
        data : str, default="validation"
            Which images the predictions are of, for the sentence.
        subject : str, default="the experiment"
            What cannot tell the settings apart, when nothing is distinguishable.
        """
        first = self.table.iloc[0]
        head = (f"Best {what}: {first['setting']} at {first['accuracy']:.4f} {data} accuracy (95% CI "
                f"{first['95% CI low']:.4f}-{first['95% CI high']:.4f}, {self.n_images:,} images)")
        others = self.table.iloc[1:]
        if others.empty:
            return head + "; it was the only setting tried."
        if not others["distinguishable"].any():
            closest = others.loc[others["p-value"].idxmin()]
            text = (f"{head}, but {subject} cannot tell the settings apart at this data size: McNemar's exact "
                    f"test on the same images finds no difference from any other setting at the "
                    f"{self.significance:.0%} level (smallest p = {closest['p-value']:.2g}, against {what} "
                    f"{closest['setting']}).")
            needed = estimate_images_needed(int(closest["only best right"]), int(closest["only this right"]),
                                            self.n_images, significance=self.significance)
            if needed is not None:
                text += (f" Seeing that largest difference ({closest['only best right']} against "
                         f"{closest['only this right']} disagreeing images) reliably would take about {needed:,} "
                         f"{data} images.")
            return text
        noise, real = others[~others["distinguishable"]], others[others["distinguishable"]]
        text = head + "; "
        if noise.empty:
            text += (f"every other setting is worse by more than chance (McNemar's exact test, "
                     f"{self.significance:.0%} level): ")
        else:
            text += (f"within noise of it (McNemar's exact test, {self.significance:.0%} level): "
                     f"{_name_settings(noise)}; worse by more than chance: ")
        return text + _name_settings(real) + "."


def describe_choice(y_val, predictions, chosen, family: str) -> str:
    """Return the finding of a notebook's choice on validation: the chosen model with its interval, and which
    of the others the validation images cannot tell from it (McNemar's exact test).

    Parameters
    ----------
    y_val : ndarray of shape (n_val,)
    predictions : mapping of str to ndarray
        Each model's predicted validation labels.
    chosen : str
        The model chosen on validation accuracy.
    family : str
        How to call the models, e.g. ``"dense network"``.
    """
    paired = compare_paired(y_val, predictions, best=chosen)
    return paired.describe(family, subject="the validation set") + " It is the one evaluated in detail below."


def count_shared_errors(y_true, predicted, others) -> tuple[np.ndarray, np.ndarray]:
    """Return the images ``predicted`` gets wrong and, for each, how many of the ``others`` get it wrong too.

    Images that nearly every model misreads are the hard ones of the set; images that the others read
    are one model's own mistakes, the likeliest to yield to another kind of model.

    Parameters
    ----------
    y_true : ndarray of shape (n_images,)
    predicted : ndarray of shape (n_images,)
        The model's predicted labels.
    others : mapping of str to ndarray of shape (n_images,)
        Other models' predicted labels on the same images.

    Returns
    -------
    missed : ndarray of int
        The positions of the images ``predicted`` gets wrong, in order.
    others_wrong : ndarray of int, of the same length
        How many of ``others`` get each of those images wrong.
    """
    y_true, predicted = np.asarray(y_true), np.asarray(predicted)
    missed = np.flatnonzero(predicted != y_true)
    others_wrong = np.zeros(missed.size, dtype=int)
    for other in others.values():
        others_wrong += np.asarray(other)[missed] != y_true[missed]
    return missed, others_wrong


def _name_settings(rows: pd.DataFrame) -> str:
    """Name up to NAMED_IN_A_SENTENCE settings with their accuracy, and count the rest."""
    named = [f"{row['setting']} ({row['accuracy']:.4f})" for _, row in rows.head(NAMED_IN_A_SENTENCE).iterrows()]
    rest = len(rows) - len(named)
    return ", ".join(named) + (f" and {rest} more" if rest else "")


def compare_paired(y_true, predictions, *, best=None, significance: float = SIGNIFICANCE) -> PairedComparison:
    """Compare every setting's predictions with the best setting's, on the same images.

    The test is McNemar's exact test (mlxtend's ``mcnemar`` with ``exact=True``: the two-sided binomial
    test on the images where exactly one of the two is right), whatever the number of such images, so
    that every page of the suite applies the same rule. Intervals are Wilson's (SciPy).

    Parameters
    ----------
    y_true : ndarray of shape (n_images,)
    predictions : mapping of setting to ndarray of shape (n_images,)
        Each setting's predicted labels, in the order of ``y_true``. The order of the mapping breaks ties.
    best : setting, optional
        The setting to compare the others with (a choice made elsewhere, e.g. on validation when these are
        test predictions); the most accurate one by default.
    significance : float, default=0.05

    Returns
    -------
    comparison : PairedComparison

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.zeros(400, dtype=int)
    >>> a, b = truth.copy(), truth.copy()
    >>> b[:4] = 1  # A is right on 4 images where B is wrong, B never right where A is wrong.
    >>> compare_paired(truth, {"A": a, "B": b}).within_noise()
    ['B']
    """

    y_true = np.asarray(y_true)
    if not predictions:
        raise ValueError("compare_paired needs the predictions of at least one setting.")
    correct = {setting: np.asarray(predicted) == y_true for setting, predicted in predictions.items()}
    for setting, right in correct.items():
        if right.shape != y_true.shape:
            raise ValueError(f"setting {setting!r} has {right.size} predictions for {y_true.size} images.")
    if best is None:
        best = max(correct, key=lambda setting: correct[setting].sum())  # max keeps the first of equals.
    elif best not in correct:
        raise ValueError(f"best {best!r} is not among the settings {list(correct)}.")
    rows = []
    for setting in [best, *[setting for setting in correct if setting != best]]:
        right = correct[setting]
        low, high = compute_accuracy_interval(int(right.sum()), len(right))
        only_best = int(np.sum(correct[best] & ~right))
        only_this = int(np.sum(right & ~correct[best]))
        if only_best + only_this == 0:
            p_value = 1.0
        else:
            table = mcnemar_table(y_target=y_true, y_model1=predictions[best], y_model2=predictions[setting])
            p_value = float(mcnemar(table, exact=True)[1])
        rows.append({"setting": setting, "accuracy": float(right.mean()), "95% CI low": low, "95% CI high": high,
                     "only best right": only_best, "only this right": only_this, "p-value": p_value,
                     "distinguishable": p_value < significance})
    return PairedComparison(best=best, table=pd.DataFrame(rows), n_images=len(y_true), significance=significance)


def estimate_images_needed(only_first: int, only_second: int, n_images: int, *, significance: float = SIGNIFICANCE,
                           power: float = POWER) -> int | None:
    """Estimate how many images a paired test needs to see an observed difference with the given power.

    Connor's (1987) sample size for McNemar's test, from the discordant proportions observed on
    ``n_images``: ``n = (z_a * sqrt(psi) + z_b * sqrt(psi - delta**2))**2 / delta**2``, where ``psi`` is the
    share of images on which exactly one of the two is right and ``delta`` the difference of the two
    one-sided shares. An estimate: it assumes the observed shares are the true ones.

    Returns
    -------
    n_images : int or None
        None when the two were right on the same number of images (no difference to see).
    """

    if only_first == only_second or n_images <= 0:
        return None
    psi = (only_first + only_second) / n_images
    delta = (only_first - only_second) / n_images
    z_alpha, z_beta = norm.ppf(1 - significance / 2), norm.ppf(power)
    needed = (z_alpha * math.sqrt(psi) + z_beta * math.sqrt(max(psi - delta ** 2, 0.0))) ** 2 / delta ** 2
    return int(math.ceil(needed))
