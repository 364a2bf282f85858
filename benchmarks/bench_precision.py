"""float32 against mixed bfloat16: seconds per epoch of each network, and the accuracy each precision reaches.

Two parts, each in processes of its own:

``speed`` (the default) trains each network for a few epochs on the full training part of a profile's
dataset, once under each precision, every (network, precision) in a fresh Python process, alternating
the precisions so that a busy host slows both alike. It prints the seconds per epoch (the fastest epoch
after the first, which also builds Keras's graphs) and the float32/bfloat16 ratio per network.

``accuracy`` compares two finished runs of the suite that differ in precision (``digitrec run
params/fashion-mnist.yaml --set precision=float32`` and the default ``auto``, which is bfloat16 on a
CPU that has it): for every network of 03 and 04 both runs trained, validation and test accuracy with
95% intervals, and McNemar's exact test on the validation images (the test that decides whether
bfloat16 stays the default) and on the test images. A network whose settings differ between the runs
(other than ``precision``) is marked, since its difference is then not the precision's alone.

Usage::

    .venv/bin/python benchmarks/bench_precision.py speed [params/fashion-mnist.yaml] [--epochs 3]
        [--networks cnn_modern mlp_512x2_dropout_adam] [--json speed.json]
    .venv/bin/python benchmarks/bench_precision.py accuracy FLOAT32_RUN BFLOAT16_RUN [--json accuracy.json]

Needs a CPU with bfloat16 arithmetic (avx512_bf16 or amx_bf16) for figures that mean anything; elsewhere
bfloat16 is emulated, and slow.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

PRECISIONS = ("float32", "mixed_bfloat16")
CNNS = ("cnn_small", "cnn_deeper", "cnn_rmsprop", "cnn_modern")
# The dense networks with more than 100,000 weights; the smaller ones are bound by per-batch overhead.
LARGER_DENSE = ("mlp_512x2_dropout_adam", "mlp_512_rmsprop", "mlp_bn")
NETWORK_NOTEBOOKS = ("03_dense_nets", "04_cnn")


def time_one(profile: str, network: str, precision: str, epochs: int, dataset: str = "") -> dict:
    """Train ``network`` for ``epochs`` under ``precision`` in this process; return its epoch seconds."""
    import keras

    from digitrec_utils.data.loading import load_dataset
    from digitrec_utils.data.splits import make_splits
    from digitrec_utils.engines import cnn, dense
    from digitrec_utils.models.precision import apply_precision
    from digitrec_utils.models.training import configure_keras, make_dataset, seed_everything
    from digitrec_utils.params import load_profile, resolve_with_defaults

    configure_keras()
    notebook = "04_cnn" if network in CNNS else "03_dense_nets"
    parameters = resolve_with_defaults(load_profile(profile), notebook,
                                       overrides=[f"dataset={dataset}"] if dataset else [])
    apply_precision(precision)
    loaded = load_dataset(parameters["dataset"], data_dir=parameters["data_dir"] or None, seed=parameters["seed"])
    splits = make_splits(loaded, val_fraction=parameters["val_fraction"], seed=parameters["seed"],
                         train_size=parameters["train_size"] or None)
    seed_everything(parameters["seed"])
    if notebook == "04_cnn":
        settings = cnn.CnnSettings.from_parameters(parameters)
        images = cnn.prepare_images(splits.x_train)
        model = cnn.build_network(network, settings, len(images), len(splits.class_names), epochs=epochs)
        batch_size, one_hot = settings.batch_size_for(network), len(splits.class_names)
    else:
        from digitrec_utils.models.nets import DENSE_ZOO, build_zoo_model

        images = dense.InputScaler(parameters["scaling"]).fit(splits.x_train).transform(splits.x_train)
        model = build_zoo_model(network, len(splits.class_names))
        batch_size, one_hot = DENSE_ZOO[network].batch_size, 0
    seconds: list[float] = []

    class _EpochClock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.started)

    training = make_dataset(images, splits.y_train, batch_size, shuffle=True, seed=parameters["seed"],
                            one_hot_classes=one_hot)
    model.fit(training, epochs=epochs, callbacks=[_EpochClock()], verbose=0)
    return {"network": network, "precision": precision, "epoch_seconds": seconds,
            "seconds_per_epoch": min(seconds[1:] or seconds), "n_train": len(splits.y_train),
            "params_count": int(model.count_params())}


def run_speed(profile: str, networks: list[str], epochs: int, dataset: str = "") -> pd.DataFrame:
    """Time every network under both precisions, one fresh process per (network, precision)."""
    rows = []
    for position, network in enumerate(networks):
        # Alternate which precision goes first, so that neither always meets a warmer or busier machine.
        order = PRECISIONS if position % 2 == 0 else PRECISIONS[::-1]
        timed = {}
        for precision in order:
            command = [sys.executable, __file__, "_time-one", profile, network, precision, str(epochs), dataset]
            completed = subprocess.run(command, capture_output=True, text=True, check=False)
            if completed.returncode != 0:
                raise SystemExit(f"{network} under {precision} failed:\n{completed.stderr[-3000:]}")
            timed[precision] = json.loads(completed.stdout.strip().splitlines()[-1])
            print(f"  {network} {precision}: {timed[precision]['seconds_per_epoch']:.1f} s per epoch "
                  f"(epochs {', '.join(f'{value:.1f}' for value in timed[precision]['epoch_seconds'])})", flush=True)
        float32, bfloat16 = timed["float32"]["seconds_per_epoch"], timed["mixed_bfloat16"]["seconds_per_epoch"]
        rows.append({"network": network, "parameters": timed["float32"]["params_count"],
                     "float32 s/epoch": float32, "bfloat16 s/epoch": bfloat16, "float32/bfloat16": float32 / bfloat16})
    return pd.DataFrame(rows)


def _read_run(run: Path) -> dict[str, dict]:
    """Return the results records of 03 and 04 that ``run`` holds (a run of ``--only dense`` has one)."""
    from digitrec_utils.reporting.results import load_results

    return {notebook: load_results(run / "results" / f"{notebook}.json") for notebook in NETWORK_NOTEBOOKS
            if (run / "results" / f"{notebook}.json").exists()}


def _settings_difference(first: dict, second: dict, network: str) -> str:
    """Say which parameters that shape ``network`` differ between two runs (``precision`` aside).

    ``modern_*`` keys shape only cnn_modern, ``cv_*`` keys only the fold ensemble; the others all networks.
    """
    def concerns(key: str) -> bool:
        if key in ("precision", "output_dir"):
            return False
        if key.startswith("modern_"):
            return network == "cnn_modern"
        if key.startswith("cv_"):
            return network == "fold_ensemble"
        return True

    keys = sorted(key for key in set(first) | set(second) if concerns(key))
    return "; ".join(f"{key} {first.get(key)!r} -> {second.get(key)!r}" for key in keys
                     if first.get(key) != second.get(key))


def run_accuracy(float32_run: Path, bfloat16_run: Path) -> pd.DataFrame:
    """Compare every network the two runs both trained: accuracies with intervals and McNemar's tests."""
    from digitrec_utils.evaluation.evaluation import compare_paired
    from digitrec_utils.reporting.results import decode_labels

    first, second = _read_run(float32_run), _read_run(bfloat16_run)
    shared = [notebook for notebook in NETWORK_NOTEBOOKS if notebook in first and notebook in second]
    if not shared:
        raise SystemExit(f"{float32_run} and {bfloat16_run} have no results of 03_dense_nets or 04_cnn in common.")
    rows = []
    for notebook in shared:
        one, other = first[notebook], second[notebook]
        policies = [record.get("training_precision", {}).get("policy", "float32 (no precision parameter)")
                    for record in (one, other)]
        models = {model["name"]: model for model in one["models"]}
        for model in other["models"]:
            if model["name"] not in models or model.get("family") not in ("dense", "cnn"):
                continue
            row = {"notebook": notebook, "network": model["name"], "precisions": " vs ".join(policies)}
            for split in ("val", "test"):
                truth = decode_labels(one[f"{split}_labels"])
                if not np.array_equal(truth, decode_labels(other[f"{split}_labels"])):
                    raise SystemExit(f"{notebook}: the two runs' {split} images differ; run both with one profile.")
                paired = compare_paired(truth, {"float32": decode_labels(models[model["name"]][f"{split}_predictions"]),
                                                "bfloat16": decode_labels(model[f"{split}_predictions"])},
                                        best="float32").table.set_index("setting")
                for setting in ("float32", "bfloat16"):
                    row[f"{split} {setting}"] = (f"{paired.loc[setting, 'accuracy']:.4f} "
                                                 f"({paired.loc[setting, '95% CI low']:.4f}-"
                                                 f"{paired.loc[setting, '95% CI high']:.4f})")
                row[f"{split} McNemar p"] = float(paired.loc["bfloat16", "p-value"])
                row[f"{split} bfloat16 worse beyond noise"] = bool(
                    paired.loc["bfloat16", "distinguishable"]
                    and paired.loc["bfloat16", "accuracy"] < paired.loc["float32", "accuracy"])
            row["settings differ"] = _settings_difference(one["params"], other["params"], model["name"]) or "no"
            rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command")
    speed = commands.add_parser("speed", help="Seconds per epoch under each precision (the default).")
    speed.add_argument("profile", nargs="?", default="params/fashion-mnist.yaml")
    speed.add_argument("--epochs", type=int, default=3, help="Epochs per run; the first is not counted (default 3).")
    speed.add_argument("--networks", nargs="+", default=[*CNNS, *LARGER_DENSE])
    speed.add_argument("--json", default=None)
    speed.add_argument("--dataset", default="", help="Train on this dataset instead of the profile's.")
    accuracy = commands.add_parser("accuracy", help="Compare two runs of the suite that differ in precision.")
    accuracy.add_argument("float32_run", type=Path)
    accuracy.add_argument("bfloat16_run", type=Path)
    accuracy.add_argument("--json", default=None)
    child = commands.add_parser("_time-one")
    for name in ("profile", "network", "precision", "epochs"):
        child.add_argument(name)
    child.add_argument("dataset", nargs="?", default="")
    arguments = parser.parse_args(sys.argv[1:] or ["speed"])
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    if arguments.command == "_time-one":
        print(json.dumps(time_one(arguments.profile, arguments.network, arguments.precision, int(arguments.epochs),
                                  arguments.dataset)))
        return
    if arguments.command in (None, "speed"):
        from digitrec_utils.models.precision import choose_precision

        print(f"auto would choose {choose_precision().policy} here: {choose_precision().reason}")
        table = run_speed(getattr(arguments, "profile", "params/fashion-mnist.yaml"),
                          getattr(arguments, "networks", [*CNNS, *LARGER_DENSE]), getattr(arguments, "epochs", 3),
                          getattr(arguments, "dataset", ""))
        print(table.to_string(index=False, float_format=lambda value: f"{value:.2f}"))
    else:
        table = run_accuracy(arguments.float32_run, arguments.bfloat16_run)
        print(table.to_string(index=False, float_format=lambda value: f"{value:.3g}"))
    if getattr(arguments, "json", None):
        Path(arguments.json).write_text(table.to_json(orient="records", indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
