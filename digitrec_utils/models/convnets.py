"""Keras builders for the convolutional networks, named after the reports that introduced them, and ours.

Every builder returns a compiled ``keras.Model`` that takes images of shape (28, 28, 1) scaled to [0, 1]
and outputs class probabilities. :data:`CNN_ZOO` lists the networks with the optimizer and batch size
each one uses. ``cnn_modern`` is built by :func:`build_modern_cnn`, whose arguments come from the
notebook's parameters; its augmentation depends on the dataset (:func:`choose_augmentation`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from digitrec_utils.declarations import AUGMENTATIONS, PARAMETERS
from digitrec_utils.exceptions import ParameterError
from digitrec_utils.models.backend import keras
from digitrec_utils.models.layers import (
    ROBUSTNESS_RATE,
    RandomElasticDistortion,
    RandomGeometry,
    RandomMailChanges,
    build_mirror_layer,
)
from digitrec_utils.models.nets import build_optimizer
from digitrec_utils.models.precision import policy_scope
from digitrec_utils.models.training import STEPS_PER_EXECUTION
from digitrec_utils.settings import check_modern_shape, check_value

# Largest random shift and zoom (fraction of the side); rotations go up to 100 times it in degrees.
DEFAULT_STRENGTH = PARAMETERS["augmentation_strength"].default
# Datasets whose images may be mirrored left to right: a mirrored shirt is still a shirt, a mirrored 2 is not.
MIRROR_SAFE_DATASETS = ("fashion-mnist",)
# Corruption-like augmentation of cnn_modern (:func:`build_robustness_augmentation`), and the corruptions of
# digitrec_utils.data.corruptions that each kind shows the network in training (the deployment report marks them
# "seen" and gives the mean over the unseen ones too).
ROBUSTNESS_CORRUPTIONS = {
    "pen": ("dilation", "erosion"),
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise"),
    "occlusion": ("stripes", "blots"),
}
# The corruptions that the geometric augmentation (shifts, rotations, zoom) shows the network, in milder form.
GEOMETRIC_CORRUPTIONS = ("rotation", "scale", "translation")
# The corruptions whose kind the scanned-looking copies of 04_cnn's modern_scan_copies show (digitrec.scanning).
SCAN_COPY_CORRUPTIONS = ("shear", "dilation", "erosion", "gaussian_blur")
# The smoothing (pixels) of cnn_modern's elastic distortion; Simard et al. (2003) used 4 with alpha 34 on MNIST.
ELASTIC_SIGMA = 4.0


@dataclass(frozen=True)
class CnnSpec:
    """One network of the CNN zoo.

    Attributes
    ----------
    name : str
    description : str
        What it is and which report it reproduces.
    optimizer : str
        ``sgd_momentum`` (SGD with momentum 0.9), ``rmsprop`` or ``adamw`` (ours, with a schedule).
    learning_rate : float
    batch_size : int
    original_epochs : int
        The epochs of the original report, used when the notebook's ``epochs`` is 0.
    reported_mnist_accuracy : float, optional
        The test accuracy its original report printed on MNIST; None where it printed none.
    """

    name: str
    description: str
    optimizer: str
    learning_rate: float
    batch_size: int
    original_epochs: int
    reported_mnist_accuracy: float | None = None


CNN_ZOO = {spec.name: spec for spec in (
    CnnSpec("cnn_small", "Conv32 (3x3, He-uniform) - MaxPool - Dense100 - softmax, SGD at 0.01 with momentum 0.9, "
            "batch 64 (first report's neural_net_1; it printed 0.9899 on MNIST, on its own 80/10/10 split of all "
            "70,000 digits).", "sgd_momentum", 0.01, 64, 10, 0.9899),
    CnnSpec("cnn_deeper", "Conv32 - MaxPool - Conv64 - Conv64 - MaxPool - Dense100 - softmax, SGD at 0.01 with "
            "momentum 0.9, batch 64 (first report's neural_net_2).", "sgd_momentum", 0.01, 64, 10),
    CnnSpec("cnn_rmsprop", "Conv32 - MaxPool - Conv64 - MaxPool - Conv64 - Dense512 - softmax, RMSprop, batch 128 "
            "(second report; 356,298 parameters; it printed 0.9917 on MNIST).", "rmsprop", 0.001, 128, 5, 0.9917),
    CnnSpec("cnn_modern", "Ours: 3x3 convolution blocks with batch normalization, dropout, augmentation that "
            "depends on the dataset, AdamW with warm-up and cosine decay, label smoothing, early stopping on "
            "validation.", "adamw", 0.003, 128, 20),
)}


def choose_augmentation(augmentation: str, dataset: str) -> str:
    """Resolve ``"auto"`` to ``"fashion"`` (mirroring allowed) or ``"digits"`` (no mirroring) by dataset.

    Parameters
    ----------
    augmentation : {"auto", "digits", "fashion", "none"}
    dataset : str
        The dataset's registry name, e.g. ``"fashion-mnist"``.
    """
    if augmentation not in AUGMENTATIONS:
        raise ParameterError(f"augmentation = {augmentation!r} is not allowed; allowed values are "
                             f"{', '.join(AUGMENTATIONS)}.")
    if augmentation != "auto":
        return augmentation
    return "fashion" if dataset in MIRROR_SAFE_DATASETS else "digits"


def describe_augmentation(augmentation: str, strength: float = DEFAULT_STRENGTH, robustness: Sequence[str] = (),
                          elastic: float = 0.0) -> str:
    """Return one sentence on what :func:`build_augmentation` (and :func:`build_robustness_augmentation`, for
    ``robustness``, and :func:`build_elastic_augmentation`, for ``elastic``) do."""
    changes = {"pen": "a thicker or thinner pen", "noise": "scanner noise", "occlusion": "a stripe or an ink blot"}
    extra = ""
    if robustness:
        extra = (f" Then {ROBUSTNESS_RATE:.0%} of the images get one change of real mail: "
                 + ", ".join(changes[kind] for kind in robustness) + ".")
    if elastic:
        extra = (f" Every image is first bent by an elastic distortion (Simard et al.'s, alpha {elastic:g} and sigma "
                 f"{ELASTIC_SIGMA:g} pixels), as another hand would draw it." + extra)
    if augmentation == "none" or strength == 0:
        return ("No geometric augmentation." + extra) if extra else "No augmentation."
    text = (f"Random shifts of up to {strength:.0%} of the width and height, rotations of up to "
            f"{strength * 100:g} degrees and zoom of up to {strength:.0%}")
    if augmentation == "fashion":
        return text + ", and left-right mirroring (valid for clothes); in training only." + extra
    return text + "; no mirroring (a mirrored digit is another shape or no digit); in training only." + extra


def build_augmentation(augmentation: str, *, strength: float = DEFAULT_STRENGTH, seed: int | None = None) -> list:
    """Return Keras preprocessing layers that augment in training and pass images through at inference.

    Parameters
    ----------
    augmentation : {"digits", "fashion", "none"}
        ``fashion`` adds horizontal flips to the shifts, rotations and zoom of ``digits``.
    strength : float, default=0.08
        The largest shift and zoom, as a fraction of the side; rotations go up to ``100 * strength``
        degrees (8 degrees for 0.08). 0 turns augmentation off.
    seed : int, optional
    """

    if augmentation not in AUGMENTATIONS[1:]:
        raise ParameterError(f"augmentation = {augmentation!r} is not allowed here; allowed values are "
                             f"{', '.join(AUGMENTATIONS[1:])} (resolve 'auto' with choose_augmentation).")
    if augmentation == "none" or strength == 0:
        return []
    shift, zoom, rotation_degrees = strength, strength, 100 * strength
    layers = []
    if augmentation == "fashion":
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed, name="random_mirror"))
    # One resampling for the rotation, zoom and shift together (Keras's three layers resample three times).
    layers.append(RandomGeometry(rotation=math.radians(rotation_degrees), zoom=zoom, shift=shift,
                                             seed=seed, name="random_geometry", dtype="float32"))
    return layers


def list_seen_corruptions(augmentation: str, robustness: Sequence[str] = (), scan_copies: float = 0.0,
                          elastic: float = 0.0) -> list[str]:
    """Return the corruptions of :mod:`digitrec_utils.data.corruptions` whose kind ``cnn_modern`` saw in training.

    Parameters
    ----------
    augmentation : {"digits", "fashion", "none"}
        The geometric augmentation; any but ``none`` shows shifts, rotations and zoom.
    robustness : sequence of str
        Keys of :data:`ROBUSTNESS_CORRUPTIONS`.
    scan_copies : float
        04_cnn's ``modern_scan_copies``: the scanned-looking copies show a slant, another pen and blur
        (:data:`SCAN_COPY_CORRUPTIONS`).
    elastic : float
        04_cnn's ``modern_elastic``: above 0, the network saw elastic distortion.
    """
    seen = list(GEOMETRIC_CORRUPTIONS) if augmentation not in ("none", "") else []
    for kind in robustness:
        seen += ROBUSTNESS_CORRUPTIONS[kind]
    if scan_copies:
        seen += [name for name in SCAN_COPY_CORRUPTIONS if name not in seen]
    if elastic:
        seen.append("elastic")
    return seen


def build_robustness_augmentation(kinds: Sequence[str], *, rate: float = ROBUSTNESS_RATE,
                                  seed: int | None = None) -> list:
    """Return a Keras layer that, in training only, gives images the changes of real mail.

    A share ``rate`` of the images gets one change of a kind drawn from ``kinds`` (keys of
    :data:`ROBUSTNESS_CORRUPTIONS`), each drawn at random strength:

    ``pen``
        A thicker or thinner pen: grey dilation or erosion by a 2x2 or 3x3 square (max pooling of the image
        or of its negative, stride 1).
    ``noise``
        Scanner noise: Gaussian noise of sigma up to 0.25 (64 of 255), or salt-and-pepper noise on up to 10%
        of the pixels.
    ``occlusion``
        A dark stripe 2 pixels wide across the digit (a ruled line, a fold), or a light ink blot of
        radius 2 to 3 pixels.

    Keras's preprocessing layers have noise (``GaussianNoise``, which changes every image alike) and
    erasing (rectangles of any aspect), but no pen width, salt-and-pepper noise or stripes; this layer
    draws them per image, as :mod:`digitrec_utils.data.corruptions` does with scikit-image and SciPy.
    """
    unknown = [kind for kind in kinds if kind not in ROBUSTNESS_CORRUPTIONS]
    if unknown:
        raise ParameterError(f"modern_robustness {unknown!r} is not allowed; allowed values are "
                             f"{', '.join(ROBUSTNESS_CORRUPTIONS)}.")
    if not kinds or rate == 0:
        return []
    # The layer computes in float32 under any mixed-precision policy (its random draws are float32), as
    # Keras's own preprocessing layers do; the convolutions after it cast to their compute dtype.
    return [RandomMailChanges(kinds=list(kinds), rate=rate, seed=seed, name="random_mail_changes",
                                      dtype="float32")]


def build_elastic_augmentation(alpha: float, *, seed: int | None = None) -> list:
    """Return a Keras layer that, in training only, distorts every image elastically (Simard et al., 2003).

    Each pixel moves by a random field, smooth over about ``ELASTIC_SIGMA`` pixels, whose size ``alpha``
    sets: with alpha 34 (Simard et al.'s value for MNIST) the movements have a standard deviation of about
    1.3 pixels, so strokes bend and widen as another hand would draw them, while the digit stays the same.

    Parameters
    ----------
    alpha : float
        The scale of the displacement field, in pixels; 0 for no distortion.
    seed : int, optional
    """
    check_value("modern_elastic", alpha)
    if alpha == 0:
        return []
    # In float32 under any mixed-precision policy, like the layer of build_robustness_augmentation.
    return [RandomElasticDistortion(alpha=alpha, sigma=ELASTIC_SIGMA, seed=seed, name="random_elastic",
                                      dtype="float32")]


def build_training_augmentation(augmentation: str, *, strength: float = DEFAULT_STRENGTH,
                                robustness: Sequence[str] = (), elastic: float = 0.0, seed: int | None = None) -> list:
    """Return ``cnn_modern``'s augmentation layers in the order it applies them: elastic, geometric, mail changes.

    See :func:`build_elastic_augmentation`, :func:`build_augmentation` and :func:`build_robustness_augmentation`.
    """
    return (build_elastic_augmentation(elastic, seed=seed) + build_augmentation(augmentation, strength=strength,
                                                                                  seed=seed)
            + build_robustness_augmentation(robustness, seed=seed))


def _build_optimizer(name: str, learning_rate, ema_momentum: float = 0.0):
    """AdamW (ours) here, with Keras's moving average of the weights where ``ema_momentum`` is above 0; the
    reports' optimizers come from :func:`digitrec_utils.models.nets.build_optimizer`."""

    if name == "adamw":
        averaging = {"use_ema": True, "ema_momentum": ema_momentum} if ema_momentum else {}
        return keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=1e-4, **averaging)
    return build_optimizer(name, learning_rate)


