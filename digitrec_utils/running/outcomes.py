"""What a run produces: one notebook's outcome, a run's, and a job of the plan (shared by the executors)."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class NotebookRun:
    """The outcome of one notebook in a run. Paths are relative to the run folder."""

    notebook: str
    parameters: dict
    status: str = "pending"
    seconds: float = 0.0
    error: str | None = None
    failed_cell: int | None = None
    worker: str | None = None
    ipynb: str | None = None
    html: str | None = None
    results: str | None = None
    headline: str = ""
    dataset_sha256: str | None = None
    # How many kernels were started: more than one when a kernel died before its first cell.
    kernel_starts: int = 0
    # What made the result (running.reuse): one SHA-256, and the parts it is made of.
    fingerprint: str | None = None
    fingerprint_parts: dict = field(default_factory=dict)
    # The SHA-256 of each file of the result, relative to the run folder, recorded when the run ended.
    files: dict = field(default_factory=dict)
    # The earlier run whose unchanged result was copied instead of executing the notebook, and the seconds it took
    # where it was executed.
    reused_from: str | None = None
    reused_seconds: float = 0.0

    def describe(self) -> str:
        """Return a line (more where the error has several): status, seconds and, on failure, the cell and error."""
        if self.status == "ok" and self.reused_from:
            return f"{self.notebook}: reused from {self.reused_from} (it ran in {self.reused_seconds:.1f} s)"
        if self.status == "ok":
            return f"{self.notebook}: ok in {self.seconds:.1f} s{self._describe_kernel_starts()}"
        if self.status in ("interrupted", "not started"):
            return f"{self.notebook}: {self.status}"
        cell = f"cell [{self.failed_cell}] " if self.failed_cell is not None else ""
        return f"{self.notebook}: FAILED in {self.seconds:.1f} s at {cell}{self.error}{self._describe_kernel_starts()}"

    def _describe_kernel_starts(self) -> str:
        """Say how many kernels were started, where more than one was."""
        if self.kernel_starts < 2:
            return ""
        earlier = "the first" if self.kernel_starts == 2 else f"the first {self.kernel_starts - 1}"
        return f" (started {self.kernel_starts} kernels: {earlier} died before running any cell)"


class OutcomeStatus:
    """The status of a run or a sweep, judged from its ``notebooks`` and ``interrupted_by``."""

    notebooks: list[NotebookRun]
    interrupted_by: str | None

    @property
    def ok(self) -> bool:
        """Whether nothing was interrupted and every notebook succeeded."""
        return self.interrupted_by is None and all(run.status == "ok" for run in self.notebooks)

    @property
    def status(self) -> str:
        """``ok``, ``failed`` or ``interrupted``."""
        if self.interrupted_by is not None:
            return "interrupted"
        return "ok" if self.ok else "failed"

    @property
    def exit_status(self) -> int:
        """0 when every notebook succeeded, 1 when one failed, 128 plus the signal's number when interrupted."""
        if self.interrupted_by is not None:
            return 128 + int(getattr(signal, self.interrupted_by))
        return 0 if self.ok else 1


@dataclass
class RunOutcome(OutcomeStatus):
    """Everything a run produced.

    Attributes
    ----------
    run_dir : Path
    notebooks : list of NotebookRun
        In run order.
    manifest : dict
        The content of ``run.json``.
    interrupted_by : str or None
        ``"SIGINT"`` or ``"SIGTERM"`` when a signal stopped the run.
    """

    run_dir: Path
    notebooks: list[NotebookRun] = field(default_factory=list)
    manifest: dict = field(default_factory=dict)
    interrupted_by: str | None = None

    @property
    def folder(self) -> Path:
        """The folder whose ``index.html`` leads to every page."""
        return self.run_dir


@dataclass
class Job:
    """One notebook execution to do: its run, the folder it writes to, and the runs whose files it reads."""

    run: NotebookRun
    run_dir: Path
    needs: list[NotebookRun] = field(default_factory=list)
    # The folders of the needed runs that this notebook reads (results records, saved models).
    reads: tuple[str, ...] = ("results", "models")
