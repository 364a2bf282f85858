"""Keras networks, their training and precision, saved-model files, the model 05 analyses, classical sweeps.

The names the notebooks and the CLI use are re-exported here; everything else is imported from its module.
"""

from digitrec_utils.models.convnets import describe_augmentation
from digitrec_utils.models.model_files import load_model_bundle, read_abstention
from digitrec_utils.models.precision import apply_precision, describe_precision
from digitrec_utils.models.training import configure_keras, select_best, summarize_zoo

__all__ = [
    "apply_precision",
    "configure_keras",
    "describe_augmentation",
    "describe_precision",
    "load_model_bundle",
    "read_abstention",
    "select_best",
    "summarize_zoo",
]
