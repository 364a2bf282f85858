"""Rendering executed notebooks to self-contained HTML with nbconvert's API.

The template (``templates/digitrec``) extends JupyterLab's and empties every block that would load a
script from a CDN (require.js, MathJax, mermaid, widgets). Images are embedded as data URIs. Code cells
are hidden unless ``show_code`` is set, except cells that raised, whose code stays visible beside the
error. A table of contents built from the headings is inserted at the top. A code cell whose metadata
holds ``{"digitrec": {"details": "Summary"}}`` shows its outputs inside a closed ``<details>`` element
(per-model details, epoch logs): there for whoever wants them, out of the way of the summary. The
machine's own folders are replaced by relative names (see :mod:`digitrec_utils.utils.paths`).
"""

from __future__ import annotations

import copy
import html as html_escaping
import re
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

from digitrec_utils import __version__, config
from digitrec_utils.utils.paths import hide_machine_paths

_HEADING = re.compile(r'<h([1-3]) id="([^"]+)"[^>]*>(.*?)</h\1>', re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_EXTERNAL_REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def _hide_code(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Return a copy whose code cells are marked to hide their source, except cells with an error."""
    notebook = copy.deepcopy(notebook)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        raised = any(output.get("output_type") == "error" for output in cell.get("outputs", []))
        if not raised:
            cell.metadata.setdefault("transient", {})["remove_source"] = True
    return notebook


def move_summary_to_top(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Return a copy whose summary cells come right after the title and introduction.

    The summary is computed last (it needs the test evaluation), but a reader wants it first. Cells whose
    metadata holds ``{"digitrec": {"placement": "top"}}`` move, in their order, behind the first
    markdown cell. They stay where they were when none of them has output (a run that failed before
    them), so a page never opens with an empty summary.
    """
    notebook = copy.deepcopy(notebook)
    marked = [cell for cell in notebook.cells if cell.metadata.get("digitrec", {}).get("placement") == "top"]
    if not any(cell.cell_type == "code" and cell.get("outputs") for cell in marked):
        return notebook
    rest = [cell for cell in notebook.cells if all(cell is not other for other in marked)]
    first_markdown = next((index for index, cell in enumerate(rest) if cell.cell_type == "markdown"), -1)
    notebook.cells = rest[:first_markdown + 1] + marked + rest[first_markdown + 1:]
    return notebook


def _build_table_of_contents(html: str) -> str:
    """Return a ``<nav>`` listing the page's h1-h3 headings as links to their anchors."""
    items = []
    for level, anchor, inner in _HEADING.findall(html):
        text = html_escaping.unescape(_TAG.sub("", inner)).replace("¶", "").strip()
        if level == "1" or not text:
            continue
        items.append(f'<li class="level-{level}"><a href="#{anchor}">{html_escaping.escape(text)}</a></li>')
    if not items:
        return ""
    return '<nav class="digitrec-toc"><h2>Contents</h2><ul>' + "".join(items) + "</ul></nav>"


def find_external_references(html: str) -> list[str]:
    """Return the ``src``/``href`` attributes that point at another host (should be none)."""
    return [match.group(0) for match in _EXTERNAL_REFERENCE.finditer(html)]


def _find_contents_position(html: str, notebook: nbformat.NotebookNode) -> int:
    """Return where the table of contents goes: before the first cell after the title and summary (-1: nowhere)."""
    seen_title = False
    for cell in notebook.cells:
        on_top = cell.metadata.get("digitrec", {}).get("placement") == "top"
        if not seen_title and cell.cell_type == "markdown":
            seen_title = True
            continue
        if seen_title and not on_top and cell.get("id"):
            anchor = html.find(f'id="cell-id={cell.id}"')
            return html.rfind("<div", 0, anchor) if anchor != -1 else -1
    return -1


def render_notebook_html(notebook_path: str | Path, *, show_code: bool = False, index_href: str = "",
                         run_dir: str | Path | None = None) -> str:
    """Render an executed notebook to a self-contained HTML page.

    Parameters
    ----------
    notebook_path : path-like
        The executed ``.ipynb``.
    show_code : bool, default=False
        Show every code cell; by default only cells that raised show their code.
    index_href : str
        A relative link back to the run's index page, shown at the foot.
    run_dir : path-like, optional
        The run folder; paths inside it are shown relative to it (the notebook's folder by default).

    Returns
    -------
    html : str
    """

    notebook = move_summary_to_top(nbformat.read(str(notebook_path), as_version=4))
    if not show_code:
        notebook = _hide_code(notebook)
    exporter = HTMLExporter(
        template_name="digitrec",
        extra_template_basedirs=[str(config.TEMPLATES_DIR)],
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    resources = {"digitrec_version": __version__, "digitrec_index_href": index_href,
                 "metadata": {"name": Path(notebook_path).stem}}
    html, _ = exporter.from_notebook_node(notebook, resources=resources)
    table_of_contents = _build_table_of_contents(html)
    position = _find_contents_position(html, notebook)
    if table_of_contents and position != -1:
        # Under the title, the introduction and the summary, before everything else.
        html = html[:position] + table_of_contents + html[position:]
    return hide_machine_paths(html, run_dir if run_dir is not None else Path(notebook_path).parent)
