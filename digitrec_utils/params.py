"""Parameter profiles: loading, merging and validating them before any notebook runs.

A profile is a YAML file of flat common keys (``dataset``, ``seed``, ...) and one optional flat section
per notebook (``eda:``, ``classical:``, ...). A common key goes to every notebook whose parameters cell
declares it; a section's keys go to its notebook only. Which keys a notebook takes comes from its parameters
cell (``papermill.inspect_notebook``); their types, ranges and allowed values from
:mod:`digitrec_utils.declarations`. Papermill itself only warns about unknown parameters and YAML reads
``1e-3`` as a string, so both are handled here.
"""

from __future__ import annotations

import ast
import difflib
import re
from functools import cache
from pathlib import Path
from typing import Any

import papermill
import yaml

from digitrec_utils import config
from digitrec_utils.data.splits import count_training_images
from digitrec_utils.declarations import PARAMETERS
from digitrec_utils.exceptions import ParameterError
from digitrec_utils.settings import find_problem, find_relation_problems
from digitrec_utils.utils.acceleration import find_gpus_cheaply

# Section name in a profile -> notebook stem.
NOTEBOOKS = {
    "eda": "01_eda",
    "classical": "02_classical_baselines",
    "dense": "03_dense_nets",
    "cnn": "04_cnn",
    "deployment": "05_deployment",
    "comparison": "06_model_comparison",
    "stability": "07_stability",
    "adaptation": "08_adaptation",
}
# Notebook stem -> its section name in a profile (``05_deployment`` -> ``deployment``).
SECTIONS = {stem: section for section, stem in NOTEBOOKS.items()}
# Notebooks that read the others' results or saved models and so run last, one at a time, in this order: 08
# adapts the model 05 saved a threshold for, and 06's model card reads 05's and 08's records.
DEPENDENT_NOTEBOOKS = ("05_deployment", "08_adaptation", "06_model_comparison")
# The parameters that make each notebook lighter, named when one of its cells is stopped as hung so that a
# reader who knows it was only slow can lighten the run (digitrec_utils.running.execution).
LIGHTER_PARAMETERS = {
    "01_eda": ("eda.pca_points",),
    "02_classical_baselines": ("classical.train_size", "classical.models", "classical.svm_train_size",
                               "classical.boosting_train_size", "classical.boosting_max_iter"),
    "03_dense_nets": ("dense.train_size", "dense.zoo", "dense.zoo_epochs", "dense.experiments",
                      "dense.experiment_epochs", "dense.search_epochs"),
    "04_cnn": ("cnn.train_size", "cnn.networks", "cnn.epochs", "cnn.modern_epochs", "cnn.modern_members",
               "cnn.modern_scan_copies", "cnn.cv_folds", "cnn.cv_epochs"),
    "05_deployment": ("deployment.n_test_images", "deployment.corruptions", "deployment.severities",
                      "deployment.n_nondigit_images"),
    "06_model_comparison": (),
    "07_stability": (),
    "08_adaptation": ("adaptation.label_counts", "adaptation.repeats", "adaptation.compare_suggested"),
}
# Set by `digitrec run` itself, never by a profile.
RESERVED_KEYS = ("output_dir", "sweep_dir")


_SCALAR_TYPES = {"int": int, "float": float, "str": str, "bool": bool}
_FLOAT_PATTERN = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


@cache
def _inspect(notebook_path: str, modified: float) -> dict[str, dict]:
    return papermill.inspect_notebook(notebook_path)


def get_notebook_parameters(notebook: str | Path) -> dict[str, dict]:
    """Return a notebook's declared parameters: name -> {inferred_type_name, default, help}.

    Parameters
    ----------
    notebook : str or Path
        A stem such as ``"01_eda"`` (looked up in ``notebooks/``) or a path to an ``.ipynb``.
    """
    path = Path(notebook)
    if path.suffix != ".ipynb":
        path = config.NOTEBOOKS_DIR / f"{notebook}.ipynb"
    if not path.is_file():
        raise ParameterError(f"notebook {path} not found; available: {', '.join(list_notebooks())}.")
    return _inspect(str(path), path.stat().st_mtime)


