"""Adapting a saved model to other writers' digits: accuracy on a fixed check half against the number labelled.

The measurement is 08_adaptation's (``digitrec_utils.engines.adaptation.measure_learning_curve``): for each number
of labelled digits and each draw, that many digits are drawn from the adapt half (the other half is the check
half, the same for every draw), split 80/20 into training and validation digits, a copy of the model is
fine-tuned with a replay of its original training digits, and the check half is read by the copy. With
``--suggested`` the digits ``digitrec adapt --suggest`` suggests are also labelled first. Printed per strategy and
number: the mean and standard deviation over draws of the check accuracy, the share of the check half answered
at the threshold chosen on validation and the accuracy of those answered, the accuracy on the model's original
digits (``--forgetting-on validation`` to choose a recipe, ``test`` to report) and the seconds of fine-tuning.

Choose recipes on semeion (``--data .../field/semeion``); report optdigits only.

    DIGITREC_HIDE_BFLOAT16=1 .venv/bin/python benchmarks/bench_adaptation.py \\
        --model reports/<run>/models/cnn_selected.keras --data ../shared/data/field/semeion \\
        --counts 100 -1 --draws 5 [--suggested] [--set learning_rate=1e-4 --set epochs=12 ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np

from digitrec_utils.application.models import load_model_in_use
from digitrec_utils.data.labelled import open_labelled_source, read_labelled_digits
from digitrec_utils.data.preprocessing import scale_images
from digitrec_utils.data.splits import split_labelled_digits
from digitrec_utils.engines.adaptation import (
    choose_augmentation_of,
    mark_usable,
    measure_learning_curve,
    split_original_digits,
)
from digitrec_utils.models.acquisition import rebuild_split
from digitrec_utils.models.adaptation import AdaptationRecipe
from digitrec_utils.models.backend import keras


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True, help="A labelled folder tree <root>/<label>/*.")
    parser.add_argument("--counts", type=int, nargs="+", default=[100], help="Labelled digits per draw; -1 all.")
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--suggested", action="store_true", help="Also label the suggested digits first.")
    parser.add_argument("--forgetting-on", choices=["validation", "test"], default="test",
                        help="The model's original digits that forgetting is measured on.")
    parser.add_argument("--set", dest="changes", action="append", default=[], metavar="FIELD=VALUE",
                        help="Change a field of AdaptationRecipe, e.g. learning_rate=1e-4.")
    parser.add_argument("--target", type=float, default=0.995)
    parser.add_argument("--no-replay", action="store_true")
    parser.add_argument("--unlabelled", choices=["none", "pseudo", "adabn"], default="none",
                        help="Use the adapt half's digits not drawn, unlabelled: pseudo-labels at the model's saved "
                             "threshold (adapt --unlabelled), or BatchNorm statistics re-estimated on them (AdaBN) "
                             "before adapting.")
    arguments = parser.parse_args()
    recipe = AdaptationRecipe()
    for change in arguments.changes:
        key, value = change.split("=", 1)
        kind = type(getattr(recipe, key))
        recipe = dataclasses.replace(recipe, **{key: (value.lower() == "true") if kind is bool else kind(value)})
    parent = load_model_in_use(arguments.model)
    digits = read_labelled_digits(open_labelled_source([arguments.data]), progress=False)
    labels = mark_usable(digits)
    adapt_half, check_half = split_labelled_digits(labels, share=0.5, seed=0, needed_per_class=4, what="data")
    # The benchmark needs the model's own digits: rebuilt once, an error if they cannot be.
    _, splits = rebuild_split(parent.description)
    replay, test = split_original_digits(splits)
    if arguments.forgetting_on == "validation":
        test = (scale_images(splits.x_val), np.asarray(splits.y_val))
    abstention = parent.abstention or {}
    model = parent.model
    if arguments.unlabelled == "adabn":
        model, n_layers = reestimate_batch_norm(model, digits.images[adapt_half])
        print(json.dumps({"adabn_layers": n_layers}), flush=True)
    print(json.dumps({"recipe": recipe.to_dict(), "replay": not arguments.no_replay,
                      "check_digits": len(check_half), "forgetting_on": arguments.forgetting_on}), flush=True)
    curve = measure_learning_curve(
        model, digits, labels, adapt_part=adapt_half, check_part=check_half, label_counts=arguments.counts,
        repeats=arguments.draws, recipe=recipe, replay=None if arguments.no_replay else replay, test=test,
        score_name=abstention.get("score", "top_probability"), parent_threshold=abstention.get("threshold"),
        target=arguments.target, seed=100, augmentation=choose_augmentation_of(parent.description),
        compare_suggested=arguments.suggested, unlabelled=arguments.unlabelled == "pseudo",
        log=lambda line: print(line, flush=True))
    for row in curve.summarize().to_dict(orient="records"):
        print(json.dumps({key: round(value, 4) if isinstance(value, float) else value for key, value in row.items()}),
              flush=True)


def reestimate_batch_norm(model, images: np.ndarray, *, batch_size: int = 256):
    """Return a copy of ``model`` whose BatchNorm statistics are those of ``images`` (AdaBN, Li et al., 2016).

    The office's unlabelled digits go through the copy in training mode with dropout off, so that each
    BatchNorm layer normalizes with the statistics of the office's digits as its inputs are there; each layer's
    moving mean and variance become the mean over batches of those statistics (the momentum before the k-th
    batch is k / (k + 1)). Nothing else changes, and the parent is not touched.

    Parameters
    ----------
    model : keras.Model
    images : ndarray of shape (n, 28, 28), float32 in [0, 1]
        Unlabelled digits, prepared as ``predict`` prepares them.

    Returns
    -------
    copy : keras.Model
    n_layers : int
        BatchNorm layers re-estimated (0: the model has none, and the copy is the model as it was).
    """
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    every_layer = list(_walk_layers(copy))
    norms = [layer for layer in every_layer if isinstance(layer, keras.layers.BatchNormalization)]
    if not norms or not len(images):
        return copy, 0
    dropouts = {layer: layer.rate for layer in every_layer if isinstance(layer, keras.layers.Dropout)}
    momenta = {layer: layer.momentum for layer in norms}
    images = np.asarray(images, dtype=np.float32)[..., None]
    try:
        for layer in dropouts:
            layer.rate = 0.0
        for number, start in enumerate(range(0, len(images), batch_size)):
            for layer in norms:
                layer.momentum = number / (number + 1)
            copy(images[start:start + batch_size], training=True)
    finally:
        for layer, rate in dropouts.items():
            layer.rate = rate
        for layer, momentum in momenta.items():
            layer.momentum = momentum
    return copy, len(norms)


def _walk_layers(model):
    """Every layer of ``model``, those of nested models (an averaged ensemble's members) included."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _walk_layers(layer)


if __name__ == "__main__":
    main()
