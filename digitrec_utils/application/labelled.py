"""A saved model on an office's own labelled digits: the services behind ``digitrec evaluate`` and ``calibrate``.

The digits are scored by :func:`digitrec_utils.evaluation.labelled.score_labelled_digits`; the pages are written by
:mod:`digitrec_utils.reporting.labelled_pages`.

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

import math
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from digitrec_utils.application.models import ModelInUse, check_target_option, ignore, load_model_in_use
from digitrec_utils.data.labelled import open_labelled_source
from digitrec_utils.data.preparation import describe_skipped
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
    estimate_images_needed,
    evaluate_model,
    format_percent_interval,
)
from digitrec_utils.evaluation.labelled import ScoredDigits, find_where_chosen, score_labelled_digits
from digitrec_utils.exceptions import ParameterError
from digitrec_utils.models.model_files import attach_reference, check_model_files, record_abstention
from digitrec_utils.models.reference import build_reference_from_source
from digitrec_utils.reporting.labelled_pages import write_comparison_page, write_evaluation_page

DEFAULT_TARGET = 0.995


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


def _lowercase_first(text: str) -> str:
    return text[:1].lower() + text[1:]


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


@dataclass
class EvaluationOutcome:
    """What ``digitrec evaluate`` measured: one model's evaluation, or several models' and their comparison.

    Attributes
    ----------
    reports : dict of str to FieldEvaluation
        Keyed by the model's name (:func:`name_models`; the only model's path when there is one).
    comparison : ModelComparison or None
        With two models or more.
    model_paths : list of Path
    """

    reports: dict[str, FieldEvaluation]
    comparison: ModelComparison | None
    model_paths: list[Path]

    @property
    def failed(self) -> bool:
        """Whether any image could not be used (they count as wrong; the command exits with 1)."""
        return bool(next(iter(self.reports.values())).scored.errors)

    def to_dict(self) -> dict:
        if self.comparison is not None:
            return self.comparison.to_dict()
        return next(iter(self.reports.values())).to_dict()


def evaluate_digits(data: Sequence[str | os.PathLike], models: Sequence[str | os.PathLike | None] = (None,), *,
                    page: str | os.PathLike | None = None, notify: Callable[[str], None] = ignore) -> EvaluationOutcome:
    """Measure saved models on labelled digits (``digitrec evaluate``), and compare them when there are several.

    Parameters
    ----------
    data : sequence of path-like
        A folder tree ``<root>/<label>/*``, or images and labels files (IDX or CSV).
    models : sequence of path-like or None
        The saved models; None is the newest good run's.
    page : path-like, optional
        Where to write the HTML page.
    notify : callable
        Told which files were skipped, which model is scored, each image that could not be used (once), and the
        page written.
    """
    models = list(models) or [None]
    if len(models) > 1:
        repeated = [path for path, count in Counter(Path(model).resolve() for model in models).items() if count > 1]
        if repeated:
            raise ParameterError(f"--model {repeated[0].name} is given twice; give each model once.")
        for model in models:
            check_model_files(model)  # Every model is there before the first one's digits are scored.
    loaded = _score_each_model(data, models, notify)
    names = name_models(models) if len(models) > 1 else [str(loaded[0][0].path)]
    reports = {name: evaluate_scored(scored, abstention=in_use.abstention, model_name=in_use.name)
               for name, (in_use, scored) in zip(names, loaded, strict=True)}
    comparison = compare_scored(reports) if len(models) > 1 else None
    if page is not None:
        if comparison is not None:
            write_comparison_page(comparison, page)
        else:
            write_evaluation_page(next(iter(reports.values())), page, model_path=loaded[0][0].path)
        notify(f"page {page}")
    return EvaluationOutcome(reports, comparison, [in_use.path for in_use, _ in loaded])


@dataclass
class CalibrationOutcome:
    """What ``digitrec calibrate`` chose, and whether it was written into the model's JSON.

    Attributes
    ----------
    calibration : Calibration
    model_path : Path
    written : bool
    write_asked : bool
    n_unusable : int
        Images that could not be used.
    """

    calibration: Calibration
    model_path: Path
    written: bool
    write_asked: bool
    n_unusable: int

    @property
    def failed(self) -> bool:
        """An image could not be used, or --write found no threshold to write (the command exits with 1)."""
        return bool(self.n_unusable) or (self.write_asked and not self.written)

    def to_dict(self) -> dict:
        return {**self.calibration.to_dict(), "written": self.written}


def calibrate_digits(data: Sequence[str | os.PathLike], model: str | os.PathLike | None = None, *,
                     target: float = DEFAULT_TARGET, seed: int = 0, write: bool = False,
                     notify: Callable[[str], None] = ignore) -> CalibrationOutcome:
    """Choose the threshold again on one half of labelled digits, report it on the other (``digitrec calibrate``).

    With ``write``, a threshold that reached ``target`` on the choosing half is written into the model's JSON
    (the newest in its history), and the digits become the model's monitoring reference (``digitrec monitor``
    compares incoming digits with them); none is written otherwise, since saving none would answer every digit.
    """
    check_target_option(target)
    in_use, scored = _score_each_model(data, [model], notify, rechoosing=True)[0]
    calibration = calibrate_scored(scored, abstention=in_use.abstention, target=target, seed=seed)
    written = write and calibration.choice.reached
    if written:
        record_abstention(in_use.path, score=calibration.score, threshold=calibration.choice.threshold,
                          target=calibration.choice.target, chosen_on=calibration.chosen_on, seed=calibration.seed,
                          data_sha256=scored.source.sha256,
                          held_out_half=calibration.to_dict()["held_out_half"])
        usable = np.flatnonzero(scored.usable)
        reference = build_reference_from_source(in_use.model, in_use.path, scored.source, usable, seed=seed,
                                                description=f"{scored.source.description}, the digits calibrate "
                                                            "chose the threshold on")
        notify(f"monitoring reference written: {attach_reference(reference, in_use.path).name}")
        if calibration.recommendation == "keep":
            notify("warning: written as --write asked, although the saved threshold did better on the held-out half "
                   "(below); the earlier threshold stays in the JSON's abstention_history.")
    elif write:
        notify("error: not written: no threshold reached --target on the choosing half, and saving none would "
               "answer every digit. Lower --target or label more digits.")
    return CalibrationOutcome(calibration, in_use.path, written, write, len(scored.errors))


def _score_each_model(data, models, notify, *, rechoosing: bool = False) -> list[tuple[ModelInUse, ScoredDigits]]:
    """Open the labelled digits, then each model: bad data is rejected before a model takes its seconds.

    Skipped files are named once, and each image's error once (for the first model).
    """
    source = open_labelled_source(data)
    if source.skipped:
        notify(describe_skipped(source.skipped))
    loaded = []
    for model in models:
        in_use = load_model_in_use(model, rechoosing=rechoosing, notify=notify)
        scored = score_labelled_digits(source, in_use.model, class_names=in_use.class_names)
        if not loaded:
            for error in scored.errors:
                notify(f"error: {error}")
        loaded.append((in_use, scored))
    return loaded
