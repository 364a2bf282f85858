"""The HTML page of ``digitrec monitor``: the verdict first, then the estimates per window, the tests, what moved.

Built as a notebook with its outputs and rendered by the suite's renderer (:class:`~digitrec_utils.reporting.pages.
ReportPage`), so that it looks like the report pages. The outcome it draws is
:class:`digitrec_utils.application.monitoring.MonitorOutcome`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt

from digitrec_utils import __version__, plots
from digitrec_utils.evaluation.monitoring import (
    MATERIAL_DISTANCE,
    MATERIAL_SPREAD,
    MEASURED_ERROR,
    SIGNIFICANCE,
    SPREAD_SUFFIX,
    VERDICTS,
)
from digitrec_utils.reporting.pages import ReportPage, name_file
from digitrec_utils.reporting.tables import style_table

# Histograms are drawn for at most this many of the properties that moved, the most moved first.
HISTOGRAMS_SHOWN = 6
# Smaller p-values are shown as "< 1e-16": below, they only say how far beyond doubt a change is.
P_VALUE_FLOOR = 1e-16
# Windows whose examples are shown: the first, and the most worrying.
EXAMPLE_WINDOWS = 3


def write_monitoring_page(outcome, path) -> None:
    """Write what ``digitrec monitor`` found as a self-contained page in the suite's style."""
    page = ReportPage()
    page.add_markdown(f"# Monitoring {outcome.model_name} on {outcome.stream.check.n_images:,} incoming digits\n\n"
                      f"The stream, in windows of digits, compared with the digits the model was chosen on "
                      f"({outcome.reference_source}), and its accuracy estimated without labels.")
    page.add_markdown("## Summary\n\n" + outcome.describe_verdict() + "\n\n" + _describe_figures(outcome))
    page.add_markdown("## Window by window\n\nThe accuracy estimated without labels (Average Thresholded "
                      "Confidence, fitted on the reference) with its 95% interval, and the share answered at the "
                      "threshold; the dashed lines are the reference's own levels. The interval holds the sampling "
                      "of the digits only: measured on labelled digits of other sources, the estimate missed the "
                      f"true accuracy by at most {MEASURED_ERROR['mean']:.1%} on average (per model) and by up to "
                      f"{MEASURED_ERROR['largest']:.1%} on {MEASURED_ERROR['where']}.")
    page.add_figure(_plot_windows(outcome))
    page.add_table(style_table(_tabulate_windows(outcome), percent_columns=["answered"]))
    tests = _tabulate_tests(outcome.stream.check.tests)
    changed = tests["changed"] == "yes"
    page.add_markdown("## The tests on the whole stream\n\nEach test compares the incoming digits with the "
                      "reference: a distribution (Kolmogorov-Smirnov; the medians are shown), a property's spread "
                      "(the same test on the distances from the reference's median, which sees a change both ways "
                      "at once), the predicted classes (chi-square), the embeddings (maximum mean discrepancy) and "
                      "the share answered (Fisher; the shares are shown). A test counts as "
                      "changed when its p-value, corrected for the number of tests (Benjamini-Hochberg), is below "
                      f"{SIGNIFICANCE} and a distribution moved by a distance of {MATERIAL_DISTANCE} or more (a "
                      f"spread by {MATERIAL_SPREAD}). "
                      + (f"{int(changed.sum())} of {len(tests)} changed:" if changed.any()
                         else f"None of the {len(tests)} changed."))
    if changed.any():
        page.add_table(style_table(tests[changed].drop(columns="changed")))
    if not changed.all():
        page.add_table(style_table(tests[~changed].drop(columns="changed")),
                       details=f"The {int((~changed).sum())} tests that did not change")
    moved = _find_moved_properties(outcome)
    if moved:
        page.add_markdown("## What moved\n\nThe image properties that changed most, the reference's and the "
                          "stream's distributions.")
        page.add_figure(_plot_histograms(outcome, moved))
    page.add_markdown("## Digits, reference and incoming\n\nDigits as the model saw them (prepared as `predict` "
                      "prepares them): drawn from the reference, and the first of a few windows.")
    if outcome.reference_examples is not None and len(outcome.reference_examples):
        page.add_figure(plots.plot_image_grid(outcome.reference_examples / 255.0, n_columns=8, title="reference",
                                              show=False))
    for window in _choose_example_windows(outcome):
        if len(window.examples):
            page.add_figure(plots.plot_image_grid(window.examples / 255.0, n_columns=8,
                                                  title=f"window {window.number}: {window.verdict}", show=False))
    threshold = ("none saved" if outcome.abstention is None else
                 f"{outcome.abstention.score.replace('_', ' ')} {outcome.abstention.threshold:.4f}"
                 + (f", chosen for {outcome.abstention.target:.1%} of answers right"
                    if outcome.abstention.target is not None else ""))
    errors = [f"- Could not be used: {name_file(error)}" for error in outcome.errors[:20]]
    if len(outcome.errors) > 20:
        errors.append(f"- ... and {len(outcome.errors) - 20:,} more")
    page.add_details([f"- Model: {outcome.model_name}; threshold: {threshold}",
                      f"- Reference: {outcome.reference_source}, {outcome.n_reference:,} digits",
                      f"- Files: {outcome.n_files:,}, of which {len(outcome.errors):,} could not be used",
                      *errors, *[f"- {note}" for note in outcome.notes], f"- digitrec {__version__}"],
                     title="Provenance and notes")
    page.write(path)


