"""The committed notebooks: no outputs, one parameters cell written for papermill --help-notebook."""

from __future__ import annotations

import re

import nbformat
import pytest

from digitrec_utils import config
from digitrec_utils.params import DEPENDENT_NOTEBOOKS, NOTEBOOKS, RESERVED_KEYS, get_notebook_parameters

NOTEBOOK_PATHS = sorted(config.NOTEBOOKS_DIR.glob("*.ipynb"))
PARAMETER_LINE = re.compile(r"^(\w+): [\w\[\]| ]+ = .+  # [A-Z].+\.$")


def test_there_is_at_least_one_notebook():
    assert NOTEBOOK_PATHS, "notebooks/ holds no notebook"


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=lambda path: path.stem)
def test_notebook_is_committed_without_outputs(path):
    notebook = nbformat.read(str(path), as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name} has outputs"


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=lambda path: path.stem)
def test_notebook_has_one_documented_parameters_cell(path):
    assert path.stem in NOTEBOOKS.values()
    notebook = nbformat.read(str(path), as_version=4)
    tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1
    for line in tagged[0].source.splitlines():
        assert PARAMETER_LINE.match(line), f"{path.name}: {line!r} should read 'name: type = default  # Help.'"
    declared = get_notebook_parameters(path.stem)
    written = {PARAMETER_LINE.match(line).group(1) for line in tagged[0].source.splitlines()}
    assert written == set(declared), f"papermill does not read {written - set(declared)} (annotations must be plain)"
    assert "output_dir" in declared and set(RESERVED_KEYS) >= {"output_dir", "sweep_dir"}
    if path.stem == config.STABILITY_NOTEBOOK:
        assert {"sweep_dir", "tolerance"} <= set(declared)  # It reads a sweep's records, or makes two seeds.
    elif path.stem in ("05_deployment", "08_adaptation"):
        assert {"model_path", "dataset", "seed"} <= set(declared)  # A saved model, or a small one of its own.
    elif path.stem in DEPENDENT_NOTEBOOKS:
        assert "results_dir" in declared  # It reads the others' records and loads no data of its own.
    else:
        assert {"dataset", "seed"} <= set(declared)
