"""Training Keras models on the training part, watching the validation part, with one log line per epoch.

Determinism: call :func:`seed_everything` (``keras.utils.set_random_seed``) before building a model,
so that its initial weights repeat; :func:`train_model` seeds again before training, so that dropout
masks and the shuffle repeat. On CPU, TensorFlow's reductions over several threads (and oneDNN's kernels)
can still add floating-point numbers in a different order from run to run, so two runs with the same
seed agree to a few units in the last digits of the loss and usually to the same accuracy, not
bit for bit. ``tf.config.experimental.enable_op_determinism()`` makes them bit-identical at some
cost in speed; :func:`train_model` turns it on when ``deterministic=True``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from digitrec_utils.evaluation.evaluation import evaluate_model
from digitrec_utils.exceptions import ParameterError
from digitrec_utils.models.backend import GPUS, keras, tf
from digitrec_utils.models.precision import computes_below_float32, copy_as_float32
from digitrec_utils.utils.progress import format_duration, report_progress

# ReduceLROnPlateau's factor: each plateau of the validation loss multiplies the learning rate by it.
LEARNING_RATE_FACTOR = 0.3
# What early stopping may watch (the notebooks' ``stop_on``), and how a page names the epoch it keeps.
MONITORS = {"val_loss": "lowest validation loss", "val_accuracy": "highest validation accuracy"}

# Batches run per call of Keras's compiled training function (``Model.compile(steps_per_execution=...)``).
# Small networks spend most of a step in Python and function-call overhead rather than arithmetic; running
# 32 batches per call applies the same updates in the same order (the same curves). Per epoch on 2 cores it
# made slp and mlp_tiny 2.5 times faster, mlp_bn 1.4 times, and mlp_512x2_dropout_adam, whose step is
# arithmetic, no faster (benchmarks/bench_dense_training.py, docs/RESULTS.md). Callbacks that act per
# batch see every 32nd batch; the ones used here (early stopping, learning-rate cuts, the epoch log) act
# per epoch.
STEPS_PER_EXECUTION = 32
# Batches that make_dataset gathers ahead of the training step.
PREFETCH_BATCHES = 2


@dataclass
class TrainingResult:
    """What :func:`train_model` returns.

    Attributes
    ----------
    model : keras.Model
        With the best validation weights restored when early stopping was on (or the moving average of its
        weights, where its optimizer keeps one); computing in float32 (a model trained under a mixed
        policy is replaced by its float32 copy, uncompiled).
    history : dict of str to list of float
        Keras's ``History.history``: loss, accuracy, val_loss, val_accuracy per epoch.
    train_seconds : float
    epochs_run : int
    best_epoch : int
        The epoch (from 1) with the lowest validation loss.
    restored_best : bool
        Whether early stopping restored the best epoch's weights, so the model holds them rather than the
        last's (false where it holds the moving average of its weights).
    stopped_early : bool
        Whether early stopping ended training before ``epochs``.
    notes : list of str
    precision : str
        The dtype policy it trained under (``float32``, ``mixed_bfloat16`` or ``mixed_float16``).
    measured_val_accuracy : float, optional
        Where it trained in 16 bits or kept the moving average of its weights: the validation accuracy of
        the model returned (the float32 copy, the averaged weights), which :attr:`val_accuracy` reports;
        the history's figures are the 16-bit model's and its raw weights'.
    """

    model: object
    history: dict
    train_seconds: float
    epochs_run: int
    best_epoch: int
    restored_best: bool = False
    stopped_early: bool = False
    notes: list[str] = field(default_factory=list)
    precision: str = "float32"
    measured_val_accuracy: float | None = None

    def kept(self, metric: str) -> float:
        """Return ``metric`` (e.g. ``val_loss``) of the weights the model holds: the best epoch's with early
        stopping, else the last epoch's."""
        return float(self.history[metric][self.best_epoch - 1 if self.restored_best else -1])

    @property
    def val_accuracy(self) -> float:
        """Validation accuracy of the weights the model holds (the best epoch's with early stopping), as the
        model returned predicts (its float32 copy where it trained in 16 bits, its averaged weights where
        its optimizer kept a moving average)."""
        return self.kept("val_accuracy") if self.measured_val_accuracy is None else self.measured_val_accuracy


