"""Adapting a saved model to an office's digits: what ``digitrec adapt``, 08_adaptation and the benchmark share.

The fine-tuning itself is :func:`digitrec_utils.models.adaptation.fine_tune`; here are the parent's original
digits (to replay and to measure forgetting on), a model's answers on some of the office's digits, the
confusions adapting fixed or made with pictures of them, and 08's learning curve: accuracy on fixed check digits
against the number labelled, at random or as ``digitrec adapt --suggest`` suggests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from digitrec_utils.data.labelled import (
    LabelledDigits,
    open_labelled_source,
    read_labelled_digits,
    resolve_field_folder,
)
from digitrec_utils.data.loading import open_sklearn_digits
from digitrec_utils.data.preprocessing import scale_images
from digitrec_utils.data.splits import draw_per_class, split_labelled_digits
from digitrec_utils.evaluation.abstention import choose_threshold, measure_selective
from digitrec_utils.evaluation.evaluation import format_percent_interval
from digitrec_utils.evaluation.labelling import suggest_digits_to_label
from digitrec_utils.evaluation.scores import compute_score
from digitrec_utils.exceptions import DigitrecError
from digitrec_utils.models.acquisition import rebuild_split
from digitrec_utils.models.adaptation import fine_tune
from digitrec_utils.models.model_files import read_abstention
from digitrec_utils.reporting.tables import style_table


@dataclass
class Reading:
    """A model's answers on some digits: predictions (-1 where an image could not be used) and scores."""

    predictions: np.ndarray
    scores: np.ndarray

    def correct(self, labels: np.ndarray) -> np.ndarray:
        return self.predictions == labels


def choose_augmentation_of(description: dict) -> str:
    """The geometric augmentation a saved model trained with (its JSON's ``augmentation``): mirrors only for
    clothes; ``digits`` where it recorded none."""
    return {"fashion": "fashion", "none": "none"}.get(str(description.get("augmentation")), "digits")


def load_original_digits(description: dict) -> tuple:
    """The parent's original training digits (to replay) and test digits (to measure forgetting).

    Returns
    -------
    replay, test : tuple of (images float32 in [0, 1], labels), or None
    problem : str
        Why they could not be loaded (the dataset's files absent, another checksum, no split recorded); "" when
        they were.
    """
    try:
        _, splits = rebuild_split(description)
    except DigitrecError as error:
        return None, None, str(error)
    return (*split_original_digits(splits), "")


def predict_labels(model, images: np.ndarray) -> np.ndarray:
    """The class each of ``images`` (n, 28, 28), float32 in [0, 1], is read as."""
    return predict_probabilities(model, images).argmax(axis=1)


def read_positions(model, digits: LabelledDigits, positions: np.ndarray, score_name: str) -> Reading:
    """A model's predictions and scores on ``positions``; an image that could not be used is wrong, score -1."""
    usable = digits.usable[positions]
    predictions = np.full(len(positions), -1)
    scores = np.full(len(positions), -1.0)
    if usable.any():
        probabilities = predict_probabilities(model, digits.images[positions][usable])
        predictions[usable] = probabilities.argmax(axis=1)
        scores[usable] = compute_score(probabilities, score_name)
    return Reading(predictions, scores)


def count_confusions(labels: np.ndarray, before: Reading, after: Reading) -> pd.DataFrame:
    """Per (true, read as) pair: how many check digits the parent and the adapted model misread that way."""
    rows = {}
    for name, reading in (("before", before), ("after", after)):
        for true_label, predicted in zip(labels, reading.predictions, strict=True):
            if predicted != true_label and predicted >= 0:
                rows.setdefault((int(true_label), int(predicted)), {"before": 0, "after": 0})[name] += 1
    table = pd.DataFrame([{"true": true_label, "read as": predicted, **counts}
                          for (true_label, predicted), counts in rows.items()],
                         columns=["true", "read as", "before", "after"])
    table["fixed"] = (table["before"] - table["after"]).clip(lower=0)
    table["new"] = (table["after"] - table["before"]).clip(lower=0)
    return table.sort_values(["before", "after"], ascending=False, kind="stable").reset_index(drop=True)


