"""``digitrec monitor``: has the incoming stream changed since the model was chosen, and how accurate is it now?

The files are prepared as ``predict`` prepares them, a batch at a time with progress; each digit's probabilities,
embedding and image properties are kept (a few hundred bytes), never its pixels beyond a few examples a window.
The digits are cut into windows of ``window`` in the order of their names (or times), and each window, and the
whole stream, is tested against the reference saved beside the model
(:func:`digitrec_utils.evaluation.monitoring.check_window`) and judged in one line
(:func:`digitrec_utils.evaluation.monitoring.judge_check`). The page is written by
:mod:`digitrec_utils.reporting.monitoring_page`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitrec_utils.application.images import find_image_files
from digitrec_utils.application.models import ignore, load_model_in_use
from digitrec_utils.data.preparation import prepare_image_files
from digitrec_utils.declarations import MINIMUM_MONITOR_WINDOW
from digitrec_utils.evaluation.monitoring import (
    VERDICTS,
    Abstention,
    AccuracyEstimate,
    ReferenceEstimators,
    WindowCheck,
    check_window,
    cut_windows,
    judge_check,
)
from digitrec_utils.exceptions import ImageError, ModelFileError, ParameterError
from digitrec_utils.models.reference import (
    build_observing_model,
    find_reference_path,
    load_reference,
    observe_digits,
)
from digitrec_utils.reporting.monitoring_page import write_monitoring_page

DEFAULT_WINDOW = 500
ORDERS = ("name", "time")
# The whole stream is tested on at most this many digits, drawn evenly (a reservoir), so that memory stays bounded.
STREAM_SAMPLE = 20_000
EXAMPLES_PER_WINDOW = 8
_ADVICE = ("label a few hundred of the incoming digits and run `digitrec evaluate` on them to measure the accuracy, "
           "`digitrec calibrate --write` to choose the threshold again, or `digitrec adapt` to adapt the model to them")


@dataclass
class WindowReport:
    """One window of the stream: its files, its tests and estimates, and the verdict."""

    number: int
    first: str
    last: str
    check: WindowCheck
    verdict: str
    examples: np.ndarray

    def to_dict(self) -> dict:
        tests = self.check.tests.replace({np.nan: None})
        return {"window": self.number, "first": self.first, "last": self.last, "images": self.check.n_images,
                "verdict": self.verdict, "changed": self.check.changed,
                "estimated_accuracy": _estimate_to_dict(self.check.accuracy),
                "estimated_accuracy_answered": _estimate_to_dict(self.check.accepted_accuracy),
                "answered": self.check.answered,
                "tests": tests.to_dict(orient="records")}


@dataclass
class MonitorOutcome:
    """What ``digitrec monitor`` found (see the module's docstring)."""

    model_name: str
    reference_source: str
    n_reference: int
    reference_accuracy: float
    abstention: Abstention | None
    reference_answered: float | None
    n_files: int
    errors: list[str]
    windows: list[WindowReport]
    stream: WindowReport
    notes: list[str] = field(default_factory=list)
    reference_examples: np.ndarray | None = None
    reference_properties: dict[str, np.ndarray] = field(default_factory=dict)
    stream_properties: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        """The most worrying verdict of any window or of the whole stream."""
        return max([self.stream.verdict, *(window.verdict for window in self.windows)], key=VERDICTS.index)

    @property
    def changed(self) -> bool:
        return self.verdict != "no change"

    @property
    def promised(self) -> float | None:
        """The accuracy the threshold was chosen for, when it says."""
        return self.abstention.target if self.abstention is not None else None

    def describe_verdict(self) -> str:
        """One line: whether to worry, and what to do."""
        stream = self.stream.check
        estimate = (stream.accepted_accuracy or stream.accuracy).describe()
        what = "of the answered digits" if stream.accepted_accuracy is not None else "of every answer"
        windows = [window.number for window in self.windows if window.verdict == self.verdict]
        where = (f" in window{'s' if len(windows) > 1 else ''} {_list_numbers(windows)} of {len(self.windows)}"
                 if len(self.windows) > 1 and windows else "")
        if self.verdict == "worse":
            promise = (f"the {self.promised:.1%} the threshold was chosen for" if self.promised is not None
                       else f"the reference's {self.reference_accuracy:.1%}")
            return (f"Worse: the estimated accuracy {what}, {estimate}, is below {promise}{where}. "
                    f"{_ADVICE[0].upper()}{_ADVICE[1:]}.")
        if self.verdict == "changed":
            moved = _name_changed_tests(self.windows + [self.stream])
            return (f"Changed: the digits no longer look like the reference{where} ({moved} moved), but the "
                    f"estimated accuracy {what}, {estimate}, holds. Watch the next days; if it goes on, {_ADVICE}.")
        return (f"No change: {self.stream.check.n_images:,} digits in {len(self.windows)} "
                f"window{'s' if len(self.windows) > 1 else ''} look like the reference, and the estimated accuracy "
                f"{what} is {estimate}.")

    def describe(self) -> list[str]:
        """The lines the command prints: the verdict, then a line per window."""
        lines = [self.describe_verdict(), f"Reference: {self.reference_source}, {self.n_reference:,} digits, read at "
                                          f"{self.reference_accuracy:.2%}."]
        for window in self.windows:
            check = window.check
            answered = "" if check.answered is None else f", answered {check.answered:.1%}"
            accepted = ("" if check.accepted_accuracy is None
                        else f", answered right {check.accepted_accuracy.describe()}")
            changed = check.tests[check.tests["changed"]]["test"].tolist()
            moved = f"; changed: {', '.join(changed[:4])}{' ...' if len(changed) > 4 else ''}" if changed else ""
            lines.append(f"window {window.number} ({check.n_images:,} digits, {window.first} to {window.last}): "
                         f"{window.verdict}; estimated accuracy {check.accuracy.describe()}{answered}"
                         f"{accepted}{moved}")
        return lines + self.notes

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "summary": self.describe_verdict(), "model": self.model_name,
                "reference": {"source": self.reference_source, "digits": self.n_reference,
                              "accuracy": self.reference_accuracy, "answered": self.reference_answered},
                "threshold": (None if self.abstention is None else
                              {"score": self.abstention.score, "threshold": self.abstention.threshold,
                               "target": self.abstention.target}),
                "files": self.n_files, "errors": self.errors, "notes": self.notes,
                "stream": self.stream.to_dict(), "windows": [window.to_dict() for window in self.windows]}


