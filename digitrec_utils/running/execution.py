"""One notebook's execution: its kernel's environment, papermill, the HTML page and the results record.

The local executor runs it in a child process, the Dask executor on a worker; both import it from here.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import papermill
import zmq
from ipykernel.kernelspec import write_kernel_spec
from jupyter_client.manager import KernelManager
from nbclient.exceptions import CellTimeoutError
from papermill.exceptions import PapermillExecutionError
from traitlets.config import Config

from digitrec_utils import config
from digitrec_utils.exceptions import ResultsError
from digitrec_utils.params import LIGHTER_PARAMETERS
from digitrec_utils.reporting.html import render_notebook_html
from digitrec_utils.reporting.results import load_results
from digitrec_utils.running.outcomes import NotebookRun
from digitrec_utils.running.silence import register_engine
from digitrec_utils.utils.files import write_text_atomic
from digitrec_utils.utils.progress import PROGRESS_FILE_VARIABLE
from digitrec_utils.utils.scratch import make_owned_folder, remove_abandoned_folders, remove_owned_folder

# Set before each kernel starts, so that TensorFlow's start-up noise stays out of the reports. oneDNN's
# optimizations stay on (TF_ENABLE_ONEDNN_OPTS unset): turning them off made a cnn_small training step
# 1.6 to 2.2 times slower on 2 cores; training.configure_keras() hides their start-up notice instead.
KERNEL_ENVIRONMENT = {
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "KERAS_BACKEND": "tensorflow",
    "PYTHONWARNINGS": "ignore::DeprecationWarning",
}

# The threads of OpenMP and the BLAS libraries (scikit-learn's boosting and linear models, NumPy). Notebooks
# that run side by side get a share of the cores each: OpenMP's threads spin while they wait, and two
# kernels that each start one per core made 02's boosting five times slower beside 04's training
# (docs/RUNNING.md). TensorFlow's own thread pool is not capped, so a notebook left alone keeps every core.
OPENMP_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

# How many times a notebook's kernel is started when it dies before running any cell (see run_papermill).
KERNEL_STARTS = 3
# The kernels' ZeroMQ transport. With "tcp", jupyter_client picks free ports before the kernel binds them,
# so kernels started at the same moment can race for one port (jupyter_client #154); with "ipc" each kernel's
# sockets are files in a folder of its own, and there is nothing to race for. Windows keeps "tcp".
KERNEL_TRANSPORT = "tcp" if os.name == "nt" else "ipc"
# The longest socket path to use: Unix sockets' paths are limited to 108 bytes on Linux and 104 on macOS,
# and jupyter_client appends "-<n>" to the prefix. A longer temporary folder falls back to "tcp".
MAX_SOCKET_PATH = 100
# Names the folder that prepare_kernel_environment made, for the processes that run the kernels: each
# kernel's folder of sockets and connection file is made inside it, so that the process that made it
# removes them even where a notebook's process ends without doing so (a run stopped with SIGTERM did).
KERNELS_ROOT_VARIABLE = "DIGITREC_KERNELS_ROOT"
# The start of that folder's name in the temporary folder. Each process that makes one first removes those
# of processes that have ended without removing theirs (a Dask worker killed by its nanny does).
KERNELS_FOLDER_PREFIX = "digitrec-jupyter-"


@contextlib.contextmanager
def kernel_environment():
    """Within the block, kernel ``python3`` is this interpreter, with :data:`KERNEL_ENVIRONMENT` set.

    ``JUPYTER_PATH`` and :data:`KERNELS_ROOT_VARIABLE` are restored afterwards, and the private kernelspec
    folder removed, with every kernel's folder of sockets in it.
    """
    previous = {name: os.environ.get(name) for name in ("JUPYTER_PATH", KERNELS_ROOT_VARIABLE)}
    kernels_root = prepare_kernel_environment()
    try:
        yield kernels_root
    finally:
        remove_owned_folder(kernels_root)
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def catch_sigterm():
    """Within the block, SIGTERM raises KeyboardInterrupt like SIGINT does; yield which signal came.

    Outside the main thread (where signal handlers cannot be set) nothing changes.
    """
    received: dict[str, str] = {}

    def _handle(signum, frame):
        received["signal"] = signal.Signals(signum).name
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, _handle)
    except ValueError:  # Not the main thread.
        yield received
        return
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


def share_cores(count: int) -> int:
    """Return each of ``count`` notebooks' equal share of this machine's cores, at least one."""
    return max(1, (os.cpu_count() or 1) // count)


def execute_in_child(run: NotebookRun, connection, *, kernel_threads: int | None = None,
                     environment: dict[str, str] | None = None, working_folder: str | None = None,
                     **arguments) -> None:
    """The child process's work: execute one notebook and send the outcome back through ``connection``.

    SIGINT is left to the parent, which stops this process with SIGTERM; while a kernel runs,
    nbclient's own SIGTERM handler shuts the kernel down. ``environment`` and ``working_folder``, the
    runner's, replace those this process was forked with (from the runner's fork server, which keeps those of
    its own start). ``kernel_threads``, where given, caps the kernel's OpenMP and BLAS threads
    (:data:`OPENMP_THREAD_VARIABLES`, each left as it is where already set).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if environment is not None:
        os.environ.clear()
        os.environ.update(environment)
    if working_folder:
        os.chdir(working_folder)
    if kernel_threads:
        for name in OPENMP_THREAD_VARIABLES:
            os.environ.setdefault(name, str(kernel_threads))
    progress = progress_file(arguments["run_dir"], run.notebook)
    os.environ[PROGRESS_FILE_VARIABLE] = str(progress)  # The kernel inherits it (utils.progress).
    try:
        outcome = _execute_notebook(run, **arguments)
    finally:
        progress.unlink(missing_ok=True)
    connection.send(outcome)
    connection.close()