def get_default(schema: dict[str, dict], key: str) -> Any:
    """Return a parameter's default, as written in its notebook's parameters cell, as a Python value.

    Parameters
    ----------
    schema : dict
        From :func:`get_notebook_parameters`.
    key : str

    Returns
    -------
    value : object
        None when the notebook does not declare ``key``; the text itself when it is not a literal.
    """
    default = schema.get(key, {}).get("default")
    try:
        return ast.literal_eval(default) if default is not None else None
    except (ValueError, SyntaxError):
        return default


def resolve_with_defaults(profile: dict, notebook: str, *, overrides: list[str] = ()) -> dict:
    """Return every parameter of ``notebook``: its defaults, with the profile's and overrides' values over them.

    The values are validated as ``digitrec run`` validates them. For benchmarks that run one notebook's code
    outside papermill, and so need the values the notebook would see.
    """
    schema = get_notebook_parameters(notebook)
    values = {key: get_default(schema, key) for key in schema}
    values.update(resolve_parameters(profile, [notebook], overrides=overrides)[notebook])
    return values


def list_notebooks() -> list[str]:
    """Return the stems of the suite's notebooks present in ``notebooks/``, in run order."""
    return [stem for stem in NOTEBOOKS.values() if (config.NOTEBOOKS_DIR / f"{stem}.ipynb").is_file()]


def resolve_notebook_name(name: str) -> str:
    """Map a section name (``eda``) or a stem (``01_eda``) to the notebook's stem, or raise."""
    if name in NOTEBOOKS:
        return NOTEBOOKS[name]
    if name in NOTEBOOKS.values():
        return name
    allowed = list(NOTEBOOKS) + list(NOTEBOOKS.values())
    raise ParameterError(f"--only: unknown notebook {name!r}; allowed values are {', '.join(NOTEBOOKS)} "
                         f"(or {', '.join(NOTEBOOKS.values())}){_suggest(name, allowed)}")


def locate_profile(path: str | Path) -> Path:
    """Return the profile file ``path`` names: that file, or else the profile of that name among digitrec's own.

    ``params/mnist.yaml``, ``mnist.yaml`` and ``mnist`` all name ``mnist.yaml`` of :data:`config.PARAMS_DIR`
    where no such file exists here (digitrec installed from a wheel, run from any folder).

    Raises
    ------
    ParameterError
        When neither exists; the message lists the profiles there are.
    """
    path = Path(path)
    if path.is_file():
        return path
    own = config.PARAMS_DIR / (path.name if path.suffix == ".yaml" else f"{path.name}.yaml")
    if own.is_file():
        return own
    profiles = sorted(config.PARAMS_DIR.glob("*.yaml"))
    available = ", ".join(f"params/{item.name}" for item in profiles)
    raise ParameterError(f"profile {path} not found. Available profiles: {available or 'none'}.")


def load_profile(path: str | Path) -> dict:
    """Read a YAML profile, with errors that name the file and the line.

    Raises
    ------
    ParameterError
        When the file is missing, empty, not YAML, or not a mapping.
    """
    path = locate_profile(path)
    try:
        profile = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ParameterError(f"profile {path} is not valid YAML: {error}") from None
    if profile is None:
        raise ParameterError(f"profile {path} is empty; a profile names at least its dataset (dataset: mnist-sample) "
                             "and the parameters it changes. Start from a copy of params/sample.yaml.")
    if not isinstance(profile, dict):
        raise ParameterError(f"profile {path} must be a mapping of keys to values, not a {type(profile).__name__}.")
    return profile


def parse_override(text: str) -> tuple[str | None, str, Any]:
    """Parse ``--set key=value`` or ``--set section.key=value``; the value is read as YAML."""
    if "=" not in text:
        raise ParameterError(f"--set {text!r}: expected key=value (or section.key=value), e.g. --set seed=1.")
    key, raw_value = text.split("=", 1)
    key = key.strip()
    section = None
    if "." in key:
        section, key = key.split(".", 1)
        if section not in NOTEBOOKS:
            raise ParameterError(f"--set {text!r}: unknown section {section!r}; sections are "
                                 f"{', '.join(NOTEBOOKS)}{_suggest(section, NOTEBOOKS)}")
    try:
        value = yaml.safe_load(raw_value) if raw_value.strip() else ""
    except yaml.YAMLError:
        value = raw_value
    return section, key, value


