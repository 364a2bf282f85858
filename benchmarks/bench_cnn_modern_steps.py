"""Time one training step of ``cnn_modern`` per image for batch sizes, block widths and without augmentation.

This answers one question before a recipe trial is spent: what a change costs per epoch. Each variant is
the profile's ``cnn_modern`` (the ``cnn:`` section merged over 04_cnn's defaults, under the profile's
precision) with one thing changed. Every variant fits the same training images of the dataset, batched
by training's own input pipeline, for ``--repeats`` epochs after one warm-up call, and the best epoch
counts, so other work on a shared machine inflates the figures less. All variants run side by side in
one process, so their ratios are what to read; nothing is evaluated and the test split is never read.

``--published`` adds one network that is not a variant of ``cnn_modern``: model M3 of An et al. (2020),
"An Ensemble of Simple Convolutional Neural Network Models for MNIST Digit Recognition" (ten unpadded 3x3
convolutions of 32 to 176 filters with batch normalization, no pooling, one dense layer; batches of 120,
Adam), whose single networks are quoted at about 0.998 on MNIST. It is built here from Keras's layers only to
price it per image against ``cnn_modern`` on the same machine; the suite never trains it.

Usage::

    .venv/bin/python benchmarks/bench_cnn_modern_steps.py [params/mnist.yaml] [--dataset mnist-sample]
        [--batch-sizes 128 256 512] [--filters 32,64 48,96] [--published] [--images 6144] [--json out.json]

Measured for docs/RESULTS.md (the levers weighed for issue 25 and not tried).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import time

import numpy as np

from digitrec_utils.data.loading import load_dataset
from digitrec_utils.engines import cnn
from digitrec_utils.exceptions import ParameterError
from digitrec_utils.models.precision import apply_precision, describe_precision
from digitrec_utils.models.training import configure_keras, make_dataset
from digitrec_utils.params import load_profile, resolve_with_defaults

# An et al. (2020)'s model M3, timed by --published: the filters of its ten convolutions and its batch size.
M3_FILTERS = (32, 48, 64, 80, 96, 112, 128, 144, 160, 176)
M3_BATCH_SIZE = 120


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("profile", nargs="?", default="params/mnist.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--dataset", default=None, help="Time on this dataset's images instead of the profile's.")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--filters", nargs="+", type=_parse_widths, default=None, metavar="A,B",
                        help="Block widths to time at the profile's batch size (default: 1.5 times the "
                             "profile's).")
    parser.add_argument("--published", action="store_true",
                        help="Also time An et al. (2020)'s model M3 (see the module's docstring).")
    parser.add_argument("--images", type=int, default=6144, help="Training images per timed epoch.")
    parser.add_argument("--repeats", type=int, default=3, help="Timed epochs per variant; the best counts.")
    parser.add_argument("--json", default=None, help="Also write the figures to this JSON file.")
    arguments = parser.parse_args()
    if min(arguments.batch_sizes) < 1 or arguments.images < max(arguments.batch_sizes) or arguments.repeats < 1:
        parser.error("--batch-sizes must be 1 or more, --images must hold at least one batch of the largest, and "
                     "--repeats must be 1 or more.")
    print(configure_keras())
    overrides = arguments.overrides + ([f"dataset={arguments.dataset}"] if arguments.dataset else [])
    parameters = resolve_with_defaults(load_profile(arguments.profile), "04_cnn", overrides=overrides)
    print(describe_precision(apply_precision(parameters["precision"])))
    settings = cnn.CnnSettings.from_parameters(parameters)
    loaded = load_dataset(parameters["dataset"], data_dir=parameters["data_dir"] or None, seed=parameters["seed"])
    # Only training images are timed; the test split is dropped here, unread.
    images = cnn.prepare_images(loaded.x_train[:arguments.images])
    labels = loaded.y_train[:arguments.images]
    n_classes = len(loaded.class_names)
    dataset_name = loaded.name
    del loaded
    widths = arguments.filters or [tuple(int(width * 1.5) for width in settings.modern_filters)]
    variants = [(f"batch {size}", dataclasses.replace(settings, modern_batch_size=size))
                for size in arguments.batch_sizes]
    variants += [(f"filters {list(width)}", dataclasses.replace(settings, modern_filters=width))
                 for width in widths]
    variants += [("no augmentation layers", dataclasses.replace(settings, augmentation="none", modern_robustness=(),
                                                                modern_elastic=0.0)),
                 ("geometric augmentation only", dataclasses.replace(settings, modern_robustness=(),
                                                                     modern_elastic=0.0))]
    for _, variant in variants:
        try:
            variant.check()
        except ParameterError as error:
            parser.error(str(error))
    # Each timed network: its label, batch size, filters, and how to build it for a number of training images.
    timed = [(label, variant.modern_batch_size, list(variant.modern_filters),
              functools.partial(cnn.build_network, "cnn_modern", variant, n_classes=n_classes))
             for label, variant in variants]
    if arguments.published:
        timed.append(("An et al. (2020) M3", M3_BATCH_SIZE, list(M3_FILTERS),
                      lambda _training_images: _build_published_m3(n_classes)))
    rows = []
    for label, batch_size, filters, build in timed:
        microseconds = _time_per_image(build, batch_size, images, labels, n_classes, seed=settings.seed,
                                       repeats=arguments.repeats)
        rows.append({"variant": label, "batch_size": batch_size, "filters": filters,
                     "microseconds_per_image": microseconds})
        print(f"{label}: {microseconds:.0f} microseconds per image", flush=True)
    baseline = rows[0]["microseconds_per_image"]
    for row in rows:
        row["relative_to_first"] = row["microseconds_per_image"] / baseline
    print(f"On {dataset_name}, relative to {rows[0]['variant']}: "
          + "; ".join(f"{row['variant']} {row['relative_to_first']:.2f}x" for row in rows[1:]) + ".")
    if arguments.json:
        with open(arguments.json, "w", encoding="utf-8") as handle:
            json.dump({"dataset": dataset_name, "images": len(images), "repeats": arguments.repeats,
                       "variants": rows}, handle, indent=2)


def _parse_widths(text: str) -> tuple[int, ...]:
    """Read ``--filters``' "32,64" as (32, 64)."""
    try:
        return tuple(int(width) for width in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give each block's filters as whole numbers joined by "
                                         "commas, for example 48,96.") from None


