"""Parameter profiles: loading, merging and validating them before any notebook runs.

A profile is a YAML file of flat common keys (``dataset``, ``seed``, ...) and one optional flat section
per notebook (``eda:``, ``classical:``, ...). A common key goes to every notebook whose parameters cell
declares it; a section's keys go to its notebook only. Each notebook's parameters cell is the schema:
the names and types come from ``papermill.inspect_notebook``, and ranges and allowed values from
:data:`RULES`. Papermill itself only warns about unknown parameters and YAML reads ``1e-3`` as a string,
so both are handled here.
"""

from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from digitrec_utils import config
from digitrec_utils.data.corruptions import CORRUPTION_NAMES, LEVELS
from digitrec_utils.data.splits import count_training_images
from digitrec_utils.data.types import DATASET_NAMES
from digitrec_utils.exceptions import ParameterError
from digitrec_utils.models.classical_sweeps import KNN_WEIGHTS, TREE_CRITERIA
from digitrec_utils.models.convnets import (
    AUGMENTATIONS,
    CNN_ZOO,
    MAX_ELASTIC_ALPHA,
    MAX_EMA_MOMENTUM,
    ROBUSTNESS_KINDS,
    check_modern_shape,
)
from digitrec_utils.models.nets import DENSE_ZOO, OPTIMIZERS
from digitrec_utils.models.precision import PRECISIONS, find_gpus_cheaply

# Section name in a profile -> notebook stem.
NOTEBOOKS = {
    "eda": "01_eda",
    "classical": "02_classical_baselines",
    "dense": "03_dense_nets",
    "cnn": "04_cnn",
    "deployment": "05_deployment",
    "comparison": "06_model_comparison",
    "stability": "07_stability",
}
# Notebook stem -> its section name in a profile (``05_deployment`` -> ``deployment``).
SECTIONS = {stem: section for section, stem in NOTEBOOKS.items()}
# Notebooks that train and evaluate models, each writing one results record of them.
MODEL_NOTEBOOKS = ("02_classical_baselines", "03_dense_nets", "04_cnn")
# Notebooks that read the others' results or saved models and so run last, one at a time, in this order.
DEPENDENT_NOTEBOOKS = ("05_deployment", "06_model_comparison")
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
}
# List parameters for which an empty list means "none" rather than a mistake.
# 05_deployment's field sets are empty by default: no field_data reports scikit-learn's 8x8 digits, and no
# threshold_field_data chooses on validation alone; a profile that names them must be able to drop them.
EMPTY_LISTS_ALLOWED = ("modern_robustness", "field_data", "threshold_field_data")
# Set by `digitrec run` itself, never by a profile.
RESERVED_KEYS = ("output_dir", "sweep_dir")