def progress_file(run_dir: str | os.PathLike, notebook: str) -> Path:
    """Return the hidden file in ``run_dir`` where ``notebook``'s kernel writes its latest progress line."""
    return Path(run_dir) / f".{notebook}.progress"


def _execute_notebook(run: NotebookRun, *, run_dir: str, notebooks_dir: str | None = None, timeout,
                     show_code: bool, progress_bar: bool) -> NotebookRun:
    """Execute one notebook with papermill into ``run_dir``, render its HTML, and read its results.

    It never raises for a failing notebook: the outcome says what failed, with the whole error
    message, and the executed notebook and its HTML are still written, with the error visible.
    """
    notebooks_folder = Path(notebooks_dir) if notebooks_dir else config.NOTEBOOKS_DIR
    run_papermill(run, source=notebooks_folder / f"{run.notebook}.ipynb", run_dir=Path(run_dir),
                  timeout=timeout, progress_bar=progress_bar)
    if run.ipynb is not None:
        finish_notebook(run, Path(run_dir), show_code=show_code)
    return run


def run_papermill(run: NotebookRun, *, source: Path, run_dir: Path, timeout, progress_bar: bool = False) -> NotebookRun:
    """Execute ``source`` with the run's parameters into ``<run_dir>/<page>.ipynb``; never raise for a failure.

    The kernel's working folder is the source's. On success the run's status is ``ok``; when a cell
    raises, ``failed`` with the cell and the whole error; when the kernel dies or a cell times out,
    ``failed`` with what ran kept and a visible note appended. ``run.ipynb`` names the executed
    notebook, or stays None when papermill wrote none.

    Each kernel's sockets lie in a temporary folder of its own (:func:`_kernel_manager_config`), removed
    when the notebook ends. A kernel that dies before the first cell starts is started again, up to
    :data:`KERNEL_STARTS` times in all, and ``run.kernel_starts`` says how many were needed. Over TCP,
    kernels started at the same moment can race for the same free port (jupyter_client picks ports
    before the kernel binds them), and then one of them dies with "Kernel died before replying to
    kernel_info"; nothing of the notebook has run, so starting it again changes no result.
    """

    executed = run_dir / f"{config.name_page(run.notebook)}.ipynb"
    partial = run_dir / f".{run.notebook}.partial.ipynb"
    started = time.perf_counter()
    run.kernel_starts = 0
    while True:
        run.kernel_starts += 1
        run.status, run.error, run.failed_cell = "failed", None, None
        try:
            with tempfile.TemporaryDirectory(prefix="digitrec-kernel-", dir=_kernels_root()) as sockets:
                papermill.execute_notebook(
                    str(source), str(partial), parameters=run.parameters, kernel_name="python3", language="python",
                    cwd=str(source.parent), progress_bar=progress_bar, log_output=False, engine_name=register_engine(),
                    execution_timeout=timeout, start_timeout=120, config=_kernel_manager_config(Path(sockets)),
                )
            run.status = "ok"
        except PapermillExecutionError as error:
            run.failed_cell = error.exec_count
            run.error = f"{error.ename}: {str(error.evalue).strip()}"
        except CellTimeoutError:
            run.error = describe_silent_cell(run.notebook, timeout)
            if partial.exists():
                _append_error_cell(partial, run.error)
        except Exception as error:  # A dead kernel or a cell timeout: still keep what ran.
            run.error = f"{type(error).__name__}: {str(error).strip()}"
            if run.kernel_starts < KERNEL_STARTS and not _any_cell_started(partial):
                # Said beside papermill's own log line about the dead kernel, so that a reader knows it is handled.
                print(f"{run.notebook}: its kernel did not start ({_first_line(run.error)}); starting kernel "
                      f"{run.kernel_starts + 1} of at most {KERNEL_STARTS}.", file=sys.stderr, flush=True)
                time.sleep(random.uniform(0.5, 2.0))  # Kernels that raced should not start together again.
                continue
            if partial.exists():
                _append_error_cell(partial, _first_line(run.error))
        break
    run.seconds = round(time.perf_counter() - started, 2)
    if not partial.exists():
        run.status = "failed"
        run.error = run.error or "papermill wrote no output notebook"
        return run
    os.replace(partial, executed)
    run.ipynb = executed.name
    return run