def resolve_parameters(profile: dict, notebooks: list[str], *, overrides: list[str] = (), source: str = "profile"):
    """Merge a profile and overrides into validated parameters for each selected notebook.

    Parameters
    ----------
    profile : dict
        From :func:`load_profile`.
    notebooks : list of str
        The stems that will run.
    overrides : list of str
        ``--set`` arguments, applied on top of the profile.
    source : str
        Names the profile in messages.

    Returns
    -------
    parameters : dict of str to dict
        Notebook stem -> its parameters, with values coerced to the declared types.

    Raises
    ------
    ParameterError
        Listing every problem found: unknown keys or sections (with close matches), wrong types,
        out-of-range values, and reserved keys.
    """
    problems: list[str] = []
    common = {key: value for key, value in profile.items() if not isinstance(value, dict)}
    sections = {key: dict(value) for key, value in profile.items() if isinstance(value, dict)}
    for name in list(sections):
        if name not in NOTEBOOKS:
            problems.append(f"{source}: unknown section {name!r}; sections are {', '.join(NOTEBOOKS)}"
                            f"{_suggest(name, NOTEBOOKS)} Keys are flat, so a section's values cannot be mappings.")
            del sections[name]
    # Where each key was set, so that a problem names the --set argument rather than the profile it overrode.
    origins: dict[tuple[str | None, str], str] = {}
    for text in overrides:
        section, key, value = parse_override(text)
        (sections.setdefault(section, {}) if section else common)[key] = value
        origins[(section, key)] = f"--set {text!r}"

    declared = {stem: get_notebook_parameters(stem) for stem in list_notebooks()}
    known_anywhere = set().union(*declared.values()) if declared else set()
    for key in common:
        if key in RESERVED_KEYS:
            problems.append(f"{origins.get((None, key), source)}: {key!r} is set by digitrec run itself; remove it "
                            "(use --out for the folder).")
        elif key not in known_anywhere:
            problems.append(f"{origins.get((None, key), source)}: unknown key {key!r}; no notebook declares it"
                            f"{_suggest(key, known_anywhere)} "
                            f"Known keys: {', '.join(sorted(known_anywhere))}.")
    resolved: dict[str, dict] = {}
    for stem in notebooks:
        schema = get_notebook_parameters(stem)
        section_name = SECTIONS[stem]
        values = {key: value for key, value in common.items() if key in schema and key not in RESERVED_KEYS}
        for key, value in sections.get(section_name, {}).items():
            if key in RESERVED_KEYS:
                problems.append(f"{origins.get((section_name, key), source)}: {section_name}.{key} is set by "
                                "digitrec run itself; remove it.")
            elif key not in schema:
                problems.append(f"{origins.get((section_name, key), source)}: unknown key {key!r} for notebook {stem} "
                                f"(section {section_name!r})"
                                f"{_suggest(key, schema)} Its parameters are: {', '.join(sorted(schema))}.")
            else:
                values[key] = value
        checked = {}
        for key, value in values.items():
            try:
                checked[key] = coerce_value(key, value, schema[key].get("inferred_type_name", "None"), stem)
            except ParameterError as error:
                problems.append(str(error))
        problems += _check_relations(stem, checked, schema)
        resolved[stem] = checked
    if problems:
        raise ParameterError("invalid parameters:\n" + "\n".join(f"  - {problem}" for problem in problems))
    return resolved


