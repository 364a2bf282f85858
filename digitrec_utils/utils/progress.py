"""Progress of long work inside a kernel, readable by the ``digitrec run`` that started it, and durations as read.

A kernel's output reaches the runner only when its notebook ends. So that a long notebook shows how far it
is while it runs, its long loops (training epochs) also write their latest line to the file named by
:data:`PROGRESS_FILE_VARIABLE`, which the local runner sets for each notebook's kernel and reads while it
waits (:mod:`digitrec_utils.running.runner`). Without the variable (JupyterLab, nbval, a Dask worker)
nothing is written.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from digitrec_utils.utils.files import write_text_atomic

# Names the file a kernel writes its latest progress line to.
PROGRESS_FILE_VARIABLE = "DIGITREC_PROGRESS_FILE"


def format_duration(seconds: float) -> str:
    """Return a duration in the units a reader counts in: "45.2 s", "21 min 53 s", "1 h 2 min"."""
    if round(seconds, 1) < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def report_progress(line: str) -> None:
    """Write ``line`` as the latest progress of this kernel's notebook, where a runner asked for it.

    Never raises: progress is a courtesy, and a full disk must not stop training.
    """
    path = os.environ.get(PROGRESS_FILE_VARIABLE)
    if not path:
        return
    with contextlib.suppress(OSError):
        write_text_atomic(path, line.strip() + "\n")


def read_progress(path: str | os.PathLike) -> str:
    """Return the latest progress line written to ``path``, or "" where none was written."""
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError:
        return ""
