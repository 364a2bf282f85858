"""A saved model on an office's own labelled digits: ``digitrec evaluate`` and ``digitrec calibrate``.

:func:`score_labelled_digits` runs a saved model over labelled digits (:mod:`digitrec_utils.data.labelled`) a
batch at a time, keeping per image only its label and probabilities (and the images of the mistakes, for
examples), so that memory stays bounded whatever their number.

``evaluate`` (:func:`evaluate_scored`) gives what a test evaluation gives (scikit-learn's metrics through
:func:`digitrec_utils.evaluation.evaluation.evaluate_model`): accuracy with its 95% Wilson interval, the per-class
table, the confusion matrix and the most confused pairs, and at the model's saved threshold the share
answered and the accuracy of the answered, each with its interval. An image that could not be prepared
(unreadable, no ink) counts as a wrong answer and as not answered.

``calibrate`` (:func:`calibrate_scored`) keeps the saved score and chooses only the threshold again: the
digits are split in two halves (stratified, seeded, scikit-learn's ``train_test_split``), the threshold is
chosen on one exactly as 05_deployment chooses on validation
(:func:`digitrec_utils.evaluation.abstention.choose_threshold`), and coverage and accuracy of the answered are
reported on the other half, which played no part in the choice.
"""

from __future__ import annotations

import base64
import io
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from digitrec_utils import __version__, plots
from digitrec_utils.data.labelled import (
    LabelledSource,
    count_kinds,
    open_labelled_source,
    resolve_field_folder,
)
from digitrec_utils.data.loading import load_dataset
from digitrec_utils.evaluation.abstention import (
    SelectiveOutcome,
    ThresholdChoice,
    check_target,
    choose_threshold,
    count_answers_to_confirm,
    describe_too_few_to_confirm,
    measure_selective,
)
from digitrec_utils.evaluation.evaluation import (
    PairedComparison,
    compare_paired,
    compute_accuracy_interval,
    estimate_images_needed,
    evaluate_model,
    format_percent_interval,
)
from digitrec_utils.evaluation.scores import compute_score
from digitrec_utils.exceptions import ParameterError
from digitrec_utils.reporting.html import render_notebook_html
from digitrec_utils.reporting.tables import format_interval, style_table
from digitrec_utils.utils.files import write_text_atomic

# The images of at most this many mistakes are kept for the examples of the most confused pairs.
MAX_KEPT_MISTAKES = 2_000
# Examples shown per confused pair, and pairs shown.
EXAMPLES_PER_PAIR = 8
PAIRS_SHOWN = 5
DEFAULT_TARGET = 0.995


@dataclass
class ScoredDigits:
    """A model's probabilities for every labelled digit of a source.

    Attributes
    ----------
    source : LabelledSource
    names : list of str
    labels : ndarray of shape (n_images,)
    probabilities : ndarray of shape (n_images, n_classes)
        Zeros where the image could not be used.
    usable : ndarray of shape (n_images,), bool
    errors : list of str
        One message per image that could not be used.
    kinds : dict of str to int
        How many images were prepared each way (``field``, ``scan``, ``photo``).
    mistakes : dict of int to ndarray
        Prepared images of (some of) the misclassified digits, by position.
    class_names : list of str
    """

    source: LabelledSource
    names: list[str]
    labels: np.ndarray
    probabilities: np.ndarray
    usable: np.ndarray
    errors: list[str]
    kinds: dict[str, int]
    mistakes: dict[int, np.ndarray] = field(repr=False)
    class_names: list[str] = field(default_factory=list)

    @property
    def predictions(self) -> np.ndarray:
        """The predicted label of each image; -1 where the image could not be used."""
        return np.where(self.usable, self.probabilities.argmax(axis=1), -1)

    @property
    def correct(self) -> np.ndarray:
        return self.predictions == self.labels

    def compute_scores(self, score: str) -> np.ndarray:
        """The confidence score of each image (see :mod:`digitrec_utils.evaluation.scores`); -1 where unusable."""
        scores = compute_score(np.where(self.usable[:, None], self.probabilities, 1.0 / self.probabilities.shape[1]),
                               score)
        return np.where(self.usable, scores, -1.0)


