"""Figures of models and their results for the reports, drawn with seaborn and matplotlib.

Every function returns its Figure. With ``show=True`` (the default) it displays the figure and then
closes it, so that notebooks never accumulate open figures; pass ``show=False`` to keep it open (tests,
or saving to a file), and close it yourself.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from digitrec_utils.plots.style import finish_figure


def plot_confusion_matrix(
    matrix: np.ndarray,
    class_names: Sequence[str],
    *,
    normalize: bool = False,
    title: str = "Confusion matrix",
    show: bool = True,
) -> Figure:
    """Draw a confusion-matrix heatmap.

    Parameters
    ----------
    matrix : ndarray of shape (n_classes, n_classes)
        Counts; rows are true classes, columns predicted classes.
    class_names : sequence of str
    normalize : bool, default=False
        Show each row as fractions of the true class (recall on the diagonal) instead of counts.
    title : str
    show : bool, default=True
    """
    matrix = np.asarray(matrix)
    if normalize:
        totals = matrix.sum(axis=1, keepdims=True)
        values = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
        annotation_format = ".2f"
    else:
        values, annotation_format = matrix, "d"
    figure, axes = plt.subplots(figsize=(7.5, 6.5))
    sns.heatmap(
        values, annot=True, fmt=annotation_format, cmap="Blues", cbar=True, square=True, ax=axes,
        xticklabels=class_names, yticklabels=class_names, annot_kws={"fontsize": 8}, linewidths=0.5,
    )
    axes.set_xlabel("Predicted class")
    axes.set_ylabel("True class")
    axes.set_title(title + (" (row-normalized)" if normalize else " (counts)"))
    axes.tick_params(axis="x", rotation=45)
    axes.tick_params(axis="y", rotation=0)
    return finish_figure(figure, show)


def plot_per_class_metrics(per_class: pd.DataFrame, *, title: str = "Per-class metrics", show: bool = True) -> Figure:
    """Draw grouped bars of precision, recall and F1 for each class.

    Parameters
    ----------
    per_class : DataFrame
        ``Evaluation.per_class``: columns name, precision, recall, f1.
    """
    long = per_class.melt(id_vars="name", value_vars=["precision", "recall", "f1"], var_name="metric")
    figure, axes = plt.subplots(figsize=(10, 4))
    sns.barplot(data=long, x="name", y="value", hue="metric", ax=axes)
    lowest = float(long["value"].min())
    axes.set_ylim(max(0.0, lowest - 0.05), 1.0)
    axes.set_xlabel("Class")
    axes.set_ylabel("Score")
    axes.set_title(title)
    axes.tick_params(axis="x", rotation=30)
    # The bars rise from the bottom of the axes and reach its top, so a legend inside covers some of them.
    sns.move_legend(axes, "upper left", bbox_to_anchor=(1.01, 1.0), title=None)
    return finish_figure(figure, show)


def plot_training_curves(history: dict, *, title: str = "Training curves", show: bool = True) -> Figure:
    """Draw loss and accuracy per epoch, train against validation.

    Parameters
    ----------
    history : dict
        Keras's ``History.history``: lists under ``loss``, ``val_loss``, ``accuracy``, ``val_accuracy``.
    """
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(11, 4))
    for metric, axes in (("loss", loss_axes), ("accuracy", accuracy_axes)):
        for prefix, label in (("", "train"), ("val_", "validation")):
            values = history.get(prefix + metric)
            if values:
                axes.plot(np.arange(1, len(values) + 1), values, marker="o", markersize=3, label=label)
        axes.set_xlabel("Epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel(metric.capitalize())
        axes.set_title(f"{title}: {metric}")
        axes.legend()
    return finish_figure(figure, show)


def plot_sweep(
    sweep: pd.DataFrame,
    *,
    x: str,
    hue: str | None = None,
    chosen: dict | None = None,
    title: str,
    xlabel: str | None = None,
    log_x: bool = False,
    show: bool = True,
) -> Figure:
    """Draw validation accuracy against one hyperparameter, one line per ``hue``, and mark the choice.

    With ``95% CI low`` and ``95% CI high`` columns, each line's 95% interval is shaded. Integer
    hyperparameters (k, depth) get integer ticks only.

    Parameters
    ----------
    sweep : DataFrame
        One row per setting, with columns ``x``, ``val_accuracy`` and (optionally) ``hue``.
    x : str
        The column on the horizontal axis, e.g. ``"k"`` or ``"depth"``.
    hue : str, optional
        The column that splits the lines, e.g. ``"criterion"``.
    chosen : dict, optional
        The chosen row's values of ``x`` (and ``hue``), marked with a star and labelled.
    title : str
    xlabel : str, optional
    log_x : bool, default=False
        Use a logarithmic horizontal axis (for grids such as C = 0.1, 1, 10).
    """
    figure, axes = plt.subplots(figsize=(8, 4))
    sns.lineplot(data=sweep, x=x, y="val_accuracy", hue=hue, marker="o", ax=axes)
    if {"95% CI low", "95% CI high"} <= set(sweep.columns):
        groups = sweep.groupby(hue, sort=False) if hue is not None else [(None, sweep)]
        for line, (_, group) in zip(axes.get_lines(), groups, strict=False):
            ordered = group.sort_values(x)
            axes.fill_between(ordered[x], ordered["95% CI low"], ordered["95% CI high"], color=line.get_color(),
                              alpha=0.15, linewidth=0)
    if pd.api.types.is_integer_dtype(sweep[x]) and not log_x:
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    if chosen is not None:
        row = sweep[sweep[x] == chosen[x]]
        if hue is not None:
            row = row[row[hue] == chosen[hue]]
        if len(row):
            best_x, best_y = row[x].iloc[0], float(row["val_accuracy"].iloc[0])
            axes.scatter([best_x], [best_y], marker="*", s=250, color="black", zorder=5,
                         label=f"chosen: {x}={best_x}" + (f", {chosen[hue]}" if hue else ""))
            axes.annotate(f"{best_y:.4f}", (best_x, best_y), textcoords="offset points", xytext=(6, 8), fontsize=9)
    if log_x:
        axes.set_xscale("log")
    axes.set_xlabel(xlabel or x)
    shaded = {"95% CI low", "95% CI high"} <= set(sweep.columns)
    axes.set_ylabel("Validation accuracy" + (" (95% interval shaded)" if shaded else ""))
    axes.set_title(title)
    axes.legend(loc="best")
    return finish_figure(figure, show)


def plot_experiment(table: pd.DataFrame, *, x: str, title: str, show: bool = True) -> Figure:
    """Draw one experiment's validation accuracy for each setting, with its 95% interval.

    Bars for settings that are names, lines for numeric ones (one line per batch size for the batch-size x
    epochs experiment). Integer settings (hidden layers, epochs, widths) get integer ticks only.

    Parameters
    ----------
    table : DataFrame
        One row per run, with columns ``x`` and ``val_accuracy``, and ``95% CI low`` and ``95% CI high``
        for the error bars when present (``batch size`` for the batch-size x epochs experiment).
    x : str
        The setting under study.
    title : str
    """
    figure, axes = plt.subplots(figsize=(8, 4))
    has_interval = {"95% CI low", "95% CI high"} <= set(table.columns)
    if "batch size" in table and x == "epochs":
        palette = sns.color_palette("viridis", table["batch size"].nunique())
        for colour, (batch_size, group) in zip(palette, table.groupby("batch size", sort=True), strict=True):
            axes.plot(group["epochs"], group["val_accuracy"], marker="o", color=colour, label=f"batch {batch_size}")
            if has_interval:
                _draw_interval(axes, group["epochs"], group, colour)
        axes.legend(title="batch size")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    elif pd.api.types.is_numeric_dtype(table[x]) and table[x].nunique() > 2:
        ordered = table.sort_values(x)
        axes.plot(ordered[x], ordered["val_accuracy"], marker="o", color="tab:blue")
        if has_interval:
            _draw_interval(axes, ordered[x], ordered, "tab:blue")
        if table[x].min() > 0 and table[x].max() / table[x].min() >= 16:
            axes.set_xscale("log", base=2)
        elif pd.api.types.is_integer_dtype(table[x]):
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        labels = table[x].astype(str)
        positions = np.arange(len(table))
        axes.bar(positions, table["val_accuracy"], color="tab:blue", width=0.6)
        axes.set_xticks(positions, labels)
        if has_interval:
            _draw_interval(axes, positions, table, "black")
        top = table["95% CI high"] if has_interval else table["val_accuracy"]
        for position, value, height in zip(positions, table["val_accuracy"], top, strict=True):
            axes.annotate(f"{value:.4f}", (position, height), ha="center", va="bottom", fontsize=9,
                          textcoords="offset points", xytext=(0, 3))
        lowest = float((table["95% CI low"] if has_interval else table["val_accuracy"]).min())
        axes.set_ylim(max(0.0, lowest - 0.05), min(1.0, float(top.max()) + 0.04))
    axes.set_xlabel(x)
    axes.set_ylabel("Validation accuracy" + (" (95% interval)" if has_interval else ""))
    axes.set_title(title)
    return finish_figure(figure, show)


def _draw_interval(axes, positions, rows: pd.DataFrame, colour) -> None:
    """Draw each row's 95% interval as an error bar around its validation accuracy."""
    below = rows["val_accuracy"].to_numpy() - rows["95% CI low"].to_numpy()
    above = rows["95% CI high"].to_numpy() - rows["val_accuracy"].to_numpy()
    axes.errorbar(np.asarray(positions), rows["val_accuracy"], yerr=[below, above], fmt="none", ecolor=colour,
                  capsize=4, linewidth=1)


