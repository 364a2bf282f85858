"""Which digits to label first: the least certain, spread over what the model confuses."""

from __future__ import annotations

import numpy as np
import pytest

from digitrec_utils.evaluation.labelling import measure_margins, suggest_digits_to_label


def _probabilities(first: int, second: int, margin: float) -> np.ndarray:
    """A row torn between two classes by ``margin``, the rest of the mass spread thin."""
    row = np.full(10, 0.002)
    row[first] = (1 - 0.016 + margin) / 2
    row[second] = (1 - 0.016 - margin) / 2
    return row


def test_the_margin_is_the_gap_between_the_two_most_probable_classes():
    rows = np.stack([_probabilities(4, 9, 0.3), _probabilities(1, 7, 0.0)])
    assert measure_margins(rows) == pytest.approx([0.3, 0.0])


def test_the_suggestions_are_the_least_certain_and_cover_every_confusion_not_just_the_commonest():
    rng = np.random.default_rng(0)
    sure = [_probabilities(label % 10, (label + 1) % 10, 0.9) for label in range(200)]
    # The 20 least certain (five candidates per digit to suggest): fourteen 4-or-9 digits and six 3-or-5.
    four_or_nine = [_probabilities(4, 9, margin) for margin in rng.uniform(0.0, 0.05, 14)]
    three_or_five = [_probabilities(3, 5, margin) for margin in rng.uniform(0.06, 0.1, 6)]
    rows = np.stack(sure + four_or_nine + three_or_five)
    kinds = np.array(["sure"] * 200 + ["4 or 9"] * 14 + ["3 or 5"] * 6)
    suggested = suggest_digits_to_label(rows, 4, seed=0)
    assert len(set(suggested)) == 4
    assert "sure" not in kinds[suggested]
    # Uncertainty alone would take four 4-or-9 digits (every one of them is less certain than any 3-or-5).
    assert set(kinds[np.argsort(measure_margins(rows))[:4]]) == {"4 or 9"}
    assert "3 or 5" in kinds[suggested]
    assert kinds[suggested[0]] == "4 or 9" and measure_margins(rows)[suggested[0]] == measure_margins(rows).min()
    assert (suggest_digits_to_label(rows, 4, seed=0) == suggested).all()  # Seeded.


def test_asking_for_as_many_as_there_are_gives_them_all_least_certain_first():
    rows = np.stack([_probabilities(1, 7, margin) for margin in (0.5, 0.1, 0.3)])
    assert suggest_digits_to_label(rows, 5).tolist() == [1, 2, 0]
    with pytest.raises(ValueError, match="at least one"):
        suggest_digits_to_label(rows, 0)
