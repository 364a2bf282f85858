"""Figures of images for the reports: grids of digits, per-class samples and means, pixel statistics, projections.

Every function returns its Figure; with ``show=True`` (the default) it displays and closes it
(:func:`digitrec_utils.plots.style.finish_figure`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from digitrec_utils.plots.style import GRID_CMAP, finish_figure


def plot_image_grid(
    images: np.ndarray,
    titles: Sequence[str] | None = None,
    *,
    n_columns: int = 10,
    title: str = "",
    cmap: str = GRID_CMAP,
    show: bool = True,
) -> Figure:
    """Draw images in a grid, each with an optional small title.

    Parameters
    ----------
    images : ndarray of shape (n_images, height, width), or a list of 2-D arrays of any sizes
    titles : sequence of str, optional
    n_columns : int, default=10
    title : str
        The figure's title.
    """
    images = images if isinstance(images, np.ndarray) else [np.asarray(image) for image in images]
    n_images = max(len(images), 1)
    n_columns = min(n_columns, n_images)
    n_rows = math.ceil(n_images / n_columns)
    figure, grid = plt.subplots(n_rows, n_columns, figsize=(1.25 * n_columns, 1.45 * n_rows + 0.5), squeeze=False)
    for position, axes in enumerate(grid.flat):
        axes.axis("off")
        if position < len(images):
            axes.imshow(images[position], cmap=cmap)
            if titles is not None:
                axes.set_title(titles[position], fontsize=8)
    if title:
        figure.suptitle(title)
    return finish_figure(figure, show)


def plot_samples(images, labels, class_names, *, n_images: int = 30, title: str = "First images", show=True):
    """Draw the first ``n_images`` images titled with their class names."""
    titles = [class_names[int(label)] for label in labels[:n_images]]
    return plot_image_grid(images[:n_images], titles, title=title, show=show)


def plot_class_samples(images, labels, class_names, *, per_class: int = 8, title: str = "Images per class", show=True):
    """Draw the first ``per_class`` images of each class, one row per class."""
    rows, titles = [], []
    for label, class_name in enumerate(class_names):
        chosen = images[np.flatnonzero(labels == label)[:per_class]]
        padded = np.zeros((per_class, *images.shape[1:]), dtype=images.dtype)
        padded[: len(chosen)] = chosen
        rows.append(padded)
        titles += [class_name if column == 0 else "" for column in range(per_class)]
    return plot_image_grid(np.concatenate(rows), titles, n_columns=per_class, title=title, show=show)


def plot_misclassified(
    images: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    class_names: Sequence[str],
    *,
    y_proba: np.ndarray | None = None,
    n_images: int = 20,
    title: str = "Misclassified test images: pred (true)",
    show: bool = True,
) -> Figure | None:
    """Draw misclassified images titled ``"pred (true) p=0.93"``, most confident mistakes first.

    Returns None (and prints a line) when nothing is misclassified.
    """
    wrong = np.flatnonzero(np.asarray(y_true) != np.asarray(y_pred))
    if wrong.size == 0:
        print("No misclassified images.")
        return None
    if y_proba is not None:
        confidence = np.asarray(y_proba)[wrong, np.asarray(y_pred)[wrong]]
        wrong = wrong[np.argsort(-confidence, kind="stable")]
    wrong = wrong[:n_images]
    titles = []
    for index in wrong:
        text = f"{class_names[int(y_pred[index])]} ({class_names[int(y_true[index])]})"
        if y_proba is not None:
            text += f" p={y_proba[index, int(y_pred[index])]:.2f}"
        titles.append(text)
    return plot_image_grid(images[wrong], titles, n_columns=min(10, len(wrong)), title=title, show=show)


def plot_class_distribution(counts: pd.DataFrame, *, title: str = "Images per class", show: bool = True) -> Figure:
    """Draw bars of the number of images per class for each part.

    Parameters
    ----------
    counts : DataFrame
        Columns ``class``, ``part`` (e.g. train, test) and ``count``.
    """
    figure, axes = plt.subplots(figsize=(10, 4))
    sns.barplot(data=counts, x="class", y="count", hue="part", ax=axes)
    axes.set_xlabel("Class")
    axes.set_ylabel("Images")
    axes.set_title(title)
    axes.tick_params(axis="x", rotation=30)
    return finish_figure(figure, show)


def plot_class_images(images: np.ndarray, class_names, *, title: str, cmap: str = "magma", show: bool = True):
    """Draw one image per class (e.g. the mean or standard-deviation image) with a shared colour scale."""
    figure, grid = plt.subplots(1, len(class_names), figsize=(1.4 * len(class_names), 2.0))
    low, high = float(np.min(images)), float(np.max(images))
    for axes, image, class_name in zip(grid, images, class_names, strict=True):
        axes.imshow(image, cmap=cmap, vmin=low, vmax=high)
        axes.set_title(class_name, fontsize=8)
        axes.axis("off")
    figure.suptitle(title)
    return finish_figure(figure, show)


def plot_histograms(
    samples: dict[str, np.ndarray],
    *,
    bins: int | np.ndarray = 50,
    title: str,
    xlabel: str,
    ylabel: str = "Fraction",
    log_y: bool = False,
    show: bool = True,
) -> Figure:
    """Draw overlaid, normalized histograms of several named samples (e.g. train and test)."""
    long = pd.concat([pd.DataFrame({"value": np.ravel(values), "part": name}) for name, values in samples.items()])
    figure, axes = plt.subplots(figsize=(9, 3.8))
    sns.histplot(data=long, x="value", hue="part", bins=bins, stat="probability", common_norm=False,
                 element="step", ax=axes)
    if log_y:
        axes.set_yscale("log")
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    return finish_figure(figure, show)


def plot_pixel_value_histogram(pixel_counts: np.ndarray, *, title: str, show: bool = True) -> Figure:
    """Draw the distribution of pixel values 0-255 from precomputed counts (log scale).

    Parameters
    ----------
    pixel_counts : ndarray of shape (256,)
        ``np.bincount(images.ravel(), minlength=256)``: counting first keeps this fast on 47M pixels.
    """
    fractions = np.asarray(pixel_counts, dtype=np.float64) / max(np.sum(pixel_counts), 1)
    figure, axes = plt.subplots(figsize=(9, 3.8))
    axes.bar(np.arange(len(fractions)), fractions, width=1.0, color=sns.color_palette()[0])
    axes.set_yscale("log")
    axes.set_xlim(-1, len(fractions))
    axes.set_xlabel("Pixel value (0-255)")
    axes.set_ylabel("Fraction of pixels (log scale)")
    axes.set_title(title)
    return finish_figure(figure, show)


def plot_projection(points: np.ndarray, labels: np.ndarray, class_names, *, title: str, show: bool = True) -> Figure:
    """Draw a 2-D scatter of projected images coloured by class."""
    frame = pd.DataFrame({"x": points[:, 0], "y": points[:, 1], "class": [class_names[int(i)] for i in labels]})
    figure, axes = plt.subplots(figsize=(8, 6.5))
    sns.scatterplot(data=frame, x="x", y="y", hue="class", hue_order=list(class_names), s=6, alpha=0.6,
                    linewidth=0, palette="tab10", ax=axes)
    axes.set_xlabel("First principal component")
    axes.set_ylabel("Second principal component")
    axes.set_title(title)
    axes.legend(markerscale=3, fontsize=8, bbox_to_anchor=(1.01, 1), loc="upper left")
    return finish_figure(figure, show)


def plot_explained_variance(cumulative: np.ndarray, *, marks=(0.8, 0.9, 0.95), title: str, show: bool = True):
    """Draw the cumulative explained variance against the number of principal components."""
    figure, axes = plt.subplots(figsize=(8, 3.8))
    components = np.arange(1, len(cumulative) + 1)
    axes.plot(components, cumulative)
    for mark in marks:
        needed = int(np.searchsorted(cumulative, mark) + 1)
        axes.axhline(mark, color="grey", linestyle=":", linewidth=1)
        axes.annotate(f"{mark:.0%}: {needed} components", (needed, mark), textcoords="offset points",
                      xytext=(8, -12), fontsize=8)
    axes.set_xscale("log")
    axes.set_xlabel("Number of principal components (log scale)")
    axes.set_ylabel("Cumulative explained variance")
    axes.set_title(title)
    return finish_figure(figure, show)


def plot_read_strings(images: Sequence[np.ndarray], entries: Sequence[dict], truths: Sequence[str], *,
                      title: str = "Misread strings", show: bool = True) -> Figure:
    """Draw photos of digit strings with the boxes ``digitrec read`` found and what it read, one per row.

    Boxes are green where the digit was accepted at the threshold and red where it was unsure.
    """

    figure, axes_list = plt.subplots(len(images), 1, figsize=(9, 2.0 * len(images)), squeeze=False)
    for axes, image, entry, truth in zip(axes_list[:, 0], images, entries, truths, strict=True):
        axes.imshow(image, cmap="gray", vmin=0, vmax=255)
        for digit in entry.get("digits", []):
            x0, y0, x1, y1 = digit["box"]
            colour = "tab:green" if digit["accepted"] else "tab:red"
            axes.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=colour, linewidth=1.5))
            axes.text(x0, y0 - 4, digit["label"], color=colour, fontsize=9)
        read = "".join(digit["label"] for digit in entry.get("digits", []))
        axes.set_title(f"written {truth}, read {read or '-'}", fontsize=9)
        axes.axis("off")
    figure.suptitle(title)
    return finish_figure(figure, show)