def plot_pareto(table: pd.DataFrame, *, target: float, reference: int | None = None, title: str = "", show=True):
    """Draw parameters against validation accuracy, with the Pareto front, the target and the winner.

    Parameters
    ----------
    table : DataFrame
        One row per candidate network: parameters, val_accuracy, pareto (bool), winner (bool), network.
    target : float
        The target accuracy, drawn as a horizontal line.
    reference : int, optional
        A parameter count to mark with a vertical line (the third report's 13,287).
    """
    figure, axes = plt.subplots(figsize=(8, 4.5))
    axes.scatter(table["parameters"], table["val_accuracy"], color="tab:gray", label="candidates")
    front = table[table["pareto"]].sort_values("parameters")
    axes.step(front["parameters"], front["val_accuracy"], where="post", color="tab:blue", marker="o",
              label="Pareto front")
    for _, row in table.iterrows():
        axes.annotate(str(row["network"]), (row["parameters"], row["val_accuracy"]), textcoords="offset points",
                      xytext=(4, -10), fontsize=8)
    axes.axhline(target, color="tab:red", linestyle="--", label=f"target {target:.3f}")
    if reference is not None:
        axes.axvline(reference, color="tab:green", linestyle=":", label=f"third report: {reference:,} parameters")
    winners = table[table.get("winner", pd.Series(False, index=table.index))]
    if len(winners):
        axes.scatter(winners["parameters"], winners["val_accuracy"], marker="*", s=250, color="black", zorder=5,
                     label="smallest reaching the target")
    axes.set_xscale("log")
    axes.set_xlabel("Parameters (log scale)")
    axes.set_ylabel("Validation accuracy")
    axes.set_title(title or "Parameters against validation accuracy")
    axes.legend(loc="lower right", fontsize=8)
    return finish_figure(figure, show)


