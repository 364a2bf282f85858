"""Figures have titles and axis labels, and close after display."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from synthetic import make_images

from digitrec_utils import plots
from digitrec_utils.evaluation.evaluation import evaluate_model

NAMES = tuple(str(digit) for digit in range(10))


@pytest.fixture(autouse=True)
def _close_everything():
    yield
    plt.close("all")


def _evaluation():
    generator = np.random.default_rng(1)
    y_true = generator.integers(0, 10, 300)
    y_pred = np.where(generator.random(300) < 0.7, y_true, generator.integers(0, 10, 300))
    return y_true, y_pred, evaluate_model(y_true, y_pred)


def test_confusion_matrix_counts_and_normalized():
    _, _, evaluation = _evaluation()
    figure = plots.plot_confusion_matrix(evaluation.confusion_matrix, NAMES, show=False)
    axes = figure.axes[0]
    assert axes.get_title() == "Confusion matrix (counts)"
    assert axes.get_xlabel() == "Predicted class" and axes.get_ylabel() == "True class"
    annotations = [text.get_text() for text in axes.texts]
    assert len(annotations) == 100 and str(evaluation.confusion_matrix[0, 0]) in annotations
    normalized = plots.plot_confusion_matrix(evaluation.confusion_matrix, NAMES, normalize=True, show=False)
    diagonal = float(normalized.axes[0].texts[0].get_text())
    expected = evaluation.confusion_matrix[0, 0] / evaluation.confusion_matrix[0].sum()
    assert diagonal == pytest.approx(expected, abs=0.005)


def test_show_closes_the_figure():
    _, _, evaluation = _evaluation()
    before = len(plt.get_fignums())
    plots.plot_per_class_metrics(evaluation.per_class)
    assert len(plt.get_fignums()) == before


def test_per_class_bars_and_training_curves_are_labelled():
    _, _, evaluation = _evaluation()
    bars = plots.plot_per_class_metrics(evaluation.per_class, title="kNN per class", show=False)
    assert bars.axes[0].get_title() == "kNN per class" and bars.axes[0].get_ylabel() == "Score"
    bars.canvas.draw()
    legend = bars.axes[0].get_legend().get_window_extent().transformed(bars.axes[0].transAxes.inverted())
    assert legend.x0 >= 1.0  # Beside the bars, not over them.
    assert [text.get_text() for text in bars.axes[0].get_legend().get_texts()] == ["precision", "recall", "f1"]
    history = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.6, 0.8], "val_accuracy": [0.55, 0.7]}
    curves = plots.plot_training_curves(history, title="slp", show=False)
    assert [axes.get_title() for axes in curves.axes] == ["slp: loss", "slp: accuracy"]
    assert [line.get_label() for line in curves.axes[0].lines] == ["train", "validation"]


def test_misclassified_titles_show_prediction_truth_and_confidence():
    images, _ = make_images(300)
    y_true, y_pred, _ = _evaluation()
    probabilities = np.full((300, 10), 0.05)
    probabilities[np.arange(300), y_pred] = 0.55
    figure = plots.plot_misclassified(images, y_true, y_pred, NAMES, y_proba=probabilities, n_images=5, show=False)
    titles = [axes.get_title() for axes in figure.axes if axes.get_title()]
    wrong = np.flatnonzero(y_true != y_pred)[0]
    assert titles[0] == f"{y_pred[wrong]} ({y_true[wrong]}) p=0.55"
    assert len(titles) == 5
    assert plots.plot_misclassified(images, y_true, y_true, NAMES, show=False) is None


def test_grids_and_eda_figures_have_titles():
    images, labels = make_images(60)
    assert plots.plot_class_samples(images, labels, NAMES, per_class=3, show=False)._suptitle.get_text()
    counts = pd.DataFrame({"class": list(NAMES) * 2, "part": ["train"] * 10 + ["test"] * 10, "count": range(20)})
    figure = plots.plot_class_distribution(counts, show=False)
    assert figure.axes[0].get_xlabel() == "Class" and figure.axes[0].get_ylabel() == "Images"
    histogram = plots.plot_pixel_value_histogram(np.bincount(images.ravel(), minlength=256), title="pixels", show=False)
    assert histogram.axes[0].get_yscale() == "log"
    variance = plots.plot_explained_variance(np.linspace(0.1, 1.0, 50), title="variance", show=False)
    assert "components" in variance.axes[0].get_xlabel()


def test_sweep_plot_marks_the_chosen_setting():
    sweep = pd.DataFrame({"depth": [3, 4, 5, 3, 4, 5], "criterion": ["gini"] * 3 + ["entropy"] * 3,
                          "val_accuracy": [0.6, 0.7, 0.65, 0.62, 0.69, 0.72]})
    figure = plots.plot_sweep(sweep, x="depth", hue="criterion", chosen={"depth": 5, "criterion": "entropy"},
                              title="Trees", show=False)
    axes = figure.axes[0]
    stars = [collection for collection in axes.collections if list(collection.get_sizes()) == [250]]
    assert [tuple(star.get_offsets()[0]) for star in stars] == [(5.0, 0.72)]
    assert "chosen: depth=5, entropy" in [text.get_text() for text in axes.get_legend().get_texts()]
    assert axes.get_ylabel() == "Validation accuracy"
    plt.close(figure)


def test_experiment_and_pareto_plots_show_what_was_tried():
    widths = pd.DataFrame({"width": [16, 64, 256], "val_accuracy": [0.8, 0.85, 0.86]})
    figure = plots.plot_experiment(widths, x="width", title="Width", show=False)
    assert list(figure.axes[0].lines[0].get_xdata()) == [16, 64, 256]
    assert figure.axes[0].get_xscale() == "log"
    plt.close(figure)
    optimizers = pd.DataFrame({"optimizer": ["sgd", "adam"], "val_accuracy": [0.7, 0.9]})
    figure = plots.plot_experiment(optimizers, x="optimizer", title="Optimizer", show=False)
    assert [patch.get_height() for patch in figure.axes[0].patches] == [0.7, 0.9]
    plt.close(figure)
    # With intervals: error bars of the right length, and integer settings on integer ticks only.
    depths = pd.DataFrame({"hidden layers": [1, 2, 3], "val_accuracy": [0.89, 0.88, 0.90],
                           "95% CI low": [0.85, 0.84, 0.87], "95% CI high": [0.92, 0.91, 0.93]})
    figure = plots.plot_experiment(depths, x="hidden layers", title="Depth", show=False)
    axes = figure.axes[0]
    figure.canvas.draw()
    ticks = [tick for tick in axes.get_xticks() if axes.get_xlim()[0] <= tick <= axes.get_xlim()[1]]
    assert ticks and all(float(tick).is_integer() for tick in ticks)
    bars = [segments for collection in axes.collections for segments in collection.get_segments()]
    assert sorted((round(line[0][1], 4), round(line[1][1], 4)) for line in bars) == [(0.84, 0.91), (0.85, 0.92),
                                                                                      (0.87, 0.93)]
    assert axes.get_ylabel() == "Validation accuracy (95% interval)"
    plt.close(figure)
    candidates = pd.DataFrame({"network": ["8", "16", "32"], "parameters": [6370, 12730, 25450],
                               "val_accuracy": [0.80, 0.86, 0.85], "pareto": [True, True, False],
                               "winner": [False, True, False]})
    figure = plots.plot_pareto(candidates, target=0.85, reference=13_287, show=False)
    labels = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert "smallest reaching the target" in labels and "third report: 13,287 parameters" in labels
    plt.close(figure)
