"""Adapting a saved model to other writers' digits: accuracy on a fixed check half against the number labelled.

For each number of labelled digits and each draw, a stratified draw of that many digits from the adapt half
(the other half is the check half, the same for every draw) is split 80/20 into training and validation
digits, a copy of the model is fine-tuned (``digitrec_utils.models.adaptation.fine_tune``) with a replay of its
original training digits, and the check half is read by the parent and by the copy. Printed per number: the mean
and standard deviation over the draws of the validation accuracy (what a recipe is chosen on), the check
accuracy, the share of the check half answered at the threshold chosen on validation and the accuracy of those
answered, the accuracy on the model's original validation digits (forgetting, as a choice may read it) and
test digits (forgetting, to report), and the seconds of fine-tuning.

Choose recipes on semeion (``--field-sets semeion``) by validation accuracy; report optdigits only.

    DIGITREC_HIDE_BFLOAT16=1 .venv/bin/python benchmarks/bench_adaptation.py \\
        --model reports/<run>/models/cnn_selected.keras --data ../shared/data/field/semeion \\
        --counts 100 796 --draws 5 [--set learning_rate=1e-4 --set epochs=12 ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np

from digitrec_utils.application.models import load_model_in_use
from digitrec_utils.data.labelled import open_labelled_source, read_labelled_digits
from digitrec_utils.data.splits import draw_per_class, split_labelled_digits
from digitrec_utils.engines.adaptation import (
    choose_augmentation_of,
    load_original_digits,
    predict_labels,
    read_positions,
)
from digitrec_utils.evaluation.abstention import choose_threshold, measure_selective
from digitrec_utils.models.adaptation import AdaptationRecipe, fine_tune


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True, help="A labelled folder tree <root>/<label>/*.")
    parser.add_argument("--counts", type=int, nargs="+", default=[100], help="Labelled digits per draw.")
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--set", dest="changes", action="append", default=[], metavar="FIELD=VALUE",
                        help="Change a field of AdaptationRecipe, e.g. learning_rate=1e-4.")
    parser.add_argument("--target", type=float, default=0.995)
    parser.add_argument("--no-replay", action="store_true")
    arguments = parser.parse_args()
    recipe = AdaptationRecipe()
    for change in arguments.changes:
        key, value = change.split("=", 1)
        kind = type(getattr(recipe, key))
        recipe = dataclasses.replace(recipe, **{key: (value.lower() == "true") if kind is bool else kind(value)})
    parent = load_model_in_use(arguments.model)
    digits = read_labelled_digits(open_labelled_source([arguments.data]), progress=False)
    labels = np.where(digits.usable, digits.labels, -1)
    adapt_half, check_half = split_labelled_digits(labels, share=0.5, seed=0, needed_per_class=4, what="data")
    replay, test, problem = load_original_digits(parent.description)
    original_validation = _load_original_validation(parent.description)
    if arguments.no_replay:
        replay = None
    score_name = (parent.abstention or {}).get("score", "top_probability")
    check_labels = labels[check_half]
    before = read_positions(parent.model, digits, check_half, score_name)
    parent_test = float(np.mean(predict_labels(parent.model, test[0]) == test[1])) if test else None
    parent_original_validation = float(np.mean(predict_labels(parent.model, original_validation[0])
                                                == original_validation[1]))
    print(json.dumps({"recipe": recipe.to_dict(), "replay": replay is not None, "problem": problem,
                      "check_digits": len(check_half), "check_before": float(np.mean(before.correct(check_labels))),
                      "test_before": parent_test, "original_validation_before": parent_original_validation}),
          flush=True)
    for count in arguments.counts:
        rows = []
        for draw in range(arguments.draws):
            chosen = draw_per_class(adapt_half, labels, count, seed=100 + draw)
            marked = np.full(len(labels), -1)
            marked[chosen] = labels[chosen]
            train, validation = split_labelled_digits(marked, share=0.2, seed=200 + draw, needed_per_class=3,
                                                      what="labelled draw")
            started = time.perf_counter()
            tuned = fine_tune(parent.model, digits.images[train], labels[train], digits.images[validation],
                              labels[validation], recipe=recipe, replay=replay, seed=draw,
                              augmentation=choose_augmentation_of(parent.description))
            seconds = time.perf_counter() - started
            on_validation = read_positions(tuned.model, digits, validation, score_name)
            threshold = choose_threshold(on_validation.scores, on_validation.correct(labels[validation]),
                                         arguments.target)
            after = read_positions(tuned.model, digits, check_half, score_name)
            answered = measure_selective(after.scores, after.correct(check_labels),
                                         threshold.threshold if threshold.reached else None)
            rows.append({"validation": float(np.mean(on_validation.correct(labels[validation]))),
                         "check": float(np.mean(after.correct(check_labels))), "answered": answered.coverage,
                         "answered_accuracy": answered.accuracy,
                         "original_validation": float(np.mean(predict_labels(tuned.model, original_validation[0])
                                                              == original_validation[1])),
                         "test": (float(np.mean(predict_labels(tuned.model, test[0]) == test[1])) if test else None),
                         "seconds": seconds, "best_epoch": tuned.best_epoch})
        summary = {"count": count, "draws": len(rows)}
        for key in rows[0]:
            values = np.array([row[key] for row in rows if row[key] is not None], dtype=float)
            if len(values):
                summary[key] = [round(float(values.mean()), 4), round(float(values.std(ddof=1)) if len(values) > 1
                                                                      else 0.0, 4)]
        print(json.dumps(summary), flush=True)


def _load_original_validation(description: dict):
    """The parent's original validation digits: what forgetting is judged on when choosing (the test digits only
    report it)."""
    from digitrec_utils.data.preprocessing import scale_images
    from digitrec_utils.models.acquisition import rebuild_split

    _, splits = rebuild_split(description)
    return scale_images(splits.x_val), np.asarray(splits.y_val)


if __name__ == "__main__":
    main()