def plot_fold_curves(histories: Sequence[dict], *, title: str = "Cross-validation folds", show: bool = True) -> Figure:
    """Draw each fold's held-out loss and accuracy per epoch (solid) against its training curve (faint).

    Parameters
    ----------
    histories : sequence of dict
        Keras's ``History.history`` of each fold model.
    """
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(11, 4))
    palette = sns.color_palette("tab10", len(histories))
    for fold, (history, colour) in enumerate(zip(histories, palette, strict=True), start=1):
        for metric, axes in (("loss", loss_axes), ("accuracy", accuracy_axes)):
            epochs = np.arange(1, len(history[f"val_{metric}"]) + 1)
            axes.plot(epochs, history[f"val_{metric}"], marker="o", markersize=3, color=colour,
                      label=f"fold {fold} held-out")
            if metric in history:
                axes.plot(epochs, history[metric], color=colour, alpha=0.35, linestyle="--")
    for metric, axes in (("loss", loss_axes), ("accuracy", accuracy_axes)):
        axes.set_xlabel("Epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel(metric.capitalize())
        axes.set_title(f"{title}: {metric} (dashed: training)")
    accuracy_axes.legend(fontsize=8)
    return finish_figure(figure, show)


def plot_reliability_diagram(table: pd.DataFrame, *, calibration_error: float, title: str = "Reliability diagram",
                             show: bool = True) -> Figure:
    """Draw each confidence bin's accuracy against its mean confidence, with the diagonal of perfect calibration.

    Parameters
    ----------
    table : DataFrame
        From :func:`digitrec_utils.engines.cnn.compute_reliability`: bin low, bin high, images, mean confidence,
        accuracy.
    calibration_error : float
        The expected calibration error, shown in the title.
    """
    figure, (diagram_axes, count_axes) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 2]})
    widths = table["bin high"] - table["bin low"]
    diagram_axes.bar(table["bin low"], table["accuracy"], width=widths, align="edge", edgecolor="black",
                     color="tab:blue", alpha=0.7, label="accuracy in the bin")
    diagram_axes.plot(table["mean confidence"], table["accuracy"], "o", color="black",
                      label="(mean confidence, accuracy)")
    diagram_axes.plot([0, 1], [0, 1], linestyle="--", color="tab:red", label="perfect calibration")
    diagram_axes.set_xlim(0, 1)
    diagram_axes.set_ylim(0, 1)
    diagram_axes.set_xlabel("Confidence (top probability)")
    diagram_axes.set_ylabel("Accuracy")
    diagram_axes.set_title(f"{title} (expected calibration error {calibration_error:.4f})")
    diagram_axes.legend(loc="upper left", fontsize=8)
    count_axes.bar(table["bin low"], table["images"], width=widths, align="edge", edgecolor="black", color="tab:gray")
    count_axes.set_yscale("log")
    count_axes.set_xlabel("Confidence (top probability)")
    count_axes.set_ylabel("Images (log scale)")
    count_axes.set_title("Images per confidence bin")
    return finish_figure(figure, show)


