"""Train ``cnn_modern`` with a profile's settings on full data, then evaluate it once on the test split.

It trains exactly what the profile's ``04_cnn`` run trains (the ``cnn:`` section merged over the
notebook's defaults, through the same validation as ``digitrec run``), so the figures are those of the
report: validation accuracy, test accuracy with its 95% interval, training seconds and seconds per epoch.

With ``--validation-only`` the test split is dropped before training and never read: the mode for
every trial of a recipe search, whose choices must rest on validation alone. ``--against RUN`` then
compares the trial with that run's ``cnn_modern`` on the same validation images (McNemar's exact test).
The test split is read by the one final run, without ``--validation-only``. ``--model-seed N`` seeds the
networks (their weights, shuffles, augmentation and generated training images; members N, N + 1, ...) with N
instead of the profile's seed, which still draws the split: the same recipe trained again on the same
validation images, to measure how far its figures move by chance alone. Such a measurement may read the test
split too (without ``--validation-only``), as a seed sweep does, provided nothing is chosen from it;
``--against`` then pairs the two runs on the test images as well.

Usage::

    .venv/bin/python benchmarks/bench_cnn_modern.py [params/fashion-mnist.yaml] [--set cnn.modern_epochs=12]
        [--validation-only] [--against reports/RUN] [--json out.json] [--save-model FOLDER] [--model-seed N]

Targets (issue 6, full Fashion-MNIST on a 2-core CPU): at least 0.930 test accuracy (stretch 0.935) and
at most 10 minutes of training.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from digitrec_utils.data.loading import load_dataset
from digitrec_utils.data.splits import make_splits
from digitrec_utils.engines import cnn
from digitrec_utils.evaluation.evaluation import compare_paired, compute_accuracy_interval
from digitrec_utils.models.precision import apply_precision, describe_precision
from digitrec_utils.models.training import configure_keras
from digitrec_utils.params import load_profile, resolve_with_defaults
from digitrec_utils.reporting.results import encode_labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("profile", nargs="?", default="params/fashion-mnist.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--dataset", default=None, help="Train on this dataset instead of the profile's.")
    parser.add_argument("--json", default=None, help="Also write the figures to this JSON file.")
    parser.add_argument("--validation-only", action="store_true",
                        help="Drop the test split before training and never read it (for every search trial).")
    parser.add_argument("--save-model", type=Path, default=None, metavar="FOLDER",
                        help="Also save the trained model there as cnn_selected.keras with its JSON, for "
                             "bench_field_digits.py (semeion, the field set for choosing).")
    parser.add_argument("--against", type=Path, default=None, metavar="RUN",
                        help="A run folder whose cnn_modern to compare with on the validation images "
                             "(and on the test images, where the test split is read).")
    parser.add_argument("--model-seed", type=int, default=None, metavar="N",
                        help="Seed the networks with N (members N, N + 1, ...) instead of the profile's seed, "
                             "which still draws the split: the recipe's own spread on the same validation images.")
    arguments = parser.parse_args()
    print(configure_keras())
    overrides = arguments.overrides + ([f"dataset={arguments.dataset}"] if arguments.dataset else [])
    parameters = resolve_with_defaults(load_profile(arguments.profile), "04_cnn", overrides=overrides)
    parameters["networks"] = ["cnn_modern"]
    print(describe_precision(apply_precision(parameters["precision"])))
    settings = cnn.CnnSettings.from_parameters(parameters)
    if arguments.model_seed is not None:
        settings = dataclasses.replace(settings, seed=arguments.model_seed)
    loaded = load_dataset(parameters["dataset"], data_dir=parameters["data_dir"] or None, seed=parameters["seed"])
    splits = make_splits(loaded, val_fraction=parameters["val_fraction"], seed=parameters["seed"],
                         train_size=parameters["train_size"] or None)
    dataset_name = loaded.name
    del loaded  # Only the splits are used from here on; with --validation-only they hold no test images.
    if arguments.validation_only:
        empty = np.empty(0, dtype=splits.y_test.dtype)
        splits = dataclasses.replace(splits, x_test=np.empty((0, 28, 28), dtype=splits.x_test.dtype), y_test=empty,
                                     test_indices=np.empty(0, dtype=int))
    print(splits)
    started = time.perf_counter()
    result = cnn.train_cnn_zoo(splits, settings)["cnn_modern"]
    seconds = time.perf_counter() - started
    correct = int(np.sum(result.val_predictions == splits.y_val))
    low, high = compute_accuracy_interval(correct, len(splits.y_val))
    figures = {
        "dataset": dataset_name, "n_train": len(splits.y_train), "n_val": len(splits.y_val),
        "precision": result.training.precision, "epochs_run": result.training.epochs_run,
        "best_epoch": result.training.best_epoch, "val_accuracy": result.val_accuracy,
        "val_accuracy_ci95": [low, high], "train_seconds": result.training.train_seconds,
        "seconds_per_epoch": result.training.train_seconds / result.training.epochs_run,
        "seconds_with_setup": seconds, "params_count": result.params_count,
        "val_predictions": encode_labels(result.val_predictions),
        "settings": {key: parameters[key] for key in parameters if key.startswith("modern_") or key in
                     ("augmentation", "augmentation_strength", "label_smoothing", "early_stopping", "patience",
                      "mirror_average")},
        "split_seed": parameters["seed"], "model_seed": settings.seed,
    }
    tested = "test split not read (--validation-only)"
    if not arguments.validation_only:
        evaluation = cnn.evaluate_cnns_on_test({"cnn_modern": result}, splits)["cnn_modern"]
        figures.update(test_accuracy=evaluation.accuracy, test_accuracy_ci95=list(evaluation.accuracy_ci95))
        tested = f"test {evaluation.headline()}"
        figures["test_predictions"] = encode_labels(evaluation.y_pred)
    print(f"cnn_modern on {dataset_name} in {result.training.precision}: validation {result.val_accuracy:.4f} "
          f"(95% CI {low:.4f}-{high:.4f}); {tested}; trained {result.training.epochs_run} epochs in "
          f"{result.training.train_seconds:.0f} s ({figures['seconds_per_epoch']:.1f} s per epoch); "
          f"{result.params_count:,} parameters.")
    if arguments.against:
        figures["against"] = _compare_with_run(arguments.against, "val", splits.y_val, result.val_predictions)
        if not arguments.validation_only:
            figures["against_on_test"] = _compare_with_run(arguments.against, "test", splits.y_test,
                                                           evaluation.y_pred)
    if arguments.save_model:
        from digitrec_utils.models.model_files import save_model_bundle

        saved = save_model_bundle(result.final_model, arguments.save_model, name="cnn_modern",
                                  class_names=splits.class_names, dataset={"name": dataset_name},
                                  extra={"val_accuracy": result.val_accuracy, "members": settings.modern_members})
        print(f"Saved as {saved}.")
    if arguments.json:
        with open(arguments.json, "w", encoding="utf-8") as handle:
            json.dump(figures, handle, indent=2)


def _compare_with_run(run: Path, part: str, y_true: np.ndarray, predictions: np.ndarray) -> dict:
    """Print and return McNemar's exact test of this run against ``run``'s cnn_modern on one part.

    Parameters
    ----------
    run : Path
        A run folder whose ``results/04_cnn.json`` holds a ``cnn_modern``.
    part : {"val", "test"}
        Which images to pair the two on: the validation images, or the test images (only for a
        measurement that reads the test split, never for a trial).
    y_true, predictions : ndarray of shape (n_images,)
        The true labels of that part and this run's predictions on it.

    Returns
    -------
    figures : dict
        The earlier run's accuracy on that part, the images right only in each, and McNemar's p.
    """
    from digitrec_utils.reporting.results import decode_labels, load_results

    images = {"val": "validation", "test": "test"}[part]
    record = load_results(run / "results" / "04_cnn.json")
    if not np.array_equal(decode_labels(record[f"{part}_labels"]), y_true):
        raise SystemExit(f"{run}: its {images} images differ from this run's; use the same profile and seed.")
    earlier = next(model for model in record["models"] if model["name"] == "cnn_modern")
    paired = compare_paired(y_true, {"earlier": decode_labels(earlier[f"{part}_predictions"]),
                                     "trial": predictions}, best="earlier").table.set_index("setting")
    figures = {f"earlier_{part}_accuracy": float(paired.loc["earlier", "accuracy"]),
               "only_earlier_right": int(paired.loc["trial", "only best right"]),
               "only_trial_right": int(paired.loc["trial", "only this right"]),
               "p_value": float(paired.loc["trial", "p-value"])}
    print(f"Against {run.name}'s cnn_modern on the {images} images: {figures[f'earlier_{part}_accuracy']:.4f} there; "
          f"{figures['only_earlier_right']} images right only there, {figures['only_trial_right']} only here; "
          f"McNemar p = {figures['p_value']:.3g}.")
    return figures


if __name__ == "__main__":
    main()