def describe_silent_cell(notebook: str, timeout: float) -> str:
    """Say that a cell of ``notebook`` printed nothing for ``timeout`` seconds and was stopped, and what to change.

    The cell timeout counts silence (:mod:`digitrec_utils.running.silence`): a training cell that prints its
    epochs is never stopped for its length. The message names ``--timeout`` and the parameters that make
    the notebook lighter (:data:`digitrec_utils.params.LIGHTER_PARAMETERS`), for a cell that was only slow.
    """
    lighter = LIGHTER_PARAMETERS.get(notebook, ())
    lighten = (f", or make the notebook lighter with --set on {', '.join(lighter)} (digitrec list-params gives "
               "their ranges)" if lighter else "")
    return (f"CellTimeoutError: a cell of {notebook} printed nothing for {timeout:g} s and was stopped as hung. If it "
            f"was only slow, run it again with a longer --timeout (seconds of silence a cell may have; "
            f"e.g. --timeout {2 * timeout:g}){lighten}.")


def _any_cell_started(partial: Path) -> bool:
    """Whether papermill's partly executed notebook says that some cell started (or cannot be read).

    papermill saves the notebook with every cell's ``start_time`` empty before the kernel starts, and
    saves it again as each cell starts.
    """
    try:
        notebook = nbformat.read(str(partial), as_version=4)
    except Exception:  # No notebook written, or one cut short: assume the worst and start nothing again.
        return True
    return any(cell.metadata.get("papermill", {}).get("start_time") for cell in notebook.cells)


def finish_notebook(run: NotebookRun, run_dir: Path, *, show_code: bool) -> NotebookRun:
    """Render the executed notebook's HTML into ``run_dir`` and read the headline from its results record.

    A rendering failure, or a notebook that succeeded without writing its record, marks the run failed.
    """
    page = config.name_page(run.notebook)
    try:
        html = render_notebook_html(run_dir / run.ipynb, show_code=show_code, index_href="index.html",
                                    run_dir=run_dir)
        write_text_atomic(run_dir / f"{page}.html", html)
        run.html = f"{page}.html"
    except Exception as error:  # Rendering must not hide the execution outcome.
        run.status = "failed"
        run.error = (run.error + "; " if run.error else "") + f"HTML rendering failed: {error}"
    _read_results(run, run_dir)
    return run


def _read_results(run: NotebookRun, run_folder: Path) -> None:
    """Fill the headline and dataset checksum from the notebook's results record."""
    path = config.locate_record(run_folder, run.notebook)
    if not path.exists():
        if run.status == "ok":
            run.status, run.error = "failed", f"finished without writing its results record {path.name}"
        return
    try:
        record = load_results(path)
    except ResultsError as error:
        run.status, run.error = "failed", str(error)
        return
    run.results = str(path.relative_to(run_folder))
    run.headline = record.get("headline", "")
    run.dataset_sha256 = record["dataset"].get("sha256")