def plot_accuracy_intervals(table: pd.DataFrame, *, title: str = "Test accuracy with 95% intervals",
                            show: bool = True) -> Figure:
    """Draw every model's test accuracy as a point with its 95% interval, coloured by family.

    Parameters
    ----------
    table : DataFrame
        From :func:`digitrec_utils.reporting.ranking.gather_models`: key, family, test accuracy, 95% CI low/high.
    """
    ordered = table.sort_values("test accuracy", kind="stable").reset_index(drop=True)
    families = list(dict.fromkeys(ordered["family"]))
    palette = dict(zip(families, sns.color_palette("tab10", len(families)), strict=True))
    figure, axes = plt.subplots(figsize=(9, 0.32 * len(ordered) + 1.5))
    for position, row in ordered.iterrows():
        axes.errorbar(row["test accuracy"], position, xerr=[[row["test accuracy"] - row["95% CI low"]],
                                                            [row["95% CI high"] - row["test accuracy"]]],
                      fmt="o", color=palette[row["family"]], capsize=3)
    axes.set_yticks(range(len(ordered)), ordered["key"], fontsize=8)
    axes.set_xlabel("Test accuracy (95% Wilson interval)")
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=colour, label=family)
               for family, colour in palette.items()]
    axes.legend(handles=handles, loc="lower right", fontsize=8)
    axes.set_title(title)
    return finish_figure(figure, show)


