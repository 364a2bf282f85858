"""Provenance: package versions, git commit, host, CPU and GPU, for reports and run manifests."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from functools import lru_cache
from importlib import metadata

from digitrec_utils import config

TRACKED_PACKAGES = (
    "digitrec", "numpy", "scipy", "scikit-learn", "pandas", "matplotlib", "seaborn", "tensorflow", "keras",
    "mlxtend", "papermill", "nbconvert", "nbformat", "nbclient", "ipykernel",
)


def _get_package_versions() -> dict[str, str | None]:
    """Return the installed version of each tracked package (None where it is not installed)."""
    versions: dict[str, str | None] = {}
    for package in TRACKED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


@lru_cache(maxsize=1)
def get_git_commit() -> dict[str, str | bool | None]:
    """Return the project's git commit and whether the working tree has uncommitted changes."""
    if shutil.which("git") is None or not (config.PROJECT_ROOT / ".git").exists():
        return {"commit": None, "dirty": None}
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=config.PROJECT_ROOT, capture_output=True, text=True, timeout=10,
        ).stdout.strip() or None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=config.PROJECT_ROOT, capture_output=True, text=True, timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def _get_cpu_model() -> str:
    """Return the CPU's model name from /proc/cpuinfo, or the platform's processor string."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _get_gpu_names() -> list[str]:
    """Return the names of NVIDIA GPUs that ``nvidia-smi -L`` lists (empty when there are none)."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.split(":", 1)[1].split("(")[0].strip() for line in listing.splitlines() if ":" in line]


def collect_environment() -> dict:
    """Return everything needed to reproduce a run: versions, git commit, host, CPU, GPU, Python."""
    return {
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "host": platform.node(),
        "cpu": _get_cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpus": _get_gpu_names(),
        "git": get_git_commit(),
        "packages": _get_package_versions(),
    }
