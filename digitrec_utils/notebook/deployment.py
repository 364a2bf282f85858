"""05_deployment's opening: the model it analyses, with the data that model was trained and tested on.

Apart from :mod:`digitrec_utils.notebook.session`, since it needs Keras and 04's engine, which the notebooks that
train nothing should not load.
"""

from __future__ import annotations

from digitrec_utils.data.splits import choose_split_seed
from digitrec_utils.engines.cnn import train_standalone_model
from digitrec_utils.models.acquisition import (
    DeploymentModel,
    adopt_standalone_model,
    find_model,
    load_deployment_model,
    rebuild_split,
)
from digitrec_utils.notebook.session import NotebookSession, load_named_data


def acquire_deployment_model(session: NotebookSession) -> DeploymentModel:
    """Return the model 05 analyses, with its data in ``session``: the run's saved model, else a small one.

    The saved model (``model_path``, else the run's) brings its own dataset and split, rebuilt as it was
    trained. Without one (05 opened alone in JupyterLab, or under nbval) a small ``cnn_modern`` is trained on
    the dataset the parameters name, for ``standalone_epochs`` epochs; the steps are timed as "load model and
    data" and "train a small CNN".
    """
    parameters = session.parameters
    session.data_seed = choose_split_seed(parameters["split_seed"], parameters["seed"])
    output_dir = parameters.get("output_dir") or ""
    with session.timings.measure("load model and data"):
        saved_path = find_model(parameters["model_path"], output_dir)
        if saved_path is not None:
            analysed = load_deployment_model(saved_path, output_dir or None)
            session.loaded, session.splits = rebuild_split(
                analysed.description, data_dir=parameters["data_dir"], images_csv=parameters["images_csv"],
                labels_csv=parameters["labels_csv"])
        else:
            load_named_data(session, split=True)
    if saved_path is None:
        with session.timings.measure("train a small CNN"):
            split = {"seed": session.data_seed, "test_fraction": parameters["test_fraction"],
                     "val_fraction": parameters["val_fraction"], "train_size": parameters["train_size"]}
            model, description = train_standalone_model(session.splits, parameters["dataset"], seed=parameters["seed"],
                                                        epochs=parameters["standalone_epochs"], split=split)
            analysed = adopt_standalone_model(model, description, epochs=parameters["standalone_epochs"],
                                              n_train=len(session.splits.y_train))
    print(session.loaded)
    print(session.splits)
    return analysed
