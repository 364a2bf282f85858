"""Train the reproduced original networks as a profile's 03 and 04 would, and report validation figures only.

Every trial of the reproductions' training length (epoch caps, ``patience``, ``zoo_watching_accuracy``,
``networks_watching_accuracy``, ``reduce_lr_patience``, ``scaling``) runs here: the test split is dropped
before training and never read, so that the choice rests on validation alone. The test split is read once,
by the suite's own run with the chosen profile (``digitrec run params/mnist.yaml``).

For each network: its report's MNIST figure, validation accuracy with its 95% interval, epochs run, the
epoch kept, and training seconds.

``--report-split`` measures the first report's protocol instead of choosing anything: all 70,000 digits
(MNIST's training and official test parts together) are split 80/10/10, stratified and seeded, as the
first report split them, and each network is trained on the 56,000 and scored on the split's own 7,000
test digits. Those test digits share writers with the training digits, which MNIST's official split never
does. The figures it prints compare the report's protocol with ours; they choose nothing, and the suite
never trains on the official test digits.

Usage::

    DIGITREC_DATA=$PWD/../shared/data .venv/bin/python benchmarks/bench_reproductions.py [params/mnist.yaml]
        [--dataset mnist] [--networks mlp_512_rmsprop cnn_small] [--set dense.patience=10] [--json out.json]
        [--report-split]
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np

from digitrec_utils.data.loading import load_dataset
from digitrec_utils.data.splits import make_splits, split_stratified
from digitrec_utils.engines import cnn, dense
from digitrec_utils.evaluation.evaluation import compute_accuracy_interval
from digitrec_utils.models.convnets import CNN_ZOO
from digitrec_utils.models.nets import DENSE_ZOO
from digitrec_utils.models.precision import apply_precision
from digitrec_utils.models.training import configure_keras, predict_probabilities
from digitrec_utils.params import load_profile, resolve_with_defaults


def _reported(name: str) -> float | None:
    spec = DENSE_ZOO.get(name) or CNN_ZOO.get(name)
    return spec.reported_mnist_accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("profile", nargs="?", default="params/mnist.yaml")
    parser.add_argument("--dataset", default=None, help="Train on this dataset instead of the profile's.")
    parser.add_argument("--networks", nargs="+", default=None,
                        help="Networks to train (default: every one whose report printed an MNIST figure).")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--json", default=None, help="Also write the figures to this JSON file.")
    parser.add_argument("--report-split", action="store_true",
                        help="Train and score on the first report's own 80/10/10 split of all the dataset's "
                             "images (test digits included) instead of choosing on validation.")
    arguments = parser.parse_args()
    print(configure_keras())
    overrides = arguments.overrides + ([f"dataset={arguments.dataset}"] if arguments.dataset else [])
    names = arguments.networks or [name for name in (*DENSE_ZOO, *CNN_ZOO) if _reported(name) is not None]
    if arguments.report_split:
        # Only the first report drew its own split, and its one network is a CNN.
        names = arguments.networks or ["cnn_small"]
        if any(name not in CNN_ZOO for name in names):
            parser.error("--report-split scores CNNs only (the first report's network is cnn_small); "
                         "name CNNs with --networks.")
    profile = load_profile(arguments.profile)
    rows = []
    for notebook, zoo in (("03_dense_nets", DENSE_ZOO), ("04_cnn", CNN_ZOO)):
        chosen = [name for name in names if name in zoo]
        if not chosen:
            continue
        parameters = resolve_with_defaults(profile, notebook, overrides=overrides)
        apply_precision(parameters["precision"])
        loaded = load_dataset(parameters["dataset"], data_dir=parameters["data_dir"] or None, seed=parameters["seed"])
        if arguments.report_split:
            splits = _make_report_split(loaded, parameters["seed"])
        else:
            splits = make_splits(loaded, val_fraction=parameters["val_fraction"], seed=parameters["seed"],
                                 train_size=parameters["train_size"] or None)
            # The test split is dropped before anything trains: these trials never see it.
            splits = dataclasses.replace(splits, x_test=np.empty((0, 28, 28), dtype=splits.x_test.dtype),
                                         y_test=np.empty(0, dtype=splits.y_test.dtype),
                                         test_indices=np.empty(0, dtype=int))
        del loaded
        if notebook == "03_dense_nets":
            settings = dense.DenseSettings.from_parameters({**parameters, "zoo": chosen})
            results, _ = dense.train_zoo(splits, settings)
        else:
            settings = cnn.CnnSettings.from_parameters({**parameters, "networks": chosen})
            results = cnn.train_cnn_zoo(splits, settings)
        for name, result in results.items():
            correct = int(np.sum(result.val_predictions == splits.y_val))
            low, high = compute_accuracy_interval(correct, len(splits.y_val))
            row = {"network": name, "reported": _reported(name), "val_accuracy": result.val_accuracy,
                   "val_ci95": [low, high], "epochs_run": result.training.epochs_run,
                   "best_epoch": result.training.best_epoch, "epochs_cap": result.epochs,
                   "train_seconds": result.training.train_seconds, "notes": result.training.notes}
            line = (f"{name}: validation {result.val_accuracy:.4f} ({low:.4f}-{high:.4f}), report printed "
                    f"{_reported(name)}; epoch {result.training.best_epoch} of {result.training.epochs_run} kept "
                    f"(cap {result.epochs}), {result.training.train_seconds:.0f} s")
            if arguments.report_split:
                row.update(_score_report_split(result.model, splits))
                line += (f"; the report split's {row['report_split_test_size']:,} test digits: "
                         f"{row['report_split_test_accuracy']:.4f} ({row['report_split_test_ci95'][0]:.4f}-"
                         f"{row['report_split_test_ci95'][1]:.4f})")
            rows.append(row)
            print(line, flush=True)
    if arguments.json:
        with open(arguments.json, "w") as handle:
            json.dump({"profile": arguments.profile, "overrides": overrides, "report_split": arguments.report_split,
                       "networks": rows}, handle, indent=2)


def _make_report_split(loaded, seed: int):
    """Split all of ``loaded``'s images 80/10/10 (stratified, seeded), as the first report split MNIST."""
    images = np.concatenate([loaded.x_train, loaded.x_test])
    labels = np.concatenate([loaded.y_train, loaded.y_test])
    rest, test = split_stratified(np.arange(len(labels)), labels, 0.1, seed, "report split")
    pooled = dataclasses.replace(loaded, x_train=images[rest], y_train=labels[rest], x_test=images[test],
                                 y_test=labels[test])
    # A ninth of the remaining 90% is the report's 10% of validation digits.
    return make_splits(pooled, val_fraction=1 / 9, seed=seed)


def _score_report_split(model, splits) -> dict:
    """Return the accuracy, with its 95% interval, of ``model`` on the report split's test digits."""
    probabilities, _ = predict_probabilities(model, cnn.prepare_images(splits.x_test))
    correct = int(np.sum(probabilities.argmax(axis=1) == splits.y_test))
    low, high = compute_accuracy_interval(correct, len(splits.y_test))
    return {"report_split_test_accuracy": correct / len(splits.y_test), "report_split_test_ci95": [low, high],
            "report_split_test_size": len(splits.y_test)}


if __name__ == "__main__":
    main()
