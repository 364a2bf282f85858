"""Notebooks written by tests, to make a run succeed, fail or sleep on purpose (see ``DIGITREC_NOTEBOOKS``)."""

from __future__ import annotations

from pathlib import Path

import nbformat

PARAMETERS = ('dataset: str = "mnist-sample"  # Dataset.\n'
              'seed: int = 42  # Seed.\n'
              'output_dir: str = ""  # Set by digitrec run.')
SAVE_RECORD = ('from digitrec_utils.reporting.results import build_results, save_results\n'
               'save_results(build_results("{stem}", {{"name": dataset, "sha256": "0" * 64}}, {{}}, seed=seed,\n'
               '                           headline="fake {stem}"), output_dir)')


def write_notebook(folder: Path, stem: str, body: str) -> Path:
    """Write ``folder/stem.ipynb``: a title, the usual parameters cell, then ``body`` as one code cell."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_markdown_cell(f"# {stem}\n\nA notebook of the tests."),
                      nbformat.v4.new_code_cell(PARAMETERS, metadata={"tags": ["parameters"]}),
                      nbformat.v4.new_code_cell(body)]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.ipynb"
    nbformat.write(notebook, str(path))
    return path


def write_succeeding(folder: Path, stem: str) -> Path:
    """A notebook that prints a line and saves a results record."""
    return write_notebook(folder, stem, 'print("done")\n' + SAVE_RECORD.format(stem=stem))


def write_failing(folder: Path, stem: str, message: str) -> Path:
    """A notebook whose code cell raises ValueError(message)."""
    return write_notebook(folder, stem, f"raise ValueError({message!r})")


def write_sleeping(folder: Path, stem: str, marker: Path) -> Path:
    """A notebook that writes ``marker`` once its kernel runs, then sleeps for ten minutes."""
    return write_notebook(folder, stem, f"import pathlib, time\npathlib.Path({str(marker)!r}).write_text('running')\n"
                                        "time.sleep(600)")
