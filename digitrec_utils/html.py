"""Rendering executed notebooks to self-contained HTML with nbconvert's API.

The template (``templates/digitrec``) extends JupyterLab's and empties every block that would load a
script from a CDN (require.js, MathJax, mermaid, widgets). Images are embedded as data URIs. Code cells
are hidden unless ``show_code`` is set, except cells that raised, whose code stays visible beside the
error. A table of contents built from the headings is inserted at the top.
"""

from __future__ import annotations

import copy
import html as html_escaping
import re
from pathlib import Path

import nbformat

from digitrec_utils import __version__, config

_HEADING = re.compile(r'<h([1-3]) id="([^"]+)"[^>]*>(.*?)</h\1>', re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_EXTERNAL_REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def hide_code(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Return a copy whose code cells are marked to hide their source, except cells with an error."""
    notebook = copy.deepcopy(notebook)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        raised = any(output.get("output_type") == "error" for output in cell.get("outputs", []))
        if not raised:
            cell.metadata.setdefault("transient", {})["remove_source"] = True
    return notebook


def build_table_of_contents(html: str) -> str:
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


def render_notebook_html(notebook_path: str | Path, *, show_code: bool = False, index_href: str = "") -> str:
    """Render an executed notebook to a self-contained HTML page.

    Parameters
    ----------
    notebook_path : path-like
        The executed ``.ipynb``.
    show_code : bool, default=False
        Show every code cell; by default only cells that raised show their code.
    index_href : str
        A relative link back to the run's index page, shown at the foot.

    Returns
    -------
    html : str
    """
    from nbconvert import HTMLExporter

    notebook = nbformat.read(str(notebook_path), as_version=4)
    if not show_code:
        notebook = hide_code(notebook)
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
    table_of_contents = build_table_of_contents(html)
    first_cell_after_title = html.find('<div class="jp-Cell jp-CodeCell')
    if table_of_contents and first_cell_after_title != -1:
        # Between cells, under the title and introduction, before everything else.
        html = html[:first_cell_after_title] + table_of_contents + html[first_cell_after_title:]
    return html
