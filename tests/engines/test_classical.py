"""The classical sweeps: equivalence with scikit-learn's own fits, honesty about the test split, errors."""

from __future__ import annotations

import dataclasses
import sys
import types

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier
from spies import Forbidden, row_keys

from digitrec_utils.data.loading import load_dataset
from digitrec_utils.data.splits import make_splits
from digitrec_utils.declarations import CLASSICAL_MODELS
from digitrec_utils.engines import classical
from digitrec_utils.evaluation.evaluation import describe_selection, summarize_evaluations
from digitrec_utils.exceptions import ParameterError
from digitrec_utils.models import classical_sweeps
from digitrec_utils.utils.acceleration import accelerate_sklearn

K_VALUES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 30]


@pytest.fixture(scope="module")
def sample_splits():
    return make_splits(load_dataset("mnist-sample", seed=42), val_fraction=0.1, seed=42)


@pytest.fixture(scope="module")
def pixels(sample_splits):
    """A few hundred real digits: 600 to fit on and 300 to predict, as float pixels."""
    return (classical_sweeps.prepare_features(sample_splits.x_train[:600]), sample_splits.y_train[:600],
            classical_sweeps.prepare_features(sample_splits.x_val[:300]), sample_splits.y_val[:300])


@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_one_query_votes_equal_separate_classifiers_for_every_k(pixels, weights):
    x_train, y_train, x_query, _ = pixels
    searcher = KNeighborsClassifier(n_neighbors=max(K_VALUES)).fit(x_train, y_train)
    distances, indices = searcher.kneighbors(x_query)
    votes = classical_sweeps.vote_neighbors(y_train[indices], distances, K_VALUES, weights, n_classes=10)
    for k in K_VALUES:
        expected = KNeighborsClassifier(n_neighbors=k, weights=weights).fit(x_train, y_train).predict(x_query)
        np.testing.assert_array_equal(votes[k], expected, err_msg=f"k={k}, weights={weights}")


def test_uniform_votes_really_meet_ties(pixels):
    """The equivalence above covers tie-breaking only if ties occur: with k=2, split votes are ties."""
    x_train, y_train, x_query, _ = pixels
    _, indices = KNeighborsClassifier(n_neighbors=2).fit(x_train, y_train).kneighbors(x_query)
    split_votes = y_train[indices[:, 0]] != y_train[indices[:, 1]]
    assert split_votes.sum() >= 5
    votes = classical_sweeps.vote_neighbors(y_train[indices], None, [2], "uniform", n_classes=10)
    tied = np.flatnonzero(split_votes)
    np.testing.assert_array_equal(votes[2][tied], np.minimum(y_train[indices[tied, 0]], y_train[indices[tied, 1]]))


def test_distance_votes_match_scikit_learn_when_a_query_is_a_training_image(pixels):
    x_train, y_train, x_query, _ = pixels
    # Whole-number pixel values keep the distance arithmetic exact, so a copy is at distance exactly 0.
    x_train, x_query = np.rint(x_train * 255.0).astype(np.float64), np.rint(x_query * 255.0).astype(np.float64)
    queries = np.concatenate([x_train[:20], x_query[:50]])  # Twenty queries at distance zero.
    searcher = KNeighborsClassifier(n_neighbors=10).fit(x_train, y_train)
    distances, indices = searcher.kneighbors(queries)
    assert np.sum(distances[:, 0] == 0) >= 20
    votes = classical_sweeps.vote_neighbors(y_train[indices], distances, [1, 5, 10], "distance", n_classes=10)
    for k in (1, 5, 10):
        expected = KNeighborsClassifier(n_neighbors=k, weights="distance").fit(x_train, y_train).predict(queries)
        np.testing.assert_array_equal(votes[k], expected)


def test_sweep_knn_scores_every_setting_and_chooses_the_smallest_best_k(pixels):
    x_train, y_train, x_val, y_val = pixels
    result = classical_sweeps.sweep_knn(x_train, y_train, x_val, y_val, K_VALUES, ["uniform", "distance"])
    assert len(result.sweep) == 2 * len(K_VALUES)
    for row in result.sweep.itertuples():
        separate = KNeighborsClassifier(n_neighbors=row.k, weights=row.weights).fit(x_train, y_train)
        expected = separate.score(x_val, y_val)
        assert row.val_accuracy == pytest.approx(expected, abs=1e-12)
    best = result.sweep["val_accuracy"].max()
    first_best = result.sweep[result.sweep["val_accuracy"] == best].iloc[0]
    assert result.hyperparameters == {"n_neighbors": first_best["k"], "weights": first_best["weights"]}
    assert isinstance(result.model, KNeighborsClassifier) and result.model.n_neighbors == first_best["k"]
    assert result.params_count == x_train.size


