"""Classical scikit-learn baselines, tuned on validation data only, with fast exact sweeps.

Two sweeps reproduce the first report's brute-force tuning in a fraction of its time:

* :func:`sweep_knn` queries the neighbours of the validation set **once**, for the largest ``k``, and
  derives every smaller ``k``'s vote from that one answer. Votes are counted, and ties broken, exactly as
  :class:`~sklearn.neighbors.KNeighborsClassifier` does: the smallest class label wins a tie, and with
  distance weights a neighbour at distance zero outweighs all others.
* :func:`sweep_tree_depths` fits one full-depth tree per criterion and reads the depth-``d`` prediction
  off it: the majority class of the deepest ancestor at depth ``d`` or less (:class:`DepthLimitedTree`).
  A tree fitted directly with ``max_depth=d`` grows the same nodes, because a node's best split does not
  depend on how deep the tree may grow, except where two splits are exactly equally good. The splitter
  then picks one through its random feature order, and that order is drawn as the tree is built, so
  a direct fit and the truncation can pick different (equally good) splits below the first such tie.
  ``tests/test_classical.py`` bounds that difference.

The other models (logistic regression, random forest, an RBF SVM and histogram gradient boosting) are
tuned over small grids by :func:`tune_grid`: each grid point is fitted on the training part and scored
on the validation part. :func:`tune_classical_models` runs them all from a :class:`Splits` without ever
reading its test part; :func:`evaluate_on_test` is then the one place that does, once per tuned model.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC, LinearSVC

from digitrec_utils.data.loading import load_dataset
from digitrec_utils.data.splits import make_splits, take_stratified_subset
from digitrec_utils.data.types import Splits
from digitrec_utils.evaluation.evaluation import Evaluation, evaluate_model
from digitrec_utils.models.classical_sweeps import (
    RESULT_COLUMNS,
    TunedModel,
    check_k_values,
    format_settings,
    prepare_features,
    sweep_knn,
    sweep_tree_depths,
    tune_grid,
)
from digitrec_utils.reporting.results import build_model_record, build_results
from digitrec_utils.settings import SettingsFromParameters, notebook_settings


@notebook_settings("02_classical_baselines")
class ClassicalSettings(SettingsFromParameters):
    """The grids and switches of ``02_classical_baselines``, one field per notebook parameter.

    Every field has the notebook's default; :meth:`from_parameters` takes the ones a run sets.
    """

    models: Sequence[str]
    seed: int
    n_jobs: int
    knn_k: Sequence[int]
    knn_weights: Sequence[str]
    tree_criteria: Sequence[str]
    tree_min_depth: int
    tree_max_depth: int
    logreg_c: Sequence[float]
    logreg_max_iter: int
    forest_trees: Sequence[int]
    forest_max_features: Sequence[str]
    svm_method: str
    svm_c: Sequence[float]
    svm_train_size: int
    svm_components: int
    svm_pca_components: int
    svm_max_iter: int
    boosting_learning_rate: Sequence[float]
    boosting_max_iter: int
    boosting_train_size: int

    def check(self, n_train: int) -> None:
        """Raise ParameterError naming every setting out of its declared range, and any k above ``n_train``."""
        super().check()
        check_k_values(self.knn_k, n_train)


def tune_classical_models(
    splits: Splits, settings: ClassicalSettings | None = None, *, verbose: bool = True
) -> dict[str, TunedModel]:
    """Tune every selected classical model on the training and validation parts of ``splits``.

    The test part is never read here: features are built from ``x_train`` and ``x_val`` only.

    Parameters
    ----------
    splits : Splits
    settings : ClassicalSettings, optional
        Which models and which grids; the notebook's defaults when omitted.
    verbose : bool, default=True
        Print one progress line per model.

    Returns
    -------
    tuned : dict of str to TunedModel
        In the order of ``settings.models``.
    """
    settings = settings or ClassicalSettings()
    settings.check(len(splits.y_train))
    x_train, y_train = prepare_features(splits.x_train), splits.y_train
    x_val, y_val = prepare_features(splits.x_val), splits.y_val
    tuners = {
        "knn": lambda: sweep_knn(x_train, y_train, x_val, y_val, settings.knn_k, settings.knn_weights),
        "tree": lambda: sweep_tree_depths(x_train, y_train, x_val, y_val,
                                          range(settings.tree_min_depth, settings.tree_max_depth + 1),
                                          settings.tree_criteria, seed=settings.seed, n_jobs=settings.n_jobs),
        "logreg": lambda: tune_grid("logreg", LogisticRegression(max_iter=settings.logreg_max_iter),
                                    {"C": list(settings.logreg_c)}, x_train, y_train, x_val, y_val),
        "forest": lambda: tune_grid("forest",
                                    RandomForestClassifier(n_jobs=settings.n_jobs, random_state=settings.seed),
                                    {"n_estimators": list(settings.forest_trees),
                                     "max_features": list(settings.forest_max_features)},
                                    x_train, y_train, x_val, y_val),
        "svm": lambda: _tune_svm(x_train, y_train, x_val, y_val, settings),
        "boosting": lambda: _tune_boosting(x_train, y_train, x_val, y_val, settings),
    }
    tuned = {}
    for name in settings.models:
        tuned[name] = tuners[name]()
        if verbose:
            result = tuned[name]
            print(f"{name}: validation accuracy {result.val_accuracy:.4f} with "
                  f"{format_settings(result.hyperparameters)}; {_count(len(result.sweep), 'setting')} tried in "
                  f"{result.tuning_seconds:.1f} s.", flush=True)
    return tuned


# The MNIST test accuracy the first report printed for its kNN (k = 1, on its own split of all 70,000 digits),
# and why it is not the same measurement as ours.
REPORTED_MNIST_ACCURACY = {"knn": 0.9714}
REPORT_NOTES = {"knn": "the first report's figure is on its own 80/10/10 split of all 70,000 digits (7,000 test "
                       "digits drawn from both of MNIST's parts), not on the official 10,000 test digits."}


def list_reported_accuracies(dataset: str) -> dict[str, float]:
    """Return the MNIST test accuracy each reproduced model's original report printed; empty on other data."""
    return dict(REPORTED_MNIST_ACCURACY) if dataset == "mnist" else {}