def configure_keras() -> str:
    """Return one line on what TensorFlow and Keras run on.

    Importing this module loads them with their start-up messages silenced, GPU probe included
    (:mod:`digitrec_utils.models.backend`).
    """
    where = (f"GPU: {', '.join(gpu.name for gpu in GPUS)}" if GPUS
             else f"CPU ({os.cpu_count()} cores; no GPU found)")
    return f"TensorFlow {tf.__version__} with Keras {keras.__version__}, running on {where}."


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow (``keras.utils.set_random_seed``); call it before building a model."""

    keras.utils.set_random_seed(seed)


def _epoch_logger(name: str, total_epochs: int):
    """Return a Keras callback that prints one line per epoch, with the time the remaining epochs should take.

    The estimate is the epochs left times the mean epoch so far, the first one left out once there are
    others (it also builds the training function, which takes several epochs' time on a small network): an
    upper bound where early stopping may end training sooner. Each line is also the notebook's latest
    progress for ``digitrec run`` (:func:`~digitrec_utils.utils.progress.report_progress`).
    """

    class EpochLogger(keras.callbacks.Callback):
        """Prints ``name epoch 3/20: loss 0.41, ..., val_accuracy 0.846 (2.1 s; about 36.0 s left at most)``."""

        def on_train_begin(self, logs=None):
            self._seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self._started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            seconds = time.perf_counter() - self._started
            self._seconds.append(seconds)
            later = self._seconds[1:] or self._seconds
            shown = ", ".join(f"{key} {logs[key]:.4f}" for key in ("loss", "accuracy", "val_loss", "val_accuracy")
                              if key in logs)
            left = total_epochs - epoch - 1
            estimate = (f"; about {format_duration(sum(later) / len(later) * left)} left at most" if left > 0
                        else "")
            line = f"{name} epoch {epoch + 1}/{total_epochs}: {shown} ({seconds:.1f} s{estimate})"
            print(line, flush=True)
            report_progress(line)

    return EpochLogger()


# The label of a training image of none of the classes (see make_dataset's one_hot_classes).
OUTLIER_LABEL = -1


def make_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int, *, shuffle: bool, seed: int,
                 one_hot_classes: int = 0):
    """Return a batched, prefetched ``tf.data.Dataset`` of (images, labels), shuffled each epoch if asked.

    The arrays become two in-memory tensors once. What is shuffled is the index of each image, and each
    batch is gathered from the tensors by index, so an epoch moves no more data than a plain
    ``model.fit`` on the arrays does.

    Parameters
    ----------
    images : ndarray of shape (n_samples, 28, 28), float32
    labels : ndarray of shape (n_samples,)
    batch_size : int
    shuffle : bool
    seed : int
    one_hot_classes : int, default=0
        When above 0, labels become one-hot rows of this length (for losses with label smoothing), and
        images labelled :data:`OUTLIER_LABEL` get the uniform row: images of no class, which teach the
        model to be unsure (outlier exposure, Hendrycks et al., 2019).
    """

    image_tensor = tf.constant(images)
    label_tensor = tf.constant(np.asarray(labels, dtype=np.int32))
    if one_hot_classes:
        outlier = tf.expand_dims(label_tensor == OUTLIER_LABEL, 1)
        label_tensor = tf.where(outlier, tf.fill([1, one_hot_classes], 1.0 / one_hot_classes),
                                tf.one_hot(label_tensor, one_hot_classes))
    indices = tf.data.Dataset.range(len(labels))
    if shuffle:
        indices = indices.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    batches = indices.batch(batch_size).map(lambda chosen: (tf.gather(image_tensor, chosen),
                                                           tf.gather(label_tensor, chosen)))
    # tf.data's autotuning stalled about one epoch in two by 1.05 s on 2 cores (an epoch of 3,584 images
    # took 2.55 s instead of 1.45 s, whatever the network); a fixed prefetch of two batches keeps the
    # gathering ahead of the step without it (docs/RESULTS.md, training throughput).
    options = tf.data.Options()
    options.autotune.enabled = False
    return batches.prefetch(PREFETCH_BATCHES).with_options(options)


def _all_epochs(count: int) -> str:
    """Return "all 7 epochs", or "its only epoch" for one, for the notes of a run that was not stopped early."""
    return "its only epoch" if count == 1 else f"all {count} epochs"


def train_model(
    model,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    early_stopping: bool = False,
    patience: int = 5,
    reduce_lr_patience: int = 0,
    monitor: str = "val_loss",
    extra_callbacks: Sequence = (),
    one_hot_classes: int = 0,
    name: str = "",
    log: bool = True,
    deterministic: bool = False,
) -> TrainingResult:
    """Fit ``model`` on the training part, with the validation part for curves and early stopping.

    Parameters
    ----------
    model : keras.Model
        Compiled, with an ``accuracy`` metric.
    x_train : ndarray of shape (n_train, 28, 28) or (n_train, 28, 28, 1), float32
    y_train : ndarray of shape (n_train,)
    x_val : ndarray of shape (n_val, 28, 28) or (n_val, 28, 28, 1), float32
    y_val : ndarray of shape (n_val,)
    epochs : int
        The most epochs to run.
    batch_size : int
    seed : int
        Passed to ``keras.utils.set_random_seed`` and the shuffle.
    early_stopping : bool, default=False
        Stop when ``monitor`` has not improved for ``patience`` epochs and restore the best epoch's
        weights (Keras's ``EarlyStopping``). Where ``model``'s optimizer keeps a moving average of the
        weights (``use_ema``), Keras puts the average in place when training ends and it is kept instead of
        the best epoch's weights.
    patience : int, default=5
    reduce_lr_patience : int, default=0
        When above 0, divide the learning rate by about 3 (factor 0.3, Keras's ``ReduceLROnPlateau``)
        each time ``monitor`` has not improved for this many epochs.
    monitor : {"val_loss", "val_accuracy"}, default="val_loss"
        What early stopping and learning-rate cuts watch, and so which epoch's weights are kept: the
        lowest validation loss, or the highest validation accuracy (a network whose loss rises with
        over-confidence while it still gets more digits right).
    extra_callbacks : sequence of keras.callbacks.Callback
        Further callbacks.
    one_hot_classes : int, default=0
        Feed one-hot labels of this length (models compiled with categorical cross-entropy).
    name : str
        Prefix of the log lines.
    log : bool, default=True
        Print one line per epoch.
    deterministic : bool, default=False
        Turn on TensorFlow's op determinism (bit-identical reruns, slower).

    Returns
    -------
    result : TrainingResult
        Its ``model`` is ``model``, or its float32 copy where ``model`` computed in bfloat16 or float16.
    """

    if monitor not in MONITORS:
        raise ParameterError(f"monitor = {monitor!r} is not allowed; allowed values are {', '.join(MONITORS)}.")
    seed_everything(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    callbacks = [_epoch_logger(name or model.name, epochs)] if log else []
    stopper = None
    # Keras puts an optimizer's moving average of the weights in place when fit ends, before the callbacks'
    # end of training, so restoring the best epoch's raw weights would throw the average away.
    averaging = bool(getattr(model.optimizer, "use_ema", False))
    if early_stopping:
        stopper = keras.callbacks.EarlyStopping(monitor=monitor, patience=patience,
                                                restore_best_weights=not averaging)
        callbacks.append(stopper)
    if reduce_lr_patience > 0:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=LEARNING_RATE_FACTOR,
                                                           patience=reduce_lr_patience, min_lr=1e-6))
    callbacks.extend(extra_callbacks)
    training = make_dataset(x_train, y_train, batch_size, shuffle=True, seed=seed, one_hot_classes=one_hot_classes)
    validation = make_dataset(x_val, y_val, max(batch_size, 256), shuffle=False, seed=seed,
                              one_hot_classes=one_hot_classes)
    started = time.perf_counter()
    history = model.fit(training, validation_data=validation, epochs=epochs, callbacks=callbacks, verbose=0,
                        shuffle=False)  # The dataset shuffles itself, seeded.
    seconds = time.perf_counter() - started
    losses = history.history["val_loss"]
    watched = history.history[monitor]
    # Keras keeps the first of equally good epochs, as argmin and argmax do.
    best_epoch = int(np.argmin(watched) if monitor == "val_loss" else np.argmax(watched)) + 1
    stopped_early = bool(stopper is not None and stopper.stopped_epoch > 0)
    notes = []
    ending = f"stopped after epoch {len(losses)}" if stopped_early else f"ran {_all_epochs(len(losses))}"
    if averaging:
        # Read before the float32 copy below; the note is finished once batch normalization is recomputed.
        kept_average = (f"Training {ending}; the moving average of the weights (momentum "
                        f"{float(model.optimizer.ema_momentum):g}) was kept, not one epoch's weights")
    elif stopper is not None and patience < epochs:
        notes.append(f"Early stopping on {MONITORS[monitor].split(' ', 1)[1]} (patience {patience}): {ending}; "
                     f"best weights from epoch {best_epoch} restored.")
    elif stopper is not None:
        notes.append(f"Ran {_all_epochs(len(losses))}; the weights of epoch {best_epoch} ({MONITORS[monitor]}) "
                     "were kept.")
    if reduce_lr_patience > 0:
        notes.append(_describe_learning_rate_cuts(history.history.get("learning_rate", []), reduce_lr_patience,
                                                  monitor))
    precision, measured_val_accuracy = model.dtype_policy.name, None
    copied = computes_below_float32(model)
    if copied:
        # Trained under a mixed policy: everything after training (predictions, their timing, the saved
        # model) uses a float32 copy with the same weights, as a CPU without bfloat16 would run it.
        model = copy_as_float32(model)
    if averaging:
        # The averaged weights came with statistics of batch normalization gathered by the raw ones.
        # They are recomputed, and the time counts as training's.
        renormalizing = time.perf_counter()
        renormalized = recompute_batch_norm_statistics(model, training)
        seconds += time.perf_counter() - renormalizing
        recomputed = (f", with its batch normalization's statistics recomputed over one pass of the training "
                      f"images ({renormalized} batches)" if renormalized else "")
        notes.insert(0, f"{kept_average}{recomputed}.")
    if copied or averaging:
        # The history's validation figures are the raw or 16-bit weights'; the model returned is measured.
        predicted = model.predict(validation, verbose=0).argmax(axis=1)
        measured_val_accuracy = float(np.mean(predicted == np.asarray(y_val)))
    return TrainingResult(model=model, history={key: [float(value) for value in values]
                                                for key, values in history.history.items()},
                          train_seconds=seconds, epochs_run=len(losses), best_epoch=best_epoch,
                          restored_best=stopper is not None and not averaging, stopped_early=stopped_early,
                          notes=notes, precision=precision, measured_val_accuracy=measured_val_accuracy)


def recompute_batch_norm_statistics(model, batches) -> int:
    """Set every batch normalization's moving statistics to their mean over one pass of ``batches``.

    The moving mean and variance that batch normalization uses at inference follow the weights training
    had at each step. Once training ends with other weights in place (a moving average of the weights),
    they no longer match what those weights compute. Each batch is run through ``model`` in training mode,
    as training ran it (augmentation on, each normalization on the batch's own statistics), and each layer
    keeps the mean of the batches' statistics: the cumulative average of PyTorch's
    ``torch.optim.swa_utils.update_bn``, which Keras lacks. Nothing else changes; the weights are not
    trained.

    Parameters
    ----------
    model : keras.Model
    batches : iterable of (images, labels)
        One pass of the training batches, e.g. from :func:`make_dataset`.

    Returns
    -------
    count : int
        The batches run; 0 where ``model`` has no batch normalization (nothing is run).
    """

    normalizations = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if not normalizations:
        return 0
    momenta = [layer.momentum for layer in normalizations]
    sums = [[np.zeros(layer.moving_mean.shape), np.zeros(layer.moving_variance.shape)] for layer in normalizations]
    count = 0
    try:
        # With momentum 0 each layer's moving statistics become the last batch's own; they are summed here
        # after each batch. The momentum is read when the function is traced, so it is set first.
        for layer in normalizations:
            layer.momentum = 0.0
        run_in_training_mode = tf.function(lambda images: model(images, training=True), reduce_retracing=True)
        for images, _ in batches:
            run_in_training_mode(images)
            for layer, (mean_sum, variance_sum) in zip(normalizations, sums, strict=True):
                mean_sum += layer.moving_mean.numpy()
                variance_sum += layer.moving_variance.numpy()
            count += 1
    finally:
        for layer, momentum in zip(normalizations, momenta, strict=True):
            layer.momentum = momentum
    if not count:
        return 0  # No batches: the statistics stay as they were.
    for layer, (mean_sum, variance_sum) in zip(normalizations, sums, strict=True):
        layer.moving_mean.assign(mean_sum / count)
        layer.moving_variance.assign(variance_sum / count)
    return count


def _describe_learning_rate_cuts(rates: Sequence[float], patience: int, monitor: str = "val_loss") -> str:
    """Say after which epochs ``ReduceLROnPlateau`` lowered the learning rate."""
    cuts = [epoch + 1 for epoch in range(1, len(rates)) if rates[epoch] < rates[epoch - 1]]
    watched = MONITORS[monitor].split(" ", 1)[1]
    if not cuts:
        return f"The learning rate was never lowered ({watched} never stalled for {patience} epochs)."
    return (f"The learning rate was multiplied by {LEARNING_RATE_FACTOR} from epoch{'s' if len(cuts) > 1 else ''} "
            f"{', '.join(map(str, cuts))} on, each time after the {watched} had stalled for {patience} "
            f"epochs (final rate {rates[-1]:.2g}).")


def make_prediction_recorder(images: np.ndarray, epochs: Sequence[int], batch_size: int = 1024):
    """Return a Keras callback that keeps the predicted labels of ``images`` at the end of the given epochs.

    For experiments that read several epoch counts off one run: the paired tests need each count's own
    predictions. The labels are in the callback's ``predictions`` dict, epoch (1-based) -> ndarray.
    """

    class _PredictionRecorder(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.predictions: dict[int, np.ndarray] = {}

        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 in epochs:
                probabilities = self.model.predict(images, batch_size=batch_size, verbose=0)
                self.predictions[epoch + 1] = np.argmax(probabilities, axis=1)

    return _PredictionRecorder()


def predict_probabilities(model, images: np.ndarray, batch_size: int = 1024) -> tuple[np.ndarray, float]:
    """Return (probabilities of shape (n_samples, n_classes), milliseconds per 1,000 images).

    One batch is predicted first and not timed, so that the time excludes building Keras's predict
    function (graph tracing), which a deployed model pays once.
    """
    model.predict(images[:batch_size], batch_size=batch_size, verbose=0)
    started = time.perf_counter()
    probabilities = model.predict(images, batch_size=batch_size, verbose=0)
    return probabilities, (time.perf_counter() - started) * 1e6 / max(len(images), 1)


@dataclass
class ZooResult:
    """One network of a notebook's zoo after training.

    Attributes
    ----------
    spec : DenseSpec or CnnSpec
        Its name, description (which report it reproduces), optimizer and batch size.
    training : TrainingResult
    params_count : int
    epochs : int
        The most epochs it was allowed.
    predict_ms_per_1k : float
        Measured on the validation part.
    final_model : keras.Model, optional
        A model built around the trained one (test-time mirror averaging); None to use the trained one.
    final_val_accuracy : float, optional
        The validation accuracy of ``final_model``.
    val_predictions : ndarray of shape (n_val,), optional
        The predicted validation labels of :attr:`model`, for paired tests between models.
    """

    spec: object
    training: TrainingResult
    params_count: int
    epochs: int
    predict_ms_per_1k: float
    final_model: object = None
    final_val_accuracy: float | None = None
    val_predictions: np.ndarray | None = None

    @property
    def val_accuracy(self) -> float:
        """Validation accuracy of :attr:`model`: the kept epoch's, or that of the wrapped final model."""
        return self.training.val_accuracy if self.final_val_accuracy is None else self.final_val_accuracy

    @property
    def model(self):
        """The model to evaluate and save: the trained one, or a wrapper of it (e.g. mirror averaging)."""
        return self.training.model if self.final_model is None else self.final_model


def summarize_zoo(results: dict[str, ZooResult]):
    """Return a DataFrame with one row per zoo network: parameters, epochs, validation accuracies, seconds, notes."""

    return pd.DataFrame([{
        "model": name,
        "reproduces": result.spec.description,
        "parameters": result.params_count,
        "epochs run": result.training.epochs_run,
        "best epoch": result.training.best_epoch,
        "val accuracy (last epoch)": result.training.history["val_accuracy"][-1],
        "val accuracy (kept)": result.val_accuracy,
        "train s": result.training.train_seconds,
        "predict ms / 1k": result.predict_ms_per_1k,
        "notes": " ".join(result.training.notes),
    } for name, result in results.items()])


def select_best(val_accuracies) -> str:
    """Return the name with the best validation accuracy (ties: the first listed).

    Parameters
    ----------
    val_accuracies : dict of str to ZooResult or to float
    """
    def score(name):
        value = val_accuracies[name]
        return value if isinstance(value, float) else value.val_accuracy

    return max(val_accuracies, key=score)


def collect_reported_accuracies(zoo: dict, dataset: str) -> dict[str, float]:
    """Return the MNIST test accuracy each network of ``zoo`` had in its original report; empty on other data.

    Parameters
    ----------
    zoo : dict of str to DenseSpec or CnnSpec
        Specs with a ``reported_mnist_accuracy`` (None where the report printed none).
    dataset : str
    """
    if dataset != "mnist":
        return {}
    return {name: spec.reported_mnist_accuracy for name, spec in zoo.items()
            if spec.reported_mnist_accuracy is not None}


def evaluate_networks_on_test(models, x_test: np.ndarray, y_test: np.ndarray, class_names) -> dict:
    """Evaluate each trained network once on the test part.

    Parameters
    ----------
    models : dict of str to ZooResult or keras.Model
    x_test : ndarray of shape (n_test, ...)
        Already scaled the way the networks were trained.
    y_test : ndarray of shape (n_test,)
    class_names : sequence of str

    Returns
    -------
    evaluations : dict of str to Evaluation
    """
    evaluations = {}
    for name, network in models.items():
        probabilities, _ = predict_probabilities(getattr(network, "model", network), x_test)
        evaluations[name] = evaluate_model(y_test, probabilities.argmax(axis=1), probabilities, class_names)
    return evaluations
