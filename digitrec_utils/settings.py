"""What every notebook's settings share: built from the notebook's parameters, with allowed values checked.

It sits at the bottom with ``config`` and ``exceptions``, so that any layer's settings can use it.
"""

from __future__ import annotations

from dataclasses import fields

from digitrec_utils.exceptions import ParameterError


class SettingsFromParameters:
    """Mixin for a notebook's settings dataclass: build it from the notebook's parameters.

    Each field that is a notebook parameter defaults to the notebook's own default (its parameters cell), so
    that whoever calls an engine from Python gets the notebook's experiment; ``tests/test_params.py`` fails on
    any difference.
    """

    @classmethod
    def from_parameters(cls, parameters: dict):
        """Build settings from a notebook's parameters, ignoring keys that are not settings."""
        names = {item.name for item in fields(cls)}
        return cls(**{key: value for key, value in parameters.items() if key in names})


def check_choices(key: str, values, allowed, *, allow_empty: bool = False) -> None:
    """Raise ParameterError naming ``key`` and the allowed values unless ``values`` is a list of them, not
    empty unless ``allow_empty``.

    The notebooks' settings call it at run time, for callers of the package that skip
    :func:`digitrec_utils.params.resolve_parameters`.
    """
    values = list(values)
    if not values and not allow_empty:
        raise ParameterError(f"{key} is empty; give at least one of {', '.join(allowed)}.")
    unknown = [value for value in values if value not in allowed]
    if unknown:
        raise ParameterError(f"{key}: {unknown!r} not allowed; allowed values are {', '.join(allowed)}.")