def _describe_figures(outcome) -> str:
    """The summary's second paragraph: the reference's levels and the stream's, side by side."""
    stream = outcome.stream.check
    lines = [f"- Estimated accuracy of every answer: {stream.accuracy.describe()}; on the reference "
             f"{outcome.reference_accuracy:.1%}."]
    if stream.answered is not None:
        lines.append(f"- Answered at the threshold: {stream.answered:.1%}; on the reference "
                     f"{outcome.reference_answered:.1%}.")
    if stream.accepted_accuracy is not None:
        promised = "" if outcome.promised is None else f"; the threshold was chosen for {outcome.promised:.1%}"
        lines.append(f"- Estimated accuracy of the answered: {stream.accepted_accuracy.describe()}{promised}.")
    changed = int(stream.tests["changed"].sum())
    lines.append(f"- Tests that changed on the whole stream: {changed} of {len(stream.tests)}.")
    return "\n".join(lines)


def _plot_windows(outcome):
    """The estimated accuracy (with its interval) and the share answered, per window, beside the reference levels."""
    figure, axes = plt.subplots(figsize=(9, 3.6))
    numbers = [window.number for window in outcome.windows]
    for name, pick, colour in (("estimated accuracy", lambda check: check.accuracy, "C0"),
                               ("estimated accuracy of the answered", lambda check: check.accepted_accuracy, "C2")):
        estimates = [pick(window.check) for window in outcome.windows]
        if any(estimate is None for estimate in estimates):
            continue
        axes.plot(numbers, [estimate.accuracy for estimate in estimates], marker="o", color=colour, label=name)
        axes.fill_between(numbers, [estimate.low for estimate in estimates],
                          [estimate.high for estimate in estimates], color=colour, alpha=0.15)
    axes.axhline(outcome.reference_accuracy, color="C0", linestyle="--", linewidth=1)
    if outcome.abstention is not None:
        axes.plot(numbers, [window.check.answered for window in outcome.windows], marker="s", color="C1",
                  label="share answered")
        axes.axhline(outcome.reference_answered, color="C1", linestyle="--", linewidth=1)
    if outcome.promised is not None:
        axes.axhline(outcome.promised, color="C2", linestyle=":", linewidth=1, label="promised accuracy")
    axes.set_xlabel("window")
    axes.set_ylabel("share")
    axes.set_xticks(numbers)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, fontsize=8, frameon=False)
    figure.tight_layout()
    return figure


