"""Which of one network's validation errors the run's other networks get wrong too, from its records alone.

A run's records (``<run>/results/*.json``) keep every network's validation predictions on the same digits.
For each digit the chosen network (``cnn_modern`` by default) misreads, this counts how many of the
others misread it too. Digits that nearly every network misreads are the hard ones of the split; digits
that the others read are the network's own mistakes, the only ones another kind of network could be
expected to fix. It trains nothing and reads no test predictions, so it informs without choosing.

Usage::

    .venv/bin/python benchmarks/bench_shared_errors.py reports/mnist28 [--network cnn_modern] [--dataset mnist]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from digitrec_utils.evaluation.evaluation import count_shared_errors
from digitrec_utils.exceptions import DigitrecError
from digitrec_utils.reporting.results import decode_labels, load_run_results


def collect_validation_predictions(records: dict[str, dict], dataset: str | None = None
                                   ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Return the validation labels and every network's validation predictions in ``records``.

    Raises
    ------
    DigitrecError
        When two records were made on different validation digits (runs of different splits mixed), or
        one on another dataset than ``dataset``.
    """
    labels, predictions = None, {}
    for notebook, record in records.items():
        if not record.get("val_labels"):
            continue
        made_on = record.get("dataset", {}).get("name")
        if dataset and made_on != dataset:
            raise DigitrecError(f"{notebook}: made on {made_on!r}, not {dataset!r}; give a run of {dataset!r} "
                                "or leave out --dataset.")
        these = decode_labels(record["val_labels"])
        if labels is not None and not np.array_equal(labels, these):
            raise DigitrecError(f"{notebook}: its validation labels differ from the other records'; give one "
                                "run's results folder.")
        labels = these
        for model in record.get("models", []):
            if model.get("val_predictions"):
                predictions[model["name"]] = decode_labels(model["val_predictions"])
    if labels is None:
        raise DigitrecError("No record holds validation labels; give a run folder made by digitrec run.")
    return labels, predictions


def describe_shared_errors(labels: np.ndarray, predictions: dict[str, np.ndarray], network: str) -> dict:
    """Return, for each validation digit ``network`` misreads, how many other networks misread it too."""
    if network not in predictions:
        raise DigitrecError(f"{network!r} has no validation predictions here; networks with them: "
                            f"{', '.join(sorted(predictions))}.")
    others = {name: predicted for name, predicted in predictions.items() if name != network}
    missed, others_wrong = count_shared_errors(labels, predictions[network], others)
    return {"network": network, "others": sorted(others), "errors": int(missed.size),
            "shared_with": {name: int(np.sum(predicted[missed] != labels[missed]))
                            for name, predicted in sorted(others.items())},
            "digits": [{"index": int(index), "label": int(labels[index]),
                        "read_as": int(predictions[network][index]), "others_wrong": int(wrong)}
                       for index, wrong in zip(missed, others_wrong, strict=True)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="A run folder of digitrec run (its results/ are read).")
    parser.add_argument("--network", default="cnn_modern")
    parser.add_argument("--dataset", default=None, help="Refuse a run made on another dataset (e.g. mnist).")
    parser.add_argument("--json", default=None, help="Also write the figures to this JSON file.")
    arguments = parser.parse_args()
    try:
        labels, predictions = collect_validation_predictions(load_run_results(arguments.run / "results"),
                                                             arguments.dataset)
        shared = describe_shared_errors(labels, predictions, arguments.network)
    except DigitrecError as error:
        raise SystemExit(f"bench_shared_errors: {error}") from None
    count = len(shared["others"])
    print(f"{arguments.network} misreads {shared['errors']} of {labels.size:,} validation digits. How many of them "
          f"each of the {count} other networks misreads too:")
    print("  " + ", ".join(f"{name} {errors}" for name, errors in
                           sorted(shared["shared_with"].items(), key=lambda item: (-item[1], item[0]))))
    wrong = np.array([digit["others_wrong"] for digit in shared["digits"]], dtype=int)
    for low, high in ((count, count), (count // 2 + 1, count - 1), (1, count // 2), (0, 0)):
        print(f"  misread by {low}{'' if low == high else f' to {high}'} of the others: "
              f"{int(np.sum((wrong >= low) & (wrong <= high)))}")
    for digit in shared["digits"]:
        if digit["others_wrong"] <= count // 2:
            print(f"  digit {digit['index']}: a {digit['label']} read as {digit['read_as']}, "
                  f"misread by {digit['others_wrong']} of the others")
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(shared, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
