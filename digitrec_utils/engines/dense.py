"""The dense-network notebook's work: the zoo of the original reports, the experiments, the smallest network.

Everything here trains on the training part and decides on the validation part. :func:`evaluate_zoo_on_test`
is the one function that reads the test part, once per zoo model.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from digitrec_utils.data.preprocessing import PixelStandardizer, scale_images
from digitrec_utils.data.splits import take_stratified_subset
from digitrec_utils.data.types import Splits
from digitrec_utils.evaluation.evaluation import Evaluation, PairedComparison, compare_paired
from digitrec_utils.exceptions import SearchFailedError
from digitrec_utils.models.nets import DENSE_ZOO, build_dense_network, build_zoo_model
from digitrec_utils.models.training import (
    ZooResult,
    collect_reported_accuracies,
    evaluate_networks_on_test,
    make_prediction_recorder,
    predict_probabilities,
    seed_everything,
    train_model,
)
from digitrec_utils.reporting.results import build_model_record
from digitrec_utils.settings import SettingsFromParameters, check_value, notebook_settings

THIRD_REPORT_TINY_PARAMETERS = 13_287


@notebook_settings("03_dense_nets")
class DenseSettings(SettingsFromParameters):
    """The zoo, grids and switches of ``03_dense_nets``, one field per notebook parameter."""

    zoo: Sequence[str]
    zoo_epochs: int
    early_stopping: bool
    patience: int
    reduce_lr_patience: int
    zoo_watching_accuracy: Sequence[str]
    standardized_zoo: Sequence[str]
    scaling: str
    experiments: Sequence[str]
    experiment_epochs: int
    experiment_train_size: int
    experiment_batch_size: int
    base_units: int
    widths: Sequence[int]
    depths: Sequence[int]
    optimizers: Sequence[str]
    dropouts: Sequence[float]
    batch_sizes: Sequence[int]
    epoch_options: Sequence[int]
    scalings: Sequence[str]
    target_accuracy: float
    search_widths: Sequence[int]
    search_depths: Sequence[int]
    search_epochs: int
    search_train_size: int
    seed: int


@dataclass
class ExperimentResult:
    """One experiment's table (one row per setting) and its computed finding.

    Attributes
    ----------
    name : str
    table : DataFrame
        One row per setting, with its validation accuracy, 95% interval and, against the best setting,
        McNemar's exact p-value and a verdict (``best``, ``within noise`` or ``worse``).
    finding : str
    x : str
        The column of the setting under study.
    notes : list of str
    predictions : dict
        Each setting's (the ``x`` value's) predicted validation labels, at the epoch the table reports.
    comparison : PairedComparison, optional
    """

    name: str
    table: pd.DataFrame
    finding: str
    x: str
    notes: list[str] = field(default_factory=list)
    predictions: dict = field(default_factory=dict)
    comparison: PairedComparison | None = None


class InputScaler:
    """Turn uint8 images into network inputs: /255, or pixel-wise standardization fitted on train only.

    Parameters
    ----------
    method : {"divide", "standardize"}
    """

    def __init__(self, method: str = "divide") -> None:
        check_value("scaling", method)
        self.method = method
        self._standardizer = PixelStandardizer() if method == "standardize" else None

    def fit(self, images: np.ndarray) -> InputScaler:
        """Learn the per-pixel statistics from the training images (standardize only)."""
        if self._standardizer is not None:
            self._standardizer.fit(images)
        return self

    def transform(self, images: np.ndarray) -> np.ndarray:
        """Return float32 inputs of shape (n_samples, 28, 28)."""
        if self._standardizer is None:
            return scale_images(images)
        return self._standardizer.transform(images).astype(np.float32)

    def describe(self) -> str:
        return ("pixels divided by 255" if self.method == "divide"
                else "pixel-wise standardization fitted on the training part")


def train_zoo(splits: Splits, settings: DenseSettings, *, log: bool = True
              ) -> tuple[dict[str, ZooResult], dict[str, InputScaler]]:
    """Train every selected zoo network on the training part, watching the validation part.

    Parameters
    ----------
    splits : Splits
        Only ``x_train``/``y_train`` and ``x_val``/``y_val`` are read.
    settings : DenseSettings
        ``zoo_epochs`` of 0 gives each network its original report's epochs.
    log : bool
        One line per epoch.

    Returns
    -------
    results : dict of str to ZooResult
    scalers : dict of str to InputScaler
        Each network's input scaling (``scaling``, or standardization for the networks in
        ``standardized_zoo``), fitted on the training part; apply it to the test images.
    """
    settings.check()
    methods = {name: "standardize" if name in settings.standardized_zoo else settings.scaling for name in settings.zoo}
    fitted = {method: InputScaler(method).fit(splits.x_train) for method in set(methods.values())}
    inputs = {method: (scaler.transform(splits.x_train), scaler.transform(splits.x_val))
              for method, scaler in fitted.items()}
    results = {}
    for name in settings.zoo:
        spec = DENSE_ZOO[name]
        x_train, x_val = inputs[methods[name]]
        epochs = settings.zoo_epochs or spec.original_epochs
        seed_everything(settings.seed)
        model = build_zoo_model(name, n_classes=len(splits.class_names))
        training = train_model(model, x_train, splits.y_train, x_val, splits.y_val, epochs=epochs,
                               batch_size=spec.batch_size, seed=settings.seed, early_stopping=True,
                               patience=settings.patience if settings.early_stopping else epochs,
                               reduce_lr_patience=settings.reduce_lr_patience, name=name, log=log,
                               monitor="val_accuracy" if name in settings.zoo_watching_accuracy else "val_loss")
        probabilities, predict_ms = predict_probabilities(training.model, x_val)  # float32, as saved.
        if methods[name] != settings.scaling:
            training.notes.append(f"Its inputs: {fitted[methods[name]].describe()} (standardized_zoo), where the "
                                  f"others get {fitted[settings.scaling].describe()}.")
        results[name] = ZooResult(spec=spec, training=training, params_count=int(model.count_params()), epochs=epochs,
                                  predict_ms_per_1k=predict_ms, val_predictions=probabilities.argmax(axis=1))
    return results, {name: fitted[method] for name, method in methods.items()}


def list_reported_accuracies(dataset: str) -> dict[str, float]:
    """Return the MNIST test accuracy each reproduced network's original report printed; empty on other data."""
    return collect_reported_accuracies(DENSE_ZOO, dataset)