def plot_accuracy_by_seed(seed_table: pd.DataFrame, *, title: str = "Test accuracy of each model in each seed",
                          show: bool = True) -> Figure:
    """Draw each model's test accuracy in every seed of a sweep: one row per model, one point per seed.

    The recommended model of each seed is drawn as a filled star, so that a reader sees both how far a
    model's accuracy moves and whether the choice moves with it.

    Parameters
    ----------
    seed_table : DataFrame
        From :func:`digitrec_utils.engines.stability.gather_seed_table`: seed, key, test accuracy, recommended.
    """
    order = (seed_table.groupby("key")["test accuracy"].mean().sort_values(kind="stable").index.tolist())
    figure, axes = plt.subplots(figsize=(9, 0.4 * len(order) + 1.8))
    sns.stripplot(data=seed_table, x="test accuracy", y="key", hue="seed", order=order, palette="tab10", size=7,
                  jitter=0.15, ax=axes)
    recommended = seed_table[seed_table["recommended"]]
    axes.scatter(recommended["test accuracy"], [order.index(key) for key in recommended["key"]], marker="*", s=160,
                 facecolor="none", edgecolor="black", linewidth=1.0, label="recommended in that seed", zorder=3)
    axes.set_xlabel("Test accuracy")
    axes.set_ylabel("")
    axes.tick_params(axis="y", labelsize=8)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="seed", title_fontsize=8)
    axes.set_title(title)
    figure.tight_layout()
    return finish_figure(figure, show)


def plot_recall_heatmap(recalls: pd.DataFrame, *, title: str = "Per-class recall on test", show: bool = True):
    """Draw a models x classes heatmap of recall, which shows where each family fails."""
    figure, axes = plt.subplots(figsize=(1.0 * recalls.shape[1] + 4, 0.35 * len(recalls) + 1.8))
    lowest = max(0.0, float(np.nanmin(recalls.to_numpy())) - 0.02)
    sns.heatmap(recalls, annot=True, fmt=".2f", cmap="RdYlGn", vmin=lowest, vmax=1.0, cbar_kws={"label": "recall"},
                ax=axes, annot_kws={"fontsize": 7})
    axes.set_xlabel("True class")
    axes.set_ylabel("")
    axes.set_title(title)
    return finish_figure(figure, show)


def plot_accuracy_cost(table: pd.DataFrame, *, title: str = "What each point of accuracy costs", show: bool = True):
    """Draw test accuracy against training seconds and against parameters (log scales), coloured by family."""
    figure, (time_axes, size_axes) = plt.subplots(1, 2, figsize=(12, 4.5))
    for axes, column, label in ((time_axes, "train s", "Training seconds (log scale)"),
                                (size_axes, "parameters", "Parameters (log scale)")):
        shown = table.dropna(subset=[column])
        shown = shown[shown[column] > 0]
        if shown.empty:
            axes.text(0.5, 0.5, f"no model records {column}", ha="center", transform=axes.transAxes)
            continue
        sns.scatterplot(data=shown, x=column, y="test accuracy", hue="family", ax=axes, s=50)
        for _, row in shown.iterrows():
            axes.annotate(row["name"], (row[column], row["test accuracy"]), textcoords="offset points",
                          xytext=(3, 3), fontsize=7)
        axes.set_xscale("log")
        axes.set_xlabel(label)
        axes.set_ylabel("Test accuracy")
    figure.suptitle(title)
    return finish_figure(figure, show)


