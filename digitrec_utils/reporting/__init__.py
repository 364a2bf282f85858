"""What the reports show: display helpers, tables, results records, HTML pages and templates.

The names the notebooks and the CLI use are re-exported here; everything else is imported from its module.
"""

from digitrec_utils.reporting.reporting import (
    Timings,
    collect_parameters,
    configure_notebook,
    show_evaluation,
    show_finding,
    show_model_summary,
    show_provenance,
    show_table,
)
from digitrec_utils.reporting.results import build_results, load_run_results, save_results

__all__ = [
    "Timings",
    "build_results",
    "collect_parameters",
    "configure_notebook",
    "load_run_results",
    "save_results",
    "show_evaluation",
    "show_finding",
    "show_model_summary",
    "show_provenance",
    "show_table",
]
