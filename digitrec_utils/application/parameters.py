"""``digitrec list-params``: each notebook's parameters, as their declarations say them."""

from __future__ import annotations

import json
from dataclasses import dataclass

from digitrec_utils.declarations import PARAMETERS
from digitrec_utils.params import get_notebook_parameters, list_notebooks, resolve_notebook_name


@dataclass(frozen=True)
class ParameterLine:
    """One notebook parameter as ``list-params`` shows it."""

    name: str
    type: str
    default: str
    allowed: str
    help: str

    def describe(self) -> str:
        allowed = f" [{self.allowed}]" if self.allowed else ""
        return f"{self.name}: {self.type} = {self.default}{allowed}  # {self.help}"


def list_parameters(notebooks: list[str] = ()) -> dict[str, list[ParameterLine]]:
    """Each notebook's parameters (all notebooks by default), as their declarations say them."""
    stems = [resolve_notebook_name(name) for name in notebooks] or list_notebooks()
    listed = {}
    for stem in stems:
        listed[stem] = []
        for name in get_notebook_parameters(stem):
            declaration = PARAMETERS[name]
            allowed = declaration.describe()
            listed[stem].append(ParameterLine(name, declaration.type, _format_default(declaration.default_for(stem)),
                                              "" if allowed == "any value" else allowed, declaration.help_for(stem)))
    return listed


def _format_default(value) -> str:
    """Write a default as a parameters cell writes it: strings in double quotes, lists in brackets."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_format_default(item) for item in value) + "]"
    return json.dumps(value) if isinstance(value, str) else repr(value)
