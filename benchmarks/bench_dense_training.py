"""Time an epoch of dense-network training: digitrec's way against a plain ``model.fit``.

For each network, three ways train the same freshly seeded model on the same arrays (full Fashion-MNIST's
training part, validation carved from it) for ``--epochs`` epochs, in turn forwards and then backwards.
The first epoch (graph tracing) is dropped and the median of the others is reported.

- digitrec: :func:`digitrec_utils.models.training.train_model` on the zoo model as built, that is ``tf.data``
  with a seeded shuffle, batching and prefetch, and ``STEPS_PER_EXECUTION`` batches per call.
- tf.data only: the same, with the model compiled with Keras's default of one batch per call.
- plain fit: the model compiled with Keras's defaults, then
  ``model.fit(x, y, batch_size=..., shuffle=True, validation_data=(x_val, y_val))``.

Usage::

    .venv/bin/python benchmarks/bench_dense_training.py [--dataset fashion-mnist] [--epochs 4]
        [--models mlp_512x2_dropout_adam mlp_tiny mlp_bn]

Target (issue 5): per epoch, digitrec's training is no slower than the plain fit.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

from digitrec_utils.data.loading import load_dataset
from digitrec_utils.data.splits import make_splits
from digitrec_utils.engines import dense
from digitrec_utils.models import nets, training


def _epoch_times(callback_holder: list):
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            callback_holder.append(time.perf_counter() - self._started)

    return EpochTimer()


def _build(name: str, *, as_built: bool):
    """Build a zoo model as digitrec does, or recompiled with Keras's default steps per execution."""
    model = nets.build_zoo_model(name)
    if not as_built:
        spec = nets.DENSE_ZOO[name]
        model.compile(optimizer=nets.build_optimizer(spec.optimizer, spec.learning_rate),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _digitrec_epochs(name, x_train, y_train, x_val, y_val, epochs, seed, *, as_built: bool = True) -> list[float]:
    import keras

    times: list[float] = []
    training.seed_everything(seed)
    model = _build(name, as_built=as_built)
    timer = _epoch_times(times)
    original_fit = model.fit

    def fit_with_timer(*args, callbacks=(), **kwargs):
        return original_fit(*args, callbacks=[*callbacks, timer], **kwargs)

    model.fit = fit_with_timer
    training.train_model(model, x_train, y_train, x_val, y_val, epochs=epochs,
                         batch_size=nets.DENSE_ZOO[name].batch_size, seed=seed, log=False)
    keras.backend.clear_session()
    return times


def _plain_epochs(name, x_train, y_train, x_val, y_val, epochs, seed) -> list[float]:
    import keras

    times: list[float] = []
    training.seed_everything(seed)
    model = _build(name, as_built=False)
    model.fit(x_train, y_train, batch_size=nets.DENSE_ZOO[name].batch_size, epochs=epochs, shuffle=True,
              validation_data=(x_val, y_val), callbacks=[_epoch_times(times)], verbose=0)
    keras.backend.clear_session()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--models", nargs="+", default=["mlp_512x2_dropout_adam", "mlp_tiny", "mlp_bn"])
    arguments = parser.parse_args()
    print(training.configure_keras())
    splits = make_splits(load_dataset(arguments.dataset), val_fraction=0.1, seed=arguments.seed)
    scaler = dense.InputScaler().fit(splits.x_train)
    arrays = (scaler.transform(splits.x_train), splits.y_train, scaler.transform(splits.x_val), splits.y_val)
    print(f"{arguments.dataset}: {len(splits.y_train):,} training images; median seconds per epoch after the first")
    print(f"  {'network':<26}{'batch':>6}{'digitrec':>10}{'tf.data only':>14}{'plain fit':>11}"
          f"{'plain / digitrec':>18}")
    timers = {"digitrec": _digitrec_epochs, "tf.data only": partial(_digitrec_epochs, as_built=False),
              "plain": _plain_epochs}
    for name in arguments.models:
        runs = {way: [] for way in timers}
        for order in (list(timers), list(timers)[::-1]):
            for way in order:
                runs[way] += timers[way](name, *arrays, arguments.epochs, arguments.seed)[1:]
        ours, data_only, plain = (statistics.median(runs[way]) for way in timers)
        print(f"  {name:<26}{nets.DENSE_ZOO[name].batch_size:>6}{ours:>10.2f}{data_only:>14.2f}{plain:>11.2f}"
              f"{plain / ours:>17.2f}x", flush=True)


if __name__ == "__main__":
    main()
