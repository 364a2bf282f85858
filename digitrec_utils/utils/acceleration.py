"""Accelerators: optional acceleration of scikit-learn (scikit-learn-intelex), and GPUs counted cheaply."""

from __future__ import annotations

import os
from pathlib import Path

NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")


def accelerate_sklearn(enabled: bool) -> str:
    """Patch scikit-learn with ``sklearnex.patch_sklearn`` when asked and installed; return one status line.

    Call it before importing the modules that import scikit-learn's estimators (such as
    :mod:`digitrec_utils.engines.classical`): the patch replaces the estimator classes in scikit-learn's modules,
    so only names imported afterwards get the accelerated versions.

    Parameters
    ----------
    enabled : bool
        The notebook's ``accelerate`` parameter.

    Returns
    -------
    status : str
        What ran, for the report.
    """
    if not enabled:
        return "Acceleration is off (accelerate: false); stock scikit-learn runs."
    try:
        from sklearnex import patch_sklearn
    except ImportError:
        return ("accelerate: true, but scikit-learn-intelex is not installed (pip install scikit-learn-intelex), "
                "so stock scikit-learn runs.")
    patch_sklearn(verbose=False)
    return "scikit-learn is patched with scikit-learn-intelex (accelerate: true); supported estimators run its code."


def find_gpus_cheaply(gpu_folder: Path = NVIDIA_GPUS) -> int:
    """Return how many NVIDIA GPUs the driver lists, without importing TensorFlow (for checks before a run).

    ``CUDA_VISIBLE_DEVICES`` set to an empty string or ``-1`` hides them all, as it does from TensorFlow.
    """
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return 0
    try:
        return sum(1 for _ in gpu_folder.iterdir())
    except OSError:
        return 0