def score_labelled_digits(source: LabelledSource, model, *, class_names=None, batch_size: int | None = None,
                          progress: bool | None = None) -> ScoredDigits:
    """Run ``model`` over every digit of ``source``, a batch at a time.

    Parameters
    ----------
    source : LabelledSource
        From :func:`digitrec_utils.data.labelled.open_labelled_source`.
    model : keras.Model
        Takes (n, 28, 28, 1) inputs in [0, 1] and outputs probabilities.
    class_names : sequence of str, optional
        The digits 0-9 by default.
    batch_size : int, optional
    progress : bool, optional
        A progress bar on standard error; by default for more than a few hundred images.
    """
    names, labels, rows, usable, errors, kinds, mistakes = [], [], [], [], [], [], {}
    for batch in source.iterate_batches(batch_size=batch_size, progress=progress):
        offset = len(names)
        names += batch.names
        labels.append(batch.labels)
        errors += list(batch.errors.values())
        kinds += batch.kinds
        probabilities = None
        if len(batch.images):
            probabilities = np.asarray(model.predict(batch.images[..., None], verbose=0), dtype=np.float64)
        n_classes = probabilities.shape[1] if probabilities is not None else len(class_names or range(10))
        block = np.zeros((len(batch.names), n_classes))
        fits = np.zeros(len(batch.names), dtype=bool)
        if probabilities is not None:
            block[batch.positions] = probabilities
            fits[batch.positions] = True
            wrong = np.flatnonzero(probabilities.argmax(axis=1) != batch.labels[batch.positions])
            for number in wrong:
                if len(mistakes) < MAX_KEPT_MISTAKES:
                    mistakes[offset + batch.positions[number]] = batch.images[number]
        rows.append(block)
        usable.append(fits)
    probabilities = np.concatenate(rows)
    names_of_classes = list(class_names or [str(digit) for digit in range(probabilities.shape[1])])
    return ScoredDigits(source, names, np.concatenate(labels).astype(int), probabilities, np.concatenate(usable),
                        errors, count_kinds(kinds), mistakes, names_of_classes)


def find_where_chosen(abstention: dict | None, sha256: str) -> str | None:
    """Say whether a saved threshold was chosen on the digits whose SHA-256 is ``sha256``.

    Returns
    -------
    where : {"half", "all"} or None
        ``"half"`` when ``calibrate`` chose it on one half of them (its entry's ``data_sha256``), ``"all"`` when
        05_deployment chose it on them (a ``threshold_field_data`` set of its entry's ``field``), else None.
    """
    abstention = abstention or {}
    if not sha256:
        return None
    if abstention.get("data_sha256") == sha256:
        return "half"
    chose = [row.get("sha256") for row in abstention.get("field") or [] if row.get("role") == ROLE_CHOOSES]
    return "all" if sha256 in chose else None