def _append_error_cell(notebook_path: Path, message: str) -> None:
    """Append a visible error note to a partially executed notebook."""
    notebook = nbformat.read(str(notebook_path), as_version=4)
    notebook.cells.append(nbformat.v4.new_markdown_cell(
        f'<span style="color:red; font-size:1.5em;">Execution stopped: {message}</span>'))
    nbformat.write(notebook, str(notebook_path))


def _first_line(text: str) -> str:
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    return lines[0][:300] if lines else ""


def prepare_kernel_environment() -> Path:
    """Set the kernels' environment, and make kernel ``python3`` mean this interpreter.

    A kernelspec named ``python3`` in the user's Jupyter folder would otherwise win over the one in
    this virtual environment. ``JUPYTER_PATH`` is searched first, so a kernelspec written to a private
    temporary folder pins the kernel to ``sys.executable`` without registering anything globally. The
    same folder holds each kernel's sockets and connection file (:data:`KERNELS_ROOT_VARIABLE`).

    The folder is owned by this process (:func:`~digitrec_utils.utils.scratch.make_owned_folder`):
    remove it with :func:`~digitrec_utils.utils.scratch.remove_owned_folder`, or the next digitrec
    process to call this function removes it once this one has ended.
    """

    remove_abandoned_kernel_folders()
    os.environ.update(KERNEL_ENVIRONMENT)
    kernels_root = make_owned_folder(KERNELS_FOLDER_PREFIX)
    os.environ[KERNELS_ROOT_VARIABLE] = str(kernels_root)
    spec_dir = kernels_root / "kernels" / "python3"
    # ipykernel's own kernelspec for sys.executable, including what it supports (CurveZMQ encryption).
    write_kernel_spec(spec_dir, overrides={"display_name": "Python 3 (digitrec)"})
    existing = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(kernels_root), existing]))
    return kernels_root


def remove_abandoned_kernel_folders() -> list[Path]:
    """Remove the kernelspec folders of digitrec processes that ended without removing them.

    Returns
    -------
    removed : list of Path
        See :func:`~digitrec_utils.utils.scratch.remove_abandoned_folders`.
    """
    return remove_abandoned_folders(KERNELS_FOLDER_PREFIX)


def _kernels_root() -> str | None:
    """Return the folder named by :data:`KERNELS_ROOT_VARIABLE` where it exists, else None (the temporary folder)."""
    root = os.environ.get(KERNELS_ROOT_VARIABLE)
    return root if root and os.path.isdir(root) else None


def _kernel_manager_config(sockets: Path):
    """Return the kernel manager's configuration: sockets of the kernel's own, encrypted where the kernel allows.

    ``sockets`` is a folder made for this kernel alone; its connection file is written there
    (``kernel.json``, rather than jupyter_client's ``tmpXXXXXXXX.json`` in the temporary folder). With
    :data:`KERNEL_TRANSPORT` ``"ipc"``, its five sockets are Unix sockets named ``<sockets>/kernel-1`` to
    ``-5``, so kernels started together cannot take each other's sockets as they can take each other's
    TCP ports (jupyter_client's default prefix, ``kernel-ipc`` in the working folder, would be shared by
    every notebook of a run). A prefix longer than :data:`MAX_SOCKET_PATH` keeps TCP.

    ipykernel 7.3 and later print a warning at every kernel start whose sockets are plain TCP ("Kernel
    is running over TCP without encryption"). jupyter_client's ``transport_encryption = "auto"`` gives
    the kernel CurveZMQ keys when the kernelspec declares support, which ipykernel's does; with an
    older jupyter_client, or a pyzmq built without CurveZMQ, nothing is changed.
    """

    kernel_config = Config()
    kernel_config.KernelManager.connection_file = str(sockets / "kernel.json")
    prefix = str(sockets / "kernel")
    if KERNEL_TRANSPORT == "ipc" and len(prefix) + 2 <= MAX_SOCKET_PATH:
        kernel_config.KernelManager.transport = "ipc"
        kernel_config.KernelManager.ip = prefix
    if "transport_encryption" in KernelManager.class_trait_names() and zmq.has("curve"):
        kernel_config.KernelManager.transport_encryption = "auto"
    return kernel_config
