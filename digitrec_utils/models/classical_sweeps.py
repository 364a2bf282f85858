"""Classical models tuned fast on validation: every k of kNN from one neighbour query, every depth of a tree
from one fit, and a grid over a scikit-learn estimator's settings (scikit-learn has no such sweeps; its
``GridSearchCV`` refits each setting and cross-validates, where 02 tunes on one validation part).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import ParameterGrid
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.extmath import weighted_mode

from digitrec_utils.data.preprocessing import flatten_images, scale_images
from digitrec_utils.evaluation.evaluation import PairedComparison, compare_paired
from digitrec_utils.exceptions import ParameterError
from digitrec_utils.settings import check_value

# How kNN's votes may be weighted, and the split criteria of the trees (scikit-learn's names).

DESCRIPTIONS = {
    "knn": "k-nearest neighbours on raw pixels; the first report tuned k over 1-10, 15 and 30 by brute force "
           "(it printed 0.9714 on MNIST with k = 1, on its own 80/10/10 split of all 70,000 digits).",
    "tree": "Decision tree; the first report fitted 56 trees (depth 3-30, gini and entropy) to tune it.",
    "logreg": "Multinomial logistic regression on pixels scaled to [0, 1] (beyond the original reports).",
    "forest": "Random forest (beyond the original reports).",
    "svm": "Support vector machine with an RBF kernel (beyond the original reports).",
    "boosting": "Histogram gradient boosting (beyond the original reports).",
}


@dataclass
class TunedModel:
    """One model family after tuning on validation data.

    Attributes
    ----------
    name : str
        ``knn``, ``tree``, ``logreg``, ``forest``, ``svm`` or ``boosting``.
    description : str
        What it is and which report it reproduces.
    model : estimator
        The chosen configuration, fitted on the training part; it has ``predict``.
    hyperparameters : dict
        The chosen settings.
    val_accuracy : float
        The chosen configuration's accuracy on the validation part.
    train_seconds : float
        Seconds to fit the chosen configuration.
    tuning_seconds : float
        Seconds for the whole sweep or grid, fits and validation scoring included.
    predict_ms_per_1k : float
        Milliseconds to predict 1,000 validation images with the chosen configuration.
    sweep : DataFrame
        One row per configuration tried, with its ``val_accuracy``.
    chosen_setting : dict
        The sweep's row for the chosen setting (column -> value), e.g. for marking it on a plot.
    params_count : int or None
        Numbers the fitted model stores (see ``_count_parameters``).
    notes : list of str
        What ran, e.g. a subsample or an approximation, and convergence warnings.
    family : str
    val_predictions : dict of str to ndarray
        Each setting's predicted validation labels, keyed by its label (``k=3``, ``criterion=gini, depth=8``);
        the paired tests and the results record use them.
    comparison : PairedComparison, optional
        Every setting against the chosen one (McNemar's exact test on the validation images).
    """

    name: str
    description: str
    model: Any
    hyperparameters: dict
    val_accuracy: float
    train_seconds: float
    tuning_seconds: float
    predict_ms_per_1k: float
    sweep: pd.DataFrame
    chosen_setting: dict = field(default_factory=dict)
    params_count: int | None = None
    notes: list[str] = field(default_factory=list)
    family: str = "classical"
    val_predictions: dict = field(default_factory=dict)
    comparison: PairedComparison | None = None

    @property
    def chosen_predictions(self):
        """The chosen setting's predicted validation labels."""
        return self.val_predictions[self.comparison.best] if self.comparison is not None else None


def prepare_features(images: np.ndarray) -> np.ndarray:
    """Return images as rows of float32 pixels in [0, 1], the input of every classical model.

    Parameters
    ----------
    images : ndarray of shape (n_samples, 28, 28), dtype uint8

    Returns
    -------
    features : ndarray of shape (n_samples, 784), dtype float32
    """
    return flatten_images(scale_images(images))


def vote_neighbors(
    neighbor_labels: np.ndarray,
    neighbor_distances: np.ndarray | None,
    k_values: Sequence[int],
    weights: str = "uniform",
    n_classes: int | None = None,
) -> dict[int, np.ndarray]:
    """Derive each ``k``'s kNN prediction from one neighbour query for the largest ``k``.

    Parameters
    ----------
    neighbor_labels : ndarray of shape (n_queries, k_max)
        Encoded labels (0 to n_classes - 1) of each query's neighbours, nearest first, as
        ``KNeighborsClassifier.kneighbors`` orders them.
    neighbor_distances : ndarray of shape (n_queries, k_max) or None
        Their distances; needed for ``weights="distance"``.
    k_values : sequence of int
        Each at most ``k_max``.
    weights : {"uniform", "distance"}, default="uniform"
    n_classes : int, optional
        Defaults to the largest label plus one.

    Returns
    -------
    predictions : dict of int to ndarray of shape (n_queries,)
        Encoded labels. Uniform votes are integer counts and a tie goes to the smallest label, as in
        scikit-learn's ``ArgKminClassMode`` fast path (arg-max of the counts). Distance votes call
        scikit-learn's own ``weighted_mode`` on the first ``k`` neighbours, as ``predict`` does.
    """
    neighbor_labels = np.asarray(neighbor_labels)
    k_max = neighbor_labels.shape[1]
    check_value("knn_weights", [weights])
    if max(k_values) > k_max:
        raise ValueError(f"k = {max(k_values)} needs {max(k_values)} neighbours, but only {k_max} were queried.")
    predictions = {}
    if weights == "uniform":
        n_classes = n_classes or int(neighbor_labels.max()) + 1
        one_hot = neighbor_labels[:, :, np.newaxis] == np.arange(n_classes)
        running_counts = np.cumsum(one_hot, axis=1, dtype=np.int32)
        for k in k_values:
            predictions[k] = np.argmax(running_counts[:, k - 1, :], axis=1)
        return predictions
    neighbor_weights = _inverse_distance_weights(np.asarray(neighbor_distances, dtype=np.float64))
    for k in k_values:
        mode, _ = weighted_mode(neighbor_labels[:, :k], neighbor_weights[:, :k], axis=1)
        predictions[k] = mode.ravel().astype(int)
    return predictions


def sweep_knn(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    k_values: Sequence[int],
    weights: Sequence[str] = ("uniform",),
) -> TunedModel:
    """Tune ``k`` (and the weighting) of a kNN classifier with one neighbour query of the validation set.

    Parameters
    ----------
    x_train : ndarray of shape (n_train, n_features)
    y_train : ndarray of shape (n_train,)
    x_val : ndarray of shape (n_val, n_features)
    y_val : ndarray of shape (n_val,)
    k_values : sequence of int
        The neighbourhood sizes to try, each from 1 to ``n_train``.
    weights : sequence of {"uniform", "distance"}
        The vote weightings to try; all come from the same query.

    Returns
    -------
    tuned : TunedModel
        ``sweep`` has columns weights, k, val_accuracy. The chosen model is a
        ``KNeighborsClassifier`` with the best validation accuracy (ties: the first weighting listed,
        then the smallest k), fitted on the training part.
    """
    check_k_values(k_values, len(y_train))
    check_value("knn_weights", list(weights))
    k_values = sorted(set(int(k) for k in k_values))
    start = time.perf_counter()
    searcher = KNeighborsClassifier(n_neighbors=max(k_values)).fit(x_train, y_train)
    queried = time.perf_counter()
    distances, indices = searcher.kneighbors(x_val)
    query_seconds = time.perf_counter() - queried
    encoded_train = np.searchsorted(searcher.classes_, y_train)
    rows, predictions = [], []
    for weighting in weights:
        votes = vote_neighbors(encoded_train[indices], distances, k_values, weighting, len(searcher.classes_))
        for k in k_values:
            predicted = searcher.classes_[votes[k]]
            rows.append({"weights": weighting, "k": k, "val_accuracy": float(np.mean(predicted == y_val))})
            predictions.append(predicted)
    tuning_seconds = time.perf_counter() - start
    sweep, comparison, labelled = _compare_sweep(pd.DataFrame(rows), predictions, y_val)
    best = sweep.loc[sweep["val_accuracy"].idxmax()]
    chosen = {"n_neighbors": int(best["k"]), "weights": str(best["weights"])}
    model, train_seconds = _fit_timed(KNeighborsClassifier(**chosen), x_train, y_train)
    # The chosen model's prediction time is read off the sweep's own query (its neighbours and one vote),
    # rather than by querying again: a second query of the validation set cost as much as the whole sweep.
    voted = time.perf_counter()
    vote_neighbors(encoded_train[indices], distances, [chosen["n_neighbors"]], chosen["weights"],
                   len(searcher.classes_))
    predict_ms_per_1k = (query_seconds + time.perf_counter() - voted) * 1e6 / len(y_val)
    notes = [f"{len(k_values) * len(weights)} settings scored from one query of {len(y_val):,} validation images "
             f"against {len(y_train):,} training images for k = {max(k_values)} neighbours."]
    return TunedModel(
        name="knn", description=DESCRIPTIONS["knn"], model=model, hyperparameters=chosen,
        val_accuracy=float(best["val_accuracy"]), train_seconds=train_seconds, tuning_seconds=tuning_seconds,
        predict_ms_per_1k=predict_ms_per_1k, sweep=sweep, chosen_setting=_row_dict(best),
        params_count=_count_parameters(model), notes=notes, val_predictions=labelled, comparison=comparison,
    )


class DepthLimitedTree:
    """A fitted decision tree read as if it had been grown only to ``depth``.

    Each sample descends the full tree to its leaf, then climbs back to its ancestor at ``depth``
    (or stays at a leaf that is shallower), and gets that node's majority class, with ties going to the
    smallest class as in ``DecisionTreeClassifier.predict``.

    Parameters
    ----------
    tree : DecisionTreeClassifier
        Fitted, usually with ``max_depth=None``.
    depth : int
        The depth to read it at; the root is depth 0.
    """

    def __init__(self, tree: DecisionTreeClassifier, depth: int) -> None:
        self.tree = tree
        self.depth = int(depth)
        self.classes_ = tree.classes_

    def __repr__(self) -> str:
        return f"DepthLimitedTree(criterion={self.tree.criterion!r}, depth={self.depth})"

    def apply(self, features: np.ndarray) -> np.ndarray:
        """Return the index of the node each sample ends at in the depth-limited tree."""
        return _truncate_to_depths(self.tree, self.tree.apply(features), [self.depth])[self.depth]

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Return the class fractions of each sample's node, shape (n_samples, n_classes)."""
        values = self.tree.tree_.value[self.apply(features), 0, :]
        return values / values.sum(axis=1, keepdims=True)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Return the majority class of each sample's node, shape (n_samples,)."""
        return self.classes_[np.argmax(self.tree.tree_.value[self.apply(features), 0, :], axis=1)]

    def count_nodes(self) -> int:
        """Return the number of nodes of the full tree at depth ``depth`` or less."""
        return int(np.sum(self.tree.tree_.compute_node_depths() - 1 <= self.depth))


def predict_tree_depths(
    tree: DecisionTreeClassifier, features: np.ndarray, depths: Sequence[int]
) -> dict[int, np.ndarray]:
    """Predict with a fitted tree truncated at each of several depths, from one descent.

    Parameters
    ----------
    tree : DecisionTreeClassifier
        Fitted.
    features : ndarray of shape (n_samples, n_features)
    depths : sequence of int
        Depths to read the tree at; the root is depth 0.

    Returns
    -------
    predictions : dict of int to ndarray of shape (n_samples,)
        Class labels at each depth.
    """
    nodes = _truncate_to_depths(tree, tree.apply(features), depths)
    value = tree.tree_.value[:, 0, :]
    return {depth: tree.classes_[np.argmax(value[nodes[depth]], axis=1)] for depth in depths}


def sweep_tree_depths(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    depths: Sequence[int],
    criteria: Sequence[str] = ("gini", "entropy"),
    *,
    seed: int = 0,
    n_jobs: int = -1,
) -> TunedModel:
    """Tune a decision tree's depth and criterion from one full-depth tree per criterion.

    Parameters
    ----------
    x_train, y_train, x_val, y_val : ndarray
        Training and validation features and labels.
    depths : sequence of int
        Depths to score, each at least 1.
    criteria : sequence of {"gini", "entropy", "log_loss"}
    seed : int
        ``random_state`` of every tree.
    n_jobs : int
        Trees fitted at once (one per criterion); -1 uses all cores.

    Returns
    -------
    tuned : TunedModel
        ``sweep`` has columns criterion, depth, val_accuracy, nodes. The chosen model is a
        :class:`DepthLimitedTree` with the best validation accuracy (ties: the first criterion listed,
        then the shallowest depth).
    """
    check_value("tree_criteria", list(criteria))
    depths = sorted(set(int(depth) for depth in depths))
    if not depths or depths[0] < 1:
        raise ParameterError(f"tree depths {depths!r}: give at least one depth, each at least 1.")
    start = time.perf_counter()
    fitted = Parallel(n_jobs=min(len(criteria), effective_n_jobs(n_jobs)), prefer="threads")(
        delayed(_fit_timed)(DecisionTreeClassifier(criterion=criterion, random_state=seed), x_train, y_train)
        for criterion in criteria
    )
    rows, predicted = [], []
    for criterion, (tree, _) in zip(criteria, fitted, strict=True):
        predictions = predict_tree_depths(tree, x_val, depths)
        node_depths = tree.tree_.compute_node_depths() - 1
        for depth in depths:
            rows.append({"criterion": criterion, "depth": depth,
                         "val_accuracy": float(np.mean(predictions[depth] == y_val)),
                         "nodes": int(np.sum(node_depths <= depth))})
            predicted.append(predictions[depth])
    tuning_seconds = time.perf_counter() - start
    sweep, comparison, labelled = _compare_sweep(pd.DataFrame(rows), predicted, y_val)
    best = sweep.loc[sweep["val_accuracy"].idxmax()]
    position = list(criteria).index(best["criterion"])
    full_tree, train_seconds = fitted[position]
    model = DepthLimitedTree(full_tree, int(best["depth"]))
    full_depths = ", ".join(f"{tree.get_depth()} ({name})" for name, (tree, _) in zip(criteria, fitted, strict=True))
    notes = [f"{len(sweep)} depth/criterion settings read off {len(criteria)} full-depth trees "
             f"(full depths {full_depths})."]
    if best["depth"] >= full_tree.get_depth():
        notes.append("The chosen depth is the full tree's depth: the tree was not limited.")
    return TunedModel(
        name="tree", description=DESCRIPTIONS["tree"], model=model,
        hyperparameters={"criterion": str(best["criterion"]), "max_depth": int(best["depth"]), "random_state": seed},
        val_accuracy=float(best["val_accuracy"]), train_seconds=train_seconds, tuning_seconds=tuning_seconds,
        predict_ms_per_1k=_time_predictions(model, x_val), sweep=sweep, chosen_setting=_row_dict(best),
        params_count=_count_parameters(model), notes=notes, val_predictions=labelled, comparison=comparison,
    )


def tune_grid(
    name: str,
    estimator,
    grid: dict[str, Sequence],
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    description: str = "",
    notes: Sequence[str] = (),
    fit_params: Callable[[], dict] | None = None,
) -> TunedModel:
    """Fit ``estimator`` at every point of ``grid`` on the training part and keep the best on validation.

    Parameters
    ----------
    name : str
    estimator : scikit-learn estimator
        Cloned and given each grid point with ``set_params``.
    grid : dict of str to sequence
        As for :class:`~sklearn.model_selection.ParameterGrid`.
    x_train, y_train, x_val, y_val : ndarray
    description : str
    notes : sequence of str
        Carried into the result.
    fit_params : callable, optional
        Returns extra keyword arguments for ``fit`` (e.g. validation data for early stopping).

    Returns
    -------
    tuned : TunedModel
        ``sweep`` has one column per grid key plus val_accuracy, fit_seconds, predict_ms_per_1k and
        converged. Ties go to the first grid point.
    """
    rows, models, predictions = [], [], []
    start = time.perf_counter()
    for point in ParameterGrid(grid):
        candidate = clone(estimator).set_params(**point)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            candidate, fit_seconds = _fit_timed(candidate, x_train, y_train, **(fit_params() if fit_params else {}))
        converged = not any(issubclass(warning.category, ConvergenceWarning) for warning in caught)
        for warning in caught:  # Anything else is passed on, not swallowed.
            if not issubclass(warning.category, ConvergenceWarning):
                warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        predict_start = time.perf_counter()
        predicted = candidate.predict(x_val)
        predict_ms = (time.perf_counter() - predict_start) * 1e6 / len(y_val)
        rows.append({**{key: _plain(value) for key, value in point.items()},
                     "val_accuracy": float(np.mean(predicted == y_val)), "fit_seconds": fit_seconds,
                     "predict_ms_per_1k": predict_ms, "converged": converged})
        models.append(candidate)
        predictions.append(predicted)
    tuning_seconds = time.perf_counter() - start
    sweep, comparison, labelled = _compare_sweep(pd.DataFrame(rows), predictions, y_val)
    best_position = int(sweep["val_accuracy"].idxmax())
    best = sweep.loc[best_position]
    notes = list(notes)
    if not best["converged"]:
        notes.append("The chosen fit stopped at its iteration limit before converging (a ConvergenceWarning); "
                     "raise the max_iter parameter to let it finish.")
    chosen = {key: _plain(models[best_position].get_params()[key]) for key in grid}
    return TunedModel(
        name=name, description=description or DESCRIPTIONS.get(name, name), model=models[best_position],
        hyperparameters=chosen, val_accuracy=float(best["val_accuracy"]), train_seconds=float(best["fit_seconds"]),
        tuning_seconds=tuning_seconds, predict_ms_per_1k=float(best["predict_ms_per_1k"]), sweep=sweep,
        chosen_setting=_row_dict(best), params_count=_count_parameters(models[best_position]), notes=notes,
        val_predictions=labelled, comparison=comparison,
    )


# Columns of a sweep that are results, not settings.
RESULT_COLUMNS = ("val_accuracy", "fit_seconds", "predict_ms_per_1k", "converged", "nodes", "95% CI low",
                  "95% CI high", "p-value vs best", "vs best")


def label_settings(sweep: pd.DataFrame) -> list[str]:
    """Return one label per sweep row from the settings that vary (``k=3``; all of them when none varies)."""
    columns = [column for column in sweep.columns if column not in RESULT_COLUMNS]
    varying = [column for column in columns if sweep[column].nunique() > 1] or columns
    return [format_settings({column: _plain(row[column]) for column in varying}) for _, row in sweep.iterrows()]


def _compare_sweep(sweep: pd.DataFrame, predictions: Sequence[np.ndarray], y_val: np.ndarray):
    """Compare every setting of a sweep with the best one on the validation images (McNemar's exact test).

    Returns
    -------
    sweep : DataFrame
        With ``95% CI low``, ``95% CI high``, ``p-value vs best`` and ``vs best`` (best, within noise or
        worse) added (:meth:`PairedComparison.annotate`).
    comparison : PairedComparison
    predictions : dict of str to ndarray
        Each setting's predicted validation labels, keyed by its label.
    """
    labels = label_settings(sweep)
    labelled = dict(zip(labels, predictions, strict=True))
    comparison = compare_paired(y_val, labelled)
    return comparison.annotate(sweep, labels), comparison, labelled


def _count_parameters(model) -> int | None:
    """Return how many numbers a fitted model stores to make its predictions.

    For kNN that is the stored training pixels; for trees and forests the number of nodes; for linear
    models and SVMs the coefficients, support vectors and intercepts. None where it is not known.
    """
    if isinstance(model, Pipeline):
        counts = [_count_parameters(step) for _, step in model.steps]
        return None if any(count is None for count in counts) else sum(counts)
    if isinstance(model, DepthLimitedTree):
        return model.count_nodes()
    if isinstance(model, KNeighborsClassifier):
        return int(model.n_samples_fit_ * model.n_features_in_)
    if isinstance(model, DecisionTreeClassifier):
        return int(model.tree_.node_count)
    if isinstance(model, RandomForestClassifier):
        return int(sum(tree.tree_.node_count for tree in model.estimators_))
    if isinstance(model, SVC):
        return int(model.support_vectors_.size + model.dual_coef_.size + model.intercept_.size)
    if isinstance(model, Nystroem):
        return int(model.components_.size)
    if isinstance(model, PCA):
        return int(model.components_.size + model.mean_.size)
    if isinstance(model, (LogisticRegression, LinearSVC)):
        return int(model.coef_.size + model.intercept_.size)
    if isinstance(model, HistGradientBoostingClassifier):
        predictors = getattr(model, "_predictors", None)  # Private; None if scikit-learn renames it.
        return None if predictors is None else int(sum(len(tree.nodes) for step in predictors for tree in step))
    return None


def _inverse_distance_weights(distances: np.ndarray) -> np.ndarray:
    """Return 1 / distance, or, for a row with a zero distance, 1 for those neighbours and 0 for the rest.

    This mirrors scikit-learn's private ``neighbors._base._get_weights`` for ``weights="distance"``.
    """
    with np.errstate(divide="ignore"):
        weights = 1.0 / distances
    infinite = np.isinf(weights)
    infinite_rows = np.any(infinite, axis=1)
    weights[infinite_rows] = infinite[infinite_rows]
    return weights


def _truncate_to_depths(
    tree: DecisionTreeClassifier, leaves: np.ndarray, depths: Sequence[int]
) -> dict[int, np.ndarray]:
    """Map each sample's leaf to its deepest ancestor at each of ``depths`` (or the leaf if shallower)."""
    structure = tree.tree_
    node_depths = structure.compute_node_depths() - 1  # scikit-learn counts the root as depth 1.
    parents = np.full(structure.node_count, -1)
    internal = np.flatnonzero(structure.children_left >= 0)
    parents[structure.children_left[internal]] = internal
    parents[structure.children_right[internal]] = internal
    wanted = set(int(depth) for depth in depths)
    nodes = np.asarray(leaves)
    truncated = {}
    for depth in range(int(node_depths.max()), min(wanted) - 1, -1):
        nodes = np.where(node_depths[nodes] > depth, parents[nodes], nodes)
        if depth in wanted:
            truncated[depth] = nodes
    for depth in wanted:
        truncated.setdefault(depth, np.asarray(leaves))  # Deeper than the tree: every leaf stays.
    return truncated


def _fit_timed(estimator, features, labels, **fit_params):
    """Fit and return (estimator, seconds)."""
    start = time.perf_counter()
    estimator.fit(features, labels, **fit_params)
    return estimator, time.perf_counter() - start


def _time_predictions(model, features: np.ndarray, limit: int = 2000) -> float:
    """Return milliseconds per 1,000 images to predict up to ``limit`` rows of ``features``."""
    sample = features[:limit]
    start = time.perf_counter()
    model.predict(sample)
    return (time.perf_counter() - start) * 1e6 / len(sample)


def check_k_values(k_values, n_train: int) -> None:
    values = list(k_values)
    if not values:
        raise ParameterError("knn_k is empty; give at least one number of neighbours, e.g. [1, 3, 5].")
    bad = [k for k in values if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n_train]
    if bad:
        raise ParameterError(f"knn_k: {bad!r} not allowed; each k must be a whole number from 1 to {n_train:,}, "
                             "the number of training images.")


def _row_dict(row: pd.Series) -> dict:
    """Return a sweep row as a dict of plain Python values."""
    return {key: _plain(value) for key, value in row.items()}


def _plain(value):
    """Return numpy scalars as Python ones, for tables and JSON."""
    return value.item() if isinstance(value, np.generic) else value


def format_settings(settings: dict) -> str:
    """Return settings as ``key=value`` pairs, floats to four significant digits."""
    return ", ".join(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
                     for key, value in settings.items())
