"""08_adaptation's last section: ``digitrec monitor`` on a simulated stream that turns into the office's digits.

The model's own test digits come first, then windows that hold more and more of the office's digits, until the
stream is theirs alone: each window is checked as ``monitor`` checks it
(:func:`digitrec_utils.evaluation.monitoring.check_window`), and since every digit's label is known here, the
accuracy estimated without labels can be set beside the true one. Windows of the model's own test digits alone,
drawn again and again, say how often the alarm rings when nothing changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from digitrec_utils.data.labelled import LabelledSource
from digitrec_utils.evaluation.monitoring import (
    Abstention,
    MonitoringReference,
    ReferenceEstimators,
    check_window,
    judge_check,
)
from digitrec_utils.models.reference import (
    build_observing_model,
    build_reference_from_arrays,
    load_reference,
    observe_arrays,
    observe_source,
)
from digitrec_utils.reporting.tables import style_table

# Windows of the model's own test digits drawn to count false alarms.
CLEAN_WINDOWS = 20
# The stream's first windows hold none of the office's digits; the rest hold a growing share, up to all.
CLEAN_START = 3


@dataclass
class SimulatedStream:
    """What monitoring saw on the simulated stream (see the module's docstring).

    Attributes
    ----------
    windows : DataFrame
        One row per window: ``window``, ``office share``, ``verdict``, ``estimated accuracy`` with ``low`` and
        ``high``, ``true accuracy``, ``answered`` and ``changed`` (the tests that rang, the most changed first).
    clean_verdicts : list of str
        The verdicts on windows of the model's own test digits alone.
    window_size : int
    reference_source : str
    """

    windows: pd.DataFrame
    clean_verdicts: list[str]
    window_size: int
    reference_source: str

    @property
    def false_alarms(self) -> int:
        return sum(verdict != "no change" for verdict in self.clean_verdicts)

    @property
    def first_alarm(self) -> pd.Series | None:
        """The first window of the stream whose verdict is not "no change", or None."""
        rang = self.windows[self.windows["verdict"] != "no change"]
        return rang.iloc[0] if len(rang) else None

    def describe(self, office_name: str) -> str:
        """The finding: when the alarm rang, how closely the estimate followed the truth, how often it rang falsely."""
        errors = (self.windows["estimated accuracy"] - self.windows["true accuracy"]).abs()
        first = self.first_alarm
        if first is None:
            rang = ("the alarm never rang, not even when the windows held the office's digits alone: they look "
                    "like the reference to every test")
        else:
            rang = (f"the alarm first rang at window {int(first['window'])}, where {first['office share']:.0%} of "
                    f"the digits were the office's ({first['verdict']}: {first['changed'] or 'the accuracy'})")
        return (f"On a stream of windows of {self.window_size:,} digits that turns from the model's own test "
                f"digits into the office's ({office_name}), {rang}. The accuracy estimated without labels "
                f"followed the true one within {errors.max():.1%} (on average {errors.mean():.1%}). On "
                f"{len(self.clean_verdicts)} windows of the model's own test digits it rang {self.false_alarms} "
                f"time{'s' if self.false_alarms != 1 else ''}.")


def find_reference(model, model_path, splits) -> MonitoringReference:
    """The saved model's monitoring reference, or one built from its validation digits (a model saved before
    references existed, or the small model trained when 08 runs alone)."""
    reference = load_reference(model_path) if model_path else None
    if reference is not None:
        return reference
    return build_reference_from_arrays(model, None, splits.x_val, splits.y_val,
                                       source="the model's validation digits (built here)")


def simulate_stream(model, reference: MonitoringReference, splits, office: LabelledSource, *, score_name: str,
                    threshold: float | None, target: float, window: int, n_windows: int,
                    seed: int) -> SimulatedStream:
    """Check a stream that turns from the model's test digits into the office's, and windows of test digits alone.

    Parameters
    ----------
    model : keras.Model
    reference : MonitoringReference
        What the stream is compared with (:func:`find_reference`).
    splits : Splits
        The model's split: its test digits start the stream.
    office : LabelledSource
        The office's digits, which the stream turns into (read from their files, as ``monitor`` reads them).
    score_name, threshold, target :
        The threshold the model answers at (None: every digit), on which score, and for which accuracy.
    window, n_windows : int
        Digits per window, and windows in the stream.
    seed : int
        Seeds the draws.
    """
    abstention = Abstention(score_name, threshold, target) if threshold else None
    estimators = ReferenceEstimators(reference, abstention)
    observing_model = build_observing_model(model)
    test, usable = observe_arrays(observing_model, reference, splits.x_test)
    test_labels = np.asarray(splits.y_test)[usable]
    other, other_labels = observe_source(observing_model, reference, office)
    rng = np.random.default_rng(seed)
    clean = []
    for number in range(CLEAN_WINDOWS):
        chosen = rng.choice(len(test_labels), min(window, len(test_labels)), replace=False)
        check = check_window(estimators, *_take(test, chosen), seed=seed + number)
        clean.append(judge_check(check, estimators))
    shares = np.concatenate([np.zeros(CLEAN_START), np.linspace(0.2, 1.0, max(1, n_windows - CLEAN_START))])
    rows = []
    for number, share in enumerate(shares[:n_windows], start=1):
        n_other = min(int(round(share * window)), len(other_labels))
        n_test = min(window - n_other, len(test_labels))
        from_test = rng.choice(len(test_labels), n_test, replace=False)
        from_other = rng.choice(len(other_labels), n_other, replace=False)
        probabilities, embeddings, properties = _join(_take(test, from_test), _take(other, from_other))
        labels = np.concatenate([test_labels[from_test], other_labels[from_other]])
        check = check_window(estimators, probabilities, embeddings, properties, seed=seed + 100 + number)
        rows.append({"window": number, "office share": n_other / (n_other + n_test),
                     "verdict": judge_check(check, estimators), "estimated accuracy": check.accuracy.accuracy,
                     "low": check.accuracy.low, "high": check.accuracy.high,
                     "true accuracy": float(np.mean(probabilities.argmax(1) == labels)),
                     "answered": check.answered,
                     "changed": ", ".join(check.tests.loc[check.tests["changed"], "test"].head(3))})
    return SimulatedStream(pd.DataFrame(rows), clean, window, reference.source)


def summarize_stream(stream: SimulatedStream) -> dict:
    """What the results record keeps of the simulated stream."""
    errors = (stream.windows["estimated accuracy"] - stream.windows["true accuracy"]).abs()
    first = stream.first_alarm
    return {"window": stream.window_size, "windows": len(stream.windows),
            "first_alarm_window": None if first is None else int(first["window"]),
            "first_alarm_office_share": None if first is None else float(first["office share"]),
            "false_alarms": stream.false_alarms, "clean_windows": len(stream.clean_verdicts),
            "largest_error": float(errors.max()), "mean_error": float(errors.mean()),
            "reference": stream.reference_source}


def style_stream(windows: pd.DataFrame):
    """The stream's windows as a table for reading."""
    shown = pd.DataFrame({
        "window": windows["window"], "office's digits": windows["office share"], "verdict": windows["verdict"],
        "true accuracy": windows["true accuracy"],
        "estimated": [f"{accuracy:.1%} ({low:.1%}-{high:.1%})" for accuracy, low, high in
                      zip(windows["estimated accuracy"], windows["low"], windows["high"], strict=True)],
        "answered": windows["answered"], "tests that changed": windows["changed"]})
    return style_table(shown, percent_columns=["office's digits", "true accuracy", "answered"])


def _take(observed, positions: np.ndarray) -> tuple:
    """The observed probabilities, embeddings and properties of the digits at ``positions``."""
    probabilities, embeddings, properties = observed
    return (probabilities[positions], embeddings[positions],
            {name: values[positions] for name, values in properties.items()})


def _join(first: tuple, second: tuple) -> tuple:
    """Two sets of observed digits as one, the first's digits first."""
    return (np.concatenate([first[0], second[0]]), np.concatenate([first[1], second[1]]),
            {name: np.concatenate([first[2][name], second[2][name]]) for name in first[2]})
