"""Watching the unlabelled stream: accuracy without labels (ATC), and tests that ring on a change, not on chance."""

from __future__ import annotations

import numpy as np
import pytest

from digitrec_utils.evaluation.monitoring import (
    MATERIAL_SPREAD,
    Abstention,
    MonitoringReference,
    ReferenceEstimators,
    check_window,
    compare_class_shares,
    cut_windows,
    fit_atc,
    judge_check,
    measure_mmd,
)


def _reference(rng, n=4000):
    """Scores of a calibrated model: a digit of score s is right with probability s."""
    scores = rng.uniform(0.5, 1.0, n)
    return scores, rng.uniform(size=n) < scores


def test_atc_reads_the_reference_accuracy_back_and_follows_a_stream_that_turns_hard():
    rng = np.random.default_rng(0)
    scores, correct = _reference(rng)
    estimator = fit_atc(scores, correct)
    assert np.mean(scores > estimator.threshold) == pytest.approx(correct.mean())  # The definition.
    again, right_again = _reference(rng)  # The same source, other digits.
    same = estimator.estimate(again)
    assert same.low <= right_again.mean() <= same.high
    # Half of a new stream is digits the model cannot read (low scores, all wrong): the truth is built in.
    hard = rng.uniform(0.0, 0.45, 4000)
    mixed_scores = np.concatenate([again, hard])
    truth = np.concatenate([right_again, np.zeros(len(hard), dtype=bool)]).mean()
    estimate = estimator.estimate(mixed_scores)
    assert abs(estimate.accuracy - truth) < 0.02 and estimate.low <= truth <= estimate.high
    assert mixed_scores.mean() - truth > 0.05  # The mean confidence would have missed it.


def test_every_digit_right_puts_the_threshold_below_every_score():
    scores = np.array([0.3, 0.7, 0.9])
    assert fit_atc(scores, np.ones(3, dtype=bool)).estimate(scores).accuracy == 1.0
    with pytest.raises(ValueError, match="one score and one correctness flag"):
        fit_atc(scores, np.ones(2, dtype=bool))


def test_class_shares_and_embeddings_ring_on_a_change_and_stay_quiet_on_the_same_source():
    rng = np.random.default_rng(2)
    reference = rng.integers(0, 10, 2000)
    _, same_p = compare_class_shares(reference, rng.integers(0, 10, 500), 10)
    _, moved_p = compare_class_shares(reference, np.concatenate([rng.integers(0, 10, 400), np.full(100, 4)]), 10)
    assert same_p > 0.01 and moved_p < 1e-6
    embeddings = rng.normal(size=(150, 8))
    _, quiet = measure_mmd(embeddings, rng.normal(size=(150, 8)), permutations=100, seed=0)
    mmd, rings = measure_mmd(embeddings, rng.normal(0.5, 1.0, size=(150, 8)), permutations=100, seed=0)
    assert quiet > 0.05 and rings == pytest.approx(1 / 101) and mmd > 0


def test_the_mmd_of_one_split_matches_the_kernel_means_computed_directly():
    rng = np.random.default_rng(5)
    first, second = rng.normal(size=(30, 3)), rng.normal(0.3, 1.0, size=(20, 3))
    pooled = np.concatenate([first, second])
    squared = ((pooled[:, None, :] - pooled[None, :, :]) ** 2).sum(axis=2)
    width = np.median(squared[np.triu_indices(len(pooled), 1)])
    kernel = np.exp(-squared / width)
    expected = kernel[:30, :30].mean() + kernel[30:, 30:].mean() - 2 * kernel[:30, 30:].mean()
    assert measure_mmd(first, second, permutations=10)[0] == pytest.approx(expected)


def _synthetic_reference(rng, n=1500) -> MonitoringReference:
    """A reference of a model that reads 95% right: its probabilities, embeddings and two image properties."""
    labels = rng.integers(0, 10, n)
    probabilities = _probabilities(rng, labels, sharpness=3.5)
    return MonitoringReference(
        probabilities=probabilities, correct=probabilities.argmax(1) == labels,
        embeddings=rng.normal(size=(n, 4)),
        properties={"slant": rng.normal(0.1, 0.2, n), "height": rng.normal(20, 1, n)},
        embedding_mean=np.zeros(4), embedding_components=np.eye(4), source="synthetic", model_sha256="0" * 64)


