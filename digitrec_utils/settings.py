"""What every notebook's settings share: defaults and allowed values from the declarations, checked in one place.

:mod:`digitrec_utils.declarations` says what each parameter may be; this module checks values against it, for
the pre-flight check of a profile and for the settings objects that the engines build (scikit-learn checks its
estimators' ``_parameter_constraints`` the same way, with one function). It sits just above the declarations,
so that any layer's settings can use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from digitrec_utils.declarations import PARAMETERS
from digitrec_utils.exceptions import ParameterError


def notebook_settings(notebook: str):
    """Class decorator: make a settings class a dataclass whose fields default to ``notebook``'s declared defaults.

    Each annotated field that names a notebook parameter and has no default of its own gets the default that
    :mod:`digitrec_utils.declarations` gives it for ``notebook``, so that the settings, the notebook's parameters
    cell and the pre-flight check cannot disagree.

    Examples
    --------
    >>> @notebook_settings("04_cnn")
    ... class CnnSettings(SettingsFromParameters):
    ...     modern_members: int
    >>> CnnSettings().modern_members
    1
    """

    def decorate(cls):
        for name in cls.__dict__.get("__annotations__", {}):
            if name in PARAMETERS and name not in cls.__dict__:
                setattr(cls, name, PARAMETERS[name].default_for(notebook))
        return dataclass(cls)

    return decorate


class SettingsFromParameters:
    """Mixin for a notebook's settings dataclass: built from the notebook's parameters, checked against their
    declarations.

    Each field that is a notebook parameter takes its default from the declarations
    (:func:`notebook_settings`), so that whoever calls an engine from Python gets the notebook's experiment.
    """

    @classmethod
    def from_parameters(cls, parameters: dict):
        """Build settings from a notebook's parameters, ignoring keys that are not settings."""
        names = {item.name for item in fields(cls)}
        return cls(**{key: value for key, value in parameters.items() if key in names})

    def check(self) -> None:
        """Raise ParameterError listing every setting out of its declared range and every clash between settings."""
        values = {item.name: getattr(self, item.name) for item in fields(self)}
        problems = [problem for key, value in values.items() if (problem := find_problem(key, value))]
        problems += find_relation_problems(values)
        if problems:
            raise ParameterError("; ".join(problems))


def check_value(key: str, value: Any) -> None:
    """Raise ParameterError naming ``key`` and its allowed values unless ``value`` is allowed.

    For functions of the lower layers that take one parameter's value directly.
    """
    problem = find_problem(key, value)
    if problem:
        raise ParameterError(problem)


def find_problem(key: str, value: Any) -> str | None:
    """Return why ``value`` is not allowed for ``key`` (its range, its choices, an empty list), or None.

    The one check of a parameter's value, whether it came from a profile or from settings built in Python. Types
    are checked where values are read (:func:`digitrec_utils.params.coerce_value`).
    """
    declaration = PARAMETERS.get(key)
    if declaration is None or value is None:
        return None
    if declaration.type.startswith("list"):
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        if not items and not declaration.empty_allowed:
            return f"{key} must not be an empty list; give at least one value ({declaration.describe()})."
        wrong = [item for item in items if not declaration.allows(item)]
        if wrong:
            listed = ", ".join(repr(item) for item in wrong)
            return f"{key} = {listed} is not allowed: expected {declaration.describe()}."
        return None
    if not declaration.allows(value):
        return f"{key} = {value!r} is not allowed: expected {declaration.describe()}."
    return None


def find_relation_problems(values: Mapping[str, Any]) -> list[str]:
    """Return the clashes among several parameters of one notebook, e.g. a smallest tree depth above the largest.

    ``values`` holds the notebook's parameters; the checks of keys it lacks are skipped.
    """
    problems = []
    low, high = values.get("tree_min_depth"), values.get("tree_max_depth")
    if low is not None and high is not None and low > high:
        problems.append(f"tree_min_depth = {low} is larger than tree_max_depth = {high}; the depths tried run from "
                        "tree_min_depth to tree_max_depth.")
    if values.get("cv_folds") == 1:
        problems.append("cv_folds = 1 is not allowed; use 0 to skip cross-validation or at least 2 folds.")
    if values.get("n_jobs") == 0:
        problems.append("n_jobs = 0 is not allowed; use -1 for all cores or a positive number.")
    if "modern_filters" in values and "modern_convs_per_block" in values:
        try:
            check_modern_shape(values["modern_filters"] or [], values["modern_convs_per_block"] or 0)
        except ParameterError as error:
            problems.append(str(error))
    return problems


def check_modern_shape(filters, convs_per_block: int) -> int:
    """Return the side of ``cnn_modern``'s last feature maps, or raise ParameterError when the blocks do not fit 28x28.

    Each unpadded 3x3 convolution trims 2 pixels and each block's pooling halves the side.
    """
    if not filters or min(filters) < 1 or convs_per_block < 1:
        raise ParameterError(f"modern_filters {list(filters)!r} and modern_convs_per_block {convs_per_block!r} "
                             "must be positive.")
    side = 28
    for _ in filters:
        side -= 2 * convs_per_block
        if side < 2:
            raise ParameterError(f"modern_filters {list(filters)!r} with modern_convs_per_block {convs_per_block}: "
                                 "the 28x28 image shrinks to nothing; use fewer blocks or fewer convolutions per "
                                 "block (e.g. two blocks of two, or three blocks of one).")
        side //= 2
    return side
