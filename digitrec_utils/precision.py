"""Which floating-point precision Keras trains in, chosen for the hardware (issue 17, groundwork).

``auto`` picks ``mixed_float16`` on a GPU, ``mixed_bfloat16`` on a CPU that does bfloat16 arithmetic in
hardware (the ``avx512_bf16`` or ``amx_bf16`` flag in ``/proc/cpuinfo``: detected, not guessed), and
``float32`` elsewhere. Under a mixed policy the variables stay float32 and the layers compute in 16 bits;
output layers are built with ``dtype="float32"`` so that the softmax and the loss stay float32.

A model trained under a mixed policy is saved as a float32 copy (:func:`copy_as_float32`), so that it
loads and predicts in float32 on any CPU.

Not yet wired into the notebooks: their default stays float32 until the side-by-side benchmark of issue
17 shows bfloat16 faster without losing validation accuracy beyond noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from digitrec_utils.exceptions import ParameterError

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
# CPU flags (Linux's names) of bfloat16 arithmetic in hardware.
BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")
CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class PrecisionChoice:
    """The Keras dtype policy to train under, and why."""

    policy: str
    reason: str


def read_cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """Return the CPU's feature flags from ``/proc/cpuinfo`` text (read from the file when not given).

    An empty set where the file is absent (not Linux) or has no ``flags`` line.
    """
    if cpuinfo is None:
        try:
            cpuinfo = CPUINFO.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def choose_precision(requested: str = "auto", *, gpus: int = 0, flags: set[str] | None = None) -> PrecisionChoice:
    """Choose the dtype policy for ``requested`` on this hardware.

    Parameters
    ----------
    requested : {"auto", "float32", "mixed_bfloat16", "mixed_float16"}
    gpus : int
        GPUs TensorFlow sees.
    flags : set of str, optional
        CPU flags (:func:`read_cpu_flags` by default).

    Raises
    ------
    ParameterError
        For an unknown ``requested``, or ``mixed_float16`` without a GPU (CPUs compute float16 slowly).
    """
    if requested not in PRECISIONS:
        raise ParameterError(f"precision = {requested!r} is not allowed; allowed values are {', '.join(PRECISIONS)}.")
    flags = read_cpu_flags() if flags is None else flags
    bfloat16 = sorted(flag for flag in BFLOAT16_FLAGS if flag in flags)
    if requested == "mixed_float16" and not gpus:
        raise ParameterError("precision = 'mixed_float16' needs a GPU; on a CPU use 'mixed_bfloat16' (where the "
                             "CPU has avx512_bf16 or amx_bf16) or 'float32'.")
    if requested != "auto":
        return PrecisionChoice(requested, f"{requested}, as the precision parameter asks.")
    if gpus:
        return PrecisionChoice("mixed_float16", f"mixed_float16: {gpus} GPU(s) found.")
    if bfloat16:
        return PrecisionChoice("mixed_bfloat16", f"mixed_bfloat16: the CPU does bfloat16 arithmetic in hardware "
                                                 f"({', '.join(bfloat16)}).")
    return PrecisionChoice("float32", "float32: no GPU, and the CPU has no bfloat16 arithmetic "
                                      f"({' or '.join(BFLOAT16_FLAGS)}).")


def copy_as_float32(model):
    """Return a copy of ``model`` whose every layer computes in float32, with the same weights.

    Under a mixed policy the weights are float32 already; only the layers' compute dtype changes, so the
    copy predicts the same classes, in float32, on any CPU.
    """
    import keras

    def rebuild(layer):
        config = layer.get_config()
        config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=rebuild)
    copy.set_weights(model.get_weights())
    return copy