def plot_robustness(table: pd.DataFrame, *, clean_accuracy: float, title: str = "Accuracy under corruption",
                    show: bool = True) -> Figure:
    """Draw each corruption's accuracy at each severity with its 95% interval, worst first, beside clean accuracy.

    Parameters
    ----------
    table : DataFrame
        From :func:`digitrec_utils.evaluation.robustness.measure_robustness`: corruption, severity, seen, accuracy,
        accuracy_low, accuracy_high.
    clean_accuracy : float
        Accuracy on the clean test images, drawn as a vertical line.
    """
    severities = sorted(table["severity"].unique())
    middle = severities[len(severities) // 2]
    order = (table[table["severity"] == middle].sort_values("accuracy", ascending=False)["corruption"].tolist())
    colours = dict(zip(severities, sns.color_palette("rocket_r", len(severities) + 1)[1:], strict=True))
    figure, axes = plt.subplots(figsize=(9, 0.38 * len(order) + 1.6))
    offsets = dict(zip(severities, np.linspace(-0.22, 0.22, len(severities)), strict=True))
    for _, row in table.iterrows():
        position = order.index(row["corruption"]) + offsets[row["severity"]]
        axes.errorbar(row["accuracy"], position, xerr=[[row["accuracy"] - row["accuracy_low"]],
                                                       [row["accuracy_high"] - row["accuracy"]]],
                      fmt="o", markersize=4, color=colours[row["severity"]], capsize=2)
    seen = dict(zip(table["corruption"], table["seen"], strict=False))
    axes.set_yticks(range(len(order)), [name.replace("_", " ") + (" (seen)" if seen[name] else "") for name in order],
                    fontsize=8)
    axes.axvline(clean_accuracy, color="grey", linestyle="--", linewidth=1)
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=colours[level], label=f"severity {level}")
               for level in severities]
    handles.append(plt.Line2D([], [], color="grey", linestyle="--", label=f"clean test {clean_accuracy:.3f}"))
    axes.legend(handles=handles, loc="lower left", fontsize=8)
    axes.set_xlabel("Test accuracy on corrupted copies (95% Wilson interval)")
    axes.set_title(title)
    return finish_figure(figure, show)


def plot_coverage_curve(curve: pd.DataFrame, *, coverage: float | None, accuracy: float | None, target: float,
                        title: str = "Accuracy of the answered digits against the share answered",
                        chosen_on: str = "validation", show: bool = True) -> Figure:
    """Draw the accuracy-coverage curve, the target accuracy and the point of the threshold chosen on validation.

    Parameters
    ----------
    curve : DataFrame
        From :func:`digitrec_utils.evaluation.abstention.compute_coverage_curve`: threshold, coverage, accuracy.
    coverage, accuracy : float or None
        The chosen threshold's point on this curve; None when no threshold reached the target.
    target : float
    chosen_on : str
        Where the threshold was chosen, for the legend.
    """
    figure, axes = plt.subplots(figsize=(7, 4.2))
    axes.plot(curve["coverage"], curve["accuracy"], color=sns.color_palette()[0], label="every threshold")
    axes.axhline(target, color="grey", linestyle="--", linewidth=1, label=f"target {target:.1%}")
    if coverage is not None:
        axes.plot([coverage], [accuracy], "o", color=sns.color_palette()[3], label=f"threshold chosen on {chosen_on}")
    axes.set_xlabel("Share of digits answered (coverage)")
    axes.set_ylabel("Accuracy of the answered")
    axes.set_xlim(0, 1.01)
    axes.set_ylim(max(0.0, min(float(curve["accuracy"].min()), target) - 0.01), 1.001)
    axes.legend(loc="lower left", fontsize=8)
    axes.set_title(title)
    return finish_figure(figure, show)


