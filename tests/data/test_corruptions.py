"""The corruption library (MNIST-C style) and selective prediction, the building blocks of 05_deployment."""

from __future__ import annotations

import numpy as np
import pytest
from reference import find_lowest_threshold

from digitrec_utils.data.corruptions import CORRUPTION_NAMES, SEVERITIES, corrupt
from digitrec_utils.data.loading import load_dataset
from digitrec_utils.evaluation.abstention import choose_threshold, compute_coverage_curve, measure_selective
from digitrec_utils.exceptions import ParameterError


@pytest.fixture(scope="module")
def digits():
    return load_dataset("mnist-sample", seed=42).x_test[:60]


@pytest.mark.parametrize("name", CORRUPTION_NAMES)
def test_each_corruption_keeps_shape_and_dtype_is_seeded_and_grows_with_severity(digits, name):
    differences = []
    for severity in (1, 2, 3):
        corrupted = corrupt(digits, name, severity, seed=7)
        assert corrupted.shape == digits.shape and corrupted.dtype == np.uint8
        np.testing.assert_array_equal(corrupted, corrupt(digits, name, severity, seed=7))
        differences.append(np.abs(corrupted.astype(float) - digits).mean())
    assert differences[0] > 0 and differences[0] < differences[1] < differences[2], differences
    if name not in ("dilation", "erosion", "contrast", "brightness", "gaussian_blur"):  # These draw nothing.
        assert not np.array_equal(corrupt(digits, name, 2, seed=7), corrupt(digits, name, 2, seed=8))
    # The order of the images is kept, so their labels stay valid: each copy still resembles its original.
    assert np.corrcoef(corrupt(digits, name, 1, seed=7).reshape(len(digits), -1)[0].astype(float),
                       digits.reshape(len(digits), -1)[0].astype(float))[0, 1] > 0.3


def test_the_middle_severity_is_no_milder_than_the_issue_asks():
    assert SEVERITIES["rotation"][1] >= 20 and SEVERITIES["shear"][1] >= 0.3
    assert SEVERITIES["translation"][1] >= 4 and SEVERITIES["gaussian_noise"][1] >= 40
    assert SEVERITIES["gaussian_blur"][1] >= 1.0
    assert SEVERITIES["dilation"][1] == SEVERITIES["erosion"][1] == "disk1"  # 3 pixels across, more than 2.


def test_bad_corruption_requests_name_the_allowed_values(digits):
    with pytest.raises(ParameterError, match="allowed values are rotation"):
        corrupt(digits, "fog", 1)
    with pytest.raises(ParameterError, match="use 1, 2 or 3"):
        corrupt(digits, "rotation", 4)
    with pytest.raises(ParameterError, match=r"\(n, 28, 28\)"):
        corrupt(digits[0], "rotation", 1)


@pytest.mark.parametrize("seed", range(5))
def test_the_threshold_is_the_lowest_that_reaches_the_target_on_validation(seed):
    rng = np.random.default_rng(seed)
    scores = np.round(rng.random(300), 2)  # Ties on purpose.
    correct = rng.random(300) < 0.5 + 0.5 * scores  # Surer answers are right more often.
    choice = choose_threshold(scores, correct, 0.9)
    assert choice.threshold == find_lowest_threshold(scores, correct, 0.9)
    if choice.reached:
        accepted = scores >= choice.threshold
        assert choice.coverage == pytest.approx(accepted.mean())
        assert choice.accuracy == pytest.approx(correct[accepted].mean()) and choice.accuracy >= 0.9
        assert "the lowest whose accepted validation images reach 90.00%" in choice.describe()


def test_no_threshold_reaching_the_target_is_said_and_the_model_answers_everything():
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    correct = np.array([False, True, False, True])
    choice = choose_threshold(scores, correct, 0.99)
    assert choice.threshold is None and not choice.reached and choice.coverage == 1.0
    assert "keeps answering every image" in choice.describe()
    outcome = measure_selective(scores, correct, choice.threshold)
    assert outcome.coverage == 1.0 and outcome.accuracy == 0.5


def test_coverage_and_the_accuracy_of_the_answered_come_with_intervals_and_the_office_sentence():
    scores = np.linspace(0, 1, 1000)
    correct = scores > 0.05
    outcome = measure_selective(scores, correct, 0.5)
    assert outcome.n_answered == 500 and outcome.accuracy == 1.0
    low, high = outcome.coverage_ci95
    assert low < 0.5 < high and outcome.accuracy_ci95[0] > 0.99
    assert outcome.describe().startswith("Answer 50.0% of digits automatically")
    assert "route the other 50.0% to a person" in outcome.describe()
    curve = compute_coverage_curve(scores, correct)
    assert curve["coverage"].is_monotonic_increasing and curve["coverage"].iloc[-1] == 1.0
    assert curve["accuracy"].iloc[-1] == pytest.approx(correct.mean())