@dataclass
class FieldEvaluation:
    """What ``digitrec evaluate`` measured (see the module's docstring).

    Attributes
    ----------
    scored : ScoredDigits
    evaluation : Evaluation
        scikit-learn's metrics over every digit (an image that could not be used counts as wrong).
    abstention : dict or None
        The model's saved score and threshold, when it has one.
    selective : SelectiveOutcome or None
        Coverage and accuracy of the answered at that threshold.
    model_name : str
    """

    scored: ScoredDigits
    evaluation: object
    abstention: dict | None
    selective: SelectiveOutcome | None
    model_name: str

    def describe(self) -> str:
        """The summary: accuracy with its interval, and what the saved threshold answers and how well."""
        evaluation, scored = self.evaluation, self.scored
        interval = format_percent_interval(*evaluation.accuracy_ci95, decimals=2)
        text = (f"{self.model_name} reads {evaluation.accuracy:.2%} of the {evaluation.n_samples:,} digits of "
                f"{scored.source.name} right (95% CI {interval}).")
        if scored.errors:
            text += (f" {len(scored.errors):,} image{'s' if len(scored.errors) != 1 else ''} could not be used and "
                     "count as wrong.")
        if self.selective is not None:
            threshold = self.abstention.get("threshold") or 0.0
            text += (f" At its saved threshold ({self.abstention.get('score')} {threshold:.4f}, chosen on "
                     f"{self.abstention.get('chosen_on', 'validation')}): "
                     + _lowercase_first(self.selective.describe("digits")))
            target = self.abstention.get("target")
            too_few = describe_too_few_to_confirm(self.selective, target) if target is not None else ""
            if too_few:
                text += " " + too_few
            chosen_here = self._describe_chosen_on_these_digits()
            if chosen_here:
                text += " " + chosen_here
        else:
            text += " The model has no saved threshold: it answers every digit."
        return text

    def _chosen_on_these_digits(self) -> str | None:
        return find_where_chosen(self.abstention, self.scored.source.sha256)

    def _describe_chosen_on_these_digits(self) -> str:
        """Say when the threshold in use was chosen on these very digits, so that its figures here flatter it."""
        chosen = self._chosen_on_these_digits()
        if chosen == "all":
            return ("That threshold was chosen by 05_deployment on these same digits (threshold_field_data), so their "
                    "answered accuracy meets its target by construction: measure it on digits that played no part.")
        if chosen != "half":
            return ""
        text = ("That threshold was chosen by `digitrec calibrate` on one half of these same digits, so the figures at "
                "it are partly measured on the digits that chose it.")
        held_out = (self.abstention or {}).get("held_out_half") or {}
        if held_out.get("n_answered"):
            text += (f" On the half that played no part it answered {held_out['coverage']:.1%} of "
                     f"{held_out['n_images']:,} digits at {held_out['accuracy_of_answered']:.2%}: that is the figure "
                     "to trust.")
        return text

    def to_dict(self) -> dict:
        """The figures as JSON-ready values (``digitrec evaluate --json``)."""
        scored, evaluation = self.scored, self.evaluation
        result = {"model": self.model_name, "data": scored.source.description, "data_sha256": scored.source.sha256,
                  "n_images": int(evaluation.n_samples), "n_unusable": len(scored.errors),
                  "prepared_as": scored.kinds, **evaluation.to_dict(),
                  "confused_pairs": evaluation.confused_pairs.to_dict(orient="records")}
        if self.selective is not None:
            target = self.abstention.get("target")
            result["abstention"] = {**{key: self.abstention.get(key) for key in ("score", "threshold", "chosen_on",
                                                                                  "target")},
                                    **_selective_to_dict(self.selective),
                                    "answered_needed_to_confirm_target": (count_answers_to_confirm(target)
                                                                          if target is not None else None),
                                    "chosen_on_these_digits": self._chosen_on_these_digits()}
        return result


def evaluate_scored(scored: ScoredDigits, *, abstention: dict | None, model_name: str) -> FieldEvaluation:
    """Measure the model on every digit, and at its saved threshold (see the module's docstring)."""
    # The probabilities of an image that could not be used are all zeros already.
    evaluation = evaluate_model(scored.labels, scored.predictions, scored.probabilities,
                                class_names=tuple(scored.class_names))
    selective = None
    if abstention:
        scores = scored.compute_scores(abstention.get("score", "top_probability"))
        selective = measure_selective(scores, scored.correct, abstention.get("threshold") or 0.0)
    return FieldEvaluation(scored, evaluation, abstention, selective, model_name)


