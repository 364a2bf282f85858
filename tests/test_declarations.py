"""One declaration per parameter: the notebooks' cells, the settings and the vocabulary tables agree with it."""

from __future__ import annotations

import ast
import pathlib
import re
import subprocess
import sys

import pytest

from digitrec_utils import config, declarations
from digitrec_utils.declarations import PARAMETERS
from digitrec_utils.exceptions import ParameterError
from digitrec_utils.params import get_default, get_notebook_parameters, list_notebooks
from digitrec_utils.settings import check_value, find_problem

PACKAGE = pathlib.Path(declarations.__file__).parent


def _cells():
    """(notebook stem, key, what its parameters cell says) for every parameter of every notebook."""
    return [(stem, key, details) for stem in list_notebooks()
            for key, details in get_notebook_parameters(stem).items()]


@pytest.mark.parametrize(("stem", "key", "cell"), _cells(), ids=lambda value: value if isinstance(value, str) else "")
def test_each_notebook_parameter_matches_its_declaration(stem, key, cell):
    """A parameters cell that changes a default, a type or a help text without the declaration fails here."""
    assert key in PARAMETERS, f"{stem}: {key} is not declared in digitrec_utils/declarations.py"
    declaration = PARAMETERS[key]
    assert cell["inferred_type_name"].replace(" ", "") == declaration.type.replace(" ", "")
    default = get_default({key: cell}, key)
    declared = declaration.default_for(stem)
    assert (list(declared) if isinstance(declared, tuple) else declared) == default
    assert cell["help"] == declaration.help_for(stem)


def test_every_declaration_is_a_parameter_of_some_notebook():
    used = {key for _, key, _ in _cells()}
    assert set(PARAMETERS) - used == set()
    # The per-notebook exceptions name notebooks that declare the key.
    for key, declaration in PARAMETERS.items():
        for stem in {*declaration.notebook_defaults, *declaration.notebook_help}:
            assert key in get_notebook_parameters(stem), f"{key}: {stem} does not declare it"


@pytest.mark.parametrize("key", [key for key, declaration in PARAMETERS.items()
                                 if declaration.type.startswith("list") and declaration.default == []])
def test_a_list_that_is_empty_by_default_may_be_set_empty(key):
    """A profile must be able to write what the notebook itself defaults to."""
    assert PARAMETERS[key].empty_allowed
    assert find_problem(key, []) is None


@pytest.mark.parametrize("key", [key for key, declaration in PARAMETERS.items()
                                 if declaration.minimum is not None or declaration.maximum is not None])
def test_each_declared_bound_is_enforced_by_the_one_check(key):
    """Just past each bound is refused, naming the key; the bound itself is allowed unless exclusive."""
    declaration = PARAMETERS[key]
    is_list = declaration.type.startswith("list")
    step = 1 if "int" in declaration.type else 1e-6
    for bound, outside in ((declaration.minimum, -step), (declaration.maximum, step)):
        if bound is None:
            continue
        with pytest.raises(ParameterError, match=re.escape(key)):
            check_value(key, [bound + outside] if is_list else bound + outside)
        assert (find_problem(key, [bound] if is_list else bound) is None) != declaration.exclusive


def test_the_vocabulary_tables_hold_exactly_the_declared_names():
    """The modules that build networks, corruptions and classical models know the names the parameters allow."""
    from digitrec_utils.data.corruptions import SEVERITIES
    from digitrec_utils.engines.classical import ClassicalSettings
    from digitrec_utils.models.convnets import CNN_ZOO, ROBUSTNESS_CORRUPTIONS
    from digitrec_utils.models.nets import DENSE_ZOO

    assert tuple(CNN_ZOO) == declarations.CNN_NETWORKS
    assert tuple(DENSE_ZOO) == declarations.DENSE_NETWORKS
    assert tuple(ROBUSTNESS_CORRUPTIONS) == declarations.ROBUSTNESS_KINDS
    assert tuple(SEVERITIES) == declarations.CORRUPTION_NAMES
    assert tuple(ClassicalSettings().models) == declarations.CLASSICAL_MODELS


def test_a_limit_is_defined_once_in_the_package():
    """``grep MAX_MODERN_MEMBERS`` finds one definition: no module assigns a declared limit's name again."""
    assigned: dict[str, list[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id.isupper():
                        assigned.setdefault(target.id, []).append(str(path.relative_to(PACKAGE)))
    vocabulary = [name for name in vars(declarations) if name.isupper()]
    repeated = {name: assigned[name] for name in vocabulary if len(assigned.get(name, [])) > 1}
    assert repeated == {}


def test_the_declarations_and_the_layers_above_them_import_nothing_heavy():
    """Each step imports more; what it must not have loaded is checked after it, in one fresh process.

    The declarations import no model or data library; the pre-flight check, the runner, the notebooks that
    train nothing and their engines start without TensorFlow; the command line loads the application layer's
    services on first use (lazy_loader), so ``digitrec --help`` loads no Keras.
    """
    steps = [
        ("digitrec_utils.declarations, digitrec_utils.settings", ("keras", "tensorflow", "sklearn")),
        ("digitrec_utils.params, digitrec_utils.running.runner, digitrec_utils.notebook, digitrec_utils.imaging, "
         "digitrec_utils.engines.eda, digitrec_utils.engines.classical, digitrec_utils.engines.comparison, "
         "digitrec_utils.engines.stability", ("keras", "tensorflow")),
        ("digitrec_utils.cli", ("keras", "tensorflow", "digitrec_utils.application.images")),
    ]
    code = "import sys\n" + "".join(
        f"import {modules}\nprint(sorted(set({list(absent)!r}) & set(sys.modules)))\n" for modules, absent in steps)
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=config.PROJECT_ROOT).stdout.split()
    assert loaded == ["[]"] * len(steps)
