"""Other writers' digits in 05_deployment: where the threshold must hold too, and what the office can expect.

Each labelled folder tree of ``field_data`` and ``threshold_field_data`` is scored by the model
(:func:`digitrec_utils.evaluation.labelled.score_labelled_digits`); the sets that choose the threshold raise it until
their answered digits reach the target too, and the others are reported only, as honest estimates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from digitrec_utils.data.labelled import open_labelled_source, resolve_field_folder
from digitrec_utils.data.loading import open_sklearn_digits
from digitrec_utils.evaluation.abstention import ThresholdChoice, choose_threshold, measure_selective
from digitrec_utils.evaluation.evaluation import compute_accuracy_interval
from digitrec_utils.evaluation.labelled import ROLE_CHOOSES, ROLE_REPORTS, ScoredDigits, score_labelled_digits
from digitrec_utils.reporting.tables import format_interval, style_table


@dataclass
class FieldSet:
    """A set of other writers' labelled digits in 05_deployment, scored by the model.

    Attributes
    ----------
    name : str
    role : str
        :data:`ROLE_CHOOSES` (its digits must reach the target at the threshold, so it helped choose it) or
        :data:`ROLE_REPORTS` (never used to choose anything: an honest estimate).
    scored : ScoredDigits
    """

    name: str
    role: str
    scored: ScoredDigits


def load_field_sets(model, *, field_data, threshold_field_data, data_dir: str | None, dataset: str,
                    class_names) -> tuple[list[FieldSet], list[str]]:
    """Score the model on each labelled folder tree of 05_deployment's ``field_data`` and ``threshold_field_data``.

    With no ``field_data``, scikit-learn's 8x8 digits (the test writers of UCI's optdigits, upscaled to
    20x20 in 28x28) stand in, unless the model was trained on them.

    Returns
    -------
    sets : list of FieldSet
        The threshold's sets first, then the reported ones.
    notes : list of str
        Sentences on what was used and why.
    """
    sets, notes, seen = [], [], set()
    ordered = [(folder, ROLE_CHOOSES) for folder in threshold_field_data]
    ordered += [(folder, ROLE_REPORTS) for folder in field_data if folder not in threshold_field_data]
    for folder, role in ordered:
        root = resolve_field_folder(folder, data_dir=data_dir)
        if root in seen:
            continue
        seen.add(root)
        source = open_labelled_source([root])
        sets.append(FieldSet(source.name, role, score_labelled_digits(source, model, class_names=class_names,
                                                                     progress=False)))
    if not field_data:
        if dataset == "digits":
            notes.append("No field_data, and the model trained on scikit-learn's 8x8 digits, so no other writers' "
                         "digits are measured here; pass field_data to measure some.")
        else:
            source = open_sklearn_digits()
            sets.append(FieldSet(source.name, ROLE_REPORTS, score_labelled_digits(source, model,
                                                                                  class_names=class_names,
                                                                                  progress=False)))
            notes.append("No field_data was given, so other writers are represented by scikit-learn's 1,797 8x8 "
                         "digits: the test writers of UCI's optdigits, scanned at 32x32, reduced to 8x8 grey "
                         "levels and upscaled here to 20x20 in 28x28. Pass field_data (labelled folder trees) to "
                         "measure the office's own scans.")
    return sets, notes


def raise_threshold_for_field(choice: ThresholdChoice, validation_scores: np.ndarray,
                              validation_correct: np.ndarray, sets: list[FieldSet], score: str) -> ThresholdChoice:
    """Return the threshold that reaches the target on validation and on every set that chooses it.

    Each set's own lowest threshold is chosen as on validation (:func:`choose_threshold`); the threshold
    kept is the highest of them, so that the promise holds on each. A set on which no threshold reaches the
    target leaves the others' choice, and says so in ``chosen_on``.
    """
    choosers = [field_set for field_set in sets if field_set.role == ROLE_CHOOSES]
    if not choosers:
        return choice
    thresholds = [choice.threshold if choice.reached else None]
    names, unreachable = ["validation"], []
    for field_set in choosers:
        scored = field_set.scored
        own = choose_threshold(scored.compute_scores(score), scored.correct, choice.target)
        (names if own.reached else unreachable).append(field_set.name)
        thresholds.append(own.threshold)
    reached = [value for value in thresholds if value is not None]
    threshold = max(reached) if reached else None
    at_validation = measure_selective(validation_scores, validation_correct,
                                      threshold if threshold is not None else -1.0)
    chosen_on = " and ".join(names)
    if unreachable:
        chosen_on += f" (no threshold reached the target on {', '.join(unreachable)})"
    return ThresholdChoice(threshold, choice.target, at_validation.coverage, at_validation.accuracy,
                           at_validation.n_images, chosen_on=chosen_on)


def describe_raised_threshold(on_validation: ThresholdChoice, raised: ThresholdChoice) -> str:
    """Say what validation alone chose, and what the sets that choose raised it to.

    Parameters
    ----------
    on_validation : ThresholdChoice
        The threshold chosen on the validation digits alone.
    raised : ThresholdChoice
        What :func:`raise_threshold_for_field` returned for it.

    Returns
    -------
    finding : str
        One sentence when no set raised it (``raised`` is ``on_validation``), else two.
    """
    if raised is on_validation:
        return on_validation.describe()
    return (f"On validation alone: {_lowercase_first(on_validation.describe())} Raised so that it holds on "
            f"{raised.chosen_on} too: {_lowercase_first(raised.describe())}")


def measure_field_sets(sets: list[FieldSet], *, score: str, threshold: float | None) -> pd.DataFrame:
    """One row per set: its role, accuracy with its interval, and at ``threshold`` the share answered and their
    accuracy with intervals (an image that could not be prepared counts as wrong and not answered)."""
    rows = []
    for field_set in sets:
        scored = field_set.scored
        correct = scored.correct
        low, high = compute_accuracy_interval(int(correct.sum()), len(correct))
        outcome = measure_selective(scored.compute_scores(score), correct, threshold or 0.0)
        answered_low, answered_high = outcome.accuracy_ci95
        rows.append({"set": field_set.name, "role": field_set.role, "sha256": scored.source.sha256,
                     "digits": len(correct), "accuracy": float(correct.mean()), "accuracy_low": low,
                     "accuracy_high": high, "answered": outcome.coverage, "answered_accuracy": outcome.accuracy,
                     "answered_accuracy_low": answered_low, "answered_accuracy_high": answered_high})
    return pd.DataFrame(rows)


def style_field_table(table: pd.DataFrame):
    """The table of other writers' digits for reading: intervals as ranges, shares as percentages."""
    shown = pd.DataFrame({
        "set": table["set"], "role": table["role"], "digits": table["digits"], "accuracy": table["accuracy"],
        "accuracy 95% CI": [format_interval(low, high) for low, high in zip(table["accuracy_low"],
                                                                            table["accuracy_high"], strict=True)],
        "answered": table["answered"], "accuracy of answered": table["answered_accuracy"],
        "answered 95% CI": [format_interval(low, high) for low, high in zip(table["answered_accuracy_low"],
                                                                            table["answered_accuracy_high"],
                                                                            strict=True)]})
    return style_table(shown, percent_columns=["answered"])


