"""The HTML pages of ``digitrec evaluate`` (one model on labelled digits, or several side by side) and ``adapt``.

Each page is a notebook built here with its outputs (no kernel runs) and rendered by
:func:`digitrec_utils.reporting.html.render_notebook_html`, the suite's own renderer, so that it looks like the
report pages: the same template, tables and figures, and no machine paths. The runner never imports this module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from digitrec_utils import __version__, plots
from digitrec_utils.reporting.pages import ReportPage, name_file
from digitrec_utils.reporting.tables import format_interval, style_table

# Examples shown per confused pair, and pairs shown.
EXAMPLES_PER_PAIR = 8
PAIRS_SHOWN = 5


def _describe_confused_examples(scored, pairs: pd.DataFrame) -> list[tuple[str, np.ndarray]]:
    """For each of the first :data:`PAIRS_SHOWN` confused pairs: a caption and up to :data:`EXAMPLES_PER_PAIR`
    images."""
    predictions, names = scored.predictions, scored.class_names
    examples = []
    for row in pairs.head(PAIRS_SHOWN).itertuples():
        true_label, predicted = names.index(str(row.true)), names.index(str(row.predicted))
        positions = [position for position in np.flatnonzero((scored.labels == true_label)
                                                             & (predictions == predicted))
                     if position in scored.mistakes][:EXAMPLES_PER_PAIR]
        if positions:
            caption = f"{row.true} read as {row.predicted} ({row.count:,} times)"
            examples.append((caption, np.stack([scored.mistakes[position] for position in positions])))
    return examples


def _describe_data(scored) -> list[str]:
    """The details lines on the digits: where from, their checksum, how they were prepared, which were unusable."""
    lines = [f"- Data: {scored.source.description}; SHA-256 {scored.source.sha256[:16]}...",
             "- Prepared as: " + ", ".join(f"{kind} {count:,}" for kind, count in scored.kinds.items()),
             f"- digitrec {__version__}"]
    if scored.errors:
        lines.append(f"- Images that could not be used ({len(scored.errors):,}): "
                     + "; ".join(name_file(error) for error in scored.errors[:20])
                     + (" ..." if len(scored.errors) > 20 else ""))
    return lines


def write_evaluation_page(report, path, *, model_path) -> None:
    """Write the evaluation as a self-contained HTML page in the suite's style (summary first, details folded).

    The page is a notebook built here with its outputs (no kernel runs) and rendered by
    :func:`digitrec_utils.reporting.html.render_notebook_html`, the suite's own renderer, so that it looks like the
    report pages: the same template, tables and figures, and no machine paths.
    """
    page = ReportPage()
    evaluation, scored = report.evaluation, report.scored
    page.add_markdown(f"# {report.model_name} on {scored.source.name}\n\nHow the saved model reads labelled digits "
                      f"from elsewhere: {scored.source.description}, each prepared as `digitrec predict` prepares it.")
    page.add_markdown("## Summary\n\n" + report.describe())
    page.add_markdown("## Per class\n\nPrecision, recall and F1 of each class (scikit-learn's metrics).")
    table = evaluation.per_class[["name", "precision", "recall", "f1", "support"]].rename(columns={"name": "class"})
    page.add_table(style_table(table))
    page.add_markdown("## Confusions")
    page.add_figure(plots.plot_confusion_matrix(evaluation.confusion_matrix, scored.class_names,
                                                title=f"{scored.source.name}: confusion matrix", show=False))
    pairs = evaluation.confused_pairs
    if len(pairs):
        page.add_markdown("The most confused pairs, with examples of each as the model was fed them.")
        page.add_table(style_table(pairs, percent_columns=["share_of_true"]))
        for caption, images in _describe_confused_examples(scored, pairs):
            page.add_figure(plots.plot_image_grid(images, n_columns=EXAMPLES_PER_PAIR, title=caption, show=False))
    else:
        page.add_markdown("No digit was misread.")
    page.add_details([f"- Model: {report.model_name} ({Path(model_path).name})", *_describe_data(scored)],
                     title="Model, data and preparation")
    page.write(path)


def write_comparison_page(comparison, path) -> None:
    """Write several models' evaluations of the same digits as one self-contained HTML page.

    Summary first (which model reads the digits best, and whether McNemar's exact test tells them apart),
    then one row per model (accuracy, and at its own saved threshold the share answered and their accuracy),
    the recall of each class side by side, and each model's own summary folded away. Models are named as
    :func:`name_models` names them, so the page shows no machine path.
    """
    page = ReportPage()
    reports = comparison.reports
    scored = next(iter(reports.values())).scored
    page.add_markdown(f"# {len(reports)} models on {scored.source.name}\n\nWhich saved model reads these labelled "
                      f"digits better: {scored.source.description}, each prepared as `digitrec predict` prepares "
                      "it, and every model reading the same digits.")
    page.add_markdown("## Summary\n\n" + comparison.describe())
    page.add_markdown("## Every model\n\nAccuracy on every digit with its 95% interval, McNemar's exact test "
                      "against the best on the digits only one of the two reads right, and at each model's own "
                      "saved threshold the share answered and their accuracy.")
    paired = comparison.paired.table.set_index("setting")
    rows = []
    for name, report in reports.items():
        row = paired.loc[name]
        selective = report.selective
        best = name == comparison.paired.best  # Against itself: nothing to count or test.
        verdict = "best" if best else "worse" if row["distinguishable"] else "within noise"
        rows.append({"model": name, "accuracy": row["accuracy"],
                     "95% CI": format_interval(row["95% CI low"], row["95% CI high"]),
                     "right only with the best": np.nan if best else int(row["only best right"]),
                     "right only with this one": np.nan if best else int(row["only this right"]),
                     "p-value": np.nan if best else row["p-value"], "vs best": verdict,
                     "answered": selective.coverage if selective is not None else float("nan"),
                     "accuracy of answered": selective.accuracy if selective is not None else float("nan")})
    table = pd.DataFrame(rows).sort_values("accuracy", ascending=False, kind="stable")
    page.add_table(style_table(table, percent_columns=["answered"]))
    page.add_markdown("## Per class\n\nThe recall of each class (the share of its digits read right), per model.")
    recall = pd.DataFrame({"class": scored.class_names,
                           **{name: reports[name].evaluation.per_class["recall"].to_numpy()
                              for name in table["model"]}})
    page.add_table(style_table(recall))
    lines = [f"- {name}: {report.describe()}" for name, report in reports.items()]
    page.add_details([*lines, *_describe_data(scored)], title="Each model's summary, the data and its preparation")
    page.write(path)


def write_adaptation_page(outcome, path) -> None:
    """Write what ``digitrec adapt`` did and measured as a self-contained page in the suite's style.

    Summary first; then the parent and the adapted model side by side on the check digits (and on the parent's
    original test digits), the recall of each class, the confusions adapting fixed and made with examples, and
    the provenance folded away.
    """
    page = ReportPage()
    adapted = outcome.path.name
    page.add_markdown(f"# {outcome.parent.name} adapted to {outcome.check_name.split(' (')[0]}\n\nA copy of "
                      f"`{outcome.parent.path.name}` fine-tuned on the office's labelled digits, each prepared as "
                      "`digitrec predict` prepares it, and checked on digits it never adapted on.")
    page.add_markdown("## Summary\n\n" + outcome.describe())
    page.add_markdown("## Before and after\n\nAccuracy with its 95% interval, and at each model's own threshold "
                      "(the parent's saved one, the adapted model's chosen on the office's validation digits) the "
                      "share answered and their accuracy.")
    files = {"parent": outcome.parent.path.name, "adapted": adapted}
    rows = []
    for digits, comparison in (("check", outcome.paired), ("original test", outcome.forgetting)):
        if comparison is None:
            continue
        table = comparison.table.set_index("setting")
        for name in ("parent", "adapted"):
            row = table.loc[name]
            answered = (outcome.answered_before if name == "parent" else outcome.answered_after) \
                if digits == "check" else None
            rows.append({"model": f"{name} ({files[name]})", "digits": digits, "accuracy": row["accuracy"],
                         "95% CI": format_interval(row["95% CI low"], row["95% CI high"]),
                         "answered": answered.coverage if answered is not None else np.nan,
                         "accuracy of answered": answered.accuracy if answered is not None else np.nan})
    page.add_table(style_table(pd.DataFrame(rows), percent_columns=["answered"]))
    page.add_markdown("## Per class\n\nThe share of each class's check digits read right, before and after.")
    page.add_table(style_table(outcome.per_class(), percent_columns=["before", "after"]))
    changed = outcome.confusions[(outcome.confusions["fixed"] > 0) | (outcome.confusions["new"] > 0)]
    page.add_markdown("## Confusions\n\nCheck digits read as another digit, by the parent and by the adapted model.")
    if len(changed):
        page.add_table(style_table(changed))
        for caption, images in outcome.examples:
            page.add_figure(plots.plot_image_grid(images, n_columns=EXAMPLES_PER_PAIR, title=caption, show=False))
    else:
        page.add_markdown("Adapting changed no confusion.")
    provenance = [f"- Parent: {outcome.parent.path.name}; adapted model: {adapted}",
                  f"- Digits: {outcome.counts['train']:,} to train on, {outcome.counts['validation']:,} to choose "
                  f"the epoch and threshold on, {outcome.counts['check']:,} to check on ({outcome.check_name})",
                  f"- Fine-tuning: {outcome.fine_tuned.train_seconds:.1f} s, best epoch "
                  f"{outcome.fine_tuned.best_epoch}, {outcome.fine_tuned.n_replayed:,} original training digits "
                  f"replayed, {outcome.fine_tuned.n_pseudo:,} unlabelled digits labelled by the parent",
                  *[f"- {note}" for note in outcome.notes], f"- digitrec {__version__}"]
    page.add_details(provenance, title="Provenance and notes")
    page.write(path)


def write_suggestion_page(suggestion, path, *, per_row: int = 10) -> None:
    """Write the digits ``digitrec adapt --suggest`` suggests labelling first as a page of thumbnails.

    Summary first; then the digits in the order to label them, as the model saw them (prepared as ``predict``
    prepares them), each captioned with its number and what the model hesitates between; then the file list,
    by name only.
    """
    page = ReportPage()
    page.add_markdown(f"# {len(suggestion.entries):,} digits to label first\n\nThe unlabelled digits whose labels "
                      f"should help `digitrec adapt` most, for {suggestion.model.name} "
                      f"(`{suggestion.model.path.name}`).")
    page.add_markdown("## Summary\n\n" + suggestion.describe())
    if suggestion.entries:
        page.add_markdown("## The digits, in the order to label them\n\nEach as the model saw it, with its number "
                          "in the list below and the two classes the model hesitates between.")
        for start in range(0, len(suggestion.entries), per_row * 5):
            chunk = suggestion.entries[start:start + per_row * 5]
            titles = [f"{start + number + 1}: {' or '.join(entry['between'])}" for number, entry in enumerate(chunk)]
            page.add_figure(plots.plot_image_grid(suggestion.images[start:start + len(chunk)], titles,
                                                  n_columns=per_row, show=False))
        table = pd.DataFrame({"order": range(1, len(suggestion.entries) + 1),
                              "file": [Path(entry["path"]).name for entry in suggestion.entries],
                              "read as": [entry["read_as"] for entry in suggestion.entries],
                              "between": [" or ".join(entry["between"]) for entry in suggestion.entries],
                              "margin": [entry["margin"] for entry in suggestion.entries]})
        page.add_markdown("## The files")
        page.add_table(style_table(table))
    lines = [f"- {name_file(error)}" for error in suggestion.errors] or ["- Every image could be used."]
    page.add_details([f"- Read: {suggestion.n_read:,} images", *lines, f"- digitrec {__version__}"],
                     title="Images left out, and the version")
    page.write(path)
