"""Count how often a notebook's first kernel dies before its first cell when many kernels start at once.

Kernels started at the same moment over TCP can race for one free port (jupyter_client picks the ports
before the kernel binds them), and the loser dies with "Kernel died before replying to kernel_info" or
never answers. The runner therefore gives each kernel Unix sockets in a folder of its own
(``execution.KERNEL_TRANSPORT = "ipc"``), and starts another kernel when one dies before its first cell
all the same (``execution.run_papermill``, up to ``execution.KERNEL_STARTS`` in all). This script starts
``--at-once`` one-cell notebooks together, ``--rounds`` times for each transport of ``--transports``
(rounds alternate between them, so that both meet the same load), each through ``run_papermill`` in a
process of its own, as ``digitrec run --jobs N`` does, and prints per transport how many notebooks needed
more than one kernel and whether every notebook finished. It reads no dataset. The counts depend on the
machine's load: they measure how often a kernel fails to start, not a speed.

Usage::

    .venv/bin/python benchmarks/bench_kernel_starts.py [--at-once 16] [--rounds 12] [--transports tcp ipc]
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


def _use_transport(transport: str) -> None:
    """Make this worker process's kernels use ``transport`` (``tcp`` or ``ipc``)."""
    execution.KERNEL_TRANSPORT = transport


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
    parser.add_argument("--rounds", type=int, default=12, help="Rounds for each transport (default 12).")
    parser.add_argument("--transports", nargs="+", choices=["tcp", "ipc"], default=["tcp", "ipc"],
                        help="The kernels' ZeroMQ transports to compare (default both; the runner uses "
                             f"{execution.KERNEL_TRANSPORT!r} here).")
    arguments = parser.parse_args()
    outcomes: dict[str, list] = {transport: [] for transport in arguments.transports}
    seconds: Counter = Counter()
    with tempfile.TemporaryDirectory(prefix="digitrec-kernels-") as scratch, execution.kernel_environment():
        for round_number in range(arguments.rounds):
            for transport in arguments.transports:
                folders = [str(Path(scratch) / transport / f"round{round_number}" / f"notebook{index}")
                           for index in range(arguments.at_once)]
                started = time.perf_counter()
                with ProcessPoolExecutor(arguments.at_once, initializer=_use_transport,
                                         initargs=(transport,)) as pool:
                    outcomes[transport] += list(pool.map(_execute_one, folders))
                seconds[transport] += time.perf_counter() - started
            print(f"round {round_number + 1} of {arguments.rounds} done", flush=True)
    for transport, results in outcomes.items():
        starts = Counter(kernel_starts for _, kernel_starts, _ in results)
        finished = sum(status == "ok" for status, _, _ in results)
        print(f"{transport}: {len(results)} notebooks, {arguments.at_once} at a time, in {seconds[transport]:.0f} s; "
              f"finished: {finished}; failed: {len(results) - finished}")
        for count in sorted(starts):
            print(f"  took {count} kernel{'s' if count > 1 else ''}: {starts[count]} notebooks")
        for status, _, error in results:
            if status != "ok":
                print(f"  failed: {error}")


if __name__ == "__main__":
    main()
