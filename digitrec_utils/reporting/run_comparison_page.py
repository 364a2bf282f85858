"""The HTML page of ``digitrec compare``: the sentence first, the two recommended models, then what differs.

Built as a notebook with its outputs and rendered by the suite's renderer (:class:`~digitrec_utils.reporting.pages.
ReportPage`), so that it looks like the report pages. The comparison it draws is
:class:`digitrec_utils.reporting.run_comparison.RunComparison`.
"""

from __future__ import annotations

import pandas as pd

from digitrec_utils.reporting.pages import ReportPage
from digitrec_utils.reporting.run_comparison import LISTED_DIGITS, RunComparison
from digitrec_utils.reporting.tables import style_table


def write_run_comparison_page(comparison: RunComparison, path) -> None:
    """Write two runs' comparison as a self-contained page in the suite's style."""
    first, second = comparison.first, comparison.second
    page = ReportPage()
    page.add_markdown(f"# Run A `{first.name}` against run B `{second.name}`\n\n"
                      "Each run's recommended model (chosen on validation in its own run), compared on the same test "
                      "digits where both have them, then each notebook's headline and what differs between the runs.")
    page.add_markdown("## Summary\n\n" + comparison.describe())
    page.add_table(style_table(_tabulate_models(comparison)))
    if comparison.paired is not None:
        page.add_markdown(_describe_alone(comparison))
    page.add_markdown("## Each notebook's headline")
    page.add_table(style_table(pd.DataFrame(comparison.headlines, columns=["notebook", "A", "B"])))
    grouped = comparison.group_parameters()
    changes, versions = len(grouped), len(comparison.versions)
    parameters = (f"{changes} parameter{'s differ' if changes != 1 else ' differs'}" if changes
                  else "The parameters are the same")
    code = (f"{versions} of the code, libraries and data differ{'s' if versions == 1 else ''}" if versions
            else "the code, libraries and data are the same")
    page.add_markdown(f"## What differs\n\n{parameters}; {code}.")
    if comparison.parameters:
        page.add_table(style_table(pd.DataFrame(grouped, columns=["parameter", "A", "B", "notebooks"])),
                       details="The parameters that differ")
    if comparison.versions:
        page.add_table(style_table(pd.DataFrame(comparison.versions, columns=["what", "A", "B"])),
                       details="The code, libraries and data that differ")
    page.write(path)


def _tabulate_models(comparison: RunComparison) -> pd.DataFrame:
    """One row per run: its recommended model, test accuracy and interval, and the digits it alone reads right."""
    rows = []
    for summary, alone in ((comparison.first, comparison.only_first), (comparison.second, comparison.only_second)):
        best = summary.recommended or {}
        rows.append({"run": f"{summary.label}: {summary.name}", "recommended model": best.get("name", "none"),
                     "notebook": best.get("notebook", ""), "test digits": summary.describe_test_digits(),
                     "test accuracy": best.get("test_accuracy"),
                     "95% interval": (f"{best['test_accuracy_ci95'][0]:.2%} to {best['test_accuracy_ci95'][1]:.2%}"
                                      if best else ""),
                     "right where the other is wrong": len(alone) if comparison.paired is not None else None})
    table = pd.DataFrame(rows)
    table["test accuracy"] = table["test accuracy"].map(lambda value: "" if value is None else f"{value:.2%}")
    return table


def _describe_alone(comparison: RunComparison) -> str:
    """The test indices of the digits that one model alone reads right (the first few of each)."""
    parts = []
    for label, alone in (("A", comparison.only_first), ("B", comparison.only_second)):
        listed = ", ".join(str(index) for index in alone[:LISTED_DIGITS])
        more = f" and {len(alone) - LISTED_DIGITS:,} more" if len(alone) > LISTED_DIGITS else ""
        parts.append(f"only {label}'s: {listed}{more}" if alone else f"none only {label}'s")
    return ("The test digits (by their index in the test split) that one model alone reads right: "
            + "; ".join(parts) + ". `--json` lists them all.")
