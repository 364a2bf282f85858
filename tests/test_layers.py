"""The package's layer rules: import-linter's contracts in pyproject.toml hold, and an upward import breaks them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from digitrec_utils import config


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    """Run lint-imports on the copy of the package under ``root``, with the project's contracts."""
    command = Path(sys.executable).with_name("lint-imports")
    if not command.exists():
        pytest.skip("lint-imports is not installed here; `pip install -e '.[dev]'` installs it.")
    environment = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(command), "--config", str(root / "pyproject.toml"), "--no-cache"], cwd=root,
                          env=environment, capture_output=True, text=True, timeout=120)


@pytest.fixture
def package_copy(tmp_path):
    shutil.copytree(config.PACKAGE_DIR, tmp_path / "digitrec_utils", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(config.PROJECT_ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_contracts_hold_and_an_upward_import_breaks_them(package_copy):
    clean = _lint_imports(package_copy)
    assert clean.returncode == 0, clean.stdout
    assert "3 kept, 0 broken" in clean.stdout
    types = package_copy / "digitrec_utils" / "data" / "types.py"
    types.write_text(types.read_text() + "\n\ndef _upward():\n    from digitrec_utils.running import runner\n\n"
                     "    return runner\n")
    broken = _lint_imports(package_copy)
    assert broken.returncode != 0
    message = " ".join(broken.stdout.split())  # import-linter wraps long lines.
    assert "digitrec_utils.data is not allowed to import digitrec_utils.running" in message
    assert "digitrec_utils.data.types -> digitrec_utils.running.runner" in message
    assert "No cycles are allowed in digitrec_utils." in message  # The running layer imports the data layer.


def test_engines_that_import_each_other_break_the_contracts(package_copy):
    comparison = package_copy / "digitrec_utils" / "engines" / "comparison.py"
    comparison.write_text(comparison.read_text() + "\n\nfrom digitrec_utils.engines import deployment  # noqa: E402\n")
    broken = _lint_imports(package_copy)
    assert broken.returncode != 0
    message = " ".join(broken.stdout.split())  # import-linter wraps long lines.
    assert "digitrec_utils.engines.comparison is not allowed to import digitrec_utils.engines.deployment" in message
