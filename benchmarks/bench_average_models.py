"""Saved models alone and averaged, paired on a profile's validation images (and its test images on request).

What more of a recipe buys without training anything: each saved ``cnn_selected.keras`` is read on the
validation images of the profile's split, then the mean of their probabilities (what Keras's ``Average``
layer computes in the suite's members and fold ensemble), and every one is paired with the first model by
McNemar's exact test. Saved runs of one recipe with different member seeds (``bench_cnn_modern.py
--model-seed N --save-model FOLDER``) averaged together cost their trainings' time added up, so this measures
what two or three times the training budget would buy that recipe.

The test split is read only with ``--read-test``: for a measurement written down before it runs, which
chooses nothing (the suite's model stays what it was), never for choosing among models.

Usage::

    DIGITREC_DATA=$PWD/../shared/data .venv/bin/python benchmarks/bench_average_models.py params/mnist.yaml \\
        reports/mnist27/models FOLDER_44 FOLDER_46 [--read-test] [--dataset mnist] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from digitrec_utils.data.loading import load_dataset
from digitrec_utils.data.splits import make_splits
from digitrec_utils.engines import cnn
from digitrec_utils.evaluation.evaluation import compare_paired
from digitrec_utils.exceptions import DigitrecError
from digitrec_utils.models.model_files import load_model_bundle
from digitrec_utils.models.training import configure_keras
from digitrec_utils.params import load_profile, resolve_with_defaults


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("profile", help="The profile whose dataset, seed and val_fraction draw the split.")
    parser.add_argument("models", nargs="+", type=Path,
                        help="Folders holding cnn_selected.keras (the first is the one every other is paired with).")
    parser.add_argument("--dataset", default=None, help="Read this dataset instead of the profile's.")
    parser.add_argument("--read-test", action="store_true",
                        help="Also read the test split (a measurement that chooses nothing, never a choice).")
    parser.add_argument("--json", default=None, help="Also write the figures to this JSON file.")
    arguments = parser.parse_args()
    print(configure_keras())
    overrides = [f"dataset={arguments.dataset}"] if arguments.dataset else []
    parameters = resolve_with_defaults(load_profile(arguments.profile), "04_cnn", overrides=overrides)
    loaded = load_dataset(parameters["dataset"], data_dir=parameters["data_dir"] or None, seed=parameters["seed"])
    splits = make_splits(loaded, val_fraction=parameters["val_fraction"], seed=parameters["seed"],
                         train_size=parameters["train_size"] or None)
    parts = {"validation": (splits.x_val, splits.y_val)}
    if arguments.read_test:
        parts["test"] = (splits.x_test, splits.y_test)
    models = _load_models(arguments.models, loaded.name)
    names = [_name_model(folder, position) for position, folder in enumerate(arguments.models)]
    if len(set(names)) < len(names):  # Folders of the same name (or one folder twice): their places tell them apart.
        names = [f"{name} ({position + 1})" for position, name in enumerate(names)]
    figures = {"dataset": loaded.name, "models": [str(folder) for folder in arguments.models]}
    for part, (images, labels) in parts.items():
        x = cnn.prepare_images(images)
        probabilities = [model.predict(x, batch_size=512, verbose=0) for model in models]
        predictions = {name: np.argmax(values, axis=1) for name, values in zip(names, probabilities, strict=True)}
        predictions[f"mean of all {len(models)}"] = np.argmax(np.mean(probabilities, axis=0), axis=1)
        table = compare_paired(labels, predictions, best=names[0]).table
        table.insert(1, "errors", [int(np.sum(predictions[name] != labels)) for name in table["setting"]])
        print(f"\n{part}, {len(labels):,} images, each paired with {names[0]}:")
        print(table.drop(columns="distinguishable").to_string(index=False, float_format="{:.4f}".format))
        figures[part] = json.loads(table.to_json(orient="records"))  # pandas writes NumPy's numbers as JSON's.
    if arguments.json:
        with open(arguments.json, "w", encoding="utf-8") as handle:
            json.dump(figures, handle, indent=2)


def _load_models(folders: list[Path], dataset: str) -> list:
    """Load each folder's model as ``digitrec predict`` does; stop, naming the folder, on another dataset's."""
    models = []
    for folder in folders:
        try:
            model, description = load_model_bundle(folder / "cnn_selected.keras")
        except DigitrecError as error:
            raise SystemExit(str(error)) from error
        trained_on = description.get("dataset", {}).get("name")
        if trained_on != dataset:
            raise SystemExit(f"{folder}: the model was trained on {trained_on}, and the split is of {dataset}; "
                             "pass the profile (or --dataset) it was trained with.")
        models.append(model)
    return models


def _name_model(folder: Path, position: int) -> str:
    """Return a short name for a model folder: the run's name for ``reports/<run>/models``, else the folder's."""
    name = folder.parent.name if folder.name == "models" else folder.name
    return name or f"model {position + 1}"


if __name__ == "__main__":
    main()