def _build_published_m3(n_classes: int):
    """Return An et al. (2020)'s model M3 built from Keras's layers and compiled as its paper trains it.

    Ten unpadded 3x3 convolutions without bias (28x28 shrinks to 8x8), each followed by batch normalization and
    ReLU, then one dense layer without bias and a batch normalization of its outputs; Adam at 0.001. The
    output layer computes in float32 under a mixed policy, as the suite's networks do.
    """
    import keras

    layers = [keras.Input(shape=(28, 28, 1))]
    for width in M3_FILTERS:
        layers += [keras.layers.Conv2D(width, 3, use_bias=False), keras.layers.BatchNormalization(),
                   keras.layers.Activation("relu")]
    layers += [keras.layers.Flatten(), keras.layers.Dense(n_classes, use_bias=False),
               keras.layers.BatchNormalization(), keras.layers.Activation("softmax", dtype="float32")]
    model = keras.Sequential(layers, name="an_2020_m3")
    model.compile(optimizer=keras.optimizers.Adam(0.001), loss="categorical_crossentropy")
    return model


def _time_per_image(build, batch_size: int, images: np.ndarray, labels: np.ndarray, n_classes: int, *,
                    seed: int, repeats: int) -> float:
    """Return the best epoch's seconds per image, in microseconds, of fitting ``build(n)``'s model in batches.

    ``build`` is given the number of training images per epoch (whole batches of ``batch_size``), which
    ``cnn_modern``'s learning-rate schedule needs. The batches come from
    :func:`~digitrec_utils.models.training.make_dataset`, the input pipeline that training uses (shuffled
    each epoch, one-hot labels).
    """
    used = len(images) // batch_size * batch_size
    batches = make_dataset(images[:used], labels[:used], batch_size, shuffle=True, seed=seed,
                           one_hot_classes=n_classes)
    model = build(used)
    # The first call builds and traces the training function; it is not timed.
    model.fit(batches.take(2), epochs=1, verbose=0)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        model.fit(batches, epochs=1, verbose=0)
        best = min(best, time.perf_counter() - started)
    return best / used * 1e6


if __name__ == "__main__":
    main()