@pytest.mark.parametrize("k_values, message", [([], "knn_k is empty"), ([0, 3], "knn_k"), ([601], "600")])
def test_sweep_knn_rejects_bad_k(pixels, k_values, message):
    x_train, y_train, x_val, y_val = pixels
    with pytest.raises(ParameterError, match=message):
        classical_sweeps.sweep_knn(x_train, y_train, x_val, y_val, k_values)


def _continuous_problem(seed=0, n_samples=600):
    """Gaussian features: with leaves of 20 or more, no two candidate splits are exactly equally good.

    (In tiny nodes they often are: several features can separate three samples perfectly.)
    """
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n_samples, 6))
    labels = (np.sin(2 * features[:, 0]) + features[:, 1] * features[:, 2] > 0).astype(int)
    labels += (features[:, 3] > 0.8).astype(int) * 2
    return features[:400], labels[:400], features[400:], labels[400:]


@pytest.mark.parametrize("criterion", ["gini", "entropy"])
def test_truncation_equals_direct_fits_when_no_splits_tie(criterion):
    x_train, y_train, x_query, _ = _continuous_problem()
    full = DecisionTreeClassifier(criterion=criterion, min_samples_leaf=20, random_state=3).fit(x_train, y_train)
    depths = list(range(1, full.get_depth() + 3))
    truncated = classical_sweeps.predict_tree_depths(full, x_query, depths)
    assert full.get_depth() >= 5
    for depth in depths:
        direct = DecisionTreeClassifier(criterion=criterion, min_samples_leaf=20, max_depth=depth,
                                        random_state=3).fit(x_train, y_train)
        np.testing.assert_array_equal(truncated[depth], direct.predict(x_query), err_msg=f"depth {depth}")


def _impurity(labels, criterion):
    fractions = np.bincount(labels, minlength=10) / len(labels)
    if criterion == "gini":
        return 1.0 - np.sum(fractions**2)
    fractions = fractions[fractions > 0]
    return -np.sum(fractions * np.log2(fractions))


def _split_improvement(features, labels, feature, threshold, criterion):
    goes_left = features[:, feature] <= threshold
    n_total = len(labels)
    children = [labels[goes_left], labels[~goes_left]]
    return _impurity(labels, criterion) - sum(len(part) / n_total * _impurity(part, criterion) for part in children)


def _compare_trees(full, direct, features, labels, criterion, node_full=0, node_direct=0, depth=0, found=None):
    """Walk both trees together; where their splits differ, record both splits' impurity decreases."""
    found = [] if found is None else found
    full_tree, direct_tree = full.tree_, direct.tree_
    if direct_tree.children_left[node_direct] < 0 or full_tree.children_left[node_full] < 0:
        return found
    split_full = (full_tree.feature[node_full], full_tree.threshold[node_full])
    split_direct = (direct_tree.feature[node_direct], direct_tree.threshold[node_direct])
    if split_full != split_direct:
        found.append((depth, _split_improvement(features, labels, *split_full, criterion),
                      _split_improvement(features, labels, *split_direct, criterion)))
        return found
    goes_left = features[:, split_full[0]] <= split_full[1]
    for side, mask in (("left", goes_left), ("right", ~goes_left)):
        child_full = getattr(full_tree, f"children_{side}")[node_full]
        child_direct = getattr(direct_tree, f"children_{side}")[node_direct]
        _compare_trees(full, direct, features[mask], labels[mask], criterion, child_full, child_direct,
                       depth + 1, found)
    return found