def monitor_images(images: Sequence[str | os.PathLike], *, model: str | Path | None = None,
                   window: int = DEFAULT_WINDOW, order: str = "name", page: str | Path | None = None, seed: int = 0,
                   notify: Callable[[str], None] = ignore) -> MonitorOutcome:
    """Test an unlabelled stream of digit images against the model's reference, window by window.

    Parameters
    ----------
    images : sequence of path-like
        Image files, or folders of them.
    model : path-like, optional
        A saved ``.keras`` model with its JSON and reference beside it (default: the newest good run's).
    window : int
        Digits per window (at least :data:`MINIMUM_MONITOR_WINDOW`).
    order : {"name", "time"}
        The order of the stream: the files' names, or their modification times.
    page : path-like, optional
        Where to write the HTML page.
    seed : int
        Seeds the MMD's draws and permutations and the stream's sample.
    notify : callable
        Told what is being done, and each file that could not be used.

    Raises
    ------
    ParameterError
        When ``window`` or ``order`` is not allowed.
    ImageError
        When there is no image file, or none could be used.
    ModelFileError
        When the model has no reference, or its reference was made for another model file.
    """
    if window < MINIMUM_MONITOR_WINDOW:
        raise ParameterError(f"--window {window}: give at least {MINIMUM_MONITOR_WINDOW} digits per window "
                             f"({DEFAULT_WINDOW} by default); fewer test too little to tell a change from chance.")
    if order not in ORDERS:
        raise ParameterError(f"--order {order!r}: give one of {', '.join(ORDERS)}.")
    paths = find_image_files(images, what="monitor", notify=notify)
    in_use = load_model_in_use(model, describe_threshold=True, notify=notify)
    reference = load_reference(in_use.path)
    if reference is None:
        raise ModelFileError(
            f"{in_use.path.name} has no monitoring reference ({find_reference_path(in_use.path).name} beside it), so "
            "the stream cannot be compared with anything: no change test and no accuracy estimate can be made. "
            "Models saved by 04_cnn, `digitrec adapt` and `digitrec calibrate --write` since this version have one; "
            "for this model run `digitrec calibrate LABELLED --model MODEL --write` on labelled digits of the source "
            "it should be watched against (its threshold is chosen again there, and the reference written).")
    abstention = Abstention.from_saved(in_use.abstention)
    notes = []
    if abstention is None:
        notes.append("The model has no saved threshold, so the share answered and the accuracy of the answered "
                     "digits are not checked; `digitrec calibrate LABELLED --write` chooses one.")
    paths = sorted(paths, key=(lambda path: (path.stat().st_mtime, str(path))) if order == "time" else str)
    estimators = ReferenceEstimators(reference, abstention)
    notify(f"reference: {reference.source}, {len(reference.correct):,} digits")
    stream = _read_stream(paths, in_use.model, reference, window=window, seed=seed)
    for error in stream.errors:
        notify(f"error: {error} (left out)")
    if not stream.n_digits:
        raise ImageError(f"none of the {len(paths):,} image files could be used (see the errors above), so nothing "
                         "could be checked.")
    if stream.n_digits < window:
        notes.append(f"Only {stream.n_digits:,} digits, fewer than a window of {window:,}: they are checked as one "
                     "window, and a small change may go unnoticed.")
    base = _find_common_folder(paths)
    windows = []
    for number, (start, stop) in enumerate(stream.windows, start=1):
        part = slice(start, stop)
        check = check_window(estimators, stream.probabilities[part], stream.embeddings[part],
                             {name: values[part] for name, values in stream.properties.items()}, seed=seed + number)
        windows.append(WindowReport(number, _name(paths[stream.files[start]], base),
                                    _name(paths[stream.files[stop - 1]], base), check, judge_check(check, estimators),
                                    stream.examples.get(number - 1, np.zeros((0, 28, 28), np.uint8))))
        notify(f"window {number}: {windows[-1].verdict}")
    sample = stream.sample()
    check = check_window(estimators, stream.probabilities[sample], stream.embeddings[sample],
                         {name: values[sample] for name, values in stream.properties.items()}, seed=seed)
    whole = WindowReport(0, windows[0].first, windows[-1].last, check, judge_check(check, estimators),
                         np.concatenate([window.examples[:2] for window in windows])[:EXAMPLES_PER_WINDOW])
    outcome = MonitorOutcome(
        model_name=in_use.name, reference_source=reference.source, n_reference=len(reference.correct),
        reference_accuracy=reference.accuracy, abstention=abstention,
        reference_answered=estimators.reference_answered, n_files=len(paths), errors=stream.errors,
        windows=windows, stream=whole, notes=notes, reference_examples=reference.examples,
        reference_properties=reference.properties,
        stream_properties={name: values[sample] for name, values in stream.properties.items()})
    if page:
        write_monitoring_page(outcome, page)
        notify(f"page written: {page}")
    return outcome