def coerce_value(key: str, value: Any, type_name: str, notebook: str = "") -> Any:
    """Check ``value`` against the key's declared type and allowed values; return it converted.

    Parameters
    ----------
    key : str
    value : object
    type_name : str
        The type of a key that :mod:`digitrec_utils.declarations` does not declare, as papermill infers it from
        the annotation: ``int``, ``float``, ``str``, ``bool``, ``list[int]``, ``int | None``,
        ``Optional[float]``, ...; ``None`` means unannotated.
    notebook : str
        Names the notebook in messages.
    """
    where = f"{notebook}: " if notebook else ""
    type_name = (PARAMETERS[key].type if key in PARAMETERS else type_name).replace(" ", "")
    nullable = False
    optional = re.fullmatch(r"Optional\[(.+)\]", type_name)
    if optional:
        type_name, nullable = optional.group(1), True
    elif "|None" in type_name or type_name.startswith("None|"):
        type_name, nullable = type_name.replace("|None", "").replace("None|", ""), True
    if value is None:
        if nullable or type_name == "None":
            return None
        raise ParameterError(f"{where}{key} must not be empty; expected {type_name}.")
    list_type = re.fullmatch(r"(?:list|List)\[(\w+)\]", type_name)
    if list_type:
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        converted = [_coerce_scalar(key, item, list_type.group(1), where) for item in items]
    elif type_name in _SCALAR_TYPES:
        converted = _coerce_scalar(key, value, type_name, where)
    else:
        converted = value
    problem = find_problem(key, converted)
    if problem:
        raise ParameterError(f"{where}{problem}")
    return converted


def _coerce_scalar(key: str, value: Any, type_name: str, where: str) -> Any:
    """Convert one scalar to ``type_name`` where that is lossless, or raise ParameterError naming the type."""
    expected = _SCALAR_TYPES.get(type_name)
    converted = value
    if expected is float and isinstance(value, str) and _FLOAT_PATTERN.match(value.strip()):
        converted = float(value)  # YAML 1.1 reads 1e-3 as a string.
    elif expected is float and isinstance(value, int) and not isinstance(value, bool):
        converted = float(value)
    elif expected is int and isinstance(value, float) and value.is_integer():
        converted = int(value)
    wrong_type = expected is not None and not isinstance(converted, expected)
    if wrong_type or (expected not in (None, bool) and isinstance(converted, bool)):
        raise ParameterError(f"{where}{key} = {value!r} has the wrong type: expected {type_name}, "
                             f"got {type(value).__name__}.")
    return converted


def _check_relations(notebook: str, values: dict, schema: dict) -> list[str]:
    """Return problems that involve several parameters of one notebook, e.g. k against the training size.

    Parameters
    ----------
    notebook : str
    values : dict
        The notebook's values that a profile or override set, already coerced.
    schema : dict
        Its declared parameters, whose defaults fill in what ``values`` leaves out.
    """

    def value_of(key):
        return values[key] if key in values else get_default(schema, key)

    problems = [f"{notebook}: {problem}" for problem in find_relation_problems({key: value_of(key) for key in schema})]
    if value_of("precision") == "mixed_float16" and not find_gpus_cheaply():
        problems.append(f"{notebook}: precision = 'mixed_float16' needs an NVIDIA GPU and none is visible; use "
                        "'auto' (bfloat16 where the CPU has it, otherwise float32), 'mixed_bfloat16' or 'float32'.")
    if "knn_k" not in schema:
        return problems
    n_train = count_training_images(value_of("dataset"), test_fraction=value_of("test_fraction") or 0.2,
                                    val_fraction=value_of("val_fraction") or 0.1,
                                    train_size=value_of("train_size") or None)
    if n_train is None:
        return problems  # A CSV's size is known only once it is read; the notebook checks then.
    too_large = [k for k in value_of("knn_k") or [] if k > n_train]
    if too_large:
        problems.append(f"{notebook}: knn_k {too_large!r} is larger than the {n_train:,} training images of "
                        f"{value_of('dataset')!r} (after the validation split); each k must be from 1 to {n_train:,}.")
    for key in ("train_size", "svm_train_size", "boosting_train_size"):
        size = value_of(key)
        if size and size < 20:
            problems.append(f"{notebook}: {key} = {size} is too small; use 0 for all training images or at least 20.")
    return problems


def _suggest(word: str, candidates) -> str:
    """End a sentence: '; did you mean ...?' with the close matches of ``word``, or a full stop where none is close."""
    matches = difflib.get_close_matches(word, list(candidates), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(match) for match in matches)}?" if matches else "."