@pytest.mark.parametrize("criterion", ["gini", "entropy"])
def test_truncation_differs_from_direct_fits_only_where_splits_tie(pixels, criterion):
    """On pixels, equally good splits are common. Wherever a direct depth-d fit and the full tree split a
    node differently, both splits must decrease the impurity by the same amount; and the accuracies
    that the sweep reads off stay close to the direct fits' accuracies."""
    x_train, y_train, x_val, y_val = pixels
    full = DecisionTreeClassifier(criterion=criterion, random_state=42).fit(x_train, y_train)
    depths = [2, 4, 6, 8, 10]
    truncated = classical_sweeps.predict_tree_depths(full, x_val, depths)
    differences, divergences = [], []
    for depth in depths:
        direct = DecisionTreeClassifier(criterion=criterion, max_depth=depth, random_state=42).fit(x_train, y_train)
        divergences += _compare_trees(full, direct, x_train, y_train, criterion)
        differences.append(abs(np.mean(truncated[depth] == y_val) - direct.score(x_val, y_val)))
        if not _compare_trees(full, direct, x_train, y_train, criterion):
            np.testing.assert_array_equal(truncated[depth], direct.predict(x_val))
    assert divergences, "expected at least one tie on pixels; without one this test checks less than it says"
    for depth, improvement_full, improvement_direct in divergences:
        assert improvement_full == pytest.approx(improvement_direct, rel=1e-9, abs=1e-12), f"depth {depth}"
    assert np.mean(truncated[2] == y_val) == direct_accuracy(x_train, y_train, x_val, y_val, criterion, 2)
    assert max(differences) <= 0.05
    assert np.mean(differences) <= 0.02


def direct_accuracy(x_train, y_train, x_val, y_val, criterion, depth):
    tree = DecisionTreeClassifier(criterion=criterion, max_depth=depth, random_state=42).fit(x_train, y_train)
    return tree.score(x_val, y_val)


def test_depth_limited_tree_predicts_like_the_full_tree_at_full_depth(pixels):
    x_train, y_train, x_val, _ = pixels
    full = DecisionTreeClassifier(random_state=0).fit(x_train, y_train)
    deep = classical_sweeps.DepthLimitedTree(full, full.get_depth() + 5)
    np.testing.assert_array_equal(deep.predict(x_val), full.predict(x_val))
    np.testing.assert_allclose(deep.predict_proba(x_val), full.predict_proba(x_val))
    stump = classical_sweeps.DepthLimitedTree(full, 0)
    assert stump.count_nodes() == 1
    assert len(set(stump.predict(x_val))) == 1
    shallow = classical_sweeps.DepthLimitedTree(full, 3)
    probabilities = shallow.predict_proba(x_val)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    np.testing.assert_array_equal(full.classes_[probabilities.argmax(axis=1)], shallow.predict(x_val))
    assert 1 < shallow.count_nodes() <= 15


def test_sweep_tree_depths_chooses_the_best_depth(pixels):
    x_train, y_train, x_val, y_val = pixels
    result = classical_sweeps.sweep_tree_depths(x_train, y_train, x_val, y_val, range(2, 12), ["gini", "entropy"],
                                                seed=1)
    assert len(result.sweep) == 20
    best = result.sweep.loc[result.sweep["val_accuracy"].idxmax()]
    assert result.hyperparameters["max_depth"] == best["depth"]
    assert result.hyperparameters["criterion"] == best["criterion"]
    assert result.model.predict(x_val).shape == y_val.shape
    assert np.mean(result.model.predict(x_val) == y_val) == pytest.approx(result.val_accuracy)
    assert result.sweep.groupby("criterion")["nodes"].is_monotonic_increasing.all()


def test_sweep_tree_depths_rejects_an_unknown_criterion(pixels):
    x_train, y_train, x_val, y_val = pixels
    with pytest.raises(ParameterError, match="tree_criteria = 'gain' is not allowed: expected one of 'gini'"):
        classical_sweeps.sweep_tree_depths(x_train, y_train, x_val, y_val, [3], ["gain"])


def test_tune_grid_flags_a_fit_that_did_not_converge(pixels):
    x_train, y_train, x_val, y_val = pixels
    result = classical_sweeps.tune_grid("logreg", LogisticRegression(max_iter=2), {"C": [0.1, 1.0]},
                                 x_train, y_train, x_val, y_val)
    assert list(result.sweep["C"]) == [0.1, 1.0]
    assert not result.sweep["converged"].any()
    assert any("max_iter" in note for note in result.notes)
    assert result.val_accuracy == result.sweep["val_accuracy"].max()
    assert result.params_count == 10 * 784 + 10


