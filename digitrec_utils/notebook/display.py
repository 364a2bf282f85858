"""What a notebook displays: findings, tables, an evaluation, a model summary, step timings and provenance.

Only notebooks import this module; the runner, which renders their pages, never loads IPython's display or the
figures from here.
"""

from __future__ import annotations

import ast
import contextlib
import json
import time
import warnings
from collections.abc import Iterator

import pandas as pd
import seaborn as sns
from IPython.display import Markdown, display
from pandas.io.formats.style import Styler

from digitrec_utils import config, plots
from digitrec_utils.reporting.tables import style_table
from digitrec_utils.utils.environment import collect_environment
from digitrec_utils.utils.paths import PATH_PARAMETERS, describe_parameter


def configure_notebook() -> None:
    """Set a consistent look for figures and tables, and quiet known harmless warnings."""
    sns.set_theme(context="notebook", style="whitegrid")
    pd.set_option("display.precision", 4)
    pd.set_option("display.max_columns", 30)
    warnings.filterwarnings("ignore", category=FutureWarning, module="seaborn")


def show_finding(text: str) -> None:
    """Display a computed interpretation as a highlighted Markdown line."""

    quoted = "\n".join(f"> {line}" if line else ">" for line in str(text).splitlines())
    display(Markdown(f"> **Finding.** {quoted[2:] if quoted.startswith('> ') else quoted}"))


def show_table(table: pd.DataFrame, *, percent_columns=()) -> None:
    """Display a table formatted for reading (see :mod:`digitrec_utils.reporting.tables`), without its index.

    A pandas ``Styler`` (a table already formatted, e.g. with highlighted rows) is displayed as it is.
    """

    display(table if isinstance(table, Styler) else style_table(table, percent_columns=percent_columns))


class Timings:
    """Seconds spent per named step, measured with ``with timings.measure("pca"): ...``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def measure(self, step: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[step] = self.seconds.get(step, 0.0) + round(time.perf_counter() - started, 3)

    def as_dict(self) -> dict[str, float]:
        return dict(self.seconds)


def collect_parameters(notebook: str, namespace: dict) -> dict:
    """Return the values of the notebook's declared parameters, as they stand in ``namespace``.

    Parameters
    ----------
    notebook : str
        The stem, e.g. ``"01_eda"``; its parameters cell lists the names.
    namespace : dict
        Usually ``globals()`` of the running notebook, after papermill injected the run's values.
    """
    return {name: namespace[name] for name in list_parameter_names(notebook) if name in namespace}


def list_parameter_names(notebook: str) -> list[str]:
    """The names that a notebook's parameters cell assigns, in order, read with ``json`` and ``ast``.

    papermill's ``inspect_notebook`` (which the pre-flight check uses) says the same, but a kernel that imports
    papermill imports nbformat and jsonschema, whose format checkers parse an IRI grammar with Lark: 2 to 4
    seconds of every notebook's start, longer than the quick profile's whole analysis in 01.
    """
    cells = json.loads((config.NOTEBOOKS_DIR / f"{notebook}.ipynb").read_text(encoding="utf-8"))["cells"]
    source = next("".join(cell["source"]) for cell in cells
                  if "parameters" in cell.get("metadata", {}).get("tags", []))
    names = []
    for statement in ast.parse(source).body:
        if isinstance(statement, ast.AnnAssign):
            targets = [statement.target]
        else:
            targets = statement.targets if isinstance(statement, ast.Assign) else []
        names += [target.id for target in targets if isinstance(target, ast.Name)]
    return names


def show_provenance(parameters: dict, dataset_info: dict, timings: Timings) -> dict:
    """Display parameters, dataset checksum, package versions, git commit and timings; return the environment."""

    environment = collect_environment()
    git = environment["git"]
    commit = git["commit"] or "unknown (not a git checkout)"
    if git.get("dirty"):
        commit += " (with uncommitted changes)"
    display(Markdown(
        f"**Dataset** `{dataset_info['name']}`, SHA-256 `{dataset_info['sha256']}`  \n"
        f"**Git commit** `{commit}`  \n"
        f"**Python** {environment['python']} on {environment['cpu']} ({environment['cpu_count']} cores), "
        f"GPU: {', '.join(environment['gpus']) or 'none'}"
    ))
    run_dir = parameters.get("output_dir") or None
    shown = {name: _describe_parameter(name, value, run_dir) for name, value in parameters.items()}
    show_table(pd.DataFrame({"parameter": list(shown), "value": list(shown.values())}))
    versions = {name: version for name, version in environment["packages"].items() if version}
    show_table(pd.DataFrame({"package": list(versions), "version": list(versions.values())}))
    show_table(pd.DataFrame({"step": list(timings.seconds), "seconds": list(timings.seconds.values())}))
    return environment


def _describe_parameter(name: str, value, run_dir) -> str:
    """Return a parameter's value as the provenance table shows it: paths relative, the run folder by name."""
    shown = describe_parameter(name, value, run_dir)
    return "this run's folder" if name in PATH_PARAMETERS and shown == "." else repr(shown)


def show_evaluation(name: str, evaluation, images, y_true, class_names, *, n_misclassified: int = 20) -> None:
    """Display one model's single test evaluation: headline, confusion matrix, per-class table and mistakes.

    Parameters
    ----------
    name : str
        The model's name, used in titles.
    evaluation : Evaluation
        From :func:`digitrec_utils.evaluation.evaluation.evaluate_model` on the test split.
    images : ndarray of shape (n_samples, 28, 28)
        The test images, in the order of the evaluation's predictions.
    y_true : ndarray of shape (n_samples,)
        The test labels.
    class_names : sequence of str
    n_misclassified : int, default=20
        Misclassified images to draw, most confident mistakes first when probabilities exist.
    """

    display(Markdown(f"**{name}**: test {evaluation.headline()}; macro F1 {evaluation.macro_f1:.4f}."))
    plots.plot_confusion_matrix(evaluation.confusion_matrix, class_names, title=f"{name}: test confusion matrix")
    show_table(evaluation.per_class)
    plots.plot_per_class_metrics(evaluation.per_class, title=f"{name}: per-class precision, recall and F1 on test")
    plots.plot_misclassified(images, y_true, evaluation.y_pred, class_names, y_proba=evaluation.y_proba,
                             n_images=n_misclassified, title=f"{name}: misclassified test images, pred (true)")


def show_model_summary(model) -> None:
    """Display a Keras model's layer table and parameter count as preformatted text."""

    lines: list[str] = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line), line_length=90)
    display(Markdown(f"**{model.name}**: {model.count_params():,} parameters\n\n```\n" + "\n".join(lines) + "\n```"))