def _tabulate_windows(outcome) -> pd.DataFrame:
    """One row per window: its files, verdict, estimates and the tests that changed."""
    rows = []
    for window in outcome.windows:
        check = window.check
        changed = check.tests.loc[check.tests["changed"], "test"].tolist()
        accepted = check.accepted_accuracy
        rows.append({"window": window.number, "digits": check.n_images, "from": window.first, "to": window.last,
                     "verdict": window.verdict,
                     "estimated accuracy": check.accuracy.describe(),
                     "answered": np.nan if check.answered is None else check.answered,
                     "accuracy of answered": "" if accepted is None else accepted.describe(),
                     "changed": ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")})
    return pd.DataFrame(rows)


def _tabulate_tests(tests: pd.DataFrame) -> pd.DataFrame:
    """The whole stream's tests as the page shows them: medians (or shares) for reading, p-values floored."""
    table = tests[["test", "method", "reference", "incoming", "statistic", "corrected p-value", "changed"]].copy()
    for column in ("reference", "incoming"):
        table[column] = [_format_value(value) for value in table[column]]
    table["corrected p-value"] = [f"< {P_VALUE_FLOOR:.0e}" if value < P_VALUE_FLOOR else f"{value:.2g}"
                                  for value in table["corrected p-value"]]
    table["statistic"] = [f"{value:.3g}" for value in table["statistic"]]
    table["changed"] = table["changed"].map({True: "yes", False: "no"})
    return table.rename(columns={"reference": "reference median", "incoming": "incoming median"})


def _format_value(value: float) -> str:
    """A median or a share with as many digits as it needs: 28, 2.85, 0.130; a dash where there is none."""
    if value is None or not np.isfinite(value):
        return "-"
    magnitude = abs(value)
    return f"{value:.0f}" if magnitude >= 10 else f"{value:.2f}" if magnitude >= 1 else f"{value:.3f}"


def _find_moved_properties(outcome) -> list[str]:
    """The image properties whose test (of their values or of their spread) changed on the whole stream, most
    changed first."""
    tests = outcome.stream.check.tests
    moved = tests[tests["changed"] & tests["kind"].isin(["image", "file"])]["test"].str.removesuffix(SPREAD_SUFFIX)
    return [name for name in dict.fromkeys(moved) if name in outcome.reference_properties][:HISTOGRAMS_SHOWN]


def _plot_histograms(outcome, names: list[str]):
    """The reference's and the stream's distribution of each property named."""
    columns = min(3, len(names))
    rows = -(-len(names) // columns)
    figure, grid = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.6 * rows), squeeze=False)
    for axes in grid.flat[len(names):]:
        axes.axis("off")
    for axes, name in zip(grid.flat, names, strict=False):
        reference = np.asarray(outcome.reference_properties[name], dtype=np.float64)
        incoming = np.asarray(outcome.stream_properties[name], dtype=np.float64)
        low, high = np.percentile(np.concatenate([reference, incoming]), [0.5, 99.5])
        bins = np.linspace(low, high if high > low else low + 1, 30)
        axes.hist(reference, bins=bins, density=True, alpha=0.5, label="reference")
        axes.hist(incoming, bins=bins, density=True, alpha=0.5, label="incoming")
        axes.set_title(name, fontsize=10)
        axes.set_yticks([])
    grid.flat[0].legend(fontsize=8)
    figure.tight_layout()
    return figure


def _choose_example_windows(outcome) -> list:
    """The first window and the most worrying others, at most :data:`EXAMPLE_WINDOWS`."""
    from_worst = sorted(outcome.windows[1:], key=lambda window: (-VERDICTS.index(window.verdict), window.number))
    return outcome.windows[:1] + from_worst[:EXAMPLE_WINDOWS - 1]