def _probabilities(rng, labels, sharpness: float) -> np.ndarray:
    """Softmax of noisy logits, the true class raised by ``sharpness``: lower sharpness, less sure, more wrong."""
    logits = rng.normal(size=(len(labels), 10))
    logits[np.arange(len(labels)), labels] += sharpness
    exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def test_windows_of_the_same_source_ring_at_most_at_the_stated_rate_and_a_shifted_one_rings():
    rng = np.random.default_rng(6)
    reference = _synthetic_reference(rng)
    estimators = ReferenceEstimators(reference, Abstention("top_probability", 0.6, 0.99))
    verdicts = []
    for window in range(20):
        labels = rng.integers(0, 10, 300)
        properties = {"slant": rng.normal(0.1, 0.2, 300), "height": rng.normal(20, 1, 300)}
        probabilities = _probabilities(rng, labels, 3.5)
        check = check_window(estimators, probabilities, rng.normal(size=(300, 4)), properties, seed=window)
        verdicts.append(judge_check(check, estimators))
        truth = float(np.mean(probabilities.argmax(1) == labels))
        assert abs(check.accuracy.accuracy - truth) < 0.05
    # The corrected tests ring with probability SIGNIFICANCE under the same source: 20 windows, at most one.
    assert sum(verdict != "no change" for verdict in verdicts) <= 1
    # Slanted writers: the slant moves far, the rest stays; the window rings on the slant alone.
    labels = rng.integers(0, 10, 300)
    slanted = {"slant": rng.normal(0.5, 0.2, 300), "height": rng.normal(20, 1, 300)}
    check = check_window(estimators, _probabilities(rng, labels, 3.5), rng.normal(size=(300, 4)), slanted)
    assert judge_check(check, estimators) == "changed"
    assert set(check.tests.loc[check.tests["changed"], "test"]) == {"slant", "slant spread"}


def test_a_slant_that_widens_both_ways_rings_on_its_spread_where_its_values_move_less():
    rng = np.random.default_rng(8)
    estimators = ReferenceEstimators(_synthetic_reference(rng), None)
    labels = rng.integers(0, 10, 500)
    # Half the hands lean 0.3 further right, half 0.3 further left: the median stays, the spread widens.
    both_ways = rng.normal(0.1, 0.2, 500) + rng.choice([-0.3, 0.3], 500)
    check = check_window(estimators, _probabilities(rng, labels, 3.5), rng.normal(size=(500, 4)),
                         {"slant": both_ways, "height": rng.normal(20, 1, 500)})
    tests = check.tests.set_index("test")
    assert tests.loc["slant spread", "statistic"] >= MATERIAL_SPREAD
    assert tests.loc["slant spread", "statistic"] > tests.loc["slant", "statistic"] + 0.1
    assert check.tests.loc[check.tests["changed"], "test"].tolist() == ["slant spread"]
    assert judge_check(check, estimators) == "changed"


def test_a_window_the_model_reads_worse_is_judged_worse_and_its_accuracy_estimated():
    rng = np.random.default_rng(7)
    reference = _synthetic_reference(rng)
    estimators = ReferenceEstimators(reference, Abstention("top_probability", 0.6, 0.99))
    labels = rng.integers(0, 10, 500)
    hard = _probabilities(rng, labels, 2.0)  # Less sure, and more often wrong: the truth is known.
    truth = float(np.mean(hard.argmax(1) == labels))
    check = check_window(estimators, hard, rng.normal(size=(500, 4)),
                         {"slant": rng.normal(0.1, 0.2, 500), "height": rng.normal(20, 1, 500)})
    assert truth < reference.accuracy - 0.2  # About 0.67 against 0.96.
    assert judge_check(check, estimators) == "worse"
    # ATC follows the fall most of the way (its error under a shift is measured on real digits in the benchmark).
    assert check.accuracy.accuracy < reference.accuracy - 0.15 and abs(check.accuracy.accuracy - truth) < 0.1
    assert check.answered < estimators.reference_answered
    reference_answered_accuracy = 1 - estimators.answered_error
    assert check.accepted_accuracy.accuracy < reference_answered_accuracy


def test_a_saved_threshold_becomes_an_abstention_and_none_answers_everything():
    assert Abstention.from_saved({"score": "margin", "threshold": 0.4, "target": 0.995}) == Abstention(
        "margin", 0.4, 0.995)
    assert Abstention.from_saved(None) is None and Abstention.from_saved({"threshold": 0.0}) is None


@pytest.mark.parametrize(("n_digits", "expected"), [
    (0, []), (120, [(0, 120)]), (500, [(0, 500)]), (1100, [(0, 500), (500, 1100)]),
    (1250, [(0, 500), (500, 1000), (1000, 1250)]),
])
def test_windows_are_cut_in_order_and_a_short_last_one_joins_the_one_before(n_digits, expected):
    assert cut_windows(n_digits, 500) == expected