# How the digits to label are picked in a learning curve: a stratified random draw, or the digits
# :func:`digitrec_utils.evaluation.labelling.suggest_digits_to_label` suggests (``digitrec adapt --suggest``).
STRATEGY_RANDOM = "at random"
STRATEGY_SUGGESTED = "suggested first"
# Share of the labelled digits of a draw kept to validate on (the epoch and the threshold are chosen on them).
VALIDATION_SHARE = 0.2
# Share of the digits to adapt on that a suggested draw chooses from, so that draws differ.
SUGGESTION_POOL_SHARE = 0.8


@dataclass
class LearningCurve:
    """Accuracy on fixed check digits against the number of the office's digits labelled (08_adaptation).

    Attributes
    ----------
    rows : DataFrame
        One row per strategy, number labelled and draw: ``strategy``, ``labelled``, ``draw``, ``check_accuracy``,
        ``answered`` and ``answered_accuracy`` (at the threshold chosen on the draw's validation digits),
        ``original_test`` (the parent's original test digits), ``seconds`` (fine-tuning), ``best_epoch``.
        ``labelled`` 0 is the parent itself, at its own threshold.
    check_labels : ndarray
    before : Reading
        The parent on the check digits.
    after : Reading or None
        The model adapted on the most digits (first draw, at random), on the check digits.
    """

    rows: pd.DataFrame
    check_labels: np.ndarray
    before: Reading
    after: Reading | None

    def summarize(self) -> pd.DataFrame:
        """Per strategy and number labelled: the mean and standard deviation over draws of each figure."""
        figures = ["check_accuracy", "answered", "answered_accuracy", "original_test", "seconds"]
        grouped = self.rows.groupby(["strategy", "labelled"], sort=False)[figures]
        table = grouped.mean().join(grouped.std(ddof=1).fillna(0.0), rsuffix="_std")
        table["draws"] = grouped.size()
        return table.reset_index()