@dataclass
class Calibration:
    """A threshold chosen again on one half of an office's digits, and what it gives on the other.

    Attributes
    ----------
    score : str
        The saved score, kept.
    choice : ThresholdChoice
        Chosen on the choosing half (its usable images).
    held_out : SelectiveOutcome
        The new threshold on the other half.
    saved_held_out : SelectiveOutcome or None
        The saved threshold on the same half, for comparison.
    saved_threshold : float or None
    choosing, reporting : ndarray of int
        The positions of the two halves; they share no image.
    seed : int
    source_name : str
    saved_chosen_here : {"half", "all"} or None
        Where the saved threshold was chosen on some of the held-out digits (:func:`find_where_chosen`): a
        ``calibrate`` with another seed, or 05_deployment on all of them; its held-out figure then flatters it.
    """

    score: str
    choice: ThresholdChoice
    held_out: SelectiveOutcome
    saved_held_out: SelectiveOutcome | None
    saved_threshold: float | None
    choosing: np.ndarray
    reporting: np.ndarray
    seed: int
    source_name: str
    saved_chosen_here: str | None = None

    @property
    def chosen_on(self) -> str:
        return f"{self.source_name} (one half, {len(self.choosing):,} digits, seed {self.seed})"

    def describe(self) -> str:
        """What was chosen where, and what it gives on the half that played no part."""
        choice = _lowercase_first(self.choice.describe()).replace("validation images", "digits of that half")
        text = (f"Chosen on one half of {self.source_name} ({len(self.choosing):,} digits, stratified, seed "
                f"{self.seed}), keeping the saved score ({self.score}): {choice}")
        text += (f" On the other half ({len(self.reporting):,} digits), the new threshold would "
                 + _lowercase_first(self.held_out.describe("digits")))
        too_few = describe_too_few_to_confirm(self.held_out, self.choice.target, share=0.5)
        if too_few:
            text += " " + too_few
        if self.saved_held_out is not None:
            text += (f" The saved threshold ({self.saved_threshold:.4f}) on the same half: "
                     + _lowercase_first(self.saved_held_out.describe("digits")))
        return text

    @property
    def recommendation(self) -> str:
        """``"write"`` or ``"keep"``: which threshold to use from now on (:meth:`describe_recommendation`)."""
        return self._recommend()[0]

    def describe_recommendation(self) -> str:
        """Say which threshold to use from now on, the new one or the saved one, and why.

        Both are judged on the held-out half, against the target: the one whose answered digits reach it, and
        of two that both do, the one that answers more. Where neither reaches it, the one whose answered
        digits come closer, with the advice to label more digits. A model with no saved threshold takes the
        new one; where no threshold reached the target on the choosing half, there is nothing to write.
        """
        return self._recommend()[1]

    def _recommend(self) -> tuple[str, str]:
        action, reason = self._compare_on_held_out_half()
        if self.saved_held_out is not None and self.saved_chosen_here:
            reason += {"all": " The saved threshold was chosen on all of these digits in 05_deployment, so its figure "
                              "here flatters it.",
                       "half": " The saved threshold was chosen by an earlier calibrate on a half of these digits "
                               "drawn with another --seed, so its figure here flatters it; give that run's --seed to "
                               "compare the two fairly."}[self.saved_chosen_here]
        return action, reason

    def _compare_on_held_out_half(self) -> tuple[str, str]:
        target, new, saved = self.choice.target, self.held_out, self.saved_held_out
        if not self.choice.reached:
            return "keep", (f"Nothing to write: no threshold reached {target:.2%} on the choosing half. Keep the "
                            "saved threshold; label more digits, or lower --target.")
        if saved is None:
            return "write", (f"Write it (--write): the model has no saved threshold, and on the held-out half the new "
                             f"one {_describe_answered(new)}.")
        on_half = (f"On the held-out half the new threshold {_describe_answered(new)}, the saved one "
                   f"{_describe_answered(saved)}")
        new_reaches, saved_reaches = (bool(outcome.n_answered) and outcome.accuracy >= target
                                      for outcome in (new, saved))
        # For the threshold to use, the recommendation and the words that open its sentence.
        advice = {"new": ("write", "Write it (--write)"), "saved": ("keep", "Keep the saved threshold")}
        if new_reaches and saved_reaches:
            better = "new" if new.coverage >= saved.coverage else "saved"
            action, lead = advice[better]
            return action, f"{lead}. {on_half}: both reach {target:.2%}, and the {better} one answers more."
        if new_reaches or saved_reaches:
            only = "new" if new_reaches else "saved"
            action, lead = advice[only]
            return action, (f"{lead}. {on_half}: only the {only} one reaches {target:.2%}."
                            + (" Label more digits and calibrate again." if only == "saved" else ""))
        closer = "new" if (new.accuracy if new.n_answered else -1.0) > (saved.accuracy if saved.n_answered
                                                                          else -1.0) else "saved"
        action, lead = advice[closer]
        return action, (f"{lead} for now. {on_half}: neither reaches {target:.2%}, and the {closer} one comes closer. "
                        "Label more digits and calibrate again, or lower --target.")

    def to_dict(self) -> dict:
        return {"score": self.score, "threshold": self.choice.threshold, "target": self.choice.target,
                "chosen_on": self.chosen_on, "seed": self.seed,
                "choosing_half": {"n_images": int(len(self.choosing)), "coverage": self.choice.coverage,
                                  "accuracy": self.choice.accuracy},
                "held_out_half": _selective_to_dict(self.held_out),
                "answered_needed_to_confirm_target": count_answers_to_confirm(self.choice.target),
                "saved_threshold": self.saved_threshold,
                "saved_threshold_on_held_out_half": (_selective_to_dict(self.saved_held_out)
                                                     if self.saved_held_out is not None else None),
                "recommendation": self.recommendation, "recommendation_reason": self.describe_recommendation()}


