"""``digitrec adapt``: a saved model fine-tuned on the office's own labelled digits, and measured honestly; and
``digitrec adapt --suggest``: which of its unlabelled digits to label first.

The office's digits are split, stratified and seeded, into a part to adapt on (itself split into training and
validation digits) and a part to check on, unless ``--check`` names other digits. A copy of the saved model
is fine-tuned on the training digits with a replay of its original training digits
(:func:`digitrec_utils.models.adaptation.fine_tune`); the epoch and the threshold are chosen on the validation
digits; the check digits are read once, by the parent and by the copy, and so are the parent's original test
digits, so that forgetting is measured. The copy is saved as a model bundle whose JSON says what it was
adapted from and on what.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from digitrec_utils.application.images import find_image_files, read_prepared_images
from digitrec_utils.application.models import ModelInUse, check_target_option, ignore, load_model_in_use
from digitrec_utils.data.labelled import open_labelled_source, read_labelled_digits
from digitrec_utils.data.preparation import describe_skipped
from digitrec_utils.data.readers import compute_sha256
from digitrec_utils.data.splits import split_labelled_digits
from digitrec_utils.data.types import DIGIT_CLASS_NAMES
from digitrec_utils.engines.adaptation import (
    Reading,
    choose_augmentation_of,
    count_confusions,
    label_confident_digits,
    load_original_digits,
    mark_usable,
    pick_examples,
    predict_labels,
    predict_probabilities,
    read_positions,
)
from digitrec_utils.evaluation.abstention import (
    ThresholdChoice,
    choose_threshold,
    count_answers_to_confirm,
    measure_selective,
)
from digitrec_utils.evaluation.evaluation import PairedComparison, compare_paired, format_percent_interval
from digitrec_utils.evaluation.labelling import measure_margins, suggest_digits_to_label
from digitrec_utils.exceptions import ParameterError
from digitrec_utils.models.adaptation import AdaptationRecipe, FineTuned, fine_tune
from digitrec_utils.models.model_files import attach_reference, record_abstention, save_model_bundle
from digitrec_utils.models.reference import build_reference_from_source
from digitrec_utils.reporting.labelled_pages import write_adaptation_page, write_suggestion_page

# Digits of each class the office must give when the check part is carved from them: two to train on, one
# to validate on and one to check on.
NEEDED_PER_CLASS = 4
DEFAULT_TARGET = 0.995


@dataclass
class AdaptationOutcome:
    """What ``digitrec adapt`` did and measured (see the module's docstring).

    Attributes
    ----------
    parent : ModelInUse
    path : Path
        The adapted model's ``.keras`` file.
    fine_tuned : FineTuned
    counts : dict of str to int
        Office digits to train on, to validate on and to check on.
    check_name : str
    paired : PairedComparison
        Parent and adapted on the check digits, McNemar's exact test.
    threshold : ThresholdChoice
        Chosen on the validation digits for ``target``.
    answered_before, answered_after : SelectiveOutcome or None
        On the check digits, each model at its own threshold.
    confusions : DataFrame
        Per (true, read as) pair on the check digits: how often the parent and the adapted model make it.
    forgetting : PairedComparison or None
        Parent and adapted on the parent's original test digits; None where they could not be loaded.
    notes : list of str
    """

    parent: ModelInUse
    path: Path
    fine_tuned: FineTuned
    counts: dict
    check_name: str
    paired: PairedComparison
    threshold: ThresholdChoice
    answered_before: object
    answered_after: object
    confusions: pd.DataFrame
    forgetting: PairedComparison | None
    target: float
    notes: list[str] = field(default_factory=list)
    check_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int), repr=False)
    before: Reading | None = field(default=None, repr=False)
    after: Reading | None = field(default=None, repr=False)
    examples: list = field(default_factory=list, repr=False)
    n_unusable: int = 0

    def per_class(self) -> pd.DataFrame:
        """The recall of each class on the check digits (the share read right), before and after."""
        rows = []
        for label in range(10):
            mine = self.check_labels == label
            if mine.any():
                rows.append({"class": str(label), "digits": int(mine.sum()),
                             "before": float(np.mean(self.before.predictions[mine] == label)),
                             "after": float(np.mean(self.after.predictions[mine] == label))})
        return pd.DataFrame(rows)

    def _row(self, table: pd.DataFrame, setting: str) -> pd.Series:
        return table.set_index("setting").loc[setting]

    def _less_accurate_row(self) -> pd.Series:
        """The check digits' row of the model McNemar's test compares with the more accurate one."""
        return self._row(self.paired.table, "parent" if self.paired.best == "adapted" else "adapted")

    def describe(self) -> str:
        """The summary: accuracy before and after on the check digits, whether the difference is real, the
        share answered at the threshold, and what was forgotten."""
        before, after = (self._row(self.paired.table, name) for name in ("parent", "adapted"))
        before_interval = format_percent_interval(before["95% CI low"], before["95% CI high"])
        after_interval = format_percent_interval(after["95% CI low"], after["95% CI high"])
        text = (f"On {self.counts['check']:,} check digits of {self.check_name}, {self.parent.name} read "
                f"{before['accuracy']:.2%} (95% CI {before_interval}) before adapting and {after['accuracy']:.2%} "
                f"({after_interval}) after, adapted on "
                f"{self.counts['train']:,} of the office's digits (and {self.counts['validation']:,} to choose on).")
        worse = self._less_accurate_row()
        text += (f" McNemar's exact test: {int(worse['only best right']):,} digits right only with the "
                 f"{self.paired.best} model, {int(worse['only this right']):,} only with the other, p = "
                 f"{worse['p-value']:.2g}" + (" (a real difference)." if worse["distinguishable"] else
                                              " (these digits cannot tell the two apart)."))
        if self.answered_after is not None:
            text += (f" At the threshold chosen on the validation digits for {self.target:.1%} of answers right, the "
                     f"adapted model answers {self.answered_after.coverage:.1%} of the check digits, "
                     f"{self.answered_after.accuracy:.2%} of them right")
            if self.answered_before is not None:
                text += (f" (the parent at its saved threshold: {self.answered_before.coverage:.1%}, "
                         f"{self.answered_before.accuracy:.2%} right)")
            text += "."
            if self.answered_after.accuracy < self.target:
                text += (f" That is short of {self.target:.1%}: {self.counts['validation']:,} validation digits are "
                         f"too few to choose a threshold that holds (confirming {self.target:.1%} takes about "
                         f"{count_answers_to_confirm(self.target):,} answered digits, all right); label more, or "
                         "choose it again on other labelled digits with `digitrec calibrate`.")
        if self.forgetting is not None:
            parent, adapted = (self._row(self.forgetting.table, name) for name in ("parent", "adapted"))
            text += (f" On the parent's {self.forgetting.n_images:,} original test digits: {parent['accuracy']:.2%} "
                     f"before, {adapted['accuracy']:.2%} after.")
        return text

    def to_dict(self) -> dict:
        def rows(comparison: PairedComparison | None):
            if comparison is None:
                return None
            return {row["setting"]: {"accuracy": row["accuracy"],
                                     "accuracy_ci95": [row["95% CI low"], row["95% CI high"]]}
                    for row in comparison.table.to_dict(orient="records")}

        def selective(outcome):
            return None if outcome is None else {"coverage": outcome.coverage,
                                                 "accuracy_of_answered": outcome.accuracy}

        worse = self._less_accurate_row()
        return {"model": str(self.path), "parent": str(self.parent.path), "counts": self.counts,
                "check": rows(self.paired), "mcnemar_p": float(worse["p-value"]),
                "threshold": self.threshold.threshold, "target": self.target,
                "answered_before": selective(self.answered_before), "answered_after": selective(self.answered_after),
                "original_test": rows(self.forgetting), "train_seconds": self.fine_tuned.train_seconds,
                "best_epoch": self.fine_tuned.best_epoch, "replayed": self.fine_tuned.n_replayed,
                "pseudo_labelled": self.fine_tuned.n_pseudo, "notes": self.notes}


def adapt_model(labelled: Sequence[str | os.PathLike], *, out: str | os.PathLike | None,
                model: str | os.PathLike | None = None, check: Sequence[str | os.PathLike] | None = None,
                unlabelled: Sequence[str | os.PathLike] | None = None, seed: int = 0,
                target: float = DEFAULT_TARGET, check_share: float = 0.5,
                validation_share: float = 0.2, recipe: AdaptationRecipe | None = None,
                page: str | os.PathLike | None = None,
                notify: Callable[[str], None] = ignore) -> AdaptationOutcome:
    """Fine-tune a saved model on labelled digits, check it on others, and save it (``digitrec adapt``).

    Parameters
    ----------
    labelled : sequence of path-like
        What ``evaluate`` reads: a folder tree ``<root>/<label>/*``, or an IDX or CSV pair.
    out : path-like
        The adapted model's ``.keras`` file (its JSON goes beside it).
    model : path-like, optional
        The parent; by default the newest good run's saved CNN.
    check : sequence of path-like, optional
        Other labelled digits to check on; by default ``check_share`` of ``labelled``, never adapted on.
    unlabelled : sequence of path-like, optional
        The office's unlabelled image files or folders: those the parent answers at its saved threshold join the
        training digits with its answers as labels (:func:`label_confident_digits`; docs/RESULTS.md measures
        what they add). None may be a check digit.
    seed : int
        Seeds the splits and the fine-tuning.
    target : float
        The accuracy of the answered digits the threshold is chosen for.
    page : path-like, optional
        Where to write the HTML page.
    """
    out = _check_out(out, model)
    recipe = recipe or AdaptationRecipe()
    check_target_option(target)
    source = open_labelled_source(labelled)
    check_source = open_labelled_source(check) if check else None
    if source.skipped:
        notify(describe_skipped(source.skipped))
    if check_source is not None:
        _refuse_overlap(source, check_source)
    parent = load_model_in_use(model, notify=notify)
    if list(parent.class_names or DIGIT_CLASS_NAMES) != list(DIGIT_CLASS_NAMES):
        raise ParameterError(f"--model {parent.path.name}: its classes ({', '.join(parent.class_names)}) are not the "
                             "digits 0-9 these labelled folders hold; adapt a digit model.")
    digits = read_labelled_digits(source)
    for error in digits.errors:
        notify(f"error: {error} (left out)")
    labels = mark_usable(digits)
    if check_source is None:
        adapt_part, check_part = split_labelled_digits(labels, share=check_share, seed=seed,
                                                       needed_per_class=NEEDED_PER_CLASS,
                                                       what=f"{source.name} (the office's digits)")
        check_digits, check_name = digits, f"{source.name} (a held-out {check_share:.0%}, seed {seed})"
    else:
        adapt_part = np.flatnonzero(labels >= 0)
        check_digits, check_name = read_labelled_digits(check_source), check_source.name
        check_part = np.arange(len(check_digits.labels))
    adapt_labels = np.full(len(labels), -1)
    adapt_labels[adapt_part] = labels[adapt_part]
    train_part, validation_part = split_labelled_digits(adapt_labels, share=validation_share, seed=seed + 1,
                                                        needed_per_class=NEEDED_PER_CLASS - 1,
                                                        what=f"{source.name} (the digits to adapt on)")
    notes = []
    pseudo_labelled = _read_unlabelled(unlabelled, parent, check_digits, check_part, notes, notify)
    replay, test, problem = load_original_digits(parent.description)
    if problem:
        notes.append(f"The parent's original digits could not be loaded ({problem}), so none are replayed and "
                     "forgetting is not checked.")
        notify(f"warning: {notes[-1]}")
    fine_tuned = fine_tune(parent.model, digits.images[train_part], labels[train_part],
                           digits.images[validation_part], labels[validation_part], recipe=recipe, replay=replay,
                           pseudo_labelled=pseudo_labelled, seed=seed,
                           augmentation=choose_augmentation_of(parent.description), log=lambda line: notify(line))
    score_name = (parent.abstention or {}).get("score", "top_probability")
    adapted_validation = read_positions(fine_tuned.model, digits, validation_part, score_name)
    threshold = choose_threshold(adapted_validation.scores, adapted_validation.correct(labels[validation_part]),
                                 target)
    check_labels = check_digits.labels[check_part]
    before = read_positions(parent.model, check_digits, check_part, score_name)
    after = read_positions(fine_tuned.model, check_digits, check_part, score_name)
    paired = compare_paired(check_labels, {"parent": before.predictions, "adapted": after.predictions})
    saved_threshold = (parent.abstention or {}).get("threshold")
    answered_before = (measure_selective(before.scores, before.correct(check_labels), saved_threshold or 0.0)
                       if parent.abstention else None)
    answered_after = (measure_selective(after.scores, after.correct(check_labels), threshold.threshold)
                      if threshold.reached else None)
    if not threshold.reached:
        notes.append(f"No threshold reached {target:.1%} on the {len(validation_part):,} validation digits, so the "
                     "adapted model answers every digit; label more digits.")
    forgetting = None
    if test is not None:
        forgetting = compare_paired(test[1], {"parent": predict_labels(parent.model, test[0]),
                                              "adapted": predict_labels(fine_tuned.model, test[0])})
    counts = {"train": len(train_part), "validation": len(validation_part), "check": len(check_part)}
    confusions = count_confusions(check_labels, before, after)
    outcome = AdaptationOutcome(parent, out, fine_tuned, counts, check_name, paired, threshold, answered_before,
                                answered_after, confusions, forgetting, target, notes, check_labels, before, after,
                                pick_examples(confusions, check_labels, before, after,
                                               check_digits.images[check_part]),
                                len(digits.errors) + (len(check_digits.errors) if check_source is not None else 0))
    not_trained_on = validation_part if check_source is not None else np.union1d(validation_part, check_part)
    _save(outcome, source, check_source, seed, recipe, score_name, not_trained_on)
    notify(f"adapted model {out}")
    if page is not None:
        write_adaptation_page(outcome, page)
        notify(f"page {page}")
    return outcome


def _read_unlabelled(unlabelled, parent: ModelInUse, check_digits, check_part, notes: list[str], notify):
    """The unlabelled digits the parent answers at its saved threshold, with its answers as labels; None without
    ``--unlabelled``. Refuses unlabelled digits that are check digits (the same image contents)."""
    if not unlabelled:
        return None
    _, images, _ = read_prepared_images(find_image_files(unlabelled, what="use as unlabelled digits",
                                                         notify=notify), notify=notify)
    check_sums = {_hash_image(image) for image in check_digits.images[check_part]}
    shared = sum(_hash_image(image) in check_sums for image in images)
    if shared:
        raise ParameterError(f"--unlabelled: {shared:,} of its images are also check digits; give unlabelled digits "
                             "that are not among those checked on, or check on other digits (--check).")
    threshold = (parent.abstention or {}).get("threshold")
    if threshold is None:
        notes.append(f"{parent.path.name} has no saved threshold, so none of the {len(images):,} unlabelled digits "
                     "could be labelled by it; choose one with `digitrec calibrate --write` first.")
        notify(f"warning: {notes[-1]}")
        return None
    confident, answers = label_confident_digits(predict_probabilities(parent.model, images),
                                                score_name=parent.abstention["score"], threshold=threshold)
    notes.append(f"{len(confident):,} of the {len(images):,} unlabelled digits, those {parent.name} answers at its "
                 "saved threshold, joined the training digits with its answers as their labels.")
    notify(notes[-1])
    return images[confident], answers


def _check_out(out, model) -> Path:
    """The adapted model's path: a ``.keras`` file that is not the parent's, in a folder that can be written."""
    if out is None:
        raise ParameterError("--out FILE: give the adapted model's .keras file (or --suggest N to list the digits to "
                             "label first).")
    out = Path(out)
    if out.suffix != ".keras":
        raise ParameterError(f"--out {out}: give a .keras file (the adapted model; its JSON goes beside it).")
    if model is not None and out.resolve() == Path(model).resolve():
        raise ParameterError(f"--out {out} is the model being adapted; give a new file, so that the parent stays.")
    if out.exists() and out.is_dir():
        raise ParameterError(f"--out {out} is a folder; give a .keras file.")
    return out


def _refuse_overlap(source, check_source) -> None:
    """Refuse check digits that are also adapt digits (the same file contents)."""
    shared = set(_checksums(source)) & set(_checksums(check_source))
    if shared:
        raise ParameterError(f"--check {check_source.name}: {len(shared):,} of its images are also among the digits "
                             f"to adapt on ({source.name}); check on digits the model never adapted on.")


def _checksums(source) -> list[str]:
    if source.files is not None:
        return [compute_sha256(Path(path)) for path in source.files.paths]
    images, _ = source.arrays
    return [_hash_image(image) for image in images]


def _hash_image(image: np.ndarray) -> str:
    """The SHA-256 of an image's pixels, to tell the same digit given twice."""
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()


def _save(outcome: AdaptationOutcome, source, check_source, seed: int, recipe: AdaptationRecipe,
          score_name: str, reference_positions: np.ndarray) -> None:
    """Save the adapted model with its provenance, then its threshold (the newest of its history), then its
    monitoring reference: the digits of ``source`` at ``reference_positions``, which it did not train on."""
    parent = outcome.parent
    provenance = {"parent_model": parent.path.name,
                  "parent_sha256": compute_sha256(parent.path),
                  "data": source.description, "data_name": source.name, "data_sha256": source.sha256,
                  "counts": outcome.counts, "check": outcome.check_name,
                  "check_sha256": check_source.sha256 if check_source is not None else source.sha256,
                  "seed": seed, "recipe": recipe.to_dict(), "replayed": outcome.fine_tuned.n_replayed,
                  "pseudo_labelled": outcome.fine_tuned.n_pseudo,
                  "best_epoch": outcome.fine_tuned.best_epoch, "measured": outcome.to_dict()}
    kept = {key: parent.description[key] for key in ("augmentation", "robustness", "seen_corruptions",
                                                      "outlier_exposure", "scan_copies", "trained_in")
            if key in parent.description}
    path = save_model_bundle(outcome.fine_tuned.model, outcome.path.parent, name=parent.name,
                             class_names=parent.class_names or list(DIGIT_CLASS_NAMES),
                             dataset=parent.description.get("dataset") or {},
                             split=parent.description.get("split"), file_name=outcome.path.name,
                             extra={**kept, "adapted": provenance})
    if outcome.threshold.reached:
        record_abstention(path, score=score_name, threshold=outcome.threshold.threshold, target=outcome.target,
                          chosen_on=f"{outcome.counts['validation']:,} validation digits of {source.name} (adapt)",
                          seed=seed, data_sha256=source.sha256)
    held_out = "validation and check" if check_source is None else "validation"
    reference = build_reference_from_source(outcome.fine_tuned.model, path, source, reference_positions,
                                            description=f"the {held_out} digits of {source.name} (adapt)", seed=seed)
    attach_reference(reference, path)


@dataclass
class Suggestion:
    """The unlabelled digits to label first (``digitrec adapt --suggest``).

    Attributes
    ----------
    model : ModelInUse
    entries : list of dict
        In the order to label them: ``path``, ``read_as`` (the model's answer), ``between`` (its two most
        probable classes), ``margin`` (their probabilities' difference: 0 torn, 1 sure).
    images : ndarray of shape (n, 28, 28)
        The suggested digits as the model saw them, in the same order.
    n_read : int
        Images the suggestion chose among.
    errors : list of str
        One message per image that could not be used (left out).
    """

    model: ModelInUse
    entries: list[dict]
    images: np.ndarray
    n_read: int
    errors: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if not self.entries:
            return "No image could be used, so nothing is suggested."
        pairs = pd.Series([" and ".join(sorted(entry["between"])) for entry in self.entries]).value_counts()
        spread = "; ".join(f"{pair}: {count}" for pair, count in pairs.head(5).items())
        return (f"Label these {len(self.entries):,} of the {self.n_read:,} digits first: the ones "
                f"{self.model.name} is least sure of, spread over what it hesitates between (digits torn between "
                f"{spread}{'; ...' if len(pairs) > 5 else ''}). Then give them, in a folder tree "
                "`<root>/<label>/`, to `digitrec adapt`.")

    def to_dict(self) -> dict:
        return {"model": str(self.model.path), "read": self.n_read, "suggested": self.entries,
                "errors": self.errors}


def suggest_digits(images: Sequence[str | os.PathLike], count: int, *, model: str | os.PathLike | None = None,
                   seed: int = 0, page: str | os.PathLike | None = None,
                   notify: Callable[[str], None] = ignore) -> Suggestion:
    """List the unlabelled digits whose labels would help adapting most (``digitrec adapt --suggest N``).

    Each image is prepared as ``predict`` prepares it and read by the model; the least certain, spread over
    what the model confuses, are suggested (:func:`digitrec_utils.evaluation.labelling.suggest_digits_to_label`,
    which 08_adaptation's curve measures against labelling at random).

    Parameters
    ----------
    images : sequence of path-like
        Image files, or folders of them (walked with their sub-folders), as ``predict`` takes them.
    count : int
        How many to suggest.
    model : path-like, optional
        By default the newest good run's saved CNN.
    seed : int
    page : path-like, optional
        Where to write a page of the suggested digits' thumbnails.
    """
    if count < 1:
        raise ParameterError(f"--suggest {count}: suggest at least one digit to label.")
    paths = find_image_files(images, what="suggest from", notify=notify)
    in_use = load_model_in_use(model, notify=notify)
    names, prepared, errors = read_prepared_images(paths, notify=notify)
    entries, chosen = [], np.zeros(0, dtype=int)
    if len(prepared):
        probabilities = predict_probabilities(in_use.model, prepared)
        chosen = suggest_digits_to_label(probabilities, count, seed=seed)
        class_names = list(in_use.class_names or DIGIT_CLASS_NAMES)
        margins = measure_margins(probabilities)
        for position in chosen:
            top_two = np.argsort(-probabilities[position], kind="stable")[:2]
            entries.append({"path": str(names[position]), "read_as": class_names[top_two[0]],
                            "between": [class_names[index] for index in top_two],
                            "margin": round(float(margins[position]), 4)})
    suggestion = Suggestion(in_use, entries, prepared[chosen], len(prepared), errors)
    if page is not None:
        write_suggestion_page(suggestion, page)
        notify(f"page {page}")
    return suggestion