@dataclass
class _Stream:
    """Every usable digit's outputs and properties, in the stream's order, and where its windows lie."""

    probabilities: np.ndarray
    embeddings: np.ndarray
    properties: dict[str, np.ndarray]
    files: np.ndarray
    errors: list[str]
    windows: list[tuple[int, int]]
    examples: dict[int, np.ndarray]
    seed: int

    @property
    def n_digits(self) -> int:
        return len(self.probabilities)

    def sample(self) -> np.ndarray:
        """The positions the whole stream is tested on: all, or :data:`STREAM_SAMPLE` drawn evenly."""
        if self.n_digits <= STREAM_SAMPLE:
            return np.arange(self.n_digits)
        return np.sort(np.random.default_rng(self.seed).choice(self.n_digits, STREAM_SAMPLE, replace=False))


def _read_stream(paths: list[Path], model, reference, *, window: int, seed: int) -> _Stream:
    """Prepare and read every file a batch at a time, keeping each digit's outputs, properties and a few examples."""
    observing_model = build_observing_model(model)
    probabilities, embeddings, files, errors, examples = [], [], [], [], {}
    properties: dict[str, list[np.ndarray]] = {}
    offset = n_digits = 0
    for batch in prepare_image_files(paths, measure_files=True):
        errors += [batch.errors[position] for position in sorted(batch.errors)]
        if len(batch.images):
            batch_probabilities, batch_embeddings, measured = observe_digits(observing_model, reference,
                                                                             batch.images, batch.file_properties)
            probabilities.append(batch_probabilities)
            embeddings.append(batch_embeddings)
            for name, values in measured.items():
                properties.setdefault(name, []).append(np.asarray(values, dtype=np.float32))
            files.append(offset + np.asarray(batch.positions))
            for index, image in zip(range(n_digits, n_digits + len(batch.images)), batch.images, strict=True):
                if index % window < EXAMPLES_PER_WINDOW:
                    examples.setdefault(index // window, []).append(np.round(image * 255).astype(np.uint8))
            n_digits += len(batch.images)
        offset += len(batch.paths)
    n_classes = reference.probabilities.shape[1]
    return _Stream(
        probabilities=np.concatenate(probabilities) if probabilities else np.zeros((0, n_classes), np.float32),
        embeddings=np.concatenate(embeddings) if embeddings else np.zeros((0, reference.embeddings.shape[1])),
        properties={name: np.concatenate(values) for name, values in properties.items()},
        files=np.concatenate(files) if files else np.zeros(0, int), errors=errors,
        windows=cut_windows(n_digits, window), examples={key: np.stack(value) for key, value in examples.items()},
        seed=seed)


def _find_common_folder(paths: list[Path]) -> Path:
    """The folder that holds every file, so that a page names them without the machine's path."""
    folders = [str(path.resolve().parent) for path in paths]
    return Path(os.path.commonpath(folders)) if folders else Path()


def _name(path: Path, base: Path) -> str:
    """A file's name from the stream's common folder."""
    try:
        return str(path.resolve().relative_to(base))
    except ValueError:
        return path.name


def _estimate_to_dict(estimate: AccuracyEstimate | None) -> dict | None:
    if estimate is None:
        return None
    return {"accuracy": estimate.accuracy, "ci95": [estimate.low, estimate.high], "images": estimate.n_images}


def _name_changed_tests(windows: list[WindowReport], shown: int = 3) -> str:
    """The tests that rang most often over the windows, most often first."""
    counts: dict[str, int] = {}
    for window in windows:
        for name in window.check.tests.loc[window.check.tests["changed"], "test"]:
            counts[name] = counts.get(name, 0) + 1
    ranked = sorted(counts, key=lambda name: -counts[name])
    return ", ".join(ranked[:shown]) + (" and more" if len(ranked) > shown else "")


def _list_numbers(numbers: list[int]) -> str:
    """1, 2, 3, 5 as "1-3, 5"."""
    runs, start = [], None
    for index, number in enumerate(numbers):
        if start is None:
            start = number
        if index + 1 == len(numbers) or numbers[index + 1] != number + 1:
            runs.append(str(start) if start == number else f"{start}-{number}")
            start = None
    return ", ".join(runs)