def evaluate_on_test(tuned: dict[str, TunedModel], splits: Splits) -> dict[str, Evaluation]:
    """Evaluate each tuned model once on the test part.

    Parameters
    ----------
    tuned : dict of str to TunedModel
        From :func:`tune_classical_models`.
    splits : Splits

    Returns
    -------
    evaluations : dict of str to Evaluation
        Probabilities are kept where the model has ``predict_proba``.
    """
    x_test = prepare_features(splits.x_test)
    evaluations = {}
    for name, result in tuned.items():
        predictions = result.model.predict(x_test)
        probabilities = result.model.predict_proba(x_test) if hasattr(result.model, "predict_proba") else None
        evaluations[name] = evaluate_model(splits.y_test, predictions, probabilities, splits.class_names)
    return evaluations


def summarize_tuning(tuned: dict[str, TunedModel]) -> pd.DataFrame:
    """Return one row per tuned model: chosen settings, validation accuracy and costs."""
    return pd.DataFrame([{
        "model": result.name,
        "chosen settings": format_settings(result.hyperparameters),
        "val accuracy": result.val_accuracy,
        "settings tried": len(result.sweep),
        "tuning s": result.tuning_seconds,
        "fit s": result.train_seconds,
        "predict ms / 1k": result.predict_ms_per_1k,
        "parameters": result.params_count,
        "notes": " ".join(result.notes),
    } for result in tuned.values()])


