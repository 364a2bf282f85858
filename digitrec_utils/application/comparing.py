"""``digitrec compare``: two run folders side by side, and which one's model to deploy."""

from __future__ import annotations

import os
from pathlib import Path

from digitrec_utils import config
from digitrec_utils.reporting.run_comparison import RunComparison, read_and_compare
from digitrec_utils.reporting.run_comparison_page import write_run_comparison_page


def compare_run_folders(run_a: str | os.PathLike, run_b: str | os.PathLike, *, page: str | os.PathLike | None = None,
                        reports_root: str | os.PathLike | None = None) -> RunComparison:
    """Compare two run folders (:mod:`digitrec_utils.reporting.run_comparison`) and write the page when asked.

    Parameters
    ----------
    run_a, run_b : path-like
        Run folders, as paths or as names under the reports folder (``latest`` included).
    page : path-like, optional
        Where to write the HTML page (``--html``).
    reports_root : path-like, optional
        The reports folder the names are looked for in (default: ``$DIGITREC_REPORTS`` or ``reports/``).

    Raises
    ------
    ParameterError
        When either is no finished run folder, or cannot be read.
    """
    root = Path(reports_root) if reports_root else config.REPORTS_DIR
    comparison = read_and_compare(run_a, run_b, reports_root=root)
    if page:
        write_run_comparison_page(comparison, page)
    return comparison
