"""Train ``cnn_modern`` with a profile's settings on full data, then evaluate it once on the test split.

It trains exactly what the profile's ``04_cnn`` run trains (the ``cnn:`` section merged over the
notebook's defaults, through the same validation as ``digitrec run``), so the figures are those of the
report: validation accuracy, test accuracy with its 95% interval, training seconds and seconds per epoch.

Usage::

    .venv/bin/python benchmarks/bench_cnn_modern.py [params/fashion-mnist.yaml] [--set cnn.modern_epochs=12]
        [--json out.json]

Targets (issue 6, full Fashion-MNIST on a 2-core CPU): at least 0.930 test accuracy (stretch 0.935) and
at most 10 minutes of training.
"""

from __future__ import annotations

import argparse
import ast
import json
import time

from digitrec_utils import cnn
from digitrec_utils.data import load_dataset, make_splits
from digitrec_utils.params import get_notebook_parameters, load_profile, resolve_parameters
from digitrec_utils.training import configure_keras


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("profile", nargs="?", default="params/fashion-mnist.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", default=None, help="Also write the figures to this JSON file.")
    arguments = parser.parse_args()
    print(configure_keras())
    print(cnn.configure_devices())
    values = resolve_parameters(load_profile(arguments.profile), ["04_cnn"], overrides=arguments.overrides)["04_cnn"]
    parameters = {name: ast.literal_eval(details["default"])
                  for name, details in get_notebook_parameters("04_cnn").items()}
    parameters.update(values)
    parameters["networks"] = ["cnn_modern"]
    settings = cnn.CnnSettings.from_parameters(parameters)
    loaded = load_dataset(parameters["dataset"], data_dir=parameters["data_dir"] or None, seed=parameters["seed"])
    splits = make_splits(loaded, val_fraction=parameters["val_fraction"], seed=parameters["seed"],
                         train_size=parameters["train_size"] or None)
    print(splits)
    started = time.perf_counter()
    result = cnn.train_cnn_zoo(splits, settings)["cnn_modern"]
    seconds = time.perf_counter() - started
    evaluation = cnn.evaluate_cnns_on_test({"cnn_modern": result}, splits)["cnn_modern"]
    figures = {
        "dataset": loaded.name, "n_train": len(splits.y_train), "n_val": len(splits.y_val),
        "epochs_run": result.training.epochs_run, "best_epoch": result.training.best_epoch,
        "val_accuracy": result.val_accuracy, "test_accuracy": evaluation.accuracy,
        "test_accuracy_ci95": list(evaluation.accuracy_ci95), "train_seconds": result.training.train_seconds,
        "seconds_per_epoch": result.training.train_seconds / result.training.epochs_run,
        "seconds_with_setup": seconds, "params_count": result.params_count,
        "settings": {key: parameters[key] for key in parameters if key.startswith("modern_") or key in
                     ("augmentation", "label_smoothing", "early_stopping", "patience")},
    }
    print(f"cnn_modern on {loaded.name}: validation {result.val_accuracy:.4f}; test {evaluation.headline()}; "
          f"trained {result.training.epochs_run} epochs in {result.training.train_seconds:.0f} s "
          f"({figures['seconds_per_epoch']:.1f} s per epoch); {result.params_count:,} parameters.")
    if arguments.json:
        with open(arguments.json, "w", encoding="utf-8") as handle:
            json.dump(figures, handle, indent=2)


if __name__ == "__main__":
    main()