def describe_sweep(result: TunedModel) -> str:
    """Return a one-paragraph finding about a sweep: the best setting, what is within noise of it, the cost.

    A difference counts only where McNemar's exact test on the validation images finds it at the 5% level
    (:func:`digitrec_utils.evaluation.evaluation.compare_paired`). The sweep's notes are the tuning table's last
    column, so they are not repeated here.
    """
    sweep = result.sweep
    if len(sweep) == 1:
        chosen = ", ".join(f"{column}={result.chosen_setting[column]}" for column in sweep.columns
                           if column not in RESULT_COLUMNS)
        low, high = sweep.loc[0, ["95% CI low", "95% CI high"]]
        return (f"One setting ({chosen}) was tried: validation accuracy {result.val_accuracy:.4f} (95% CI "
                f"{low:.4f}-{high:.4f}), in {result.tuning_seconds:.1f} s.")
    text = result.comparison.describe("setting") + (f" {len(sweep)} settings tuned in "
                                                    f"{result.tuning_seconds:.1f} s.")
    if result.name == "knn":
        text += " The first report fitted and scored a separate classifier for each setting."
    if result.name == "tree":
        deepest = sweep[sweep["depth"] == sweep["depth"].max()]
        best_deep = deepest.loc[deepest["val_accuracy"].idxmax()]
        drop = result.val_accuracy - best_deep["val_accuracy"]
        text += (f" At the deepest setting (depth {best_deep['depth']}) the best criterion reaches "
                 f"{best_deep['val_accuracy']:.4f}, {drop:.4f} below the peak at depth "
                 f"{result.chosen_setting['depth']}")
        if drop > 0 and best_deep["vs best"] == "worse":
            text += ": deeper trees fit the training images more closely without generalizing better."
        elif drop > 0:
            text += ", a drop the validation images cannot tell from chance."
        else:
            text += "."
        text += " The first report fitted a separate tree for each setting."
    return text


def build_model_records(tuned: dict[str, TunedModel], evaluations: dict[str, Evaluation]) -> list[dict]:
    """Return the results-record entries of every tuned and evaluated model."""
    return [build_model_record(
        name, result.family, result.description, evaluations[name], hyperparameters=result.hyperparameters,
        params_count=result.params_count, train_seconds=result.train_seconds,
        predict_ms_per_1k=result.predict_ms_per_1k, val_accuracy=result.val_accuracy,
        val_predictions=result.chosen_predictions,
    ) for name, result in tuned.items()]


def collect_sweep_predictions(tuned: dict[str, TunedModel]) -> dict[str, dict]:
    """Return each sweep's (model family's) settings and their validation predictions, for the results record."""
    return {name: result.val_predictions for name, result in tuned.items() if result.val_predictions}


def select_best(tuned: dict[str, TunedModel]) -> str:
    """Return the name of the model with the best validation accuracy (ties: the first listed)."""
    return max(tuned, key=lambda name: tuned[name].val_accuracy)


def _tune_svm(x_train, y_train, x_val, y_val, settings: ClassicalSettings) -> TunedModel:
    """Tune an RBF SVM: exact SVC, or a Nystroem approximation feeding a linear SVM.

    Optionally on a stratified subsample, and optionally on principal components (fitted on the
    training rows inside the pipeline) instead of raw pixels.
    """
    x_fit, y_fit, notes = _subsample(x_train, y_train, settings.svm_train_size, settings.seed, "svm_train_size")
    steps, inputs = [], x_fit
    if settings.svm_pca_components:
        components = min(settings.svm_pca_components, x_fit.shape[1], len(y_fit))
        steps.append(("pca", PCA(n_components=components, random_state=settings.seed)))
        inputs = PCA(n_components=components, random_state=settings.seed).fit_transform(x_fit)
        notes.append(f"Inputs are the first {components} principal components of the training pixels.")
    gamma = 1.0 / (inputs.shape[1] * float(inputs.var()))  # SVC's gamma="scale", computed once for both methods.
    if settings.svm_method == "exact":
        steps.append(("svm", SVC(kernel="rbf", gamma=gamma, random_state=settings.seed)))
        notes.append(f"Exact SVC (libsvm) with gamma = {gamma:.4g} (scikit-learn's 'scale').")
    else:
        n_components = min(settings.svm_components, len(y_fit))
        kernel = Nystroem(kernel="rbf", gamma=gamma, n_components=n_components, random_state=settings.seed)
        steps += [("kernel", kernel),
                  ("svm", LinearSVC(dual=True, max_iter=settings.svm_max_iter, random_state=settings.seed))]
        notes.append(f"Nystroem approximation of the RBF kernel (gamma = {gamma:.4g}, scikit-learn's 'scale') with "
                     f"{n_components:,} components, then a linear SVM (LinearSVC).")
    result = tune_grid("svm", Pipeline(steps), {"svm__C": list(settings.svm_c)}, x_fit, y_fit, x_val, y_val,
                       notes=notes)
    result.hyperparameters = {"method": settings.svm_method, "C": result.hyperparameters["svm__C"], "gamma": gamma,
                              "pca_components": settings.svm_pca_components or None, "train_size": len(y_fit)}
    result.sweep = result.sweep.rename(columns={"svm__C": "C"})
    result.chosen_setting = {("C" if key == "svm__C" else key): value for key, value in result.chosen_setting.items()}
    return result


