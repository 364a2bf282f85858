"""Packaging: environment.yml agrees with pyproject.toml, and the console command is declared."""

from __future__ import annotations

import re
import tomllib

import yaml

from digitrec_utils import config


def _pyproject() -> dict:
    return tomllib.loads((config.PROJECT_ROOT / "pyproject.toml").read_text())


def _environment() -> dict:
    return yaml.safe_load((config.PROJECT_ROOT / "environment.yml").read_text())


def test_environment_python_version_is_allowed_by_pyproject():
    dependencies = _environment()["dependencies"]
    pinned = [entry for entry in dependencies if isinstance(entry, str) and entry.startswith("python=")]
    assert pinned == ["python=3.11"]
    minimum = re.fullmatch(r">=(\d+)\.(\d+)", _pyproject()["project"]["requires-python"])
    assert minimum is not None
    assert (int(minimum.group(1)), int(minimum.group(2))) <= (3, 11)


def test_environment_installs_the_same_extras_as_pyproject():
    dependencies = _environment()["dependencies"]
    assert "pip" in dependencies
    pip_sections = [entry["pip"] for entry in dependencies if isinstance(entry, dict) and "pip" in entry]
    assert len(pip_sections) == 1
    extras = set()
    for line in pip_sections[0]:
        match = re.fullmatch(r"-e \.\[([\w,]+)\]", line)
        assert match, f"environment.yml pip line {line!r} should be '-e .[extras]'"
        extras |= set(match.group(1).split(","))
    assert extras == set(_pyproject()["project"]["optional-dependencies"])
    assert "conda-forge" in _environment()["channels"]


def test_every_dependency_has_a_lower_bound():
    project = _pyproject()["project"]
    extras = project["optional-dependencies"].values()
    requirements = project["dependencies"] + [item for group in extras for item in group]
    unbounded = [requirement for requirement in requirements if ">=" not in requirement]
    assert unbounded == []


def test_console_command_points_at_the_cli():
    assert _pyproject()["project"]["scripts"] == {"digitrec": "digitrec_utils.cli:main"}