def evaluate_zoo_on_test(results: dict[str, ZooResult], scalers: dict[str, InputScaler], splits: Splits
                         ) -> dict[str, Evaluation]:
    """Evaluate each trained zoo network once on the test part, its inputs scaled as in its training."""
    evaluations = {}
    for name, result in results.items():
        evaluations.update(evaluate_networks_on_test({name: result}, scalers[name].transform(splits.x_test),
                                                     splits.y_test, splits.class_names))
    return evaluations


def build_model_records(results: dict[str, ZooResult], evaluations: dict[str, Evaluation]) -> list[dict]:
    """Return the results-record entries of every zoo network."""
    records = []
    for name, result in results.items():
        spec = result.spec
        hyperparameters = {"hidden_units": list(spec.hidden_units), "dropout": spec.dropout,
                           "batch_norm": spec.batch_norm, "optimizer": spec.optimizer,
                           "learning_rate": spec.learning_rate, "batch_size": spec.batch_size,
                           "epochs": result.epochs, "epochs_run": result.training.epochs_run,
                           "best_epoch": result.training.best_epoch}
        records.append(build_model_record(
            name, "dense", spec.description, evaluations[name], hyperparameters=hyperparameters,
            params_count=result.params_count, train_seconds=result.training.train_seconds,
            predict_ms_per_1k=result.predict_ms_per_1k, val_accuracy=result.val_accuracy,
            val_predictions=result.val_predictions))
    return records


