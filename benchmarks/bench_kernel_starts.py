"""Count how often a notebook's first kernel dies before its first cell when many kernels start at once.

Kernels started at the same moment can race for one free port (jupyter_client picks the ports before the
kernel binds them), and the loser dies with "Kernel died before replying to kernel_info". The runner then
starts another kernel (``execution.run_papermill``, up to ``execution.KERNEL_STARTS`` in all). This script
starts ``--at-once`` one-cell notebooks together, ``--rounds`` times, each through ``run_papermill`` in a
process of its own, as ``digitrec run --jobs N`` does, and prints how many notebooks needed more than one
kernel and whether every notebook finished. It reads no dataset. The count depends on the machine's load:
it measures how often the retry is needed, not a speed.

Usage::

    .venv/bin/python benchmarks/bench_kernel_starts.py [--at-once 16] [--rounds 12]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat

from digitrec_utils.running import execution
from digitrec_utils.running.outcomes import NotebookRun


def _execute_one(folder: str) -> tuple[str, int, str | None]:
    """Execute a one-cell notebook in ``folder``; return its status, how many kernels it took, and its error."""
    folder_path = Path(folder)
    folder_path.mkdir(parents=True)
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell("print('ran')")]
    source = folder_path / "one_cell.ipynb"
    nbformat.write(notebook, str(source))
    run = execution.run_papermill(NotebookRun("one_cell", {}), source=source, run_dir=folder_path, timeout=120)
    return run.status, run.kernel_starts, run.error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--at-once", type=int, default=16, help="Notebooks started together (default 16).")
    parser.add_argument("--rounds", type=int, default=12, help="How many times to start them (default 12).")
    arguments = parser.parse_args()
    outcomes = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="digitrec-kernels-") as scratch, execution.kernel_environment():
        for round_number in range(arguments.rounds):
            folders = [str(Path(scratch) / f"round{round_number}" / f"notebook{index}")
                       for index in range(arguments.at_once)]
            with ProcessPoolExecutor(arguments.at_once) as pool:
                outcomes += list(pool.map(_execute_one, folders))
            print(f"round {round_number + 1} of {arguments.rounds} done", flush=True)
    seconds = time.perf_counter() - started
    starts = Counter(kernel_starts for _, kernel_starts, _ in outcomes)
    finished = sum(status == "ok" for status, _, _ in outcomes)
    print(f"{len(outcomes)} notebooks, {arguments.at_once} at a time, in {seconds:.0f} s")
    print(f"finished: {finished}; failed: {len(outcomes) - finished}")
    for count in sorted(starts):
        print(f"  took {count} kernel{'s' if count > 1 else ''}: {starts[count]} notebooks")
    for status, _, error in outcomes:
        if status != "ok":
            print(f"  failed: {error}")


if __name__ == "__main__":
    main()
