"""Which floating-point precision Keras trains in, chosen for the hardware.

``auto`` picks ``mixed_float16`` on a GPU, ``mixed_bfloat16`` on a CPU that does bfloat16 arithmetic in
hardware (the ``avx512_bf16`` or ``amx_bf16`` flag in ``/proc/cpuinfo``: detected, not guessed), and
``float32`` elsewhere. ``DIGITREC_HIDE_BFLOAT16=1`` hides those flags, so that a machine with them chooses
as a CPU without them does (how the suite's timings in float32 are measured there). Dense networks stay
in float32 under ``auto`` (they measured no faster in 16 bits).
Under a mixed policy the variables stay float32 and the layers compute in 16 bits;
output layers are built with ``dtype="float32"`` so that the softmax and the loss stay float32.

After training, :func:`digitrec_utils.models.training.train_model` replaces a model trained under a mixed policy
by a float32 copy (:func:`copy_as_float32`): validation and test predictions, prediction timings and the
saved model are all float32, so a saved model loads and predicts in float32 on any CPU, with or without
bfloat16 arithmetic.

The notebooks that train networks (03 and 04) take a ``precision`` parameter and call
:func:`apply_precision` before training; ``benchmarks/bench_precision.py`` measures what bfloat16 buys.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from digitrec_utils.declarations import PRECISIONS
from digitrec_utils.exceptions import ParameterError
from digitrec_utils.models.backend import keras, tf
from digitrec_utils.utils.environment import (
    BFLOAT16_FLAGS,
    HIDE_BFLOAT16_VARIABLE,
    is_bfloat16_hidden,
    read_cpu_flags,
)

# Why ``auto`` keeps dense networks in float32 (benchmarks/bench_precision.py and two runs of 03 at full
# scale, docs/RESULTS.md "Trials: training precision").
DENSE_FINDING = ("dense networks gain nothing from 16-bit arithmetic on a CPU: on full Fashion-MNIST, 03's zoo "
                 "took 247 s in bfloat16 against 205 s in float32, and no network's validation accuracy rose (the "
                 "chosen one's went from 0.9125 to 0.9082, McNemar p = 0.08).")


@dataclass(frozen=True)
class PrecisionChoice:
    """The Keras dtype policy to train under, and why.

    Attributes
    ----------
    policy : {"float32", "mixed_bfloat16", "mixed_float16"}
    reason : str
        A sentence: why this policy (the parameter asked for it, a GPU, or the CPU's flags).
    """

    policy: str
    reason: str

    def to_dict(self) -> dict:
        """Return ``{"policy": ..., "reason": ...}`` for a results record or a model's JSON."""
        return {"policy": self.policy, "reason": self.reason}


def choose_precision(requested: str = "auto", *, gpus: int = 0, flags: set[str] | None = None,
                     networks: str = "convolutional") -> PrecisionChoice:
    """Choose the dtype policy for ``requested`` on this hardware.

    Parameters
    ----------
    requested : {"auto", "float32", "mixed_bfloat16", "mixed_float16"}
    gpus : int
        GPUs TensorFlow sees.
    flags : set of str, optional
        CPU flags (:func:`read_cpu_flags` by default).
    networks : {"convolutional", "dense"}
        What will train. ``auto`` keeps dense networks in float32 everywhere: on this project's CPU they
        trained no faster in bfloat16 and gained no validation accuracy (:data:`DENSE_FINDING`).

    Raises
    ------
    ParameterError
        For an unknown ``requested``, or ``mixed_float16`` without a GPU (CPUs compute float16 slowly).
    """
    if requested not in PRECISIONS:
        raise ParameterError(f"precision = {requested!r} is not allowed; allowed values are {', '.join(PRECISIONS)}.")
    hidden = flags is None and is_bfloat16_hidden()
    flags = read_cpu_flags() if flags is None else flags
    bfloat16 = sorted(flag for flag in BFLOAT16_FLAGS if flag in flags)
    if requested == "mixed_float16" and not gpus:
        raise ParameterError("precision = 'mixed_float16' needs a GPU; on a CPU use 'mixed_bfloat16' (where the "
                             "CPU has avx512_bf16 or amx_bf16) or 'float32'.")
    if requested != "auto":
        return PrecisionChoice(requested, "the precision parameter asks for it.")
    if networks == "dense":
        return PrecisionChoice("float32", DENSE_FINDING)
    if gpus:
        return PrecisionChoice("mixed_float16", f"{gpus} GPU(s) found, and GPUs compute float16 fast.")
    if bfloat16:
        return PrecisionChoice("mixed_bfloat16", f"the CPU does bfloat16 arithmetic in hardware "
                                                 f"({', '.join(bfloat16)} in /proc/cpuinfo).")
    if hidden:
        return PrecisionChoice("float32", f"there is no GPU, and {HIDE_BFLOAT16_VARIABLE} hides the CPU's bfloat16 "
                                          f"arithmetic ({' and '.join(BFLOAT16_FLAGS)}).")
    return PrecisionChoice("float32", "there is no GPU, and the CPU has no bfloat16 arithmetic "
                                      f"({' or '.join(BFLOAT16_FLAGS)}).")


def apply_precision(requested: str = "auto", *, networks: str = "convolutional") -> PrecisionChoice:
    """Choose the dtype policy for ``requested`` on this machine and make it Keras's global policy.

    Networks built afterwards train under it. Returns the choice, whose ``reason`` says why.

    Parameters
    ----------
    requested : {"auto", "float32", "mixed_bfloat16", "mixed_float16"}
    networks : {"convolutional", "dense"}
        As :func:`choose_precision`.

    Raises
    ------
    ParameterError
        As :func:`choose_precision`.
    """

    choice = choose_precision(requested, gpus=len(tf.config.list_physical_devices("GPU")), networks=networks)
    keras.mixed_precision.set_global_policy(choice.policy)
    return choice


@contextlib.contextmanager
def policy_scope(policy: str = "float32") -> Iterator[None]:
    """Build models under Keras dtype ``policy`` inside the block, and restore the global policy afterwards.

    With the default, for the models built around trained networks (the mirror average, the fold
    ensemble): under a mixed policy their own layers would compute, and hand back probabilities, in 16 bits.
    """

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def describe_precision(choice: PrecisionChoice) -> str:
    """Say in one paragraph which precision networks train in, why, and what stays float32."""
    if choice.policy == "float32":
        return f"Networks train in float32. Why: {choice.reason}"
    sixteen = choice.policy.removeprefix("mixed_")
    return (f"Networks train in {choice.policy}: weights, output layers and losses stay float32 and the other "
            f"layers compute in {sixteen}. Why: {choice.reason} After training each network is copied into a "
            "float32 build with the same weights, so its validation and test predictions, its speed and the "
            "saved model are float32, as on any CPU.")


def computes_below_float32(model) -> bool:
    """Return whether any layer of ``model`` computes in a dtype narrower than float32 (a mixed policy)."""
    return any(getattr(layer, "compute_dtype", "float32") in ("bfloat16", "float16") for layer in model.layers)


def copy_as_float32(model):
    """Return a copy of ``model`` whose every layer computes in float32, with the same weights.

    Under a mixed policy the weights are float32 already; only the layers' compute dtype changes, so the
    copy predicts the same classes, in float32, on any CPU. Its input is float32 too: a network built under
    ``mixed_bfloat16`` has a bfloat16 input layer, which would round every pixel to 8 bits of precision
    before the first layer saw it.
    """

    with policy_scope("float32"):
        copy = keras.models.clone_model(model, input_tensors=build_float32_inputs(model),
                                        clone_function=copy_layer_as_float32)
    copy.set_weights(model.get_weights())
    return copy


def copy_layer_as_float32(layer):
    """Return a new layer built from ``layer``'s configuration that computes in float32 (without its weights)."""
    configuration = layer.get_config()
    configuration["dtype"] = "float32"
    return layer.__class__.from_config(configuration)


def build_float32_inputs(model):
    """Return new float32 Keras inputs of ``model``'s input shapes, in the structure of its inputs.

    A model that was built but never called (a ``Sequential`` given its shape by ``build``) has no input
    tensors yet; its input shape gives the one input.
    """

    try:
        structure = model.input
    except (AttributeError, ValueError):
        return keras.Input(shape=model.input_shape[1:], dtype="float32")
    return keras.tree.map_structure(lambda tensor: keras.Input(shape=tensor.shape[1:], dtype="float32"), structure)
