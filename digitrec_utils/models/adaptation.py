"""Fine-tuning a saved model on an office's own labelled digits, with a replay of its original training digits.

The saved model (the network that predicts: no augmentation, float32) is copied, and the copy trains on the
office's digits behind the geometric augmentation the suite trains with, mixed with as many of its original
training digits as the recipe's ``replay_share`` says, so that what it learnt there is not forgotten. Early
stopping watches the accuracy on the office's validation digits and keeps the best epoch. The parent is never
changed; the copy is a plain Keras model that saves and exports like any other.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from digitrec_utils.exceptions import ParameterError
from digitrec_utils.models.backend import keras
from digitrec_utils.models.convnets import build_augmentation
from digitrec_utils.models.training import make_dataset, seed_everything


@dataclass(frozen=True)
class AdaptationRecipe:
    """How a saved model is fine-tuned on an office's digits (chosen on semeion; docs/RESULTS.md).

    Attributes
    ----------
    learning_rate : float
        Adam's learning rate.
    epochs : int
        The most epochs; early stopping on the office's validation accuracy keeps the best.
    patience : int
        Epochs without a better validation accuracy before stopping.
    batch_size : int
    replay_share : float
        Original training digits replayed per office digit in each epoch's training set; 0 for none.
    augmentation_strength : float
        Largest random shift and zoom (a fraction of the side); rotations go up to 100 times it in degrees.
    train_only_head : bool
        Train only the last dense layer (and keep the rest of the network as it was).
    label_smoothing : float
    monitor : {"val_loss", "val_accuracy", "none"}
        What early stopping watches on the office's validation digits; ``none`` trains every epoch. Few
        validation digits tie on accuracy from the first epoch, so the loss tells epochs apart better.
    """

    learning_rate: float = 1e-3
    epochs: int = 8
    patience: int = 3
    batch_size: int = 64
    replay_share: float = 1.0
    augmentation_strength: float = 0.08
    train_only_head: bool = False
    label_smoothing: float = 0.1
    monitor: str = "val_loss"

    def __post_init__(self) -> None:
        if self.monitor not in ("val_loss", "val_accuracy", "none"):
            raise ParameterError(f"monitor = {self.monitor!r}: expected val_loss, val_accuracy or none.")

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class FineTuned:
    """A fine-tuned copy of a model, and how its training went.

    Attributes
    ----------
    model : keras.Model
        The copy, with the best epoch's weights.
    history : dict
        Keras's history (loss, accuracy, val_loss, val_accuracy per epoch).
    best_epoch : int
        1-based.
    train_seconds : float
    n_office, n_replayed, n_pseudo : int
        Labelled office digits, replayed original digits and pseudo-labelled office digits in each epoch's
        training set.
    """

    model: object
    history: dict
    best_epoch: int
    train_seconds: float
    n_office: int
    n_replayed: int
    n_pseudo: int = 0


def fine_tune(model, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, *,
              recipe: AdaptationRecipe | None = None, replay: tuple[np.ndarray, np.ndarray] | None = None,
              pseudo_labelled: tuple[np.ndarray, np.ndarray] | None = None, seed: int = 0,
              augmentation: str = "digits", log=None) -> FineTuned:
    """Fine-tune a copy of ``model`` on the office's training digits, choosing the epoch on its validation digits.

    Parameters
    ----------
    model : keras.Model
        The parent: (n, 28, 28, 1) inputs in [0, 1], probabilities out. It is not changed.
    x_train, x_val : ndarray of shape (n, 28, 28), float32 in [0, 1]
        The office's digits, prepared as ``predict`` prepares them.
    y_train, y_val : ndarray of shape (n,)
        Class positions in the model's outputs.
    recipe : AdaptationRecipe, optional
        The default recipe when not given.
    replay : tuple of (images, labels), optional
        The parent's original training digits (float32 in [0, 1] and class positions); a seeded draw of
        ``recipe.replay_share`` times as many as the office's training digits joins them.
    pseudo_labelled : tuple of (images, labels), optional
        The office's unlabelled digits the parent answers confidently, with its answers as labels: they join the
        training digits (and count in the replay's share).
    seed : int
        Seeds the copy's training: the replay draw, the shuffles and the augmentation.
    augmentation : {"digits", "fashion", "none"}
        The geometric augmentation the parent was trained with.
    log : callable, optional
        Called with one line per epoch.
    """
    recipe = recipe or AdaptationRecipe()
    n_classes = int(model.output_shape[-1])
    if len(x_train) != len(y_train) or len(x_val) != len(y_val):
        raise ValueError(f"{len(x_train)} training images with {len(y_train)} labels, {len(x_val)} validation images "
                         f"with {len(y_val)}: give one label per image.")
    if len(x_train) == 0 or len(x_val) == 0:
        raise ParameterError("fine-tuning needs office digits to train on and to validate on; label more digits.")
    seed_everything(seed)
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    if recipe.train_only_head:
        for layer in copy.layers[:-1]:
            layer.trainable = False
    images, labels = np.asarray(x_train, dtype=np.float32), np.asarray(y_train, dtype=np.int64)
    n_pseudo = 0
    if pseudo_labelled is not None and len(pseudo_labelled[1]):
        images = np.concatenate([images, np.asarray(pseudo_labelled[0], dtype=np.float32)])
        labels = np.concatenate([labels, np.asarray(pseudo_labelled[1], dtype=np.int64)])
        n_pseudo = len(pseudo_labelled[1])
    n_replayed = 0
    if replay is not None and recipe.replay_share > 0:
        rng = np.random.default_rng([seed, 271])
        count = min(int(round(recipe.replay_share * len(images))), len(replay[1]))
        chosen = rng.choice(len(replay[1]), size=count, replace=False)
        images = np.concatenate([images, np.asarray(replay[0], dtype=np.float32)[chosen]])
        labels = np.concatenate([labels, np.asarray(replay[1], dtype=np.int64)[chosen]])
        n_replayed = count
    front = build_augmentation(augmentation, strength=recipe.augmentation_strength, seed=seed)
    trainer = keras.Sequential([keras.Input(shape=(28, 28, 1)), *front, copy])
    trainer.compile(optimizer=keras.optimizers.Adam(learning_rate=recipe.learning_rate),
                    loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
                    metrics=["accuracy"])
    train = make_dataset(images[..., None], labels, recipe.batch_size, shuffle=True, seed=seed,
                         one_hot_classes=n_classes)
    validation = make_dataset(np.asarray(x_val, dtype=np.float32)[..., None], np.asarray(y_val, dtype=np.int64),
                              recipe.batch_size, shuffle=False, seed=seed, one_hot_classes=n_classes)
    callbacks = [] if recipe.monitor == "none" else [keras.callbacks.EarlyStopping(
        monitor=recipe.monitor, mode="min" if recipe.monitor == "val_loss" else "max", patience=recipe.patience,
        restore_best_weights=True)]
    if log is not None:
        callbacks.append(keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: log(
            f"adapt epoch {epoch + 1}/{recipe.epochs}: loss {logs['loss']:.4f}, accuracy {logs['accuracy']:.4f}, "
            f"val_accuracy {logs['val_accuracy']:.4f}")))
    started = time.perf_counter()
    history = trainer.fit(train, validation_data=validation, epochs=recipe.epochs, verbose=0, callbacks=callbacks,
                          shuffle=False)  # The dataset shuffles each epoch itself.
    seconds = time.perf_counter() - started
    watched = history.history.get(recipe.monitor, [])
    best = (len(history.history.get("loss", [])) if not watched
            else int(np.argmin(watched) if recipe.monitor == "val_loss" else np.argmax(watched)) + 1)
    return FineTuned(copy, dict(history.history), best, seconds, len(x_train), n_replayed, n_pseudo)

