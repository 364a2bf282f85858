"""Datasets, splits, readers of files on disk, image preparation, preprocessing, corruptions and generated images.

The names the notebooks and the CLI use are re-exported here; everything else is imported from its module.
"""

from digitrec_utils.data.loading import check_dataset, load_dataset
from digitrec_utils.data.preparation import PREPARATION_VERSION, prepare_image, prepare_image_batch, read_image
from digitrec_utils.data.splits import choose_split_seed, make_splits
from digitrec_utils.data.types import Dataset, Splits
from digitrec_utils.declarations import DATASET_NAMES

__all__ = [
    "DATASET_NAMES",
    "Dataset",
    "PREPARATION_VERSION",
    "Splits",
    "check_dataset",
    "choose_split_seed",
    "load_dataset",
    "make_splits",
    "prepare_image",
    "prepare_image_batch",
    "read_image",
]
