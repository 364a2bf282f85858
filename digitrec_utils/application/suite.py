"""``digitrec run``: the suite of notebooks, once or once per seed."""

from __future__ import annotations

from digitrec_utils.exceptions import ParameterError
from digitrec_utils.running.outcomes import OutcomeStatus
from digitrec_utils.running.runner import DEFAULT_CELL_TIMEOUT_SECONDS, run_suite
from digitrec_utils.running.sweep import parse_seeds, run_sweep


def run_reports(profile: str | None = None, *, seeds: str | None = None, fixed_split: bool = False,
                timeout: float | None = None, **options) -> OutcomeStatus:
    """Execute the suite and render its pages (``digitrec run``); with ``seeds``, once per seed and then 07.

    Parameters
    ----------
    profile : str, optional
        A YAML profile (default: the embedded sample's).
    seeds : str, optional
        ``1,2,3`` or ``1-5``: a sweep of runs, one per seed.
    fixed_split : bool
        With ``seeds``: keep the data split and vary only the training.
    timeout : float, optional
        Seconds a cell may go without printing before it is stopped as hung.
    **options
        The rest of :func:`digitrec_utils.running.runner.run_suite`'s options.
    """
    options["timeout"] = timeout or DEFAULT_CELL_TIMEOUT_SECONDS
    if seeds is not None:
        return run_sweep(profile, seeds=parse_seeds(seeds), fixed_split=fixed_split, **options)
    if fixed_split:
        raise ParameterError("--fixed-split keeps the split while the seeds of a sweep vary; use it with --seeds.")
    return run_suite(profile, **options)