def describe_field_sets(table: pd.DataFrame, clean_accuracy: float, target: float) -> str:
    """The drop from the clean test digits to other writers' digits, and whether the threshold keeps its promise
    where nothing was chosen."""
    if table.empty:
        return "No other writers' digits were measured."
    drops = ", ".join(f"{row.accuracy:.2%} on {row.set} ({100 * (clean_accuracy - row.accuracy):.1f} points less)"
                      for row in table.itertuples())
    text = f"From {clean_accuracy:.2%} right on the clean test digits, accuracy falls to {drops}."
    reported = table[table["role"] == ROLE_REPORTS]
    if reported.empty:
        return text + " Every set helped choose the threshold, so none is an honest estimate of its promise."
    short = reported[reported["answered_accuracy"].fillna(0.0) < target]
    if short.empty:
        return text + (f" On {', '.join(reported['set'])}, which chose nothing, the answered digits reach the "
                       f"target of {target:.1%}: the promise holds beyond the training source.")
    return text + (f" On {', '.join(short['set'])}, which chose nothing, the answered digits fall short of the target "
                   f"of {target:.1%}: expect more errors on such mail than the test figures say, and re-choose the "
                   "threshold on the office's own digits (`digitrec calibrate`).")


def summarize_field_sets(table: pd.DataFrame) -> list[dict]:
    """The table as JSON-ready records for the results record and the model card."""
    return [{key: (value.item() if hasattr(value, "item") else value) for key, value in row.items()}
            for row in table.to_dict(orient="records")]


def _lowercase_first(text: str) -> str:
    return text[:1].lower() + text[1:]