def run_experiments(splits: Splits, settings: DenseSettings, *, log: bool = True) -> dict[str, ExperimentResult]:
    """Run each selected experiment (all but ``smallest``) on the training and validation parts.

    Every run uses the same seed and the same splits; only the setting under study changes. The base
    network is one hidden ReLU layer of ``base_units`` with Adam, batch ``experiment_batch_size``,
    trained for ``experiment_epochs`` on an optional stratified subsample (``experiment_train_size``).
    """
    settings.check()
    x_train_images, y_train, x_train, x_val = _experiment_inputs(splits, settings, settings.experiment_train_size,
                                                                 "experiment_train_size")
    base = {"hidden_units": (settings.base_units,), "dropout": 0.0, "optimizer": "adam",
            "batch_size": settings.experiment_batch_size}
    grids = {
        "width": ("width", [{**base, "hidden_units": (width,), "width": width} for width in settings.widths]),
        "depth": ("hidden layers", [{**base, "hidden_units": (settings.base_units,) * depth, "hidden layers": depth}
                                    for depth in settings.depths]),
        "optimizer": ("optimizer", [{**base, "optimizer": name} for name in settings.optimizers]),
        "dropout": ("dropout", [{**base, "dropout": rate} for rate in settings.dropouts]),
    }
    results = {}
    for name in settings.experiments:
        if name in grids:
            x, configurations = grids[name]
            rows = [_train_configuration(config, x_train, y_train, x_val, splits.y_val, settings,
                                         f"{name}: {x}={config[x]}", log) for config in configurations]
            results[name] = _finish_experiment(name, rows, x, splits.y_val)
        elif name == "batch_epochs":
            results[name] = _run_batch_epochs(base, x_train, y_train, x_val, splits.y_val, settings, log)
        elif name == "scaling":
            results[name] = _run_scaling(base, x_train_images, y_train, splits, settings, log)
    return results


def collect_experiment_predictions(experiments: dict[str, ExperimentResult]) -> dict[str, dict]:
    """Return each experiment's settings and their validation predictions, for the results record."""
    return {name: experiment.predictions for name, experiment in experiments.items() if experiment.predictions}


