"""What the runner writes and the notebooks record: results records, tables formatted for reading, HTML pages.

Nothing here displays anything in a notebook (:mod:`digitrec_utils.notebook` does), so the runner that renders
pages loads neither IPython's display nor the figures. The names the notebooks use are re-exported here;
everything else is imported from its module.
"""

from digitrec_utils.reporting.results import build_results, load_run_results, save_results

__all__ = [
    "build_results",
    "load_run_results",
    "save_results",
]
