"""The model that 05_deployment analyses: a saved one, found and loaded with the split it was trained on
rebuilt, or a small one trained in the notebook when there is no run folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from digitrec_utils.config import SAVED_MODEL_NAME
from digitrec_utils.data.loading import load_dataset
from digitrec_utils.data.splits import make_splits
from digitrec_utils.exceptions import ModelFileError
from digitrec_utils.models.model_files import describe_model_origin, load_model_bundle
from digitrec_utils.utils.paths import describe_path

# The keys of a saved model's "split" that rebuild it.
SPLIT_KEYS = ("seed", "test_fraction", "val_fraction", "train_size")


DIGIT_DATASETS = ("mnist-sample", "mnist", "digits", "csv", "folder")


@dataclass
class DeploymentModel:
    """The model under analysis and where it came from.

    Attributes
    ----------
    model : keras.Model
    description : dict
        Its JSON description (for a model trained here, one built the same way).
    path : Path or None
        The ``.keras`` file; None for a model trained in the notebook.
    origin : str
        One sentence for the report.
    """

    model: object
    description: dict
    path: Path | None
    origin: str

    @property
    def name(self) -> str:
        return str(self.description.get("model", "model"))

    @property
    def label(self) -> str:
        """Its name, and for an adapted model what it was adapted from and on (for the model card)."""
        return describe_model_origin(self.description)

    @property
    def outlier_source(self) -> str | None:
        """The source of the images of no digit the model trained on (outlier exposure), or None."""
        return (self.description.get("outlier_exposure") or {}).get("source")

    @property
    def seen_corruptions(self) -> list[str]:
        """Corruptions whose kind the model saw in training (recorded by 04_cnn); none when not recorded."""
        return list(self.description.get("seen_corruptions", []))


def find_model(model_path: str, output_dir: str) -> Path | None:
    """Return the model to analyse: ``model_path``, else the run folder's saved CNN, else None (no run folder).

    Raises
    ------
    ModelFileError
        When ``model_path`` does not exist, or the run folder has no saved CNN (04_cnn failed or did not run).
    """
    if model_path:
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise ModelFileError(f"model_path {model_path}: no such file; give a .keras file saved by digitrec "
                                 "(with its JSON beside it), or leave model_path empty.")
        return path
    if not output_dir:
        return None
    path = Path(output_dir) / SAVED_MODEL_NAME
    if not path.is_file():
        raise ModelFileError(f"this run saved no CNN ({SAVED_MODEL_NAME} is missing: 04_cnn failed or did not run). "
                             "Run it in the same run (`digitrec run --only cnn deployment`) or set "
                             "deployment.model_path to a saved .keras file.")
    return path


def rebuild_split(description: dict, *, data_dir: str | None = None, images_csv: str | None = None,
                  labels_csv: str | None = None):
    """Load the saved model's dataset and make exactly its split again.

    Parameters
    ----------
    description : dict
        The model's JSON description, with ``dataset`` (name, sha256) and ``split`` (seed, test_fraction,
        val_fraction, train_size).
    data_dir, images_csv, labels_csv : str, optional
        Where to find the dataset's files, as in the other notebooks.

    Returns
    -------
    dataset : Dataset
    splits : Splits

    Raises
    ------
    ModelFileError
        When the JSON does not say how the split was made (a file saved before format_version 2), or the
        dataset found now is not the one the model was trained on (another checksum): scoring would then
        risk counting training images as validation or test.
    """
    split = description.get("split") or {}
    missing = [key for key in SPLIT_KEYS if key not in split]
    dataset_name = (description.get("dataset") or {}).get("name")
    if missing or not dataset_name:
        raise ModelFileError(f"the model's JSON does not say how its split was made (missing: "
                             f"{', '.join(missing) or 'dataset name'}; format_version "
                             f"{description.get('format_version', 1)}), so its validation and test images cannot "
                             "be rebuilt without risking training images among them. Save the model again with "
                             "`digitrec run --only cnn` (format_version 2 records the split).")
    loaded = load_dataset(dataset_name, data_dir=data_dir or None, images_csv=images_csv or None,
                          labels_csv=labels_csv or None, test_fraction=split["test_fraction"], seed=split["seed"])
    expected = (description.get("dataset") or {}).get("sha256")
    if expected and loaded.sha256 != expected:
        raise ModelFileError(f"the model was trained on {dataset_name} with checksum {expected[:12]}..., but the "
                             f"files found now have checksum {loaded.sha256[:12]}...; point data_dir (or the CSV "
                             "parameters) at the files the model was trained on.")
    splits = make_splits(loaded, val_fraction=split["val_fraction"], seed=split["seed"],
                         train_size=split["train_size"] or None)
    return loaded, splits


def adopt_standalone_model(model, description: dict, *, epochs: int, n_train: int) -> DeploymentModel:
    """Analyse a small CNN trained in the notebook (``cnn.train_standalone_model``) when there is no run folder.

    The notebook trains it (JupyterLab, nbval), so that 05 runs on its own; this records where it came from.
    """
    dataset = description["dataset"]["name"]
    return DeploymentModel(model, description, None,
                           f"No saved model (no run folder and no model_path): a small {description['model']} was "
                           f"trained here for {epochs} epochs on the {n_train:,} training images of {dataset}, so "
                           "that the notebook runs on its own. Run `digitrec run` to analyse the run's chosen CNN.")


def load_deployment_model(path: Path, run_dir: str | None = None) -> DeploymentModel:
    """Load a saved model and its JSON description, with one sentence on where it came from."""
    model, description = load_model_bundle(path)
    return DeploymentModel(model, description, Path(path),
                           f"The saved model {describe_path(path, run_dir)}: {describe_model_origin(description)}, "
                           f"trained on {(description.get('dataset') or {}).get('name', 'an unnamed dataset')}.")