def find_smallest_network(splits: Splits, settings: DenseSettings, *, log: bool = True) -> ExperimentResult:
    """Train every candidate of the search grid and return the fewest parameters that reach the target.

    Candidates are ``depth`` hidden layers of ``width`` units for every pair of ``search_depths`` and
    ``search_widths``, trained like the experiments but on ``search_train_size`` training images (0: all)
    for up to ``search_epochs`` epochs, with early stopping on validation loss (best weights kept) when
    ``early_stopping`` is on. The result's table has one row per candidate, with ``pareto`` marking the
    networks that no smaller network beats on validation, and ``winner`` the smallest one at or above
    ``target_accuracy``.

    Raises
    ------
    SearchFailedError
        When no candidate reaches ``target_accuracy`` on validation; the message names the best one
        and how to widen the search.
    """
    settings.check()
    _, y_train, x_train, x_val = _experiment_inputs(splits, settings, settings.search_train_size, "search_train_size")
    base = {"dropout": 0.0, "optimizer": "adam", "batch_size": settings.experiment_batch_size}
    rows = []
    for depth, width in itertools.product(sorted(set(settings.search_depths)), sorted(set(settings.search_widths))):
        config = {**base, "hidden_units": (width,) * depth, "network": "-".join([str(width)] * depth)}
        rows.append(_train_configuration(config, x_train, y_train, x_val, splits.y_val, settings,
                                         f"smallest: {config['network']}", log, epochs=settings.search_epochs,
                                         early_stopping=settings.early_stopping))
    for row in rows:
        row.pop("val_predictions")  # The search reports a threshold, not a winner between candidates.
    table = pd.DataFrame(rows).sort_values("parameters", kind="stable").reset_index(drop=True)
    table["pareto"] = table["val_accuracy"] > table["val_accuracy"].cummax().shift(fill_value=-1.0)
    reaching = table[table["val_accuracy"] >= settings.target_accuracy]
    if reaching.empty:
        best = table.loc[table["val_accuracy"].idxmax()]
        raise SearchFailedError(
            f"no network of the search reached target_accuracy {settings.target_accuracy:.4f} on validation: "
            f"the best of {len(table)} candidates was {best['network']} ({best['parameters']:,} parameters) at "
            f"{best['val_accuracy']:.4f}. Add wider or deeper candidates (search_widths, search_depths), train "
            "longer (search_epochs), or lower target_accuracy.")
    winner = reaching.iloc[0]
    table["winner"] = table.index == winner.name
    finding = (f"The smallest network that reaches {settings.target_accuracy:.4f} on validation is "
               f"{winner['network']} with {winner['parameters']:,} parameters ({winner['val_accuracy']:.4f} "
               f"{_describe_epochs(winner, settings.search_epochs)}), against the third report's "
               f"{THIRD_REPORT_TINY_PARAMETERS:,} for its simplest network above 95%: "
               f"{winner['parameters'] / THIRD_REPORT_TINY_PARAMETERS:.2f} times as many. "
               f"{int(table['pareto'].sum())} of the {len(table)} candidates are on the Pareto front (no smaller "
               "candidate is as accurate).")
    return ExperimentResult("smallest", table, finding, "parameters")


def _describe_epochs(row, epochs: int) -> str:
    """Say which epoch's weights a search candidate's score comes from."""
    if "best_epoch" in row:
        return f"with the weights of epoch {int(row['best_epoch'])} of {int(row['epochs_run'])}"
    return f"after {epochs} epochs"


def _describe_experiment(table: pd.DataFrame, x: str, comparison: PairedComparison) -> str:
    """Return the finding of an experiment: the best setting with its interval, and what is within noise of it.

    A difference counts only where McNemar's exact test on the validation images finds it at the 5%
    level (:func:`digitrec_utils.evaluation.evaluation.compare_paired`); where none does, the finding says that the
    experiment cannot tell the settings apart and how many images it would take.
    """
    text = comparison.describe(x)
    best = table[table[x] == comparison.best].iloc[0]
    others = table[table[x] != comparison.best]
    if "parameters" in table and len(others) and (others["parameters"] != best["parameters"]).any():
        text += f" The best uses {best['parameters']:,} parameters and {best['train_seconds']:.1f} s of training."
    return text


def _finish_experiment(name: str, rows: list[dict], x: str, y_val: np.ndarray, notes=()) -> ExperimentResult:
    """Build an experiment's result from its runs: the paired comparison, the table's verdicts, the finding."""
    predictions = {row[x]: row.pop("val_predictions") for row in rows}
    comparison = compare_paired(y_val, predictions)
    table = pd.DataFrame(rows)
    table = comparison.annotate(table, list(table[x]))
    finding = " ".join([_describe_experiment(table, x, comparison), *notes])
    return ExperimentResult(name, table, finding, x, list(notes), predictions, comparison)


