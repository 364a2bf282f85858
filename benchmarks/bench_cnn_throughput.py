"""Training throughput of ``cnn_modern`` against a plain Keras convnet of the same size, side by side in one run.

The plain convnet is written as the Keras examples write one (``mnist_convnet``): the same convolutions,
pooling and dense layer as the profile's ``cnn_modern``, with ``activation="relu"`` in each layer, no
augmentation and no batch normalization, Adam, fitted on NumPy arrays with ``model.fit(x, y,
batch_size=...)``. ``cnn_modern`` is built and fed as 04_cnn trains it (:func:`digitrec_utils.engines.cnn.build_network`
and :func:`digitrec_utils.models.training.make_dataset`), with the profile's augmentation. Both fit the same
training images for ``--repeats`` epochs after a warm-up epoch, in turns, and each one's best epoch counts,
so that other work on the machine inflates the figures less; the median epoch is printed too, since it is
what a training run sees (stalls of the input pipeline included). The ratio (``cnn_modern``'s images per
second over the plain convnet's) is the figure to read: 1 means the extra parts cost nothing.

``--variants`` adds ``cnn_modern`` with Keras's three geometric layers in place of its one
``RandomGeometry`` and fed by an autotuned tf.data pipeline (each as it was before issue 49), without its
augmentation layers, and the augmentation alone, so that the cost of each part shows. Nothing is
evaluated and the test split is never read.

To time a CPU without bfloat16 on one with it, hide the flags from digitrec and oneDNN's wider
instructions from TensorFlow::

    DIGITREC_HIDE_BFLOAT16=1 ONEDNN_MAX_CPU_ISA=AVX2 .venv/bin/python benchmarks/bench_cnn_throughput.py

Usage::

    .venv/bin/python benchmarks/bench_cnn_throughput.py [params/sample.yaml] [--set cnn.modern_filters=[48,96]]
        [--dataset mnist] [--images 3584] [--repeats 3] [--variants] [--jit] [--json out.json]

Measured for docs/RESULTS.md ("Training throughput on a plain CPU").
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time

import numpy as np

from digitrec_utils.data.loading import load_dataset
from digitrec_utils.engines import cnn
from digitrec_utils.models.precision import apply_precision, describe_precision
from digitrec_utils.models.training import configure_keras, make_dataset, seed_everything
from digitrec_utils.params import load_profile, resolve_with_defaults
from digitrec_utils.utils.environment import describe_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("profile", nargs="?", default="params/sample.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--dataset", default=None, help="Time on this dataset's images instead of the profile's.")
    parser.add_argument("--images", type=int, default=3584, help="Training images per timed epoch.")
    parser.add_argument("--repeats", type=int, default=3, help="Timed epochs per network; the best counts.")
    parser.add_argument("--variants", action="store_true",
                        help="Also time cnn_modern without augmentation, and the augmentation layers alone.")
    parser.add_argument("--jit", action="store_true",
                        help="Also time both networks compiled with XLA (jit_compile=True; Keras leaves XLA off on "
                             "a CPU).")
    parser.add_argument("--json", default=None, help="Also write the figures to this JSON file.")
    arguments = parser.parse_args()
    print(configure_keras())
    print(f"CPU: {describe_cpu()}; ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '(unset)')}")
    overrides = arguments.overrides + ([f"dataset={arguments.dataset}"] if arguments.dataset else [])
    parameters = resolve_with_defaults(load_profile(arguments.profile), "04_cnn", overrides=overrides)
    choice = apply_precision(parameters["precision"])
    print(describe_precision(choice))
    settings = cnn.CnnSettings.from_parameters(parameters)
    settings.check()
    loaded = load_dataset(parameters["dataset"], data_dir=parameters["data_dir"] or None, seed=parameters["seed"])
    batch_size = settings.modern_batch_size
    used = min(arguments.images, len(loaded.y_train)) // batch_size * batch_size
    # Only training images are timed; the test split is dropped here, unread.
    images, labels = cnn.prepare_images(loaded.x_train[:used]), loaded.y_train[:used]
    n_classes = len(loaded.class_names)
    del loaded
    timed = {"plain Keras convnet": _fit_plain(settings, images, labels, n_classes),
             "cnn_modern": _fit_modern(settings, images, labels, n_classes)}
    if arguments.jit:
        timed["plain Keras convnet, XLA"] = _fit_plain(settings, images, labels, n_classes, jit_compile=True)
        timed["cnn_modern, XLA"] = _fit_modern(settings, images, labels, n_classes, jit_compile=True)
    if arguments.variants:
        bare = dataclasses.replace(settings, augmentation="none", modern_robustness=(), modern_elastic=0.0)
        timed["cnn_modern, Keras's three geometric layers"] = _fit_modern_with_keras_layers(settings, images, labels,
                                                                                           n_classes)
        timed["cnn_modern, tf.data autotuned (as before issue 49)"] = _fit_modern(settings, images, labels, n_classes,
                                                                                 autotuned=True)
        timed["cnn_modern without augmentation"] = _fit_modern(bare, images, labels, n_classes)
        timed["augmentation layers alone"] = _augment_only(settings, images, batch_size)
        timed["cnn_modern, augmentation in the input pipeline"] = _fit_modern_augmenting_batches(
            settings, bare, images, labels, n_classes)
    seconds: dict[str, list[float]] = {name: [] for name in timed}
    for _ in range(arguments.repeats):  # In turns, so that a busy moment does not hit one network alone.
        for name, run_epoch in timed.items():
            started = time.perf_counter()
            run_epoch()
            seconds[name].append(time.perf_counter() - started)
    # The best epoch is the network's speed; the median is what a training run sees, stalls included.
    rows = [{"network": name, "images_per_second": used / min(times), "seconds_per_epoch": min(times),
             "median_images_per_second": used / float(np.median(times)), "epoch_seconds": times}
            for name, times in seconds.items()]
    plain, plain_median = rows[0]["images_per_second"], rows[0]["median_images_per_second"]
    for row in rows:
        row["ratio_to_plain"] = row["images_per_second"] / plain
        row["median_ratio_to_plain"] = row["median_images_per_second"] / plain_median
        print(f"{row['network']}: {row['images_per_second']:.0f} images/s at best ({row['seconds_per_epoch']:.2f} s "
              f"per epoch of {used} images), {row['ratio_to_plain']:.2f} x the plain convnet; median "
              f"{row['median_images_per_second']:.0f} images/s, {row['median_ratio_to_plain']:.2f} x", flush=True)
    if arguments.json:
        with open(arguments.json, "w", encoding="utf-8") as handle:
            json.dump({"profile": arguments.profile, "overrides": arguments.overrides, "images": used,
                       "batch_size": batch_size, "precision": choice.policy, "cpu": describe_cpu(),
                       "machine": platform.machine(), "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
                       "rows": rows}, handle, indent=2)


def _fit_plain(settings: cnn.CnnSettings, images: np.ndarray, labels: np.ndarray, n_classes: int, *,
               jit_compile="auto"):
    """Build the Keras-example convnet of ``cnn_modern``'s size; return a function that fits it one epoch."""
    import keras

    seed_everything(settings.seed)
    layers = [keras.Input(shape=(28, 28, 1))]
    for width in settings.modern_filters:
        layers += [keras.layers.Conv2D(int(width), 3, activation="relu")
                   for _ in range(settings.modern_convs_per_block)]
        layers.append(keras.layers.MaxPooling2D())
    layers += [keras.layers.Flatten(), keras.layers.Dense(int(settings.modern_dense_units), activation="relu"),
               keras.layers.Dropout(settings.modern_dropout),
               keras.layers.Dense(n_classes, activation="softmax", dtype="float32")]
    model = keras.Sequential(layers, name="plain_convnet")
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"], jit_compile=jit_compile)
    one_hot = keras.utils.to_categorical(labels, n_classes)

    def run_epoch():
        model.fit(images, one_hot, batch_size=settings.modern_batch_size, epochs=1, verbose=0)

    run_epoch()  # Builds and traces the training function; not timed.
    return run_epoch