def measure_learning_curve(model, digits: LabelledDigits, labels: np.ndarray, *, adapt_part: np.ndarray,
                           check_part: np.ndarray, label_counts, repeats: int, recipe=None,
                           replay: tuple | None = None, test: tuple | None = None, score_name: str,
                           parent_threshold: float | None, target: float, seed: int, augmentation: str,
                           compare_suggested: bool = True, unlabelled: bool = False, log=None) -> LearningCurve:
    """Adapt copies of ``model`` on draws of each number of labelled digits and read the fixed check digits.

    Parameters
    ----------
    model : keras.Model
        The parent; never changed.
    digits : LabelledDigits
    labels : ndarray
        Class positions, -1 for digits that could not be used.
    adapt_part, check_part : ndarray of int
        Positions to draw the labelled digits from, and to check on (the same for every draw).
    label_counts : sequence of int
        Numbers of digits labelled; 0 is the parent, and a number past the adapt part's size (or -1) all of it.
    repeats : int
        Draws per number (seeded ``seed``, ``seed + 1``, ...).
    recipe : AdaptationRecipe, optional
        How each copy is fine-tuned; ``digitrec adapt``'s when not given.
    replay, test : tuple of (images, labels), optional
        The parent's original training digits to replay and test digits to measure forgetting on.
    score_name : str
        The confidence score the thresholds are set on.
    parent_threshold : float or None
        The parent's own threshold, for the row of 0 labelled (and the pseudo-labels).
    target : float
        The accuracy of the answered digits each copy's threshold is chosen for, on its validation digits.
    seed : int
    augmentation : {"digits", "fashion", "none"}
        The geometric augmentation the parent trained with.
    compare_suggested : bool
        Also draw the digits :func:`suggest_digits_to_label` suggests from a random share of the adapt part.
    unlabelled : bool
        Use the adapt part's digits not drawn as unlabelled ones: those the parent answers at
        ``parent_threshold`` join each draw's training digits with its answers as labels (``adapt --unlabelled``).
    log : callable, optional
        Called with a line per adaptation.
    """
    check_labels = labels[check_part]
    before = read_positions(model, digits, check_part, score_name)
    parent_test = _read_accuracy(model, test)
    counts = sorted({len(adapt_part) if count < 0 or count > len(adapt_part) else int(count)
                     for count in label_counts})
    rows, after = [], None
    answered = measure_selective(before.scores, before.correct(check_labels), parent_threshold)
    rows.append({"strategy": STRATEGY_RANDOM, "labelled": 0, "draw": 0,
                 "check_accuracy": float(np.mean(before.correct(check_labels))), "answered": answered.coverage,
                 "answered_accuracy": answered.accuracy, "original_test": parent_test, "seconds": 0.0,
                 "best_epoch": 0})
    # The parent's answers on the digits to draw from: what it suggests, and the pseudo-labels of those not drawn.
    adapt_probabilities = (predict_probabilities(model, digits.images[adapt_part])
                           if compare_suggested or unlabelled else None)
    if unlabelled:
        confident, answers = label_confident_digits(adapt_probabilities, score_name=score_name,
                                                    threshold=parent_threshold)
    strategies = [STRATEGY_RANDOM] + ([STRATEGY_SUGGESTED] if compare_suggested else [])
    for strategy in strategies:
        for count in counts:
            if count == 0 or (strategy == STRATEGY_SUGGESTED and count >= len(adapt_part)):
                continue
            for draw in range(repeats):
                draw_seed = seed + draw
                if strategy == STRATEGY_RANDOM:
                    chosen = draw_per_class(adapt_part, labels, count, seed=draw_seed)
                else:
                    pool = np.sort(np.random.default_rng([draw_seed, 3]).choice(
                        len(adapt_part), size=max(count, int(SUGGESTION_POOL_SHARE * len(adapt_part))),
                        replace=False))
                    chosen = adapt_part[pool[suggest_digits_to_label(adapt_probabilities[pool], count,
                                                                     seed=draw_seed)]]
                train, validation = split_drawn_digits(chosen, labels, seed=draw_seed)
                pseudo_labelled = None
                if unlabelled:
                    kept = ~np.isin(adapt_part[confident], chosen)
                    pseudo_labelled = (digits.images[adapt_part[confident[kept]]], answers[kept])
                tuned = fine_tune(model, digits.images[train], labels[train], digits.images[validation],
                                  labels[validation], recipe=recipe, replay=replay, pseudo_labelled=pseudo_labelled,
                                  seed=draw_seed, augmentation=augmentation)
                on_validation = read_positions(tuned.model, digits, validation, score_name)
                threshold = choose_threshold(on_validation.scores, on_validation.correct(labels[validation]), target)
                reading = read_positions(tuned.model, digits, check_part, score_name)
                answered = measure_selective(reading.scores, reading.correct(check_labels), threshold.threshold)
                rows.append({"strategy": strategy, "labelled": count, "draw": draw,
                             "check_accuracy": float(np.mean(reading.correct(check_labels))),
                             "answered": answered.coverage, "answered_accuracy": answered.accuracy,
                             "original_test": _read_accuracy(tuned.model, test),
                             "seconds": tuned.train_seconds, "best_epoch": tuned.best_epoch})
                if strategy == STRATEGY_RANDOM and count == counts[-1] and draw == 0:
                    after = reading
                if log is not None:
                    log(f"{strategy}, {count:,} labelled, draw {draw + 1}/{repeats}: check accuracy "
                        f"{rows[-1]['check_accuracy']:.4f} ({tuned.train_seconds:.1f} s)")
    return LearningCurve(pd.DataFrame(rows), check_labels, before, after)


def _read_accuracy(model, digits: tuple | None) -> float:
    """The model's accuracy on ``(images, labels)``; NaN where there are none."""
    return float(np.mean(predict_labels(model, digits[0]) == digits[1])) if digits is not None else float("nan")