def test_tuning_never_reads_the_test_split_and_fits_only_training_rows(sample_splits, monkeypatch):
    small = make_splits(load_dataset("mnist-sample", seed=42), val_fraction=0.2, seed=42, train_size=800)
    forbidden = dataclasses.replace(small, x_test=Forbidden(), y_test=Forbidden())
    fitted_rows, validation_rows = [], []
    # Every estimator that is handed pixels; the Nystroem pipeline's inner LinearSVC sees kernel features.
    for estimator_class in (KNeighborsClassifier, DecisionTreeClassifier, LogisticRegression, RandomForestClassifier,
                            SVC, Pipeline, HistGradientBoostingClassifier):
        original_fit = estimator_class.fit

        def spy_fit(self, features, labels=None, *args, _original=original_fit, **kwargs):
            fitted_rows.append(row_keys(features))
            if kwargs.get("X_val") is not None:
                validation_rows.append(row_keys(kwargs["X_val"]))
            return _original(self, features, labels, *args, **kwargs)

        monkeypatch.setattr(estimator_class, "fit", spy_fit)
    settings = classical.ClassicalSettings(knn_k=[1, 3], tree_max_depth=6, logreg_c=[1.0], logreg_max_iter=20,
                                           forest_trees=[5], svm_method="nystroem", svm_components=50, svm_c=[1.0],
                                           svm_train_size=300, boosting_max_iter=3, boosting_train_size=300)
    tuned = classical.tune_classical_models(forbidden, settings, verbose=False)
    assert set(tuned) == set(CLASSICAL_MODELS)
    train_rows = row_keys(small.x_train.astype(np.float32) / 255)
    val_rows = row_keys(small.x_val.astype(np.float32) / 255)
    assert len(fitted_rows) >= 6
    for rows in fitted_rows:
        assert rows <= train_rows, "a fit saw rows that are not training rows"
    assert validation_rows and all(rows == val_rows for rows in validation_rows)
    with pytest.raises(AssertionError, match="test split"):
        classical.evaluate_on_test(tuned, forbidden)  # The stand-in does catch a read.


def test_models_are_evaluated_and_recorded(sample_splits):
    settings = classical.ClassicalSettings(models=["knn", "logreg"], knn_k=[1, 5], logreg_c=[1.0], logreg_max_iter=30)
    small = make_splits(load_dataset("mnist-sample", seed=42), val_fraction=0.2, seed=42, train_size=1000)
    tuned = classical.tune_classical_models(small, settings, verbose=False)
    evaluations = classical.evaluate_on_test(tuned, small)
    assert set(evaluations) == {"knn", "logreg"}
    assert evaluations["knn"].n_samples == len(small.y_test)
    records = classical.build_model_records(tuned, evaluations)
    assert [record["name"] for record in records] == ["knn", "logreg"]
    assert records[0]["val_accuracy"] == tuned["knn"].val_accuracy
    assert records[1]["test_accuracy"] == evaluations["logreg"].accuracy
    selected = classical.select_best(tuned)
    validation = {name: result.val_accuracy for name, result in tuned.items()}
    conclusion = describe_selection(evaluations, validation, selected, "classical model", y_true=small.y_test)
    assert f"{evaluations[selected].accuracy:.4f}" in conclusion
    assert f"{tuned[selected].val_accuracy:.4f}" in conclusion
    table = summarize_evaluations(evaluations, validation)
    assert (table["95% CI low"] <= table["test accuracy"]).all()
    assert (table["test accuracy"] <= table["95% CI high"]).all()


def test_svm_subsample_and_nystroem_are_reported(pixels):
    x_train, y_train, x_val, y_val = pixels
    settings = classical.ClassicalSettings(svm_method="nystroem", svm_train_size=300, svm_components=80, svm_c=[1.0])
    result = classical._tune_svm(x_train, y_train, x_val, y_val, settings)
    assert result.hyperparameters["train_size"] == 300
    assert result.hyperparameters["method"] == "nystroem"
    assert any("Nystroem" in note for note in result.notes)
    assert any("300" in note for note in result.notes)
    assert result.params_count == 80 * 784 + 10 * 80 + 10