def split_halves(labels: np.ndarray, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split positions into two stratified, seeded halves that share no image (scikit-learn's ``train_test_split``).

    Raises
    ------
    ParameterError
        When a class has fewer than two digits (a stratified split needs one in each half).
    """
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    counts = np.bincount(labels[labels >= 0])
    present = counts[counts > 0]
    if len(labels) < 4 or present.min() < 2:
        raise ParameterError("calibrate needs at least two labelled digits of every class it holds (one for each "
                             "half); add digits, or leave the rare class's folder out.")
    choosing, reporting = train_test_split(np.arange(len(labels)), test_size=0.5, stratify=labels, random_state=seed)
    return np.sort(choosing), np.sort(reporting)


def calibrate_scored(scored: ScoredDigits, *, abstention: dict | None, target: float = DEFAULT_TARGET,
                     seed: int = 0) -> Calibration:
    """Choose the threshold again on one half of the digits and report it on the other (module docstring)."""
    check_target(target)
    score = (abstention or {}).get("score", "top_probability")
    scores, correct = scored.compute_scores(score), scored.correct
    choosing, reporting = split_halves(scored.labels, seed=seed)
    usable_choosing = choosing[scored.usable[choosing]]
    if not usable_choosing.size:
        raise ParameterError("calibrate: no image of the choosing half could be used; check the images.")
    choice = choose_threshold(scores[usable_choosing], correct[usable_choosing], target)
    held_out = measure_selective(scores[reporting], correct[reporting], choice.threshold or 0.0)
    saved = (abstention or {}).get("threshold")
    saved_held_out = (measure_selective(scores[reporting], correct[reporting], saved or 0.0)
                      if abstention else None)
    # The saved threshold's held-out figure is fair unless it was chosen on some of the held-out digits.
    saved_chosen_here = find_where_chosen(abstention, scored.source.sha256)
    if saved_chosen_here == "half" and (abstention or {}).get("seed") == seed:
        saved_chosen_here = None  # The same seed draws the same halves: it was chosen on the choosing half.
    return Calibration(score, choice, held_out, saved_held_out, saved, choosing, reporting, seed,
                       scored.source.name, saved_chosen_here)


@dataclass
class ModelComparison:
    """Several saved models on the same labelled digits (``digitrec evaluate --model A --model B``).

    Attributes
    ----------
    reports : dict of str to FieldEvaluation
        Each model's evaluation, keyed by how the model was named on the command line.
    paired : PairedComparison
        Every model against the most accurate one, with McNemar's exact test on the same digits.
    """

    reports: dict[str, FieldEvaluation]
    paired: PairedComparison

    def describe(self) -> str:
        """Which model reads these digits best, and whether the digits can tell the models apart."""
        table, n_images = self.paired.table, self.paired.n_images
        best = table.iloc[0]
        tied = list(table.loc[table["accuracy"] == best["accuracy"], "setting"])
        lead = (f"{best['setting']} reads the most right" if len(tied) == 1
                else f"{', '.join(tied[:-1])} and {tied[-1]} read the most right, as many each")
        text = f"On the same {n_images:,} digits, {lead} ({best['accuracy']:.2%})."
        for _, row in table.iloc[1:].iterrows():
            only_best, only_this = int(row["only best right"]), int(row["only this right"])
            text += (f" Against {row['setting']} ({row['accuracy']:.2%}): {only_best:,} digits read right only by "
                     f"the first, {only_this:,} only by the second, McNemar's exact test p = {row['p-value']:.2g}")
            if row["distinguishable"]:
                text += f", so {best['setting']} reads these digits better."
                continue
            text += ", so these digits cannot tell the two apart"
            needed = estimate_images_needed(only_best, only_this, n_images, significance=self.paired.significance)
            text += (f" (seeing a difference of this size reliably would take about {needed:,} digits)."
                     if needed is not None else ".")
        return text

    def to_dict(self) -> dict:
        rows = self.paired.table.to_dict(orient="records")
        return {"n_images": self.paired.n_images, "best": self.paired.best,
                "models": {name: report.to_dict() for name, report in self.reports.items()},
                "paired": [{"model": row["setting"], "accuracy": row["accuracy"],
                            "accuracy_ci95": [row["95% CI low"], row["95% CI high"]],
                            "only_best_right": int(row["only best right"]),
                            "only_this_right": int(row["only this right"]), "p_value": row["p-value"],
                            "distinguishable": bool(row["distinguishable"])} for row in rows]}


def compare_scored(reports: dict[str, FieldEvaluation]) -> ModelComparison:
    """Compare models that read the same labelled digits: each against the most accurate, on the same digits.

    Parameters
    ----------
    reports : dict of str to FieldEvaluation
        Two or more models' evaluations of one source (:func:`evaluate_scored`), in the order given.

    Raises
    ------
    ParameterError
        When the models name their classes differently.
    ValueError
        When fewer than two evaluations are given, or they are not of the same digits in the same order.
    """
    if len(reports) < 2:
        raise ValueError("compare_scored needs two models or more.")
    first = next(iter(reports.values())).scored
    for name, report in reports.items():
        if report.scored.class_names != first.class_names:
            raise ParameterError(f"--model {name}: its classes ({', '.join(report.scored.class_names)}) are not "
                                 f"those of the first model ({', '.join(first.class_names)}); compare models of "
                                 "the same classes.")
        if not np.array_equal(report.scored.labels, first.labels):
            raise ValueError("compare_scored needs evaluations of the same digits, in the same order.")
    paired = compare_paired(first.labels, {name: report.scored.predictions for name, report in reports.items()})
    return ModelComparison(reports, paired)


def _selective_to_dict(outcome: SelectiveOutcome) -> dict:
    return {"n_images": outcome.n_images, "n_answered": outcome.n_answered, "coverage": outcome.coverage,
            "coverage_ci95": list(outcome.coverage_ci95), "accuracy_of_answered": _finite(outcome.accuracy),
            "accuracy_of_answered_ci95": [_finite(value) for value in outcome.accuracy_ci95]}


def _describe_answered(outcome: SelectiveOutcome) -> str:
    """How much of a half a threshold answers, and how well: "answers 70.1% of its digits at 99.64%"."""
    if not outcome.n_answered:
        return "answers none of its digits"
    return f"answers {outcome.coverage:.1%} of its digits at {outcome.accuracy:.2%}"


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def _name_file(error: str) -> str:
    """An image's error (``path: reason``) with the file's name only, no machine folders."""
    path, _, reason = error.partition(": ")
    return f"{Path(path).name}: {reason}"


def _lowercase_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _describe_confused_examples(scored: ScoredDigits, pairs: pd.DataFrame) -> list[tuple[str, np.ndarray]]:
    """For each of the first :data:`PAIRS_SHOWN` confused pairs: a caption and up to :data:`EXAMPLES_PER_PAIR`
    images."""
    predictions, names = scored.predictions, scored.class_names
    examples = []
    for row in pairs.head(PAIRS_SHOWN).itertuples():
        true_label, predicted = names.index(str(row.true)), names.index(str(row.predicted))
        positions = [position for position in np.flatnonzero((scored.labels == true_label)
                                                             & (predictions == predicted))
                     if position in scored.mistakes][:EXAMPLES_PER_PAIR]
        if positions:
            caption = f"{row.true} read as {row.predicted} ({row.count:,} times)"
            examples.append((caption, np.stack([scored.mistakes[position] for position in positions])))
    return examples


class _Page:
    """A report page built as a notebook with its outputs (no kernel runs), rendered by the suite's renderer."""

    def __init__(self) -> None:
        import matplotlib

        matplotlib.use("Agg")
        self.cells = []

    def add_markdown(self, text: str) -> None:
        import nbformat

        self.cells.append(nbformat.v4.new_markdown_cell(text))

    def add_outputs(self, *items, details: str | None = None) -> None:
        import nbformat

        cell = nbformat.v4.new_code_cell("", outputs=list(items))
        if details:
            cell.metadata["digitrec"] = {"details": details}
        self.cells.append(cell)

    def add_table(self, table) -> None:
        import nbformat

        self.add_outputs(nbformat.v4.new_output("display_data", data={"text/html": table.to_html()}))

    def add_figure(self, figure) -> None:
        import nbformat
        from matplotlib import pyplot as plt

        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
        plt.close(figure)
        self.add_outputs(nbformat.v4.new_output("display_data", data={
            "image/png": base64.b64encode(buffer.getvalue()).decode("ascii"), "text/plain": "<figure>"}))

    def add_details(self, lines: list[str], *, title: str) -> None:
        """A list folded away under ``title``."""
        import nbformat

        self.add_markdown("## Details")
        self.add_outputs(nbformat.v4.new_output("display_data", data={"text/markdown": "\n".join(lines),
                                                                      "text/plain": "\n".join(lines)}),
                         details=title)

    def write(self, path) -> None:
        import nbformat

        notebook = nbformat.v4.new_notebook(cells=self.cells)
        with tempfile.TemporaryDirectory() as folder:
            notebook_path = Path(folder) / "evaluate.ipynb"
            nbformat.write(notebook, str(notebook_path))
            html = render_notebook_html(notebook_path)
        write_text_atomic(path, html)


def _describe_data(scored: ScoredDigits) -> list[str]:
    """The details lines on the digits: where from, their checksum, how they were prepared, which were unusable."""
    lines = [f"- Data: {scored.source.description}; SHA-256 {scored.source.sha256[:16]}...",
             "- Prepared as: " + ", ".join(f"{kind} {count:,}" for kind, count in scored.kinds.items()),
             f"- digitrec {__version__}"]
    if scored.errors:
        lines.append(f"- Images that could not be used ({len(scored.errors):,}): "
                     + "; ".join(_name_file(error) for error in scored.errors[:20])
                     + (" ..." if len(scored.errors) > 20 else ""))
    return lines


def write_evaluation_page(report: FieldEvaluation, path, *, model_path) -> None:
    """Write the evaluation as a self-contained HTML page in the suite's style (summary first, details folded).

    The page is a notebook built here with its outputs (no kernel runs) and rendered by
    :func:`digitrec_utils.reporting.html.render_notebook_html`, the suite's own renderer, so that it looks like the
    report pages: the same template, tables and figures, and no machine paths.
    """
    page = _Page()
    evaluation, scored = report.evaluation, report.scored
    page.add_markdown(f"# {report.model_name} on {scored.source.name}\n\nHow the saved model reads labelled digits "
                      f"from elsewhere: {scored.source.description}, each prepared as `digitrec predict` prepares it.")
    page.add_markdown("## Summary\n\n" + report.describe())
    page.add_markdown("## Per class\n\nPrecision, recall and F1 of each class (scikit-learn's metrics).")
    table = evaluation.per_class[["name", "precision", "recall", "f1", "support"]].rename(columns={"name": "class"})
    page.add_table(style_table(table))
    page.add_markdown("## Confusions")
    page.add_figure(plots.plot_confusion_matrix(evaluation.confusion_matrix, scored.class_names,
                                                title=f"{scored.source.name}: confusion matrix", show=False))
    pairs = evaluation.confused_pairs
    if len(pairs):
        page.add_markdown("The most confused pairs, with examples of each as the model was fed them.")
        page.add_table(style_table(pairs, percent_columns=["share_of_true"]))
        for caption, images in _describe_confused_examples(scored, pairs):
            page.add_figure(plots.plot_image_grid(images, n_columns=EXAMPLES_PER_PAIR, title=caption, show=False))
    else:
        page.add_markdown("No digit was misread.")
    page.add_details([f"- Model: {report.model_name} ({Path(model_path).name})", *_describe_data(scored)],
                     title="Model, data and preparation")
    page.write(path)


def write_comparison_page(comparison: ModelComparison, path) -> None:
    """Write several models' evaluations of the same digits as one self-contained HTML page.

    Summary first (which model reads the digits best, and whether McNemar's exact test tells them apart),
    then one row per model (accuracy, and at its own saved threshold the share answered and their accuracy),
    the recall of each class side by side, and each model's own summary folded away. Models are named as
    :func:`name_models` names them, so the page shows no machine path.
    """
    page = _Page()
    reports = comparison.reports
    scored = next(iter(reports.values())).scored
    page.add_markdown(f"# {len(reports)} models on {scored.source.name}\n\nWhich saved model reads these labelled "
                      f"digits better: {scored.source.description}, each prepared as `digitrec predict` prepares "
                      "it, and every model reading the same digits.")
    page.add_markdown("## Summary\n\n" + comparison.describe())
    page.add_markdown("## Every model\n\nAccuracy on every digit with its 95% interval, McNemar's exact test "
                      "against the best on the digits only one of the two reads right, and at each model's own "
                      "saved threshold the share answered and their accuracy.")
    paired = comparison.paired.table.set_index("setting")
    rows = []
    for name, report in reports.items():
        row = paired.loc[name]
        selective = report.selective
        best = name == comparison.paired.best  # Against itself: nothing to count or test.
        verdict = "best" if best else "worse" if row["distinguishable"] else "within noise"
        rows.append({"model": name, "accuracy": row["accuracy"],
                     "95% CI": format_interval(row["95% CI low"], row["95% CI high"]),
                     "right only with the best": np.nan if best else int(row["only best right"]),
                     "right only with this one": np.nan if best else int(row["only this right"]),
                     "p-value": np.nan if best else row["p-value"], "vs best": verdict,
                     "answered": selective.coverage if selective is not None else float("nan"),
                     "accuracy of answered": selective.accuracy if selective is not None else float("nan")})
    table = pd.DataFrame(rows).sort_values("accuracy", ascending=False, kind="stable")
    page.add_table(style_table(table, percent_columns=["answered"]))
    page.add_markdown("## Per class\n\nThe recall of each class (the share of its digits read right), per model.")
    recall = pd.DataFrame({"class": scored.class_names,
                           **{name: reports[name].evaluation.per_class["recall"].to_numpy()
                              for name in table["model"]}})
    page.add_table(style_table(recall))
    lines = [f"- {name}: {report.describe()}" for name, report in reports.items()]
    page.add_details([*lines, *_describe_data(scored)], title="Each model's summary, the data and its preparation")
    page.write(path)


def name_models(paths) -> list[str]:
    """Name each model path by the end of it that tells it from the others, with no machine folders.

    The shortest tail of each path that no other path shares is kept, less the parts every tail shares at
    the same place: ``reports/a/models/cnn_selected.keras`` and ``reports/b/models/cnn_selected.keras``
    become ``a`` and ``b`` (the runs), ``old.keras`` and ``new.keras`` stay as they are.
    """
    parts = [Path(path).parts for path in paths]
    for length in range(1, max(len(part) for part in parts) + 1):
        tails = [part[-length:] for part in parts]
        if len({"/".join(tail) for tail in tails}) == len(tails):
            break
    else:
        return [str(path) for path in paths]
    shared = [position for position in range(-length, 0)
              if len(tails[0]) >= -position and all(len(tail) >= -position and tail[position] == tails[0][position]
                                                     for tail in tails)]
    names = ["/".join(piece for index, piece in enumerate(tail) if index - len(tail) not in shared)
             or "/".join(tail) for tail in tails]
    return names if len(set(names)) == len(names) else ["/".join(tail) for tail in tails]


# Other writers' digits in 05_deployment: where the threshold must hold too, and what the office can expect.

ROLE_CHOOSES = "chose the threshold"
ROLE_REPORTS = "reported only"


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

            digits = load_dataset("digits")
            images = np.concatenate([digits.x_train, digits.x_test])
            labels = np.concatenate([digits.y_train, digits.y_test])
            source = LabelledSource("sklearn digits", "scikit-learn's 1,797 8x8 digits", len(labels), None,
                                    (images, labels), digits.sha256)
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