def _compile(model, spec: CnnSpec, *, learning_rate=None, label_smoothing: float = 0.0, ema_momentum: float = 0.0,
             jit_compile="auto"):
    """Compile with cross-entropy on one-hot labels (so that label smoothing is possible) and accuracy.

    Keras runs :data:`~digitrec_utils.models.training.STEPS_PER_EXECUTION` batches per call of its training
    function: the same updates, with less overhead per batch (``cnn_rmsprop``, batch 32: 1.46x faster
    per epoch on 2 cores; ``cnn_small``, batch 128: 1.05x).
    """

    model.compile(optimizer=_build_optimizer(spec.optimizer, learning_rate or spec.learning_rate, ema_momentum),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
                  metrics=["accuracy"], jit_compile=jit_compile, steps_per_execution=STEPS_PER_EXECUTION)
    return model


def build_cnn(name: str, *, n_classes: int = 10, jit_compile="auto"):
    """Build one of the reproduced CNNs of :data:`CNN_ZOO` (``cnn_small``, ``cnn_deeper``, ``cnn_rmsprop``).

    Parameters
    ----------
    name : str
    n_classes : int, default=10
    jit_compile : bool or "auto"
        Passed to ``Model.compile``; XLA helps on a GPU.

    Returns
    -------
    model : keras.Model
        Compiled; it expects one-hot labels (``make_dataset(..., n_classes=...)``).
    """

    if name not in CNN_ZOO or name == "cnn_modern":
        allowed = ", ".join(key for key in CNN_ZOO if key != "cnn_modern")
        raise ParameterError(f"CNN {name!r} is unknown to build_cnn; allowed values are {allowed} "
                             "(cnn_modern is built by build_modern_cnn).")
    he = "he_uniform"

    def convolution(filters):
        return keras.layers.Conv2D(filters, 3, activation="relu", kernel_initializer=he)

    if name == "cnn_small":
        body = [convolution(32), keras.layers.MaxPooling2D(), keras.layers.Flatten(),
                keras.layers.Dense(100, activation="relu", kernel_initializer=he)]
    elif name == "cnn_deeper":
        body = [convolution(32), keras.layers.MaxPooling2D(), convolution(64), convolution(64),
                keras.layers.MaxPooling2D(), keras.layers.Flatten(),
                keras.layers.Dense(100, activation="relu", kernel_initializer=he)]
    else:
        body = [keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.MaxPooling2D(),
                keras.layers.Conv2D(64, 3, activation="relu"), keras.layers.MaxPooling2D(),
                keras.layers.Conv2D(64, 3, activation="relu"), keras.layers.Flatten(),
                keras.layers.Dense(512, activation="relu")]
    model = keras.Sequential([keras.Input(shape=(28, 28, 1)), *body,
                              keras.layers.Dense(n_classes, activation="softmax", dtype="float32")], name=name)
    return _compile(model, CNN_ZOO[name], jit_compile=jit_compile)


