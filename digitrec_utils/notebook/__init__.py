"""What notebooks display, and how each opens and closes (:func:`open_notebook`, :func:`close_notebook`).

Only the notebooks import this package; it sits above the engines, whose work they show. The names the
notebooks use are re-exported here; 05's opening (:mod:`digitrec_utils.notebook.deployment`) is not, since it
loads Keras.
"""

from digitrec_utils.notebook.display import (
    Timings,
    collect_parameters,
    configure_notebook,
    show_evaluation,
    show_finding,
    show_model_summary,
    show_provenance,
    show_table,
)
from digitrec_utils.notebook.session import NotebookSession, close_notebook, open_notebook

__all__ = [
    "NotebookSession",
    "Timings",
    "close_notebook",
    "collect_parameters",
    "configure_notebook",
    "open_notebook",
    "show_evaluation",
    "show_finding",
    "show_model_summary",
    "show_provenance",
    "show_table",
]