@dataclass(frozen=True)
class Rule:
    """Allowed values of one parameter: a set of choices, or bounds (exclusive where said)."""

    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive: bool = False

    def describe(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(repr(choice) for choice in self.choices)
        low = "" if self.minimum is None else f"{self.minimum} {'<' if self.exclusive else '<='} "
        high = "" if self.maximum is None else f" {'<' if self.exclusive else '<='} {self.maximum}"
        return f"{low}value{high}"

    def allows(self, value: Any) -> bool:
        if self.choices is not None:
            return value in self.choices
        if self.minimum is not None and (value <= self.minimum if self.exclusive else value < self.minimum):
            return False
        return not (self.maximum is not None and (value >= self.maximum if self.exclusive else value > self.maximum))


# Allowed values of the classical notebook's choices; digitrec_utils.engines.classical uses the same tuples.
CLASSICAL_MODELS = ("knn", "tree", "logreg", "forest", "svm", "boosting")
FOREST_MAX_FEATURES = ("sqrt", "log2")
SVM_METHODS = ("exact", "nystroem")
# The dense notebook's choices; digitrec_utils.engines.dense uses the same tuples.
DENSE_EXPERIMENTS = ("width", "depth", "optimizer", "dropout", "batch_epochs", "scaling", "smallest")
SCALINGS = ("divide", "standardize")

RULES: dict[str, Rule] = {
    "dataset": Rule(choices=DATASET_NAMES),
    "seed": Rule(minimum=0, maximum=2**32 - 1),
    "split_seed": Rule(minimum=-1, maximum=2**32 - 1),
    "val_fraction": Rule(minimum=0.0, maximum=1.0, exclusive=True),
    "test_fraction": Rule(minimum=0.0, maximum=1.0, exclusive=True),
    "train_size": Rule(minimum=0),
    "n_grid_images": Rule(minimum=1, maximum=200),
    "images_per_class": Rule(minimum=1, maximum=30),
    "pca_points": Rule(minimum=10, maximum=100_000),
    "standardize_examples": Rule(minimum=1, maximum=20),
    "models": Rule(choices=CLASSICAL_MODELS),
    "knn_k": Rule(minimum=1),
    "knn_weights": Rule(choices=KNN_WEIGHTS),
    "tree_criteria": Rule(choices=TREE_CRITERIA),
    "tree_min_depth": Rule(minimum=1, maximum=200),
    "tree_max_depth": Rule(minimum=1, maximum=200),
    "logreg_c": Rule(minimum=0.0, exclusive=True),
    "logreg_max_iter": Rule(minimum=1),
    "forest_trees": Rule(minimum=1, maximum=5000),
    "forest_max_features": Rule(choices=FOREST_MAX_FEATURES),
    "svm_method": Rule(choices=SVM_METHODS),
    "svm_c": Rule(minimum=0.0, exclusive=True),
    "svm_train_size": Rule(minimum=0),
    "svm_components": Rule(minimum=10, maximum=20_000),
    "svm_max_iter": Rule(minimum=1),
    "svm_pca_components": Rule(minimum=0, maximum=784),
    "boosting_learning_rate": Rule(minimum=0.0, maximum=10.0, exclusive=True),
    "boosting_max_iter": Rule(minimum=1, maximum=10_000),
    "boosting_train_size": Rule(minimum=0),
    "n_jobs": Rule(minimum=-1, maximum=1024),
    "n_misclassified": Rule(minimum=0, maximum=200),
    "zoo": Rule(choices=tuple(DENSE_ZOO)),
    "zoo_watching_accuracy": Rule(choices=tuple(DENSE_ZOO)),
    "standardized_zoo": Rule(choices=tuple(DENSE_ZOO)),
    "zoo_epochs": Rule(minimum=0, maximum=1000),
    "patience": Rule(minimum=1, maximum=1000),
    "reduce_lr_patience": Rule(minimum=0, maximum=1000),
    "modern_robustness": Rule(choices=tuple(ROBUSTNESS_KINDS)),
    "modern_outlier_exposure": Rule(minimum=0.0, maximum=1.0),
    "modern_scan_copies": Rule(minimum=0.0, maximum=3.0),
    "modern_elastic": Rule(minimum=0.0, maximum=MAX_ELASTIC_ALPHA),
    "modern_members": Rule(minimum=1, maximum=5),
    "target_accepted_accuracy": Rule(minimum=0.5, maximum=1.0, exclusive=True),
    "corruptions": Rule(choices=CORRUPTION_NAMES),
    "severities": Rule(choices=LEVELS),
    "n_test_images": Rule(minimum=0),
    "n_nondigit_images": Rule(minimum=10, maximum=100_000),
    "n_examples": Rule(minimum=1, maximum=50),
    "standalone_epochs": Rule(minimum=1, maximum=100),
    "speed_batch_size": Rule(minimum=1, maximum=65_536),
    "scaling": Rule(choices=SCALINGS),
    "scalings": Rule(choices=SCALINGS),
    "experiments": Rule(choices=DENSE_EXPERIMENTS),
    "experiment_epochs": Rule(minimum=1, maximum=1000),
    "experiment_train_size": Rule(minimum=0),
    "experiment_batch_size": Rule(minimum=1, maximum=65_536),
    "base_units": Rule(minimum=1, maximum=65_536),
    "widths": Rule(minimum=1, maximum=65_536),
    "depths": Rule(minimum=1, maximum=50),
    "optimizers": Rule(choices=OPTIMIZERS),
    "dropouts": Rule(minimum=0.0, maximum=0.95),
    "batch_sizes": Rule(minimum=1, maximum=65_536),
    "epoch_options": Rule(minimum=1, maximum=1000),
    "target_accuracy": Rule(minimum=0.0, maximum=1.0, exclusive=True),
    "search_widths": Rule(minimum=1, maximum=65_536),
    "search_depths": Rule(minimum=1, maximum=50),
    "search_epochs": Rule(minimum=1, maximum=1000),
    "search_train_size": Rule(minimum=0),
    "networks": Rule(choices=tuple(CNN_ZOO)),
    "networks_watching_accuracy": Rule(choices=tuple(CNN_ZOO)),
    "epochs": Rule(minimum=0, maximum=1000),
    "modern_epochs": Rule(minimum=1, maximum=1000),
    "augmentation": Rule(choices=AUGMENTATIONS),
    "augmentation_strength": Rule(minimum=0.0, maximum=0.3),
    "modern_filters": Rule(minimum=1, maximum=1024),
    "modern_convs_per_block": Rule(minimum=1, maximum=5),
    "modern_dense_units": Rule(minimum=1, maximum=65_536),
    "modern_dropout": Rule(minimum=0.0, maximum=0.95),
    "modern_learning_rate": Rule(minimum=0.0, maximum=10.0, exclusive=True),
    "modern_batch_size": Rule(minimum=1, maximum=65_536),
    "modern_ema_momentum": Rule(minimum=0.0, maximum=MAX_EMA_MOMENTUM),
    "label_smoothing": Rule(minimum=0.0, maximum=0.5),
    "cv_model": Rule(choices=tuple(CNN_ZOO)),
    "cv_folds": Rule(minimum=0, maximum=20),
    "cv_epochs": Rule(minimum=1, maximum=1000),
    "n_error_images": Rule(minimum=0, maximum=200),
    "precision": Rule(choices=PRECISIONS),
}


_SCALAR_TYPES = {"int": int, "float": float, "str": str, "bool": bool}
_FLOAT_PATTERN = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


@cache
def _inspect(notebook_path: str, modified: float) -> dict[str, dict]:
    import papermill

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
    """Check ``value`` against a declared type name and the key's rule; return it converted.

    Parameters
    ----------
    key : str
    value : object
    type_name : str
        As papermill infers it from the annotation: ``int``, ``float``, ``str``, ``bool``,
        ``list[int]``, ``int | None``, ``Optional[float]``, ...; ``None`` means unannotated.
    notebook : str
        Names the notebook in messages.
    """
    where = f"{notebook}: " if notebook else ""
    type_name = type_name.replace(" ", "")
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
        if not isinstance(value, (list, tuple)):
            value = [value]
        if len(value) == 0 and key in EMPTY_LISTS_ALLOWED:
            return []
        if len(value) == 0:
            raise ParameterError(f"{where}{key} must not be an empty list; give at least one {list_type.group(1)}.")
        return [_coerce_scalar(key, item, list_type.group(1), where) for item in value]
    if type_name in _SCALAR_TYPES:
        return _coerce_scalar(key, value, type_name, where)
    return value


def _coerce_scalar(key: str, value: Any, type_name: str, where: str) -> Any:
    """Convert one scalar to ``type_name`` where that is lossless, then apply the key's rule."""
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
    rule = RULES.get(key)
    if rule is not None and not rule.allows(converted):
        raise ParameterError(f"{where}{key} = {value!r} is not allowed: expected {rule.describe()}.")
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

    problems = []
    low, high = value_of("tree_min_depth"), value_of("tree_max_depth")
    if low is not None and high is not None and low > high:
        problems.append(f"{notebook}: tree_min_depth = {low} is larger than tree_max_depth = {high}; "
                        "the depths tried run from tree_min_depth to tree_max_depth.")
    if value_of("cv_folds") == 1:
        problems.append(f"{notebook}: cv_folds = 1 is not allowed; use 0 to skip cross-validation or at least 2 "
                        "folds.")
    if "modern_filters" in schema:

        try:
            check_modern_shape(value_of("modern_filters") or [], value_of("modern_convs_per_block") or 0)
        except ParameterError as error:
            problems.append(f"{notebook}: {error}")
    if value_of("precision") == "mixed_float16" and not find_gpus_cheaply():
        problems.append(f"{notebook}: precision = 'mixed_float16' needs an NVIDIA GPU and none is visible; use "
                        "'auto' (bfloat16 where the CPU has it, otherwise float32), 'mixed_bfloat16' or 'float32'.")
    if value_of("n_jobs") == 0:
        problems.append(f"{notebook}: n_jobs = 0 is not allowed; use -1 for all cores or a positive number.")
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