def _tune_boosting(x_train, y_train, x_val, y_val, settings: ClassicalSettings) -> TunedModel:
    """Tune histogram gradient boosting, early-stopped on the validation part (never on test)."""
    x_fit, y_fit, notes = _subsample(x_train, y_train, settings.boosting_train_size, settings.seed,
                                     "boosting_train_size")
    estimator = HistGradientBoostingClassifier(max_iter=settings.boosting_max_iter, early_stopping=True,
                                               n_iter_no_change=10, random_state=settings.seed)
    notes.append(f"Up to {settings.boosting_max_iter} boosting rounds, stopped early when the validation loss "
                 "stops improving for 10 rounds.")
    result = tune_grid("boosting", estimator, {"learning_rate": list(settings.boosting_learning_rate)},
                       x_fit, y_fit, x_val, y_val, notes=notes, fit_params=lambda: {"X_val": x_val, "y_val": y_val})
    result.hyperparameters = {**result.hyperparameters, "rounds": int(result.model.n_iter_), "train_size": len(y_fit)}
    return result


def _subsample(x_train, y_train, size: int, seed: int, key: str):
    """Return a stratified subsample of ``size`` training rows (all of them when size is 0) and a note."""
    x_fit, y_fit = take_stratified_subset(x_train, y_train, size, seed, key)
    if len(y_fit) == len(y_train):
        return x_fit, y_fit, [f"Fitted on all {len(y_train):,} training images."]
    return x_fit, y_fit, [f"Fitted on a stratified subsample of {size:,} of the {len(y_train):,} training "
                          f"images ({key})."]


def _count(number: int, noun: str) -> str:
    """Return e.g. ``"1 setting"`` or ``"12 settings"``."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def build_quick_sweep(seeds=(1, 2), *, train_size: int = 1000) -> dict[int, dict[str, dict]]:
    """Make each seed's record of quick classical models on the embedded sample, as a sweep would.

    kNN, a decision tree and logistic regression are tuned on validation and evaluated once on test, on a
    stratified subsample of ``train_size`` images; the seed draws the split, the subsample and the models.
    It takes seconds, so that 07_stability runs standalone (and in the tests) with no sweep folder.

    Returns
    -------
    sweep : dict of int to dict
        Seed -> {"02_classical_baselines": record}.
    """
    sweep = {}
    for seed in seeds:
        loaded = load_dataset("mnist-sample", seed=seed)
        splits = make_splits(loaded, val_fraction=0.2, seed=seed, train_size=train_size)
        settings = ClassicalSettings(models=("knn", "tree", "logreg"), seed=seed, knn_k=(1, 3, 5),
                                               tree_max_depth=12, logreg_c=(0.1,), logreg_max_iter=60, n_jobs=1)
        tuned = tune_classical_models(splits, settings)
        evaluations = evaluate_on_test(tuned, splits)
        record = build_results("02_classical_baselines", loaded.to_dict(), {"train_size": train_size}, seed=seed,
                               models=build_model_records(tuned, evaluations),
                               selected_model=select_best(tuned), test_labels=splits.y_test,
                               val_labels=splits.y_val)
        sweep[seed] = {"02_classical_baselines": record}
    return sweep