@pytest.mark.parametrize("change, message", [
    ({"knn_k": []}, "knn_k must not be an empty list"),
    ({"knn_k": [3601]}, "knn_k.*3,600"),
    ({"tree_criteria": ["gain"]}, "tree_criteria = 'gain' is not allowed: expected one of 'gini', 'entropy'"),
    ({"models": ["knn", "xgboost"]}, "models"),
    ({"tree_min_depth": 9, "tree_max_depth": 4}, "tree_min_depth"),
    ({"svm_method": "linear"}, "svm_method = 'linear' is not allowed: expected one of 'exact', 'nystroem'"),
])
def test_settings_reject_bad_values(change, message):
    with pytest.raises(ParameterError, match=message):
        dataclasses.replace(classical.ClassicalSettings(), **change).check(n_train=3600)


def test_acceleration_reports_what_ran(monkeypatch):
    assert "off" in accelerate_sklearn(False)
    monkeypatch.setitem(sys.modules, "sklearnex", None)  # Importing it now raises ImportError.
    assert "not installed" in accelerate_sklearn(True)
    calls = []
    fake = types.ModuleType("sklearnex")
    fake.patch_sklearn = lambda **kwargs: calls.append(kwargs)
    monkeypatch.setitem(sys.modules, "sklearnex", fake)
    assert "patched" in accelerate_sklearn(True)
    assert calls == [{"verbose": False}]


def test_svm_on_principal_components_is_reported(pixels):
    x_train, y_train, x_val, y_val = pixels
    settings = classical.ClassicalSettings(svm_method="exact", svm_pca_components=20, svm_c=[1.0, 10.0])
    result = classical._tune_svm(x_train, y_train, x_val, y_val, settings)
    assert result.hyperparameters["pca_components"] == 20
    assert list(result.sweep["C"]) == [1.0, 10.0]
    assert any("20 principal components" in note for note in result.notes)
    assert result.model.named_steps["pca"].n_components_ == 20
    assert result.val_accuracy > 0.5


@pytest.mark.parametrize("sweep_name", ["knn", "tree", "grid"])
def test_sweeps_keep_each_settings_predictions_and_judge_them_by_the_paired_test(pixels, sweep_name):
    from sklearn.linear_model import LogisticRegression

    x_train, y_train, x_val, y_val = pixels
    if sweep_name == "knn":
        result = classical_sweeps.sweep_knn(x_train, y_train, x_val, y_val, [1, 3, 5, 15])
        assert set(result.val_predictions) == {"k=1", "k=3", "k=5", "k=15"}  # Only what varies names a setting.
    elif sweep_name == "tree":
        result = classical_sweeps.sweep_tree_depths(x_train, y_train, x_val, y_val, [2, 6, 12], ["gini", "entropy"],
                                                    seed=1)
        assert "criterion=gini, depth=6" in result.val_predictions
    else:
        result = classical_sweeps.tune_grid("logreg", LogisticRegression(max_iter=200), {"C": [0.001, 0.1, 1.0]},
                                            x_train, y_train, x_val, y_val)
    sweep = result.sweep
    for label, accuracy in zip(classical_sweeps.label_settings(sweep), sweep["val_accuracy"], strict=True):
        assert np.mean(result.val_predictions[label] == y_val) == pytest.approx(accuracy)
    assert np.mean(result.chosen_predictions == y_val) == pytest.approx(result.val_accuracy)
    assert list(sweep["vs best"]).count("best") == 1
    assert (sweep["95% CI low"] <= sweep["val_accuracy"]).all()
    assert (sweep["val_accuracy"] <= sweep["95% CI high"]).all()
    verdicts = result.comparison.table.set_index("setting")
    within = [label for label, verdict in zip(classical_sweeps.label_settings(sweep), sweep["vs best"], strict=True)
              if verdict == "within noise"]
    assert all(verdicts.loc[label, "p-value"] >= 0.05 for label in within)
    finding = classical.describe_sweep(result)
    assert finding.startswith(f"Best setting: {result.comparison.best} at {result.val_accuracy:.4f}")
    if sweep_name == "tree" and "cannot tell from chance" not in finding:
        assert "deeper trees fit the training images more closely" in finding or "0.0000 below" in finding
