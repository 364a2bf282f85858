"""Paths as a report shows them: relative to the run folder or the project, never the machine's own.

A report is mailed and copied; where it was made is nobody's business and means nothing elsewhere. The
results records and ``run.json`` keep full paths for machines; every HTML page shows paths through
:func:`describe_path`, and :func:`hide_machine_paths` is the last pass over a rendered page, for what
libraries print (warnings and tracebacks name their source files).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

from digitrec_utils import config

# The notebooks' parameters that hold paths; pages show their values through describe_path.
PATH_PARAMETERS = ("output_dir", "data_dir", "images_csv", "labels_csv", "results_dir", "model_path", "sweep_dir")
# Embedded images: base64 has "/" in its alphabet, so their text is left alone.
_DATA_URI = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]+")


def describe_path(path: str | os.PathLike | None, run_dir: str | os.PathLike | None = None) -> str:
    """Return ``path`` as a report shows it.

    Relative to the run folder when inside it, else relative to the project, else the bare file name.

    Parameters
    ----------
    path : path-like or None
    run_dir : path-like, optional
        The run folder the report belongs to.

    Returns
    -------
    text : str
        ``""`` for an empty path.

    Examples
    --------
    >>> describe_path("/anywhere/reports/run-1/models/cnn_selected.keras", "/anywhere/reports/run-1")
    'models/cnn_selected.keras'
    """
    if path is None or str(path) == "":
        return ""
    path = Path(path).expanduser()
    if not path.is_absolute():
        return str(path)
    for base in filter(None, [run_dir, config.PROJECT_ROOT]):
        base = Path(base).resolve()
        resolved = path.resolve()
        if resolved == base:
            return "."
        if resolved.is_relative_to(base):
            return str(resolved.relative_to(base))
    return path.name


def is_inside(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """Whether ``path`` lies inside ``folder``, both resolved (links and ``..`` followed)."""
    return Path(path).resolve().is_relative_to(Path(folder).resolve())


def describe_parameter(name: str, value, run_dir: str | os.PathLike | None = None):
    """Return a parameter's value as a page shows it: paths (:data:`PATH_PARAMETERS`) through
    :func:`describe_path`, anything else unchanged."""
    return describe_path(value, run_dir) if name in PATH_PARAMETERS and value else value


def hide_machine_paths(text: str, run_dir: str | os.PathLike | None = None) -> str:
    """Replace the machine's own folders in ``text`` by relative or neutral names.

    The run folder and the project root disappear (what follows them is relative to them), the Python
    installation becomes ``<python>``, the temporary folder ``<tmp>`` and the home folder ``~``. Longer
    prefixes are replaced first, so a run folder inside the project is relative to the run folder.

    Parameters
    ----------
    text : str
        Usually a whole rendered page.
    run_dir : path-like, optional
    """
    replacements = {}
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix}:
        replacements[str(Path(prefix).resolve())] = "<python>"
        replacements[prefix] = "<python>"
    replacements[str(Path(tempfile.gettempdir()).resolve())] = "<tmp>"
    replacements[str(Path.home())] = "~"
    replacements[str(config.PROJECT_ROOT) + "/"] = ""
    replacements[str(config.PROJECT_ROOT)] = "."
    if run_dir is not None:
        for form in {str(Path(run_dir)), str(Path(run_dir).resolve())}:
            replacements[form + "/"] = ""
            replacements[form] = "."
    prefixes = [prefix for prefix in sorted(replacements, key=len, reverse=True) if len(prefix) > 1]

    def _replace(part: str) -> str:
        for prefix in prefixes:
            part = part.replace(prefix, replacements[prefix])
        return part

    pieces, position = [], 0
    for match in _DATA_URI.finditer(text):
        pieces += [_replace(text[position:match.start()]), match.group(0)]
        position = match.end()
    pieces.append(_replace(text[position:]))
    return "".join(pieces)
