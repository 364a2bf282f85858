"""A report page built as a notebook with its outputs (no kernel runs), rendered by the suite's own renderer.

The pages of ``evaluate``, ``calibrate``, ``adapt`` and ``monitor`` are made this way, so that they look like the
report pages: the same template, tables and figures, and no machine paths.
"""

from __future__ import annotations

import base64
import io
import tempfile
from pathlib import Path

import matplotlib
import nbformat
from matplotlib import pyplot as plt

from digitrec_utils.reporting.html import render_notebook_html
from digitrec_utils.utils.files import write_text_atomic


def name_file(error: str) -> str:
    """An image's error (``path: reason``) with the file's name only, no machine folders."""
    path, _, reason = error.partition(": ")
    return f"{Path(path).name}: {reason}"


class ReportPage:
    """A report page built as a notebook with its outputs (no kernel runs), rendered by the suite's renderer."""

    def __init__(self) -> None:
        matplotlib.use("Agg")
        self.cells = []

    def add_markdown(self, text: str) -> None:
        self.cells.append(nbformat.v4.new_markdown_cell(text))

    def add_outputs(self, *items, details: str | None = None) -> None:
        cell = nbformat.v4.new_code_cell("", outputs=list(items))
        if details:
            cell.metadata["digitrec"] = {"details": details}
        self.cells.append(cell)

    def add_table(self, table, *, details: str | None = None) -> None:
        """A table, folded away under ``details`` when given."""
        self.add_outputs(nbformat.v4.new_output("display_data", data={"text/html": table.to_html()}), details=details)

    def add_figure(self, figure) -> None:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
        plt.close(figure)
        self.add_outputs(nbformat.v4.new_output("display_data", data={
            "image/png": base64.b64encode(buffer.getvalue()).decode("ascii"), "text/plain": "<figure>"}))

    def add_details(self, lines: list[str], *, title: str) -> None:
        """A list folded away under ``title``."""
        self.add_markdown("## Details")
        self.add_outputs(nbformat.v4.new_output("display_data", data={"text/markdown": "\n".join(lines),
                                                                      "text/plain": "\n".join(lines)}),
                         details=title)

    def write(self, path) -> None:
        notebook = nbformat.v4.new_notebook(cells=self.cells)
        with tempfile.TemporaryDirectory() as folder:
            notebook_path = Path(folder) / "evaluate.ipynb"
            nbformat.write(notebook, str(notebook_path))
            html = render_notebook_html(notebook_path)
        write_text_atomic(path, html)
