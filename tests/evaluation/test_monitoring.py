"""Watching the unlabelled stream: accuracy without labels (ATC), and tests that ring on a change, not on chance."""

from __future__ import annotations

import numpy as np
import pytest

from digitrec_utils.evaluation.monitoring import (
    compare_class_shares,
    compare_properties,
    fit_atc,
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


def test_a_moved_property_is_flagged_and_an_unmoved_one_is_not():
    rng = np.random.default_rng(1)
    reference = {"ink share": rng.normal(0.2, 0.05, 800), "slant": rng.normal(0.0, 1.0, 800)}
    incoming = {"ink share": rng.normal(0.2, 0.05, 300), "slant": rng.normal(0.6, 1.0, 300)}
    table = compare_properties(reference, incoming).set_index("property")
    assert bool(table.loc["slant", "changed"]) and not bool(table.loc["ink share", "changed"])
    assert (table["corrected p-value"] >= table["p-value"]).all()
    assert table.index[0] == "slant"  # Most changed first.
    with pytest.raises(ValueError, match="same properties"):
        compare_properties(reference, {"slant": incoming["slant"]})


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