def _fit_modern(settings: cnn.CnnSettings, images: np.ndarray, labels: np.ndarray, n_classes: int, *,
                jit_compile="auto", autotuned: bool = False):
    """Build ``cnn_modern`` as 04_cnn does; return a function that fits it one epoch of training's batches.

    ``autotuned`` feeds it as :func:`make_dataset` did before issue 49: the same batches, gathered with
    tf.data's autotuned parallelism and prefetch.
    """
    import tensorflow as tf

    seed_everything(settings.seed)
    model = cnn.build_network("cnn_modern", settings, len(labels), n_classes)
    if jit_compile != "auto":
        model.compile(optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"], jit_compile=jit_compile,
                      steps_per_execution=model.steps_per_execution)
    if not autotuned:
        batches = make_dataset(images, labels, settings.modern_batch_size, shuffle=True, seed=settings.seed,
                               one_hot_classes=n_classes)
    else:
        image_tensor = tf.constant(images)
        label_tensor = tf.one_hot(tf.constant(labels.astype("int32")), n_classes)
        indices = tf.data.Dataset.range(len(labels)).shuffle(len(labels), seed=settings.seed)
        batches = indices.batch(settings.modern_batch_size).map(
            lambda chosen: (tf.gather(image_tensor, chosen), tf.gather(label_tensor, chosen)),
            num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    def run_epoch():
        model.fit(batches, epochs=1, verbose=0)

    run_epoch()
    return run_epoch


def _fit_modern_with_keras_layers(settings: cnn.CnnSettings, images: np.ndarray, labels: np.ndarray, n_classes: int):
    """Return a function that fits ``cnn_modern`` one epoch with Keras's ``RandomRotation``, ``RandomZoom`` and
    ``RandomTranslation`` in place of its one ``RandomGeometry`` layer (as it was before issue 49)."""
    import keras

    seed_everything(settings.seed)
    model = cnn.build_network("cnn_modern", settings, len(labels), n_classes)
    strength, seed = settings.augmentation_strength, settings.seed
    three = [keras.layers.RandomRotation(strength * 100 / 360, fill_mode="constant", seed=seed),
             keras.layers.RandomZoom(strength, fill_mode="constant", seed=seed),
             keras.layers.RandomTranslation(strength, strength, fill_mode="constant", seed=seed)]
    rest = [layer for layer in model.layers if layer.name != "random_geometry"]
    replaced = keras.Sequential([keras.Input(shape=(28, 28, 1)), *three, *rest], name="cnn_modern_keras_layers")
    replaced.compile(optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"],
                     steps_per_execution=model.steps_per_execution)
    batches = make_dataset(images, labels, settings.modern_batch_size, shuffle=True, seed=settings.seed,
                           one_hot_classes=n_classes)

    def run_epoch():
        replaced.fit(batches, epochs=1, verbose=0)

    run_epoch()
    return run_epoch


def _fit_modern_augmenting_batches(settings: cnn.CnnSettings, bare: cnn.CnnSettings, images: np.ndarray,
                                   labels: np.ndarray, n_classes: int):
    """Return a function that fits ``cnn_modern`` without augmentation layers one epoch, its batches augmented by
    the same layers in tf.data (mapped on whole batches before the prefetch), so that augmentation can overlap
    the training step."""
    import keras
    import tensorflow as tf

    seed_everything(settings.seed)
    model = cnn.build_network("cnn_modern", bare, len(labels), n_classes)
    augmenting = keras.Sequential(cnn.build_augmentation_layers(settings))
    batches = make_dataset(images, labels, settings.modern_batch_size, shuffle=True, seed=settings.seed,
                           one_hot_classes=n_classes)
    batches = batches.map(lambda batch, target: (augmenting(batch, training=True), target),
                          num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    def run_epoch():
        model.fit(batches, epochs=1, verbose=0)

    run_epoch()
    return run_epoch


def _augment_only(settings: cnn.CnnSettings, images: np.ndarray, batch_size: int):
    """Return a function that runs ``cnn_modern``'s augmentation layers alone over one epoch of batches."""
    import keras
    import tensorflow as tf

    augmenting = keras.Sequential(cnn.build_augmentation_layers(settings))
    step = tf.function(lambda batch: augmenting(batch, training=True))
    batches = [tf.constant(images[start:start + batch_size]) for start in range(0, len(images), batch_size)]

    def run_epoch():
        for batch in batches:
            step(batch)

    run_epoch()
    return run_epoch


if __name__ == "__main__":
    main()
