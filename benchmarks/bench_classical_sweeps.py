"""Time the classical sweeps side by side with the first report's brute force, in one process.

* kNN: :func:`digitrec_utils.engines.classical.sweep_knn` (one neighbour query for the largest k) against
  fitting and scoring a separate ``KNeighborsClassifier(k)`` for each k. Their validation accuracies
  must be identical; the script exits 1 if any differs.
* Decision tree: :func:`digitrec_utils.engines.classical.sweep_tree_depths` (one full-depth tree per criterion,
  read at each depth) against fitting a separate ``DecisionTreeClassifier(max_depth=d)`` for each depth
  and criterion. Both run on one core (``n_jobs=1``) so that the ratio compares the methods, not the
  parallelism. Their accuracies can differ where two splits tie (see docs/RESULTS.md, "Trials: the classical
  sweeps"); the largest difference is printed.

The data is full Fashion-MNIST's training part (needs ``dataset-fashion-mnist``, or ``--dataset``), with
the validation part carved from it as in the notebook. The brute-force tree side takes about 20 minutes
on 2 cores.

Usage::

    .venv/bin/python benchmarks/bench_classical_sweeps.py [--dataset fashion-mnist] [--only knn|tree]
        [--json results.json]

Targets (issue 4, 2 cores): the kNN sweep at least 8x faster than 12 separate fits, the depth sweep at
least 10x faster than 56 separate fits.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from sklearn.neighbors import KNeighborsClassifier
from sklearn.tree import DecisionTreeClassifier

from digitrec_utils.data.loading import load_dataset
from digitrec_utils.data.splits import make_splits
from digitrec_utils.models import classical_sweeps

K_VALUES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 30]
DEPTHS = list(range(3, 31))
CRITERIA = ["gini", "entropy"]


def _time_knn(x_train, y_train, x_val, y_val) -> dict:
    # Warm up BLAS and scikit-learn's distance code on a small query so neither side pays for it.
    KNeighborsClassifier(1).fit(x_train[:2000], y_train[:2000]).predict(x_val[:200])
    started = time.perf_counter()
    sweep = classical_sweeps.sweep_knn(x_train, y_train, x_val, y_val, K_VALUES).sweep
    sweep_seconds = time.perf_counter() - started
    separate, separate_accuracy = 0.0, {}
    for k in K_VALUES:
        started = time.perf_counter()
        separate_accuracy[k] = KNeighborsClassifier(k).fit(x_train, y_train).score(x_val, y_val)
        separate += time.perf_counter() - started
        print(f"  separate k={k}: {separate_accuracy[k]:.4f}", flush=True)
    mismatched = [k for k in K_VALUES
                  if sweep.loc[sweep["k"] == k, "val_accuracy"].item() != separate_accuracy[k]]
    return {"sweep_s": sweep_seconds, "separate_s": separate, "speedup": separate / sweep_seconds,
            "mismatched_k": mismatched, "best_k": int(sweep.loc[sweep["val_accuracy"].idxmax(), "k"])}


def _time_trees(x_train, y_train, x_val, y_val, seed: int) -> dict:
    started = time.perf_counter()
    sweep = classical_sweeps.sweep_tree_depths(x_train, y_train, x_val, y_val, DEPTHS, CRITERIA, seed=seed,
                                               n_jobs=1).sweep
    sweep_seconds = time.perf_counter() - started
    separate, differences, disagreements = 0.0, [], []
    truncated = {}
    for criterion in CRITERIA:
        full = DecisionTreeClassifier(criterion=criterion, random_state=seed).fit(x_train, y_train)
        truncated[criterion] = classical_sweeps.predict_tree_depths(full, x_val, DEPTHS)
    for criterion in CRITERIA:
        for depth in DEPTHS:
            started = time.perf_counter()
            tree = DecisionTreeClassifier(criterion=criterion, max_depth=depth, random_state=seed).fit(x_train, y_train)
            predictions = tree.predict(x_val)
            accuracy = float(np.mean(predictions == y_val))
            separate += time.perf_counter() - started
            swept = sweep.loc[(sweep["criterion"] == criterion) & (sweep["depth"] == depth), "val_accuracy"].item()
            differences.append(abs(swept - accuracy))
            disagreements.append(float(np.mean(predictions != truncated[criterion][depth])))
            print(f"  separate {criterion} depth {depth}: {accuracy:.4f} (sweep {swept:.4f})", flush=True)
    return {"sweep_s": sweep_seconds, "separate_s": separate, "speedup": separate / sweep_seconds,
            "max_accuracy_difference": max(differences), "mean_accuracy_difference": float(np.mean(differences)),
            "max_prediction_disagreement": max(disagreements)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--only", choices=["knn", "tree"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", help="Also write the figures to this JSON file.")
    arguments = parser.parse_args()
    splits = make_splits(load_dataset(arguments.dataset), val_fraction=0.1, seed=arguments.seed)
    x_train, x_val = classical_sweeps.prepare_features(splits.x_train), classical_sweeps.prepare_features(splits.x_val)
    print(f"{arguments.dataset}: {len(splits.y_train):,} training and {len(splits.y_val):,} validation images")
    figures = {"dataset": arguments.dataset, "n_train": len(splits.y_train), "n_val": len(splits.y_val)}
    if arguments.only in (None, "knn"):
        figures["knn"] = _time_knn(x_train, splits.y_train, x_val, splits.y_val)
        knn = figures["knn"]
        print(f"kNN, {len(K_VALUES)} values of k: one query {knn['sweep_s']:.1f} s, separate fits "
              f"{knn['separate_s']:.1f} s, {knn['speedup']:.1f}x; mismatched k: {knn['mismatched_k'] or 'none'}",
              flush=True)
    if arguments.only in (None, "tree"):
        figures["tree"] = _time_trees(x_train, splits.y_train, x_val, splits.y_val, arguments.seed)
        tree = figures["tree"]
        print(f"Trees, {len(CRITERIA)} criteria x {len(DEPTHS)} depths: sweep {tree['sweep_s']:.1f} s, separate fits "
              f"{tree['separate_s']:.1f} s, {tree['speedup']:.1f}x; largest validation-accuracy difference "
              f"{tree['max_accuracy_difference']:.4f} (mean {tree['mean_accuracy_difference']:.4f}), largest share "
              f"of differing predictions {tree['max_prediction_disagreement']:.4f}")
    if arguments.json:
        with open(arguments.json, "w", encoding="utf-8") as handle:
            json.dump(figures, handle, indent=1)
    return 1 if figures.get("knn", {}).get("mismatched_k") else 0


if __name__ == "__main__":
    sys.exit(main())
