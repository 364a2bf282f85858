"""evaluate_model against hand-computed values, including a class that is never predicted."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from digitrec_utils.evaluation.abstention import (
    count_answers_to_confirm,
    describe_too_few_to_confirm,
    measure_selective,
)
from digitrec_utils.evaluation.evaluation import (
    compute_accuracy_interval,
    describe_selection,
    evaluate_model,
    find_confused_pairs,
    format_percent_interval,
    summarize_evaluations,
)

NAMES = ("a", "b", "c")


def _tiny():
    # Class c (2) is never predicted; b is over-predicted.
    y_true = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    y_pred = np.array([0, 0, 1, 1, 1, 1, 0, 1])
    return y_true, y_pred


def test_accuracy_confusion_and_per_class_counts_match_hand_computation():
    y_true, y_pred = _tiny()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # No division warnings for the never-predicted class.
        evaluation = evaluate_model(y_true, y_pred, class_names=NAMES)
    assert evaluation.accuracy == pytest.approx(4 / 8)
    np.testing.assert_array_equal(evaluation.confusion_matrix, [[2, 1, 0], [0, 2, 0], [1, 2, 0]])
    table = evaluation.per_class.set_index("name")
    # a: TP 2, FP 1 (a c predicted as a), FN 1, TN 4.
    assert table.loc["a", ["tp", "fp", "fn", "tn"]].tolist() == [2, 1, 1, 4]
    assert table.loc["a", "precision"] == pytest.approx(2 / 3)
    assert table.loc["a", "recall"] == pytest.approx(2 / 3)
    assert table.loc["a", "specificity"] == pytest.approx(4 / 5)
    # b: TP 2, FP 3, FN 0, TN 3.
    assert table.loc["b", ["tp", "fp", "fn", "tn"]].tolist() == [2, 3, 0, 3]
    assert table.loc["b", "precision"] == pytest.approx(2 / 5)
    assert table.loc["b", "f1"] == pytest.approx(2 * 0.4 * 1.0 / 1.4)
    # c: never predicted: precision 0, not NaN.
    assert table.loc["c", ["tp", "fp", "fn", "tn"]].tolist() == [0, 0, 3, 5]
    assert table.loc["c", "precision"] == 0.0 and table.loc["c", "specificity"] == 1.0
    assert not evaluation.per_class.isna().any().any()
    expected_macro_f1 = np.mean([2 / 3, 2 * 0.4 / 1.4, 0.0])
    assert evaluation.macro_f1 == pytest.approx(expected_macro_f1)
    assert table["support"].tolist() == [3, 2, 3]


def test_wilson_interval_matches_the_formula():
    low, high = compute_accuracy_interval(90, 100)
    z, p, n = 1.959963984540054, 0.9, 100
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert (low, high) == pytest.approx((centre - half, centre + half), abs=1e-9)
    assert compute_accuracy_interval(10, 10)[1] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        compute_accuracy_interval(0, 0)


def test_confused_pairs_are_sorted_by_count():
    y_true, y_pred = _tiny()
    pairs = evaluate_model(y_true, y_pred, class_names=NAMES).confused_pairs
    assert list(zip(pairs["true"], pairs["predicted"], pairs["count"], strict=True)) == [
        ("c", "b", 2), ("a", "b", 1), ("c", "a", 1)]
    assert pairs["share_of_true"].iloc[0] == pytest.approx(2 / 3)
    assert find_confused_pairs(np.eye(3, dtype=int) * 5, NAMES).empty


def test_headline_and_dict_are_consistent():
    y_true, y_pred = _tiny()
    evaluation = evaluate_model(y_true, y_pred, class_names=NAMES)
    assert evaluation.headline().startswith("accuracy 0.5000 (95% CI")
    record = evaluation.to_dict()
    assert record["accuracy"] == 0.5 and len(record["per_class"]) == 3
    assert record["accuracy_ci95"][0] < 0.5 < record["accuracy_ci95"][1]


def test_selection_summary_and_conclusion_come_from_the_evaluations():
    y_true = np.arange(1000) % 10
    noisy = {}
    for name, n_correct in (("first", 893), ("second", 890), ("third", 700)):
        noisy[name] = np.where(np.arange(1000) < n_correct, y_true, (y_true + 1) % 10)
    evaluations = {name: evaluate_model(y_true, predictions) for name, predictions in noisy.items()}
    validation = {"first": 0.88, "second": 0.91, "third": 0.72}
    table = summarize_evaluations(evaluations, validation)
    assert list(table["model"]) == ["first", "second", "third"]
    assert (table["95% CI low"] < table["test accuracy"]).all()
    assert (table["test accuracy"] < table["95% CI high"]).all()
    text = describe_selection(evaluations, validation, "second", "classical model", y_true=y_true)
    assert "**second** was the best classical model (0.9100)" in text
    assert f"scored {evaluations['second'].accuracy:.4f}" in text
    # First is right on 3 images where second is wrong (p = 0.25): the test images cannot tell them apart.
    assert "McNemar's exact test cannot tell first from it" in text and "cannot tell first, third" not in text
    assert "first scored higher on test, but the choice stands" in text
    noisy["first"] = np.where(np.arange(1000) < 900, y_true, (y_true + 1) % 10)  # 10 more: p = 0.002.
    evaluations["first"] = evaluate_model(y_true, noisy["first"])
    assert "cannot tell" not in describe_selection(evaluations, validation, "second", "classical model", y_true=y_true)


# Paired comparisons of settings (McNemar's exact test).


def _right_on_all_but(n_images: int, wrong: range) -> tuple[np.ndarray, np.ndarray]:
    truth = np.arange(n_images) % 10
    predicted = truth.copy()
    predicted[list(wrong)] = (truth[list(wrong)] + 1) % 10
    return truth, predicted


def test_four_images_of_four_hundred_are_within_noise_and_forty_are_not():
    from digitrec_utils.evaluation.evaluation import compare_paired

    truth, a = _right_on_all_but(400, range(0))
    _, b = _right_on_all_but(400, range(4))  # A right on 4 images where B is wrong; never the other way.
    _, c = _right_on_all_but(400, range(44))  # A right on 40 more.
    comparison = compare_paired(truth, {"B": b, "A": a, "C": c})
    rows = comparison.table.set_index("setting")
    assert comparison.best == "A" and list(comparison.table["setting"]) == ["A", "B", "C"]
    assert rows.loc["B", "p-value"] == pytest.approx(0.125)  # Exact: 2 * 0.5 ** 4.
    assert not rows.loc["B", "distinguishable"] and rows.loc["C", "distinguishable"]
    assert (rows.loc["C", "only best right"], rows.loc["C", "only this right"]) == (44, 0)
    assert comparison.within_noise() == ["B"]
    finding = comparison.describe("hidden layers")
    assert "within noise of it" in finding and "B (0.9900)" in finding and "worse by more than chance: C" in finding
    assert rows.loc["A", "95% CI low"] == pytest.approx(0.9905, abs=1e-4)  # Wilson's interval for 400 of 400.


def test_when_nothing_is_distinguishable_the_finding_says_so_and_how_many_images_it_would_take():
    from digitrec_utils.evaluation.evaluation import compare_paired

    truth, a = _right_on_all_but(400, range(0))
    _, b = _right_on_all_but(400, range(4))
    finding = compare_paired(truth, {"one": a, "two": b}).describe("hidden layers")
    assert "cannot tell the settings apart at this data size" in finding and "p = 0.12" in finding
    assert re.search(r"would take about [\d,]+ validation images", finding)
    assert "Best hidden layers: one" in finding  # A setting must be chosen; the sentence says it is not proven.


def test_the_image_estimate_gives_the_exact_test_about_the_power_it_promises():
    from scipy.stats import binom, binomtest

    from digitrec_utils.evaluation.evaluation import estimate_images_needed

    only_first, only_second, n_images = 12, 4, 400
    needed = estimate_images_needed(only_first, only_second, n_images)
    psi, share = (only_first + only_second) / n_images, only_first / (only_first + only_second)
    # Exact power at that size: discordant images ~ Binomial(needed, psi); the exact test on each count.
    power = 0.0
    for discordant in range(1, int(needed * psi * 3)):
        weight = binom.pmf(discordant, needed, psi)
        rejecting = [wins for wins in range(discordant + 1) if binomtest(wins, discordant).pvalue < 0.05]
        power += weight * sum(binom.pmf(wins, discordant, share) for wins in rejecting)
    assert 0.7 < power < 0.9, (needed, power)
    assert estimate_images_needed(5, 5, 400) is None


def test_a_notebooks_choice_names_the_models_the_validation_set_cannot_tell_from_it():
    from digitrec_utils.evaluation.evaluation import describe_choice

    truth, a = _right_on_all_but(400, range(10))
    _, b = _right_on_all_but(400, range(12))  # Two more mistakes than the chosen model: within noise.
    _, c = _right_on_all_but(400, range(60))
    text = describe_choice(truth, {"b": b, "a": a, "c": c}, "a", "dense network")
    assert text.startswith("Best dense network: a at 0.9750 validation accuracy")
    assert "within noise of it (McNemar's exact test, 5% level): b (0.9700)" in text
    assert "worse by more than chance: c" in text
    assert text.endswith("It is the one evaluated in detail below.")
    _, d = _right_on_all_but(400, range(11))
    text = describe_choice(truth, {"a": a, "d": d}, "a", "CNN")
    assert "the validation set cannot tell the settings apart at this data size" in text


def test_reproductions_are_set_against_what_their_original_reports_printed():
    from digitrec_utils.engines import classical, cnn, dense
    from digitrec_utils.evaluation.evaluation import compare_with_report, describe_against_reports

    y_true = np.repeat(np.arange(10), 100)
    # 990 of 1,000 right: the Wilson interval is about 0.9817-0.9946.
    y_pred = y_true.copy()
    y_pred[:10] = (y_pred[:10] + 1) % 10
    evaluations = {"ours": evaluate_model(y_true, y_pred), "other": evaluate_model(y_true, y_true)}
    low, high = evaluations["ours"].accuracy_ci95
    assert compare_with_report(evaluations["ours"], 0.99) == "at or above"
    assert compare_with_report(evaluations["ours"], (0.99 + high) / 2) == "within our interval"
    assert compare_with_report(evaluations["ours"], high + 0.001) == "below"
    table = summarize_evaluations(evaluations, {"ours": 0.99, "other": 1.0}, reported={"ours": high + 0.001})
    assert table["ours against it"].tolist() == ["below", ""]
    assert table["the original report printed"].iloc[0] == pytest.approx(high + 0.001)
    assert "the original report printed" not in summarize_evaluations(evaluations, {"ours": 0.99, "other": 1.0})
    text = describe_against_reports(evaluations, {"ours": high + 0.001, "absent": 0.5},
                                    notes={"ours": "its report used another split."})
    assert "ours 0.9900 against" in text and "beyond our 95% interval: ours" in text and "absent" not in text
    assert "within our interval:" not in text
    twins = {"first": evaluations["ours"], "second": evaluations["ours"]}
    both = describe_against_reports(twins, {"first": high + 0.001, "second": (0.99 + high) / 2})
    assert "beyond our 95% interval: first." in both and "second lies below the report's figure but within" in both
    assert text.endswith("For ours, its report used another split.")
    within = describe_against_reports(evaluations, {"ours": (0.99 + high) / 2, "other": 0.99})
    assert "ours lies below the report's figure but within our interval" in within and "For other" not in within
    assert describe_against_reports(evaluations, {"other": 0.99}, notes={"other": "x"}).endswith(
        "Each reproduction reaches its report's figure.")
    # The figures are MNIST's: no other dataset gets them.
    for engine in (classical, dense, cnn):
        assert engine.list_reported_accuracies("fashion-mnist") == {}
    assert dense.list_reported_accuracies("mnist")["mlp_512_dropout_rmsprop"] == 0.9839
    assert cnn.list_reported_accuracies("mnist") == {"cnn_small": 0.9899, "cnn_rmsprop": 0.9917}
    assert classical.list_reported_accuracies("mnist") == {"knn": 0.9714}


def test_a_percent_interval_never_prints_bounds_that_read_alike():
    assert format_percent_interval(0.9956, 0.9978) == "99.6%-99.8%"
    assert format_percent_interval(0.9956, 0.9978, decimals=2, separator="–") == "99.56%–99.78%"
    assert format_percent_interval(*compute_accuracy_interval(10_000, 10_000)) == "99.96%-100.00%"
    assert format_percent_interval(float("nan"), 0.5) == "–"


def test_an_office_told_that_every_digit_is_answered_still_sees_the_uncertainty():
    # 10,000 of 10,000 answered: the interval of the share answered must not read "100.0%-100.0%".
    outcome = measure_selective(np.ones(10_000), np.ones(10_000, dtype=bool), threshold=0.5)
    sentence = outcome.describe()
    assert "(95% CI 99.96%-100.00%)" in sentence and "100.0%-100.0%" not in sentence


@pytest.mark.parametrize("target", [0.9, 0.99, 0.995, 0.999])
def test_the_answers_needed_to_confirm_a_target_are_the_fewest_whose_interval_starts_there(target):
    needed = count_answers_to_confirm(target)
    assert compute_accuracy_interval(needed, needed)[0] >= target > compute_accuracy_interval(needed - 1, needed - 1)[0]
    # Wilson's lower bound for n of n right is n / (n + z^2), so n is about z^2 * target / (1 - target).
    assert needed == pytest.approx(1.959964 ** 2 * target / (1 - target), abs=1)


def test_an_office_is_told_when_its_answered_digits_are_too_few_to_confirm_the_target():
    scores = np.r_[np.ones(600), np.zeros(197)]  # 600 of 797 answered at a threshold of 0.5, all right.
    few = measure_selective(scores, np.ones(797, dtype=bool), threshold=0.5)
    sentence = describe_too_few_to_confirm(few, 0.995, share=0.5)
    assert sentence.startswith("The 600 answered digits are too few to confirm 99.5%: even if all were right, their "
                               "95% interval would start at 99.36%. Confirming it takes about 765 answered digits, ")
    in_all = int(np.ceil(765 / (600 / 797) / 0.5))  # Both halves, at the coverage seen.
    assert sentence.endswith(f"about {in_all:,} labelled digits in all at this coverage.")
    enough = measure_selective(np.ones(800), np.ones(800, dtype=bool), threshold=0.5)
    assert describe_too_few_to_confirm(enough, 0.995) == ""
