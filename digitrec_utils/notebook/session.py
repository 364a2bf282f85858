"""How every notebook opens and closes: one call each.

:func:`open_notebook` sets the look of figures, reads the notebook's parameters from its namespace, starts the
step timings and loads its data; :func:`close_notebook` shows the provenance and saves the results record. A
notebook's first cell after its parameters is then a few lines that say what it is about, and each notebook
opens and closes the same way. 05's opening is its own: it analyses the run's saved model, or trains a small
one when there is none (:func:`acquire_deployment_model`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from digitrec_utils.data.loading import load_dataset
from digitrec_utils.data.splits import choose_split_seed, make_splits
from digitrec_utils.data.types import Dataset, Splits
from digitrec_utils.notebook.display import Timings, collect_parameters, configure_notebook, show_provenance
from digitrec_utils.reporting.results import build_results, save_results

# What open_notebook loads: nothing, the dataset (train and test), or the dataset and its splits.
DATA_CHOICES = ("none", "dataset", "splits")


@dataclass
class NotebookSession:
    """What an open notebook works with.

    Attributes
    ----------
    notebook : str
        Its stem, e.g. ``"02_classical_baselines"``.
    parameters : dict
        Its parameters as the run set them (what the report records).
    timings : Timings
        Seconds per named step, recorded in its results.
    loaded : Dataset, optional
    splits : Splits, optional
    data_seed : int, optional
        The seed of the held-out test split, the validation split and the training subsample.
    """

    notebook: str
    parameters: dict
    timings: Timings = field(default_factory=Timings)
    loaded: Dataset | None = None
    splits: Splits | None = None
    data_seed: int | None = None


def open_notebook(notebook: str, namespace: dict, *, data: str = "none") -> NotebookSession:
    """Open a notebook: the look of its figures, its parameters, its timings and, where asked, its data.

    Parameters
    ----------
    notebook : str
        The stem, e.g. ``"02_classical_baselines"``.
    namespace : dict
        ``globals()`` of the running notebook, after papermill injected the run's values.
    data : {"none", "dataset", "splits"}
        What to load, timed as the step "load data": the dataset its parameters name, and its training part
        split into training and validation (``val_fraction``, ``train_size``).

    Returns
    -------
    session : NotebookSession
    """
    if data not in DATA_CHOICES:
        raise ValueError(f"data = {data!r}: expected one of {', '.join(DATA_CHOICES)}.")
    configure_notebook()
    session = NotebookSession(notebook, collect_parameters(notebook, namespace))
    if data == "none":
        return session
    with session.timings.measure("load data"):
        load_named_data(session, split=data == "splits")
    print(session.loaded)
    if session.splits is not None:
        print(session.splits)
    return session


def close_notebook(session: NotebookSession, *, dataset_info: dict | None = None, seed: int | None = None,
                   provenance: bool = True, **fields) -> Path | None:
    """Close a notebook: show its provenance and save its results record into the run folder.

    Parameters
    ----------
    session : NotebookSession
    dataset_info : dict, optional
        The dataset the record names; by default the one the notebook loaded.
    seed : int, optional
        The seed the record names; by default the ``seed`` parameter.
    provenance : bool, default=True
        Show parameters, dataset checksum, versions, git commit and timings first.
    **fields
        The rest of the record (:func:`digitrec_utils.reporting.results.build_results`): ``headline``,
        ``models``, ``selected_model``, ``test_labels``, ...

    Returns
    -------
    path : Path or None
        The saved record; None when the notebook runs outside ``digitrec run`` (no ``output_dir``).
    """
    parameters = session.parameters
    dataset_info = dataset_info if dataset_info is not None else session.loaded.to_dict()
    if provenance:
        show_provenance(parameters, dataset_info, session.timings)
    record = build_results(session.notebook, dataset_info, parameters,
                           seed=parameters["seed"] if seed is None else seed, timings=session.timings.as_dict(),
                           **fields)
    return save_results(record, parameters.get("output_dir") or "")


def load_named_data(session: NotebookSession, *, split: bool) -> None:
    """Load into ``session`` the dataset its parameters name (an empty path meaning the default places), seeded by
    ``split_seed`` (else ``seed``), and with ``split`` its training part split into training and validation."""
    parameters = session.parameters
    session.data_seed = choose_split_seed(parameters["split_seed"], parameters["seed"])
    session.loaded = load_dataset(parameters["dataset"], data_dir=parameters["data_dir"] or None,
                                  images_csv=parameters["images_csv"] or None,
                                  labels_csv=parameters["labels_csv"] or None,
                                  test_fraction=parameters["test_fraction"], seed=session.data_seed)
    if split:
        session.splits = make_splits(session.loaded, val_fraction=parameters["val_fraction"], seed=session.data_seed,
                                     train_size=parameters["train_size"] or None)
