"""Optional acceleration of scikit-learn with Intel's extension (scikit-learn-intelex)."""

from __future__ import annotations


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