def _run_batch_epochs(base, x_train, y_train, x_val, y_val, settings, log) -> ExperimentResult:
    """One run per batch size for the largest epoch count; smaller counts are read off the same run."""
    most = max(settings.epoch_options)
    counts = sorted(set(settings.epoch_options))
    rows = []
    for batch_size in settings.batch_sizes:
        config = {**base, "batch_size": batch_size}
        run = _train_configuration(config, x_train, y_train, x_val, y_val, settings, f"batch {batch_size}", log,
                                   epochs=most, keep_history=True, prediction_epochs=counts)
        for epochs in counts:
            rows.append({"setting": f"batch {batch_size}, {epochs} epochs", "batch size": batch_size, "epochs": epochs,
                         "val_accuracy": run["history"]["val_accuracy"][epochs - 1],
                         "train_seconds": run["train_seconds"] * epochs / most, "parameters": run["parameters"],
                         "val_predictions": run["epoch_predictions"][epochs]})
    note = (f"Each batch size was trained once for {most} epochs; the accuracy after fewer epochs is read off "
            "the same run, which is what a shorter run with the same seed computes. Seconds are prorated.")
    result = _finish_experiment("batch_epochs", rows, "setting", y_val, notes=[note])
    result.x = "epochs"
    return result


def _run_scaling(base, x_train_images, y_train, splits, settings, log) -> ExperimentResult:
    rows = []
    for method in settings.scalings:
        scaler = InputScaler(method).fit(x_train_images)
        row = _train_configuration(base, scaler.transform(x_train_images), y_train, scaler.transform(splits.x_val),
                                   splits.y_val, settings, f"scaling {method}", log)
        rows.append({"scaling": method, **row})
    return _finish_experiment("scaling", rows, "scaling", splits.y_val)


def _train_configuration(config, x_train, y_train, x_val, y_val, settings, label, log, *, epochs=None,
                         keep_history=False, early_stopping=False, prediction_epochs=()) -> dict:
    """Build, train and score one configuration; print one line for the run.

    With ``early_stopping``, training stops after ``settings.patience`` epochs without a better validation
    loss and the best epoch's weights are scored; otherwise the last epoch's. The row holds the scored
    weights' validation predictions (``val_predictions``), and with ``prediction_epochs`` those at the end
    of each of these epochs too (``epoch_predictions``).
    """
    epochs = epochs or settings.experiment_epochs
    seed_everything(settings.seed)
    model = build_dense_network(config["hidden_units"], dropout=config.get("dropout", 0.0),
                                optimizer=config.get("optimizer", "adam"), n_classes=int(np.max(y_train)) + 1)
    recorder = make_prediction_recorder(x_val, prediction_epochs) if prediction_epochs else None
    training = train_model(model, x_train, y_train, x_val, y_val, epochs=epochs, batch_size=config["batch_size"],
                           seed=settings.seed, early_stopping=early_stopping, patience=settings.patience, log=False,
                           extra_callbacks=[recorder] if recorder else ())
    if log:
        kept = f"epoch {training.best_epoch} of {training.epochs_run}" if early_stopping else f"{epochs} epochs"
        print(f"{label}: validation accuracy {training.val_accuracy:.4f} after {kept} "
              f"({model.count_params():,} parameters, {training.train_seconds:.1f} s)", flush=True)
    row = {key: value for key, value in config.items() if key not in ("hidden_units",)}
    row.update({"parameters": int(model.count_params()), "val_accuracy": training.val_accuracy,
                "val_loss": training.kept("val_loss"), "train_seconds": training.train_seconds,
                "val_predictions": np.argmax(training.model.predict(x_val, batch_size=1024, verbose=0), axis=1)})
    if recorder is not None:
        row["epoch_predictions"] = recorder.predictions
    if early_stopping:
        row.update({"epochs_run": training.epochs_run, "best_epoch": training.best_epoch})
    if keep_history:
        row["history"] = training.history
    return row


def _experiment_inputs(splits: Splits, settings: DenseSettings, train_size: int, key: str):
    """Return training images and labels (all, or a stratified subsample of ``train_size``; ``key`` names the
    setting in errors), and the training and validation inputs scaled with statistics from those images."""
    x_train_images, y_train = take_stratified_subset(splits.x_train, splits.y_train, train_size, settings.seed, key)
    scaler = InputScaler(settings.scaling).fit(x_train_images)
    return x_train_images, y_train, scaler.transform(x_train_images), scaler.transform(splits.x_val)