def choose_batch_norm_momentum(steps_per_epoch: int) -> float:
    """Return a moving-statistics momentum that averages over about a quarter of an epoch, from 0.9 to 0.99.

    Keras's 0.99 averages over about 100 steps. On a small training set (29 steps per epoch for
    mnist-sample's 3,600 images) the moving statistics then lag the fast-changing weights of the first
    epochs so far that validation accuracy collapsed to chance and early stopping ended the run; 0.9
    follows them within an epoch. From 400 steps per epoch on (full MNIST or Fashion-MNIST) it is 0.99.
    """
    return float(min(0.99, max(0.9, 1.0 - 4.0 / max(steps_per_epoch, 1))))


def build_modern_cnn(
    *,
    filters: Sequence[int] = (32, 64),
    convs_per_block: int = 2,
    dense_units: int = 128,
    dropout: float = 0.3,
    augmentation: str = "digits",
    augmentation_strength: float = DEFAULT_STRENGTH,
    robustness: Sequence[str] = (),
    elastic: float = 0.0,
    label_smoothing: float = 0.1,
    learning_rate: float = 0.003,
    total_steps: int = 1000,
    warmup_fraction: float = 0.1,
    batch_norm_momentum: float = 0.99,
    ema_momentum: float = 0.0,
    n_classes: int = 10,
    seed: int | None = None,
    jit_compile="auto",
):
    """Build and compile ``cnn_modern``: our convolutional network for the best accuracy a CPU trains in minutes.

    Each block is ``convs_per_block`` times (3x3 unpadded convolution, batch normalization from the second
    block on, ReLU), then 2x2 max pooling. The head flattens, then a dense layer with
    batch normalization and dropout, then softmax. AdamW's learning rate rises linearly for the first
    ``warmup_fraction`` of ``total_steps`` and then follows a cosine down to zero (a one-cycle shape).

    Parameters
    ----------
    filters : sequence of int, default=(32, 64)
        Filters of each block; each convolution trims 2 pixels and each block then halves the side
        (28 -> 26 -> 13 -> 11 -> 5 for two blocks of one convolution).
    convs_per_block : int, default=2
    dense_units : int, default=128
    dropout : float, default=0.3
        Dropout before the output layer.
    augmentation : {"digits", "fashion", "none"}
        See :func:`build_augmentation`.
    augmentation_strength : float, default=0.08
        See :func:`build_augmentation`.
    robustness : sequence of str, default=()
        Kinds of corruption-like augmentation (:func:`build_robustness_augmentation`).
    elastic : float, default=0.0
        The alpha of elastic distortion (:func:`build_elastic_augmentation`), applied to every training image
        before the geometric augmentation; 0 for none.
    label_smoothing : float, default=0.1
    learning_rate : float, default=0.003
        The peak learning rate.
    total_steps : int
        Training steps (epochs x batches per epoch) of the schedule.
    warmup_fraction : float, default=0.1
    batch_norm_momentum : float, default=0.99
        Momentum of the batch-normalization moving statistics (see :func:`choose_batch_norm_momentum`).
    ema_momentum : float, default=0.0
        Above 0, AdamW keeps an exponential moving average of the weights with this momentum (Keras's
        ``use_ema``), and training keeps the average (:func:`~digitrec_utils.models.training.train_model`).
    n_classes : int, default=10
    seed : int, optional
        Seeds the augmentation layers.
    jit_compile : bool or "auto"

    Returns
    -------
    model : keras.Model
        Compiled; it expects one-hot labels.
    """

    check_modern_shape(filters, convs_per_block)
    if not 0.0 <= dropout < 1.0:
        raise ParameterError(f"modern_dropout = {dropout!r} must be at least 0 and below 1.")
    check_value("modern_ema_momentum", ema_momentum)
    augmenting = build_training_augmentation(augmentation, strength=augmentation_strength, robustness=robustness,
                                             elastic=elastic, seed=seed)
    layers = [keras.Input(shape=(28, 28, 1)), *augmenting]
    for block, width in enumerate(filters, start=1):
        for position in range(1, convs_per_block + 1):
            # Batch normalization on the first block's full-resolution maps doubled the step time on 2 cores
            # (benchmarks/bench_cnn_modern.py notes), so the first block's convolutions keep their bias instead.
            normalize = block > 1
            layers.append(keras.layers.Conv2D(int(width), 3, use_bias=not normalize, name=f"conv_{block}_{position}"))
            if normalize:
                layers.append(keras.layers.BatchNormalization(momentum=batch_norm_momentum,
                                                              name=f"batch_norm_{block}_{position}"))
            layers.append(keras.layers.Activation("relu", name=f"relu_{block}_{position}"))
        layers.append(keras.layers.MaxPooling2D(name=f"pool_{block}"))
    layers += [keras.layers.Flatten(), keras.layers.Dense(int(dense_units), use_bias=False, name="dense"),
               keras.layers.BatchNormalization(momentum=batch_norm_momentum, name="batch_norm_dense"),
               keras.layers.Activation("relu")]
    if dropout:
        layers.append(keras.layers.Dropout(dropout, name="dropout_dense"))
    layers.append(keras.layers.Dense(n_classes, activation="softmax", dtype="float32", name="output"))
    model = keras.Sequential(layers, name="cnn_modern")
    warmup_steps = int(total_steps * warmup_fraction)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=learning_rate / 10, decay_steps=max(1, total_steps - warmup_steps),
        warmup_target=learning_rate, warmup_steps=warmup_steps)
    return _compile(model, CNN_ZOO["cnn_modern"], learning_rate=schedule, label_smoothing=label_smoothing,
                    ema_momentum=ema_momentum, jit_compile=jit_compile)


def build_mirror_average(model, name: str | None = None):
    """Return a model whose output is the mean of ``model``'s probabilities for each image and its mirror image.

    Test-time augmentation for datasets where mirroring keeps the class (clothes). The result is built from
    Keras's own layers (:func:`build_mirror_layer`), so plain Keras loads it when it is saved.
    """

    with policy_scope("float32"):  # Probabilities averaged in float32, even after training in 16 bits.
        inputs = keras.Input(shape=model.input_shape[1:])
        mirrored = build_mirror_layer(model.input_shape[1:])(inputs)
        outputs = keras.layers.Average(name="mean_of_mirrors")([model(inputs), model(mirrored)])
        return keras.Model(inputs, outputs, name=name or f"{model.name}_mirror_average")
