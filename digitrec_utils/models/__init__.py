"""Keras networks, their training and precision, saved-model files, the model 05 analyses, classical sweeps.

The names the notebooks use are re-exported here and load on first use (``lazy_loader``), so that importing
:mod:`digitrec_utils.models.classical_sweeps` (02's engine) does not load TensorFlow with the Keras modules.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "convnets": ["describe_augmentation"],
    "model_files": ["load_model_bundle", "read_abstention"],
    "precision": ["apply_precision", "describe_precision"],
    "training": ["configure_keras", "select_best", "summarize_zoo"],
})
