"""The run's ``index.html``: one row per notebook, and the run manifest, in one self-contained page."""

from __future__ import annotations

import jinja2

from digitrec_utils import __version__, config


def render_index_html(manifest: dict) -> str:
    """Render the index page from a run manifest (see ``runner._build_manifest``).

    Parameters
    ----------
    manifest : dict
        The content of ``run.json``.

    Returns
    -------
    html : str
        Inline CSS only; no script, font or image is fetched from anywhere.
    """
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(config.TEMPLATES_DIR)),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    template = environment.get_template("run_index.html.j2")
    packages = {name: version for name, version in manifest["environment"]["packages"].items() if version}
    return template.render(manifest=manifest, packages=packages, version=__version__)
