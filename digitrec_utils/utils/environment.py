"""Provenance: package versions, git commit, host, CPU and GPU, for reports and run manifests."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from digitrec_utils import config

# CPU flags (Linux's names) of bfloat16 arithmetic in hardware.
BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")
CPUINFO = Path("/proc/cpuinfo")
# Set to 1 (or true, yes), it hides BFLOAT16_FLAGS from the flags read from CPUINFO, so that a CPU with
# bfloat16 arithmetic chooses and reports as one without (how float32 timings are measured on such a CPU).
HIDE_BFLOAT16_VARIABLE = "DIGITREC_HIDE_BFLOAT16"
# oneDNN's own variable: the widest instructions it may use (e.g. AVX2, to time an AVX2-only CPU).
ONEDNN_ISA_VARIABLE = "ONEDNN_MAX_CPU_ISA"

TRACKED_PACKAGES = (
    "digitrec", "numpy", "scipy", "scikit-learn", "pandas", "matplotlib", "seaborn", "tensorflow", "keras",
    "mlxtend", "papermill", "nbconvert", "nbformat", "nbclient", "ipykernel",
)


def collect_package_versions() -> dict[str, str | None]:
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
        with open(CPUINFO, encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def read_cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """Return the CPU's feature flags from ``/proc/cpuinfo`` text (read from :data:`CPUINFO` when not given).

    An empty set where the file is absent (not Linux) or has no ``flags`` line. When the file is read and
    :data:`HIDE_BFLOAT16_VARIABLE` is set, :data:`BFLOAT16_FLAGS` are left out (:func:`is_bfloat16_hidden`).
    """
    hidden = set()
    if cpuinfo is None:
        hidden = set(BFLOAT16_FLAGS) if is_bfloat16_hidden() else set()
        try:
            cpuinfo = CPUINFO.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            return set(value.split()) - hidden
    return set()


def is_bfloat16_hidden() -> bool:
    """Return whether :data:`HIDE_BFLOAT16_VARIABLE` asks to hide the CPU's bfloat16 flags (1, true or yes)."""
    return os.environ.get(HIDE_BFLOAT16_VARIABLE, "").strip().lower() in ("1", "true", "yes")


def describe_cpu(flags: set[str] | None = None) -> str:
    """Say in a few words what the CPU computes with, for timings: model, cores, vector width, bfloat16.

    For example "Intel(R) Xeon(R) Processor, 2 cores, AVX-512, bfloat16 hidden by DIGITREC_HIDE_BFLOAT16,
    oneDNN limited to AVX2". ``flags`` defaults to :func:`read_cpu_flags` of this machine.
    """
    flags = read_cpu_flags() if flags is None else flags
    width = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    bfloat16 = sorted(flag for flag in BFLOAT16_FLAGS if flag in flags)
    if bfloat16:
        arithmetic = f"bfloat16 in hardware ({', '.join(bfloat16)})"
    elif is_bfloat16_hidden():
        arithmetic = f"bfloat16 hidden by {HIDE_BFLOAT16_VARIABLE}"
    else:
        arithmetic = "no bfloat16"
    parts = [_get_cpu_model(), f"{os.cpu_count()} cores", width, arithmetic]
    if os.environ.get(ONEDNN_ISA_VARIABLE):
        parts.append(f"oneDNN limited to {os.environ[ONEDNN_ISA_VARIABLE]}")
    return ", ".join(parts)


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
        "cpu_summary": describe_cpu(),
        "gpus": _get_gpu_names(),
        "git": get_git_commit(),
        "packages": collect_package_versions(),
    }
