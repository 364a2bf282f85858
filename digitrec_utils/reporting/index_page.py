"""The run's ``index.html``: the headline result, one row per notebook, and the run manifest, in one page.

The page shows no path of the machine that made it: the profile is named relative to the project, the
interpreter by its version, and errors pass through :func:`digitrec_utils.utils.paths.hide_machine_paths`.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import jinja2

from digitrec_utils import __version__, config
from digitrec_utils.utils.paths import describe_parameter, describe_path, hide_machine_paths
from digitrec_utils.utils.progress import format_duration


def read_recommendation(run_dir: str | Path) -> dict | None:
    """Return the comparison notebook's recommended model and runner-ups, or None when it has none.

    Parameters
    ----------
    run_dir : path-like
        The run folder; the comparison's record is ``results/06_model_comparison.json`` there.
    """
    path = Path(run_dir) / "results" / "06_model_comparison.json"
    try:
        recommendation = json.loads(path.read_text(encoding="utf-8")).get("recommendation")
    except (OSError, ValueError):
        return None
    return recommendation if recommendation and recommendation.get("recommended") else None


def format_moment(text: str) -> str:
    """Return an ISO 8601 time as a reader writes it, in UTC ("26 Nov 2026, 21:27 UTC"); other text as it is."""
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return str(text)
    if moment.tzinfo is None:
        return moment.strftime("%d %b %Y, %H:%M").lstrip("0")
    return moment.astimezone(UTC).strftime("%d %b %Y, %H:%M UTC").lstrip("0")


def create_environment(folder: str | Path | None) -> jinja2.Environment:
    """Return the Jinja environment of the index pages, with their filters; ``folder`` is the run's or sweep's."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(config.TEMPLATES_DIR)),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["hide_paths"] = lambda text: hide_machine_paths(str(text), folder)
    environment.filters["moment"] = format_moment
    environment.filters["duration"] = format_duration
    return environment


def render_index_html(manifest: dict, *, run_dir: str | Path | None = None) -> str:
    """Render the index page from a run manifest (see ``runner._build_manifest``).

    Parameters
    ----------
    manifest : dict
        The content of ``run.json``.
    run_dir : path-like, optional
        The run folder, for the comparison's headline and for showing paths relative to it.

    Returns
    -------
    html : str
        Inline CSS only; no script, font or image is fetched from anywhere.
    """
    template = create_environment(run_dir).get_template("run_index.html.j2")
    packages = {name: version for name, version in manifest["environment"]["packages"].items() if version}
    profile = describe_path(manifest.get("profile"), None)
    recommendation = read_recommendation(run_dir) if run_dir is not None else None
    command = " ".join(describe_path(word, run_dir) if os.path.isabs(word) else word
                       for word in str(manifest.get("command", "")).split())
    parameters = {run["notebook"]: {key: describe_parameter(key, value, run_dir)
                                    for key, value in run["parameters"].items()} for run in manifest["notebooks"]}
    html = template.render(manifest=manifest, packages=packages, version=__version__, profile=profile,
                           recommendation=recommendation, command=command, parameters=parameters)
    return hide_machine_paths(html, run_dir)
