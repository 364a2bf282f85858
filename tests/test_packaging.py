"""Packaging: environment.yml agrees with pyproject.toml, the console command is declared, and a wheel works."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile

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


def test_the_wheel_carries_the_suite_and_runs_it_from_an_empty_folder(tmp_path):
    """A wheel holds every subpackage, the templates, the notebooks and the profiles, and runs 01 from anywhere."""
    source = tmp_path / "source"  # Built from a copy, so that the build writes nothing into the working tree.
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(config.PROJECT_ROOT / name, source)
    for name in ("digitrec_utils", "notebooks", "params"):
        shutil.copytree(config.PROJECT_ROOT / name, source / name, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                            "--wheel-dir", str(tmp_path / "dist"), str(source)], capture_output=True, text=True,
                           timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    wheel = next((tmp_path / "dist").glob("digitrec-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "site")
    for package in config.PACKAGE_DIR.rglob("__init__.py"):
        assert str(package.relative_to(config.PROJECT_ROOT)) in names
    for notebook in (config.PROJECT_ROOT / "notebooks").glob("*.ipynb"):
        assert f"digitrec_utils/suite/notebooks/{notebook.name}" in names
    for profile in (config.PROJECT_ROOT / "params").glob("*.yaml"):
        assert f"digitrec_utils/suite/params/{profile.name}" in names
    for template in config.TEMPLATES_DIR.rglob("*.j2"):
        assert str(template.relative_to(config.PROJECT_ROOT)) in names

    empty = tmp_path / "empty"
    empty.mkdir()
    # The package's own notebooks, and reports/ in the working folder, as for a user of the wheel.
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("DIGITREC_NOTEBOOKS", "DIGITREC_REPORTS")}
    environment["PYTHONPATH"] = str(tmp_path / "site")  # Ahead of the checkout's editable install.
    finished = subprocess.run([sys.executable, "-m", "digitrec_utils.cli", "run", "--only", "eda"], cwd=empty,
                              env=environment, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "Notebooks and profiles installed with the package" in finished.stdout
    assert (empty / "reports" / "latest" / "01_eda.html").is_file()
