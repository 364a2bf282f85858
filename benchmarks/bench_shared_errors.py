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
from digitrec_utils.reporting.ranking import read_paired_predictions
from digitrec_utils.reporting.results import load_run_results


def read_validation_predictions(records: dict[str, dict], network: str, dataset: str | None = None
                                ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Return the validation labels, ``network``'s validation predictions and every other network's.

    The pairing is the comparison notebook's (:func:`~digitrec_utils.reporting.ranking.read_paired_predictions`);
    the others are named without their notebook.

    Raises
    ------
    DigitrecError
        When no record holds validation predictions or ``network`` has none, a record was made on another dataset than
        ``dataset``, or a network's predictions are of other validation digits (runs of different splits mixed).
    """
    keys = {f"{notebook}/{model['name']}": notebook for notebook, record in records.items()
            for model in record.get("models", []) if model.get("val_predictions") and record.get("val_labels")}
    if not keys:
        raise DigitrecError("No record holds validation labels; give a run folder made by digitrec run.")
    for notebook in sorted(set(keys.values())):
        made_on = records[notebook].get("dataset", {}).get("name")
        if dataset and made_on != dataset:
            raise DigitrecError(f"{notebook}: made on {made_on!r}, not {dataset!r}; give a run of {dataset!r} "
                                "or leave out --dataset.")
    chosen = [key for key in keys if key.split("/", 1)[1] == network]
    if not chosen:
        raise DigitrecError(f"{network!r} has no validation predictions here; networks with them: "
                            f"{', '.join(sorted(key.split('/', 1)[1] for key in keys))}.")
    labels, predicted, paired = read_paired_predictions(records, chosen[0], "val")
    for key in keys:
        if key != chosen[0] and key not in paired:
            raise DigitrecError(f"{keys[key]}: its validation labels differ from {keys[chosen[0]]}'s; give one "
                                "run's results folder.")
    return labels, predicted, {key.split("/", 1)[1]: predictions for key, predictions in paired.items()}


def describe_shared_errors(labels: np.ndarray, predicted: np.ndarray, others: dict[str, np.ndarray],
                           network: str) -> dict:
    """Return, for each validation digit ``network`` misreads, how many of the ``others`` misread it too."""
    missed, others_wrong = count_shared_errors(labels, predicted, others)
    return {"network": network, "others": sorted(others), "errors": int(missed.size),
            "shared_with": {name: int(np.sum(predictions[missed] != labels[missed]))
                            for name, predictions in sorted(others.items())},
            "digits": [{"index": int(index), "label": int(labels[index]),
                        "read_as": int(predicted[index]), "others_wrong": int(wrong)}
                       for index, wrong in zip(missed, others_wrong, strict=True)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="A run folder of digitrec run (its results/ are read).")
    parser.add_argument("--network", default="cnn_modern")
    parser.add_argument("--dataset", default=None, help="Refuse a run made on another dataset (e.g. mnist).")
    parser.add_argument("--json", default=None, help="Also write the figures to this JSON file.")
    arguments = parser.parse_args()
    try:
        labels, predicted, others = read_validation_predictions(load_run_results(arguments.run / "results"),
                                                                arguments.network, arguments.dataset)
        shared = describe_shared_errors(labels, predicted, others, arguments.network)
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
