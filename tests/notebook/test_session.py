"""open_notebook and close_notebook: every notebook opens and closes through them, so they are tested alone too."""

from __future__ import annotations

import json

import pytest

from digitrec_utils.data.loading import load_dataset
from digitrec_utils.declarations import PARAMETERS
from digitrec_utils.notebook import close_notebook, open_notebook
from digitrec_utils.notebook.display import list_parameter_names
from digitrec_utils.params import get_notebook_parameters, list_notebooks


def _namespace(notebook: str, **values) -> dict:
    """What papermill leaves in a notebook's globals: every parameter at its default, and the run's values."""
    defaults = {key: PARAMETERS[key].default_for(notebook) for key in get_notebook_parameters(notebook)}
    defaults = {key: list(value) if isinstance(value, tuple) else value for key, value in defaults.items()}
    return {**defaults, **values, "unrelated": object()}


def test_a_notebook_opens_with_its_parameters_its_timings_and_its_dataset():
    session = open_notebook("01_eda", _namespace("01_eda", dataset="digits", seed=3), data="dataset")
    assert set(session.parameters) == set(get_notebook_parameters("01_eda"))  # Only its own parameters.
    assert session.parameters["seed"] == 3 and session.data_seed == 3  # split_seed -1 follows seed.
    expected = load_dataset("digits", test_fraction=session.parameters["test_fraction"], seed=3)
    assert session.loaded.sha256 == expected.sha256
    assert (session.loaded.y_test == expected.y_test).all()
    assert session.splits is None and "load data" in session.timings.as_dict()


def test_splits_follow_val_fraction_train_size_and_split_seed():
    namespace = _namespace("02_classical_baselines", dataset="digits", seed=1, split_seed=5, val_fraction=0.25,
                           train_size=400)
    session = open_notebook("02_classical_baselines", namespace, data="splits")
    splits = session.splits
    assert session.data_seed == 5
    assert len(splits.y_train) + len(splits.y_val) == 400
    assert len(splits.y_val) == pytest.approx(100, abs=1)
    again = open_notebook("02_classical_baselines", {**namespace, "seed": 2}, data="splits").splits
    assert (again.y_val == splits.y_val).all()  # The split follows split_seed, not seed.


def test_opening_without_data_loads_nothing_and_an_unknown_choice_is_refused():
    session = open_notebook("06_model_comparison", _namespace("06_model_comparison"))
    assert session.loaded is None and session.timings.as_dict() == {}
    with pytest.raises(ValueError, match="data = 'all'"):
        open_notebook("06_model_comparison", _namespace("06_model_comparison"), data="all")


def test_closing_saves_a_valid_record_into_the_run_folder_and_nothing_without_one(tmp_path):
    namespace = _namespace("01_eda", dataset="digits", output_dir=str(tmp_path))
    session = open_notebook("01_eda", namespace, data="dataset")
    path = close_notebook(session, headline="a headline", provenance=False)
    record = json.loads(path.read_text())
    assert path == tmp_path / "results" / "01_eda.json"
    assert record["notebook"] == "01_eda" and record["headline"] == "a headline" and record["seed"] == 42
    assert record["dataset"]["sha256"] == session.loaded.sha256 and "load data" in record["timings"]
    unsaved = open_notebook("01_eda", {**namespace, "output_dir": ""}, data="dataset")
    assert close_notebook(unsaved, headline="x", provenance=False) is None
    assert sorted(item.name for item in (tmp_path / "results").iterdir()) == ["01_eda.json"]


@pytest.mark.parametrize("notebook", list_notebooks())
def test_a_kernel_reads_the_parameter_names_papermill_reads_without_importing_it(notebook):
    assert list_parameter_names(notebook) == list(get_notebook_parameters(notebook))


def test_a_notebook_kernel_imports_neither_papermill_nor_jsonschema():
    """Each costs every kernel seconds at its start (jsonschema parses an IRI grammar with Lark on import)."""
    import subprocess
    import sys

    code = ("import sys\nfrom digitrec_utils import notebook, plots\nfrom digitrec_utils.engines import eda\n"
            "print(sorted(name for name in ('papermill', 'nbformat', 'jsonschema', 'lark') if name in sys.modules))")
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert printed.strip() == "[]"