def test_confidence_scores_lie_in_zero_to_one_and_rank_by_how_well_they_separate_unknown_images():
    from digitrec_utils.evaluation.scores import SCORE_NAMES, compute_score, rank_scores

    sure = np.array([[0.98, 0.01, 0.01], [0.9, 0.05, 0.05]])
    torn = np.array([[0.5, 0.49, 0.01], [1 / 3, 1 / 3, 1 / 3]])
    for name in SCORE_NAMES:
        scores = compute_score(np.vstack([sure, torn]), name)
        assert ((scores >= 0) & (scores <= 1)).all() and scores[:2].min() > scores[2:].max(), name
    assert compute_score(torn, "margin")[0] == pytest.approx(0.01)
    assert compute_score(torn, "certainty")[1] == pytest.approx(0.0, abs=1e-9)
    ranking = rank_scores(sure, torn)
    assert list(ranking.columns) == ["score", "auroc"] and (ranking["auroc"] == 1.0).all()
    # Where the top probability ties but the runner-up differs, the margin separates and the top one cannot.
    known = np.array([[0.6, 0.1, 0.3], [0.6, 0.2, 0.2]])
    unknown = np.array([[0.6, 0.4, 0.0], [0.6, 0.35, 0.05]])
    ranked = rank_scores(known, unknown).set_index("score")["auroc"]
    assert ranked["margin"] == 1.0 and ranked["top_probability"] == 0.5


def test_the_unit_logit_ignores_the_logits_size_and_reads_the_centred_logits():
    from digitrec_utils.evaluation.scores import compute_score

    logits = np.array([[2.0, 0.5, -1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])

    def softmax(values):
        exponentials = np.exp(values - values.max(axis=1, keepdims=True))
        return exponentials / exponentials.sum(axis=1, keepdims=True)

    # Written out for the first row: centred logits (2, 0.5, -1, 0) - 0.375, divided by their length.
    centred = logits[0] - logits[0].mean()
    assert compute_score(softmax(logits), "unit_logit")[0] == pytest.approx(centred.max() / np.linalg.norm(centred))
    # Halving or tripling the logits (fainter or bolder evidence for the same class) leaves it where it was, while
    # the margin moves.
    for factor in (0.5, 3.0):
        assert compute_score(softmax(factor * logits), "unit_logit") == pytest.approx(
            compute_score(softmax(logits), "unit_logit"))
    assert compute_score(softmax(0.5 * logits), "margin")[0] < compute_score(softmax(logits), "margin")[0] - 0.1
    # A uniform answer has no direction: 0, the lowest; a one-hot one the highest, sqrt(3 / 4) for four classes.
    assert compute_score(np.full((1, 4), 0.25), "unit_logit")[0] == 0.0
    assert compute_score(softmax(np.array([[40.0, 0.0, 0.0, 0.0]])), "unit_logit")[0] == pytest.approx(np.sqrt(0.75))


def test_nondigits_are_seeded_28x28_images_of_every_kind():
    from digitrec_utils.data.nondigits import KINDS, make_nondigits

    images, kinds = make_nondigits(2 * len(KINDS), seed=3)
    assert images.shape == (2 * len(KINDS), 28, 28) and images.dtype == np.uint8
    assert kinds == list(KINDS) * 2
    np.testing.assert_array_equal(images, make_nondigits(2 * len(KINDS), seed=3)[0])
    assert not np.array_equal(images, make_nondigits(2 * len(KINDS), seed=4)[0])
    ink = (images > 128).mean(axis=(1, 2))
    assert ink[kinds.index("blank")] == 0 and ink[kinds.index("rectangle")] > 0.01
    with pytest.raises(ParameterError, match="allowed values are blank"):
        make_nondigits(3, kinds=("stamp",))


def test_speed_is_measured_after_warm_up_with_a_latency_spread():
    import keras

    from digitrec_utils.evaluation.speed import measure_speed

    layers = [keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")]
    model = keras.Sequential(layers)
    images = np.zeros((10, 28, 28, 1), dtype=np.float32)
    speed = measure_speed(model, images, batch_size=64, repeats=2, n_single=20, warmup=2)
    assert speed.images_per_second > 0 and 0 < speed.latency_median_ms <= speed.latency_p95_ms
    assert speed.batch_size == 64 and speed.n_single == 20
    assert "images per second in batches of 64" in speed.describe()
