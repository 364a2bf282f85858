"""How often ``digitrec monitor`` rings, and how far its accuracy estimate lies from the truth (issue 53).

For each saved model: its monitoring reference is built from its own validation digits, as 04 builds it (the
split is rebuilt from the model's JSON), and streams of labelled digits are cut into windows of ``--window``
and checked as ``digitrec monitor`` checks them (the same functions: ``models.reference.observe_digits``,
``evaluation.monitoring.check_window`` and ``judge_check``). For each source the table gives the windows that
rang, and the accuracy estimated without labels against the truth, over the whole source. Each source's digits
are shuffled (seeded) before they are cut into windows, so that each window is a sample of the source; MNIST's
own digits are also measured in their order ("in order"), where a window holds one group of writers.

Sources, and their roles (issue 53's honest protocol):

- ``mnist-train-rest`` (choose; only for a model trained on mnist-sample): MNIST training digits after the
  first 5,000, which that model never saw: same source, other writers.
- ``semeion`` (choose): the field set that choices are made on.
- ``mnist-test`` (report): MNIST's own test digits, in their order.
- ``optdigits``, ``fashion-mnist`` and each corruption at ``--severity`` on MNIST's test digits (report).

``--choose-score`` instead measures ATC's error with each confidence score of ``evaluation.scores`` on the choosing
sources alone: semeion, the unseen training digits (sample model), and each of the 16 corruptions at each severity on
choosing digits (2,000 unseen training digits, 15,000 to 17,000, for a model trained on mnist-sample; else 2,000 of the
model's validation digits). The monitor's score (``evaluation.monitoring.ATC_SCORE``) was chosen on this table.

Example (2 cores, float32)::

    DIGITREC_HIDE_BFLOAT16=1 python benchmarks/bench_monitoring.py \\
        --model reports/latest/models/cnn_selected.keras --data ../shared/data
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from digitrec_utils.data.corruptions import corrupt
from digitrec_utils.data.labelled import open_labelled_source
from digitrec_utils.data.loading import load_dataset
from digitrec_utils.declarations import CORRUPTION_NAMES
from digitrec_utils.evaluation.monitoring import (
    Abstention,
    ReferenceEstimators,
    check_window,
    cut_windows,
    fit_atc,
    judge_check,
)
from digitrec_utils.evaluation.scores import ALL_SCORE_NAMES, compute_score
from digitrec_utils.models.acquisition import rebuild_split
from digitrec_utils.models.model_files import load_model_bundle
from digitrec_utils.models.reference import (
    build_observing_model,
    build_reference_from_arrays,
    observe_arrays,
    observe_source,
)
from digitrec_utils.utils.environment import collect_environment


def _measure_source(estimators, observed, labels, *, window: int, seed: int) -> dict:
    """Check a source window by window, in the order given, and estimate its accuracy."""
    probabilities, embeddings, properties = observed
    n = len(probabilities)
    windows = cut_windows(n, window)
    verdicts, errors = [], []
    for number, (start, stop) in enumerate(windows):
        part = slice(start, stop)
        check = check_window(estimators, probabilities[part], embeddings[part],
                             {name: values[part] for name, values in properties.items()}, seed=seed + number)
        verdicts.append(judge_check(check, estimators))
        if labels is not None:
            errors.append(check.accuracy.accuracy - float(np.mean(probabilities[part].argmax(1) == labels[part])))
    whole = check_window(estimators, probabilities, embeddings, properties, seed=seed)
    row = {"digits": n, "windows": len(windows), "rang": sum(verdict != "no change" for verdict in verdicts),
           "worse": sum(verdict == "worse" for verdict in verdicts),
           "tests that rang most": ", ".join(whole.tests.loc[whole.tests["changed"], "test"].head(3))}
    if labels is not None:
        correct = probabilities.argmax(1) == labels
        row.update({"accuracy": float(correct.mean()), "estimated": whole.accuracy.accuracy,
                    "error": whole.accuracy.accuracy - float(correct.mean()),
                    "largest window error": float(np.max(np.abs(errors)))})
        abstention = estimators.abstention
        if abstention is not None and whole.accepted_accuracy is not None:
            accepted = compute_score(probabilities, abstention.score) >= abstention.threshold
            truth = float(correct[accepted].mean())
            row.update({"answered accuracy": truth, "answered estimated": whole.accepted_accuracy.accuracy,
                        "answered error": whole.accepted_accuracy.accuracy - truth})
    return row


def measure_model(model_path: Path, data_root: Path, *, window: int, severity: int, seed: int,
                  sources: list[str], dump: str | None = None) -> pd.DataFrame:
    """Every source's row for one model."""
    model, description = load_model_bundle(model_path)
    dataset, splits = rebuild_split(description, data_dir=str(data_root))
    started = time.perf_counter()
    reference = build_reference_from_arrays(model, model_path, splits.x_val, splits.y_val,
                                            source=f"validation digits of {dataset.name}", seed=seed)
    print(f"{model_path}: reference of {len(reference.correct):,} digits, accuracy {reference.accuracy:.4f}, "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    estimators = ReferenceEstimators(reference, Abstention.from_saved(description.get("abstention")))
    if dump:
        np.savez(Path(dump) / f"{model_path.parent.parent.name}-reference.npz", probabilities=reference.probabilities,
                 correct=reference.correct)
    observing_model = build_observing_model(model)
    mnist = load_dataset("mnist", data_dir=str(data_root))
    rows = []

    def shuffle(observed, labels):
        order = np.random.default_rng(seed).permutation(len(observed[0]))
        return ((observed[0][order], observed[1][order], {k: v[order] for k, v in observed[2].items()}),
                None if labels is None else labels[order])

    def add(name: str, role: str, observed, labels, *, in_order: bool = False, shuffled: bool = True) -> None:
        if in_order:
            add(f"{name}, in order", role, observed, labels, shuffled=False)
        if shuffled:
            observed, labels = shuffle(observed, labels)
        if dump:
            np.savez(Path(dump) / f"{model_path.parent.parent.name}-{name}.npz", probabilities=observed[0],
                     labels=np.array([]) if labels is None else labels)
        started = time.perf_counter()
        row = _measure_source(estimators, observed, labels, window=window, seed=seed)
        rows.append({"model": model_path.parent.parent.name, "source": name, "role": role, **row})
        print(f"  {name}: {row} ({time.perf_counter() - started:.1f} s)", flush=True)

    if "mnist-train-rest" in sources and dataset.name == "mnist-sample":
        images, labels = mnist.x_train[5000:15000], mnist.y_train[5000:15000]
        observed, usable = observe_arrays(observing_model, reference, images)
        add("mnist-train-rest", "choose", observed, labels[usable], in_order=True)
    if "mnist-test" in sources:
        observed, usable = observe_arrays(observing_model, reference, mnist.x_test)
        add("mnist-test", "report", observed, mnist.y_test[usable], in_order=True)
    for name, role in (("semeion", "choose"), ("optdigits", "report")):
        if name in sources:
            source = open_labelled_source([str(data_root / "field" / name)])
            observed, labels = observe_source(observing_model, reference, source)
            add(name, role, observed, labels)
    if "fashion-mnist" in sources:
        fashion = load_dataset("fashion-mnist", data_dir=str(data_root))
        observed, _ = observe_arrays(observing_model, reference, fashion.x_test[:2000])
        add("fashion-mnist", "report", observed, None)
    if "corruptions" in sources:
        base, base_labels = mnist.x_test[:2000], mnist.y_test[:2000]
        for corruption in CORRUPTION_NAMES:
            images = corrupt(base, corruption, severity, seed=seed)
            observed, usable = observe_arrays(observing_model, reference, images)
            add(f"{corruption} ({severity})", "report", observed, base_labels[usable])
    return pd.DataFrame(rows)


def choose_score(model_path: Path, data_root: Path, *, seed: int) -> pd.DataFrame:
    """ATC's error with each score on the choosing sources of one model: one row per score."""
    model, description = load_model_bundle(model_path)
    dataset, splits = rebuild_split(description, data_dir=str(data_root))
    reference = build_reference_from_arrays(model, model_path, splits.x_val, splits.y_val,
                                            source=f"validation digits of {dataset.name}", seed=seed)
    observing_model = build_observing_model(model)
    mnist = load_dataset("mnist", data_dir=str(data_root))
    sources = {}
    semeion = open_labelled_source([str(data_root / "field" / "semeion")])
    observed, labels = observe_source(observing_model, reference, semeion)
    sources["semeion"] = (observed[0], labels)
    if dataset.name == "mnist-sample":
        observed, usable = observe_arrays(observing_model, reference, mnist.x_train[5000:15000])
        sources["mnist-train-rest"] = (observed[0], mnist.y_train[5000:15000][usable])
        base, base_labels = mnist.x_train[15000:17000], mnist.y_train[15000:17000]
    else:
        base, base_labels = splits.x_val[:2000], splits.y_val[:2000]
    for corruption in CORRUPTION_NAMES:
        for severity in (1, 2, 3):
            observed, usable = observe_arrays(observing_model, reference, corrupt(base, corruption, severity,
                                                                                  seed=seed + 1))
            sources[f"{corruption} ({severity})"] = (observed[0], base_labels[usable])
    rows = []
    for score in ALL_SCORE_NAMES:
        estimator = fit_atc(compute_score(reference.probabilities, score), reference.correct)
        errors = {name: float((compute_score(probabilities, score) > estimator.threshold).mean()
                              - np.mean(probabilities.argmax(1) == labels))
                  for name, (probabilities, labels) in sources.items()}
        absolute = np.abs(list(errors.values()))
        rows.append({"model": model_path.parent.parent.name, "score": score, "sources": len(errors),
                     "mean absolute error": float(absolute.mean()), "largest": float(absolute.max()),
                     "where largest": max(errors, key=lambda name: abs(errors[name])),
                     "over 0.03": int((absolute > 0.03).sum()), "semeion": errors["semeion"],
                     "mnist-train-rest": errors.get("mnist-train-rest", np.nan)})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", nargs="+", required=True, type=Path, help="Saved .keras models.")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("DIGITREC_DATA", "../shared/data")),
                        help="The shared data folder (mnist/, field/).")
    parser.add_argument("--window", type=int, default=500)
    parser.add_argument("--severity", type=int, default=2, help="The corruptions' severity (2 is the middle).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dump", default=None, metavar="DIR",
                        help="Also save each source's probabilities and labels there (to compare estimators).")
    parser.add_argument("--sources", nargs="+", default=["mnist-train-rest", "semeion", "mnist-test", "optdigits",
                                                          "fashion-mnist", "corruptions"])
    parser.add_argument("--choose-score", action="store_true",
                        help="Measure ATC's error with each confidence score on the choosing sources only.")
    arguments = parser.parse_args()
    environment = collect_environment()
    print(f"CPU: {environment['cpu']} ({environment['cpu_count']} cores)")
    if arguments.choose_score:
        table = pd.concat([choose_score(path, arguments.data.resolve(), seed=arguments.seed)
                           for path in arguments.model], ignore_index=True)
        with pd.option_context("display.width", 250, "display.max_columns", 30, "display.float_format",
                               "{:.4f}".format):
            print(table.to_string(index=False))
        return
    tables = [measure_model(path, arguments.data.resolve(), window=arguments.window, severity=arguments.severity,
                            seed=arguments.seed, sources=arguments.sources, dump=arguments.dump)
              for path in arguments.model]
    table = pd.concat(tables, ignore_index=True)
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.float_format", "{:.4f}".format):
        print(table.drop(columns=["tests that rang most"]).to_string(index=False))
        print(table[["model", "source", "tests that rang most"]].to_string(index=False))
    labelled = table.dropna(subset=["error"])
    print(f"mean absolute error of the estimate: {labelled['error'].abs().mean():.4f}; largest "
          f"{labelled['error'].abs().max():.4f}")


if __name__ == "__main__":
    main()
