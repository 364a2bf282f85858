"""Keras builders for the dense (fully connected) networks, named after the reports that introduced them.

Every builder returns a compiled ``keras.Model`` that takes images of shape (28, 28) scaled to [0, 1]
(or standardized) and outputs class probabilities. :data:`DENSE_ZOO` lists the networks of the original
reports with the optimizer, learning rate and batch size each one used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from digitrec_utils.declarations import OPTIMIZERS
from digitrec_utils.exceptions import ParameterError
from digitrec_utils.models.backend import keras
from digitrec_utils.models.training import STEPS_PER_EXECUTION


@dataclass(frozen=True)
class DenseSpec:
    """One network of the dense zoo.

    Attributes
    ----------
    name : str
    description : str
        What it is and which report it reproduces.
    hidden_units : tuple of int
        Width of each hidden ReLU layer; empty for a single-layer perceptron.
    dropout : float
        Dropout rate after each hidden layer (0 for none).
    batch_norm : bool
        Batch normalization after each hidden layer.
    optimizer : str
        One of :data:`OPTIMIZERS`.
    learning_rate : float or None
        None keeps Keras's default for the optimizer.
    batch_size : int
    original_epochs : int
        The epochs of the original report, used by full-scale profiles.
    reported_mnist_accuracy : float, optional
        The test accuracy its original report printed on MNIST's official test set; None where it printed
        none.
    """

    name: str
    description: str
    hidden_units: tuple[int, ...]
    dropout: float = 0.0
    batch_norm: bool = False
    optimizer: str = "sgd"
    learning_rate: float | None = None
    batch_size: int = 32
    original_epochs: int = 20
    reported_mnist_accuracy: float | None = None


DENSE_ZOO: dict[str, DenseSpec] = {spec.name: spec for spec in (
    DenseSpec("slp", "No hidden layer, softmax, SGD, batch 64 (fourth report's model 1; it printed 0.9216 on "
              "MNIST).", (), optimizer="sgd", batch_size=64, original_epochs=20, reported_mnist_accuracy=0.9216),
    DenseSpec("mlp_64x2_sgd", "64-64 ReLU, SGD (fourth report's model 2).", (64, 64),
              optimizer="sgd", batch_size=64, original_epochs=20),
    DenseSpec("mlp_128x2_dropout", "128-128 ReLU with dropout 0.3, SGD (fourth report's model 3).", (128, 128),
              dropout=0.3, optimizer="sgd", batch_size=64, original_epochs=20),
    DenseSpec("mlp_512x2_dropout_adam", "512-512 ReLU with dropout 0.3, Adam, batch 128 (fourth report's model 4; "
              "it printed 0.9826 on MNIST).", (512, 512), dropout=0.3, optimizer="adam", batch_size=128,
              original_epochs=20, reported_mnist_accuracy=0.9826),
    DenseSpec("mlp_512_rmsprop", "512 ReLU, RMSprop, batch 128 (second report, without dropout; it printed 0.9811 "
              "on MNIST).", (512,), optimizer="rmsprop", batch_size=128, original_epochs=100,
              reported_mnist_accuracy=0.9811),
    DenseSpec("mlp_512_dropout_rmsprop", "512 ReLU with dropout 0.5, RMSprop, batch 128 (second report; it printed "
              "0.9839 on MNIST).", (512,), dropout=0.5, optimizer="rmsprop", batch_size=128, original_epochs=100,
              reported_mnist_accuracy=0.9839),
    DenseSpec("mlp_128_sgd", "128 ReLU, SGD with learning rate 0.05 (third report's given network).", (128,),
              optimizer="sgd", learning_rate=0.05, batch_size=32, original_epochs=20),
    DenseSpec("mlp_tiny", "13-128 ReLU, Adam at 4.5e-4, batch 32, 13,287 parameters (third report's simplest "
              "network above 95%).", (13, 128), optimizer="adam", learning_rate=4.5e-4, batch_size=32,
              original_epochs=20),
    DenseSpec("mlp_bn", "256-128-64 ReLU with batch normalization after each, Adam at 3.5e-4, batch 256 "
              "(third report's best).", (256, 128, 64), batch_norm=True, optimizer="adam", learning_rate=3.5e-4,
              batch_size=256, original_epochs=30),
)}


def build_optimizer(name: str, learning_rate: float | None = None):
    """Return a Keras optimizer by name, with Keras's default learning rate unless one is given.

    Parameters
    ----------
    name : {"sgd", "sgd_momentum", "rmsprop", "adam", "nadam"}
        ``sgd_momentum`` is SGD with momentum 0.9.
    learning_rate : float, optional
    """

    options = {} if learning_rate is None else {"learning_rate": learning_rate}
    if name == "sgd":
        return keras.optimizers.SGD(**options)
    if name == "sgd_momentum":
        return keras.optimizers.SGD(momentum=0.9, **options)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(**options)
    if name == "adam":
        return keras.optimizers.Adam(**options)
    if name == "nadam":
        return keras.optimizers.Nadam(**options)
    raise ParameterError(f"optimizer {name!r} is not allowed; allowed values are {', '.join(OPTIMIZERS)}.")


def build_dense_network(
    hidden_units: Sequence[int],
    *,
    dropout: float = 0.0,
    batch_norm: bool = False,
    optimizer: str = "sgd",
    learning_rate: float | None = None,
    n_classes: int = 10,
    image_shape: tuple[int, int] = (28, 28),
    name: str = "dense",
):
    """Build and compile a fully connected network: Flatten, hidden ReLU layers, softmax.

    Parameters
    ----------
    hidden_units : sequence of int
        Width of each hidden layer, in order; empty for a single-layer perceptron.
    dropout : float, default=0.0
        Dropout rate after each hidden layer (after batch normalization where that is on).
    batch_norm : bool, default=False
        Batch normalization after each hidden layer's linear part, before its ReLU.
    optimizer : str, default="sgd"
        One of :data:`OPTIMIZERS`.
    learning_rate : float, optional
    n_classes : int, default=10
    image_shape : tuple of int, default=(28, 28)
    name : str

    Returns
    -------
    model : keras.Model
        Compiled with sparse categorical cross-entropy and accuracy, running
        :data:`~digitrec_utils.models.training.STEPS_PER_EXECUTION` batches per call.
    """

    if not 0.0 <= dropout < 1.0:
        raise ParameterError(f"dropout = {dropout!r} must be at least 0 and below 1.")
    if any(int(units) < 1 for units in hidden_units):
        raise ParameterError(f"hidden_units {list(hidden_units)!r}: every layer needs at least one unit.")
    layers = [keras.Input(shape=image_shape), keras.layers.Flatten()]
    for position, units in enumerate(hidden_units, start=1):
        if batch_norm:
            layers += [keras.layers.Dense(int(units), name=f"hidden_{position}"),
                       keras.layers.BatchNormalization(name=f"batch_norm_{position}"),
                       keras.layers.Activation("relu", name=f"relu_{position}")]
        else:
            layers.append(keras.layers.Dense(int(units), activation="relu", name=f"hidden_{position}"))
        if dropout:
            layers.append(keras.layers.Dropout(dropout, name=f"dropout_{position}"))
    layers.append(keras.layers.Dense(n_classes, activation="softmax", dtype="float32", name="output"))
    model = keras.Sequential(layers, name=name)
    model.compile(optimizer=build_optimizer(optimizer, learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], steps_per_execution=STEPS_PER_EXECUTION)
    return model


def build_zoo_model(name: str, n_classes: int = 10):
    """Build a network of :data:`DENSE_ZOO` by name.

    Raises
    ------
    ParameterError
        Naming the allowed names when ``name`` is not in the zoo.
    """
    if name not in DENSE_ZOO:
        raise ParameterError(f"dense model {name!r} is unknown; allowed values are {', '.join(DENSE_ZOO)}.")
    spec = DENSE_ZOO[name]
    return build_dense_network(spec.hidden_units, dropout=spec.dropout, batch_norm=spec.batch_norm,
                               optimizer=spec.optimizer, learning_rate=spec.learning_rate, n_classes=n_classes,
                               name=name)


def count_dense_parameters(hidden_units: Sequence[int], n_inputs: int = 784, n_classes: int = 10,
                           batch_norm: bool = False) -> int:
    """Return the parameter count of :func:`build_dense_network` without building it.

    Batch normalization adds four numbers per unit (two trained, two moving statistics), as Keras counts.
    """
    widths = [n_inputs, *[int(units) for units in hidden_units], n_classes]
    weights = sum((widths[position] + 1) * widths[position + 1] for position in range(len(widths) - 1))
    return weights + (4 * sum(int(units) for units in hidden_units) if batch_norm else 0)