def split_drawn_digits(chosen: np.ndarray, labels: np.ndarray, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split drawn digits into training and validation digits: stratified where the validation part can hold
    each class drawn, at random otherwise (few digits, or a suggested draw that holds some classes once)."""
    marked = np.full(len(labels), -1)
    marked[chosen] = labels[chosen]
    counts = np.unique(labels[chosen], return_counts=True)[1]
    n_validation = max(1, int(round(VALIDATION_SHARE * len(chosen))))
    if counts.min() >= 3 and len(counts) <= n_validation <= len(chosen) - len(counts):
        return split_labelled_digits(marked, share=VALIDATION_SHARE, seed=seed, needed_per_class=3,
                                     what="the labelled draw")
    order = np.random.default_rng([seed, 5]).permutation(np.sort(chosen))
    return np.sort(order[n_validation:]), np.sort(order[:n_validation])


def predict_probabilities(model, images: np.ndarray) -> np.ndarray:
    """The model's probabilities for ``images`` (n, 28, 28), float32 in [0, 1]."""
    return np.asarray(model.predict(np.asarray(images, dtype=np.float32)[..., None], verbose=0, batch_size=512),
                      dtype=np.float64)


def pick_examples(confusions: pd.DataFrame, labels: np.ndarray, before, after, images: np.ndarray,
                   per_pair: int = 8, pairs: int = 4) -> list[tuple[str, np.ndarray]]:
    """Images of the confusions adapting fixed most, and of those it made, each with a caption.

    Parameters
    ----------
    confusions : DataFrame
        From :func:`count_confusions`.
    labels : ndarray
        The check digits' classes.
    before, after : Reading
        The parent and the adapted model on them.
    images : ndarray
        The check digits, prepared.
    """
    examples = []
    for kind in ("fixed", "new"):
        for row in confusions[confusions[kind] > 0].sort_values(kind, ascending=False, kind="stable"
                                                                 ).head(pairs).itertuples():
            true_label, predicted = row.true, row._2
            if kind == "fixed":
                chosen = (labels == true_label) & (before.predictions == predicted) & (after.predictions == labels)
                caption = f"{true_label} read as {predicted} before, right after ({row.fixed} fixed)"
            else:
                chosen = (labels == true_label) & (after.predictions == predicted) & (before.predictions == labels)
                caption = f"{true_label} read right before, as {predicted} after ({row.new} new)"
            positions = np.flatnonzero(chosen)[:per_pair]
            if len(positions):
                examples.append((caption, images[positions]))
    return examples


def load_office_digits(office_data: str, *, data_dir: str | None) -> tuple[LabelledDigits, str]:
    """The office's labelled digits for 08_adaptation, prepared as ``predict`` prepares them, and a note on them.

    ``office_data`` is a folder tree ``<root>/<label>/*`` (a relative path is found under ``data_dir``, then
    ``$DIGITREC_DATA``); empty gives scikit-learn's 8x8 digits, other writers that every install has.
    """
    if office_data:
        source = open_labelled_source([resolve_field_folder(office_data, data_dir=data_dir)])
        note = f"The office's digits: {source.description}."
    else:
        source = open_sklearn_digits()
        note = ("No office_data was given, so the office's digits are scikit-learn's 1,797 8x8 digits: the test "
                "writers of UCI's optdigits, scanned at 32x32, reduced to 8x8 grey levels and upscaled here to 20x20 "
                "in 28x28. Pass office_data (a labelled folder tree) to draw the curve for the office's own scans.")
    digits = read_labelled_digits(source, progress=False)
    if digits.errors:
        note += f" {len(digits.errors):,} of its images could not be used and are left out ({digits.errors[0]} ...)."
    return digits, note


def style_learning_curve(summary: pd.DataFrame):
    """The learning curve as a table for reading: each figure's mean over draws with its standard deviation."""
    def spread(column: str, percent: bool) -> list[str]:
        scale, unit = (100, "%") if percent else (1, "")
        digits = 2 if percent else 1
        return [("-" if not np.isfinite(mean) else f"{scale * mean:.{digits}f}{unit}" if draws < 2
                 else f"{scale * mean:.{digits}f}{unit} ± {scale * deviation:.{digits}f}")
                for mean, deviation, draws in zip(summary[column], summary[f"{column}_std"], summary["draws"],
                                                  strict=True)]

    shown = pd.DataFrame({
        "labelled": summary["labelled"], "chosen": np.where(summary["labelled"] == 0, "-", summary["strategy"]),
        "draws": summary["draws"], "check accuracy": spread("check_accuracy", True),
        "answered at target": spread("answered", True), "accuracy of answered": spread("answered_accuracy", True),
        "original test digits": spread("original_test", True), "seconds": spread("seconds", False)})
    return style_table(shown)


def describe_learning_curve(summary: pd.DataFrame, *, n_check: int, office_name: str, target: float) -> str:
    """08's summary: the model as it came, and with the fewest and the most digits labelled at random."""
    parent = summary[summary["labelled"] == 0].iloc[0]
    random = summary[(summary["strategy"] == STRATEGY_RANDOM) & (summary["labelled"] > 0)]
    text = (f"On {n_check:,} check digits of {office_name}, held out of every draw, the model as it came reads "
            f"{parent['check_accuracy']:.2%}.")
    if random.empty:
        return text + " No number of labelled digits above 0 was measured; give label_counts."
    for _, row in random.iloc[[0, -1]].drop_duplicates("labelled").iterrows():
        spread = (f"± {row['check_accuracy_std']:.2%} over {int(row['draws'])} draws" if row["draws"] > 1
                  else "one draw")
        text += (f" Adapted on {int(row['labelled']):,} labelled digits: {row['check_accuracy']:.2%} "
                 f"({spread}), with {row['answered']:.1%} "
                 f"of the check digits answered at the threshold chosen for {target:.1%}, "
                 f"{row['answered_accuracy']:.2%} of them right.")
    return text


def describe_suggested_first(summary: pd.DataFrame) -> str:
    """Whether labelling the suggested digits first did better than labelling at random, number by number."""
    random = summary[(summary["strategy"] == STRATEGY_RANDOM) & (summary["labelled"] > 0)].set_index("labelled")
    suggested = summary[summary["strategy"] == STRATEGY_SUGGESTED].set_index("labelled")
    compared = random.join(suggested, rsuffix="_suggested", how="inner")
    if compared.empty:
        return "Labelling the suggested digits first was not measured (compare_suggested is off)."
    parts, better, worse = [], [], []
    for labelled, row in compared.iterrows():
        gain = row["check_accuracy_suggested"] - row["check_accuracy"]
        spread = max(row["check_accuracy_std"], row["check_accuracy_std_suggested"])
        if abs(gain) > 2 * spread:
            (better if gain > 0 else worse).append(f"{int(labelled):,}")
        parts.append(f"{100 * gain:+.1f} points at {int(labelled):,} (spread {100 * spread:.1f})")
    text = ("Labelling the digits `digitrec adapt --suggest` suggests first, rather than at random, changed the "
            f"check accuracy by {', '.join(parts)}.")
    if not better and not worse:
        return text + (" No difference is beyond twice the spread over draws: with these draws, which digits are "
                       "labelled matters less than how many.")
    if better:
        text += f" Beyond twice the spread over draws, the suggested digits did better at {', '.join(better)}."
    if worse:
        text += f" Beyond twice the spread over draws, labelling at random did better at {', '.join(worse)}."
    if compared["draws"].min() < 5:
        text += f" {int(compared['draws'].min())} draws make a spread uncertain; raise repeats before relying on it."
    return text


def describe_adaptation_cost(summary: pd.DataFrame) -> str:
    """The finding on cost and forgetting: seconds per adaptation, and the original test digits before and after."""
    parent = summary[summary["labelled"] == 0].iloc[0]
    adapted = summary[summary["labelled"] > 0]
    if adapted.empty:
        return "Nothing was adapted."
    largest = adapted.sort_values("labelled").iloc[-1]
    text = (f"One adaptation took {adapted['seconds'].min():.1f} to {adapted['seconds'].max():.1f} s on this "
            f"machine (mean per number labelled), {largest['seconds']:.1f} s with {int(largest['labelled']):,} "
            "labelled digits.")
    if np.isfinite(parent["original_test"]):
        text += (f" On the model's own test digits it read {parent['original_test']:.2%} before and "
                 f"{largest['original_test']:.2%} (± {largest['original_test_std']:.2%}) after adapting on "
                 f"{int(largest['labelled']):,}: {100 * (largest['original_test'] - parent['original_test']):+.2f} "
                 "points, what adapting cost on the digits it was made for.")
    return text


def summarize_learning_curve(summary: pd.DataFrame) -> list[dict]:
    """The curve for the results record: one entry per strategy and number labelled, means and spreads."""
    return [{key: (value.item() if hasattr(value, "item") else value) for key, value in row.items()}
            for row in summary.to_dict(orient="records")]


def mark_usable(digits: LabelledDigits) -> np.ndarray:
    """The digits' class positions, -1 where an image could not be used (so that no split or draw takes it)."""
    return np.where(digits.usable, digits.labels, -1)


def split_original_digits(splits) -> tuple[tuple, tuple]:
    """The parent's original training digits (to replay) and test digits (to measure forgetting on), as
    (images float32 in [0, 1], labels) pairs."""
    return ((scale_images(splits.x_train), np.asarray(splits.y_train)),
            (scale_images(splits.x_test), np.asarray(splits.y_test)))


def choose_parent_threshold(model, description: dict, splits, *, target: float) -> tuple[str, float | None]:
    """The score and threshold the model as it came answers with: its saved ones, else chosen for ``target`` on
    its original validation digits (a model trained in the notebook has none saved)."""
    saved = read_abstention(description)
    if saved and saved.get("threshold") is not None:
        return saved.get("score", "top_probability"), float(saved["threshold"])
    probabilities = predict_probabilities(model, scale_images(splits.x_val))
    choice = choose_threshold(compute_score(probabilities, "top_probability"),
                              probabilities.argmax(axis=1) == np.asarray(splits.y_val), target)
    return "top_probability", choice.threshold


def describe_paired(paired, *, labelled: int) -> str:
    """The model adapted on ``labelled`` digits against the model as it came on the check digits, McNemar's test."""
    table = paired.table.set_index("setting")
    parent, adapted = table.loc["as it came"], table.loc["adapted"]
    worse = table.loc["as it came" if paired.best == "adapted" else "adapted"]
    adapted_interval = format_percent_interval(adapted["95% CI low"], adapted["95% CI high"])
    parent_interval = format_percent_interval(parent["95% CI low"], parent["95% CI high"])
    return (f"Adapted on {labelled:,} labelled digits, the model reads {adapted['accuracy']:.2%} of the "
            f"{paired.n_images:,} check digits (95% CI {adapted_interval}), against {parent['accuracy']:.2%} "
            f"({parent_interval}) as it came. "
            f"{int(worse['only best right']):,} digits are read right only by the {paired.best} model and "
            f"{int(worse['only this right']):,} only by the other: McNemar's exact p = {worse['p-value']:.2g}"
            + (", a real difference." if worse["distinguishable"] else ", which these digits cannot tell apart."))


def style_confusions(confusions: pd.DataFrame, *, rows: int = 12):
    """The confusions adapting changed most, as a table for reading."""
    changed = confusions[(confusions["fixed"] > 0) | (confusions["new"] > 0)].copy()
    changed["changed"] = changed["fixed"] + changed["new"]
    changed = changed.sort_values("changed", ascending=False, kind="stable").head(rows).drop(columns="changed")
    return style_table(changed.rename(columns={"before": "as it came", "after": "adapted"}))


def describe_headline(summary: pd.DataFrame, office_name: str) -> str:
    """One line for the run's index: check accuracy as it came and adapted on the most digits labelled."""
    parent = summary[summary["labelled"] == 0]
    adapted = summary[(summary["strategy"] == STRATEGY_RANDOM) & (summary["labelled"] > 0)]
    if parent.empty or adapted.empty:
        return f"{office_name}: nothing adapted"
    largest = adapted.sort_values("labelled").iloc[-1]
    return (f"{office_name}: {parent['check_accuracy'].iloc[0]:.2%} as it came, {largest['check_accuracy']:.2%} "
            f"adapted on {int(largest['labelled']):,} labelled")


def label_confident_digits(probabilities: np.ndarray, *, score_name: str, threshold: float | None
                           ) -> tuple[np.ndarray, np.ndarray]:
    """The unlabelled digits the model answers at its threshold, with its answers as their labels.

    These pseudo-labels are as right as the threshold promises (99.5% of the answered, where it holds), and
    they teach the adapted model the office's digits the parent already reads, beside the few labelled ones
    (self-training, as FixMatch and SHOT use confident pseudo-labels).

    Parameters
    ----------
    probabilities : ndarray of shape (n, n_classes)
        The model's probabilities for the unlabelled digits (:func:`predict_probabilities`).
    score_name, threshold
        The score and threshold the model answers at; no threshold labels none.

    Returns
    -------
    positions : ndarray of int
        The confident digits' rows of ``probabilities``.
    labels : ndarray of int
        The class each was read as.
    """
    if threshold is None or not len(probabilities):
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    positions = np.flatnonzero(compute_score(probabilities, score_name) >= threshold)
    return positions, probabilities[positions].argmax(axis=1)