def plot_score_distributions(digit_scores: np.ndarray, other_scores: dict[str, np.ndarray], *,
                             threshold: float | None, score_name: str,
                             title: str = "Confidence of digits and of images of no digit", show: bool = True):
    """Draw the histograms of the confidence score for test digits and each source of non-digit images."""
    figure, axes = plt.subplots(figsize=(8, 4))
    bins = np.linspace(0.0, 1.0, 41)
    axes.hist(digit_scores, bins=bins, density=True, alpha=0.55, label="test digits")
    for name, values in other_scores.items():
        axes.hist(values, bins=bins, density=True, alpha=0.45, histtype="stepfilled", label=name)
    if threshold is not None:
        axes.axvline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold:.3f}")
    axes.set_xlabel(score_name.replace("_", " "))
    axes.set_ylabel("Density")
    axes.set_yscale("log")
    axes.legend(fontsize=8, loc="upper left")
    axes.set_title(title)
    return finish_figure(figure, show)


def plot_learning_curve(summary: pd.DataFrame, *, target: float, title: str, show: bool = True) -> Figure:
    """Draw accuracy on the check digits, and the share answered at the target, against the number labelled.

    Parameters
    ----------
    summary : DataFrame
        From :meth:`digitrec_utils.engines.adaptation.LearningCurve.summarize`: per ``strategy`` and ``labelled``,
        the means of ``check_accuracy`` and ``answered`` and their standard deviations (``..._std``) over draws.
    target : float
        The accuracy of the answered digits each threshold was chosen for.
    """
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    palette = sns.color_palette()
    parent = summary[summary["labelled"] == 0]
    for number, (strategy, rows) in enumerate(summary.groupby("strategy", sort=False)):
        rows = pd.concat([parent, rows[rows["labelled"] > 0]]).drop_duplicates("labelled").sort_values("labelled")
        for axes, column in ((left, "check_accuracy"), (right, "answered")):
            axes.errorbar(rows["labelled"], rows[column], yerr=rows[f"{column}_std"], marker="o", capsize=3,
                          color=palette[number], label=f"labelled {strategy}")
    left.set_ylabel("Accuracy on the check digits")
    right.set_ylabel(f"Share answered at {target:.1%}")
    for axes in (left, right):
        axes.set_xlabel("Office digits labelled (0: the model as it came)")
        axes.set_xscale("symlog", linthresh=50)
        axes.legend(fontsize=8, loc="lower right")
    right.set_ylim(0, 1.02)
    figure.suptitle(title)
    figure.tight_layout()
    return finish_figure(figure, show)


def plot_monitored_stream(windows: pd.DataFrame, *, reference_accuracy: float, title: str,
                          show: bool = True) -> Figure:
    """Draw a monitored stream: the true and the estimated accuracy per window, and where the alarm rang.

    Parameters
    ----------
    windows : DataFrame
        From :func:`digitrec_utils.engines.monitoring.simulate_stream`: per ``window``, the ``office share``,
        ``true accuracy``, ``estimated accuracy`` with ``low`` and ``high``, and the ``verdict``.
    reference_accuracy : float
        The model's accuracy on its reference digits, drawn as a dashed line.
    """
    figure, axes = plt.subplots(figsize=(10, 4.2))
    palette = sns.color_palette()
    axes.plot(windows["window"], windows["true accuracy"], marker="o", color=palette[0], label="true accuracy")
    axes.plot(windows["window"], windows["estimated accuracy"], marker="s", color=palette[1],
              label="estimated without labels")
    axes.fill_between(windows["window"], windows["low"], windows["high"], color=palette[1], alpha=0.15)
    axes.axhline(reference_accuracy, color="grey", linestyle="--", linewidth=1, label="on the reference")
    rang = windows[windows["verdict"] != "no change"]
    axes.scatter(rang["window"], rang["estimated accuracy"], s=160, facecolors="none", edgecolors=palette[3],
                 linewidths=2, label="alarm (changed or worse)", zorder=3)
    axes.set_xticks(windows["window"])
    axes.set_xticklabels([f"{number}\n{share:.0%}" for number, share in
                          zip(windows["window"], windows["office share"], strict=True)])
    axes.set_xlabel("Window (and the share of the office's digits in it)")
    axes.set_ylabel("Accuracy")
    axes.legend(fontsize=8, loc="lower left")
    axes.set_title(title)
    figure.tight_layout()
    return finish_figure(figure, show)
