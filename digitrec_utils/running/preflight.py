"""Checks made before any notebook starts: every dataset, the field folders and the saved model 05 and 08 read."""

from __future__ import annotations

from pathlib import Path

from digitrec_utils.data.labelled import check_field_folders
from digitrec_utils.data.loading import check_dataset
from digitrec_utils.declarations import SAVED_MODEL_NOTEBOOKS
from digitrec_utils.exceptions import DatasetError, ParameterError
from digitrec_utils.params import SECTIONS, get_default, get_notebook_parameters

# The parameters that say where a notebook's data comes from, checked before the run.
DATASET_KEYS = ("dataset", "data_dir", "images_csv", "labels_csv")


def find_datasets(parameters: dict[str, dict]) -> dict[tuple, list[str]]:
    """Return each distinct data source of the run, with the notebooks that read it.

    A notebook's own defaults fill in what the profile leaves out. The comparison notebook reads no data.

    Returns
    -------
    sources : dict of tuple to list of str
        ``(dataset, data_dir, images_csv, labels_csv)`` -> notebook stems.
    """
    sources: dict[tuple, list[str]] = {}
    for stem, values in parameters.items():
        declared = get_notebook_parameters(stem)
        if "dataset" not in declared:
            continue
        key = tuple(values[name] if name in values else get_default(declared, name) for name in DATASET_KEYS)
        sources.setdefault(key, []).append(stem)
    return sources


def check_datasets(parameters: dict[str, dict]) -> dict[str, str]:
    """Find every dataset the run needs, once, before any kernel starts; raise one error for all problems.

    Returns
    -------
    found : dict of str to str
        Dataset name -> where it was found.

    Raises
    ------
    DatasetError
        Naming each missing or corrupt dataset, the notebooks that need it, the places tried and the fix.
    """
    found, problems = {}, []
    for (name, data_dir, images_csv, labels_csv), stems in find_datasets(parameters).items():
        try:
            found[name] = check_dataset(name, data_dir=data_dir or None, images_csv=images_csv or None,
                                        labels_csv=labels_csv or None)
        except (DatasetError, ParameterError) as error:
            problems.append(f"dataset {name!r} (needed by {', '.join(stems)}): {error}")
    problems += _check_field_folders(parameters)
    if problems:
        raise DatasetError("the run did not start, because a dataset it needs is not usable:\n"
                           + "\n".join(problems))
    return found


def _check_field_folders(parameters: dict[str, dict]) -> list[str]:
    """Check the labelled folder trees of 05's field_data and threshold_field_data and 08's office_data; one
    problem each.

    Each problem also says how to run without the set, since a profile may name sets that a machine lacks.
    """
    problems = []
    for stem, values in parameters.items():
        section = SECTIONS.get(stem, stem)
        for key, without in (("field_data", "=[]"),
                             ("threshold_field_data", "=[] (the threshold is then chosen on validation alone, and "
                                                      "may let more errors through on other writers' digits)"),
                             ("office_data", "= (scikit-learn's 8x8 digits then stand in for the office's)")):
            folders = values.get(key) or []
            for folder in [folders] if isinstance(folders, str) else folders:
                try:
                    check_field_folders([folder], data_dir=values.get("data_dir") or None)
                except DatasetError as error:
                    problems.append(f"{key} of {stem}: {error} To run without these digits: "
                                    f"--set {section}.{key}{without}")
    return problems


def check_deployment_model(parameters: dict[str, dict], *, cluster: str | None = None) -> None:
    """Make sure 05_deployment and 08_adaptation will have a model to read, before any kernel starts.

    Raises
    ------
    ParameterError
        When ``model_path`` names no saved model (a ``.keras`` file with its JSON beside it), or when it is empty
        and the run leaves out 04_cnn, which saves the model these notebooks read.
    """
    for stem in SAVED_MODEL_NOTEBOOKS:
        values = parameters.get(stem)
        if values is None:
            continue
        key = f"{SECTIONS[stem]}.model_path"
        model_path = values.get("model_path") or ""
        if model_path and cluster:
            raise ParameterError(f"{key} = {model_path!r}: with --cluster, {stem} reads the CNN that 04_cnn trains "
                                 "in the same run (a path of this machine means nothing on a worker); leave "
                                 "model_path empty, or run without --cluster.")
        if model_path:
            path = Path(model_path).expanduser()
            if not path.is_file() or not path.with_suffix(".json").is_file():
                raise ParameterError(f"{key} = {model_path!r}: no saved model there (a .keras file with its .json "
                                     "beside it, as 04_cnn saves in models/); give such a file, or leave model_path "
                                     "empty to read the CNN this run trains.")
        elif "04_cnn" not in parameters:
            raise ParameterError(f"{stem} reads the CNN that 04_cnn saves in the same run, but this run leaves 04_cnn "
                                 f"out; add it (`--only cnn {SECTIONS[stem]}`) or set {key}=PATH to a saved .keras "
                                 "file (e.g. reports/latest/models/cnn_selected.keras).")
