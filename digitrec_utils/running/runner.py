"""Orchestration of a run: validate parameters, execute notebooks with papermill, render, and index.

Every parameter, and every dataset the run needs, is checked before any notebook starts. Notebooks 01
to 04 are independent and can run in parallel; the comparison notebook runs last. Each notebook runs in
a child process of its own, so that SIGINT or SIGTERM can stop the run cleanly: the parent stops the
children, whose papermill clients shut their kernels down, removes what the interrupted notebooks had
half-written, and records the run as ``interrupted``. Every file is written under a temporary name and
renamed into place, and each run gets a new folder, so a failed or interrupted run never leaves a
half-written report where a good one was, and ``latest`` moves only to a run whose notebooks all
succeeded. A notebook that raises still gets its HTML, with papermill's error banner and the failing
cell visible; the other notebooks still run; the run reports failure.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from multiprocessing.connection import wait
from pathlib import Path

import nbformat

from digitrec_utils import config
from digitrec_utils.data.data import check_dataset
from digitrec_utils.exceptions import DatasetError, ParameterError, ResultsError
from digitrec_utils.params import (
    DEPENDENT_NOTEBOOKS,
    MODEL_NOTEBOOKS,
    get_default,
    get_notebook_parameters,
    list_notebooks,
    load_profile,
    resolve_notebook_name,
    resolve_parameters,
)
from digitrec_utils.reporting.html import render_notebook_html
from digitrec_utils.reporting.index_page import render_index_html
from digitrec_utils.reporting.results import load_results
from digitrec_utils.utils.environment import collect_environment
from digitrec_utils.utils.files import write_text_atomic

DEFAULT_PROFILE = config.PARAMS_DIR / "sample.yaml"
DEFAULT_CELL_TIMEOUT_SECONDS = 1800

# Set before each kernel starts, so that TensorFlow's start-up noise stays out of the reports. oneDNN's
# optimizations stay on (TF_ENABLE_ONEDNN_OPTS unset): turning them off made a cnn_small training step
# 1.6 to 2.2 times slower on 2 cores; training.configure_keras() hides their start-up notice instead.
KERNEL_ENVIRONMENT = {
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "KERAS_BACKEND": "tensorflow",
    "PYTHONWARNINGS": "ignore::DeprecationWarning",
}
# Seconds an interrupted notebook's process gets to shut its kernel down before it is killed.
STOP_GRACE_SECONDS = 30
# The parameters that say where a notebook's data comes from, checked before the run.
DATASET_KEYS = ("dataset", "data_dir", "images_csv", "labels_csv")


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

    def describe(self) -> str:
        """Return a line (more where the error has several): status, seconds and, on failure, the cell and error."""
        if self.status == "ok":
            return f"{self.notebook}: ok in {self.seconds:.1f} s"
        if self.status in ("interrupted", "not started"):
            return f"{self.notebook}: {self.status}"
        cell = f"cell [{self.failed_cell}] " if self.failed_cell is not None else ""
        return f"{self.notebook}: FAILED in {self.seconds:.1f} s at {cell}{self.error}"


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



def select_notebooks(only: list[str] | None, *, sweep: bool = False) -> list[str]:
    """Return the notebook stems to run, in run order, from ``--only`` names (all when empty).

    The stability notebook is never among them: it compares the seeds of a sweep, which adds it itself.
    Naming it is allowed in a sweep (``sweep=True``) and an error otherwise.
    """
    available = [stem for stem in list_notebooks() if stem != config.STABILITY_NOTEBOOK]
    if not available:
        raise ParameterError(f"no notebooks found in {config.NOTEBOOKS_DIR}.")
    if not only:
        return available
    wanted = {resolve_notebook_name(name) for name in only}
    if config.STABILITY_NOTEBOOK in wanted:
        if not sweep:
            raise ParameterError(f"--only: {config.STABILITY_NOTEBOOK} compares the seeds of a sweep; run a sweep "
                                 "with --seeds (e.g. --seeds 1-3), which ends with it.")
        wanted.discard(config.STABILITY_NOTEBOOK)
        if not wanted:
            return available
    missing = sorted(wanted - set(available))
    if missing:
        raise ParameterError(f"--only: notebook(s) {', '.join(missing)} not present in {config.NOTEBOOKS_DIR}; "
                             f"available: {', '.join(available)}.")
    return [stem for stem in available if stem in wanted]


def prepare_run(profile_path=None, *, only=None, overrides=(),
                sweep: bool = False) -> tuple[Path, dict, dict[str, dict]]:
    """Load the profile and validate every notebook's parameters; nothing runs yet.

    ``sweep`` allows ``--only`` to name the stability notebook (see :func:`select_notebooks`).

    Returns
    -------
    profile_path : Path
    profile : dict
    parameters : dict of str to dict
        Notebook stem -> validated parameters, in run order.
    """
    profile_path = Path(profile_path) if profile_path else DEFAULT_PROFILE
    profile = load_profile(profile_path)
    notebooks = select_notebooks(list(only or []), sweep=sweep)
    parameters = resolve_parameters(profile, notebooks, overrides=list(overrides), source=str(profile_path))
    return profile_path, profile, parameters


def find_datasets(parameters: dict[str, dict]) -> dict[tuple, list[str]]:
    """Return each distinct data source of the run, with the notebooks that read it.

    A notebook's own defaults fill in what the profile leaves out. The comparison notebook reads no data.

    Returns
    -------
    sources : dict of tuple to list of str
        ``(dataset, data_dir, images_csv, labels_csv)`` -> notebook stems.
    """
    sources: dict[tuple, list[str]] = {}
    for stem, values in parameters.items():
        declared = get_notebook_parameters(stem)
        if "dataset" not in declared:
            continue
        key = tuple(values[name] if name in values else get_default(declared, name) for name in DATASET_KEYS)
        sources.setdefault(key, []).append(stem)
    return sources


def check_datasets(parameters: dict[str, dict]) -> dict[str, str]:
    """Find every dataset the run needs, once, before any kernel starts; raise one error for all problems.

    Returns
    -------
    found : dict of str to str
        Dataset name -> where it was found.

    Raises
    ------
    DatasetError
        Naming each missing or corrupt dataset, the notebooks that need it, the places tried and the fix.
    """
    found, problems = {}, []
    for (name, data_dir, images_csv, labels_csv), stems in find_datasets(parameters).items():
        try:
            found[name] = check_dataset(name, data_dir=data_dir or None, images_csv=images_csv or None,
                                        labels_csv=labels_csv or None)
        except (DatasetError, ParameterError) as error:
            problems.append(f"dataset {name!r} (needed by {', '.join(stems)}): {error}")
    problems += _check_field_folders(parameters)
    if problems:
        raise DatasetError("the run did not start, because a dataset it needs is not usable:\n"
                           + "\n".join(problems))
    return found


def _check_field_folders(parameters: dict[str, dict]) -> list[str]:
    """Check the labelled folder trees of 05_deployment's field_data and threshold_field_data; one problem each."""
    from digitrec_utils.engines.field import check_field_folders

    problems = []
    for stem, values in parameters.items():
        for key in ("field_data", "threshold_field_data"):
            for folder in values.get(key) or []:
                try:
                    check_field_folders([folder], data_dir=values.get("data_dir") or None)
                except DatasetError as error:
                    problems.append(f"{key} of {stem}: {error}")
    return problems


def check_deployment_model(parameters: dict[str, dict], *, cluster: str | None = None) -> None:
    """Make sure 05_deployment will have a model to analyse, before any kernel starts.

    Raises
    ------
    ParameterError
        When ``deployment.model_path`` names no saved model (a ``.keras`` file with its JSON beside it), or
        when it is empty and the run leaves out 04_cnn, which saves the model the notebook analyses.
    """
    values = parameters.get("05_deployment")
    if values is None:
        return
    model_path = values.get("model_path") or ""
    if model_path and cluster:
        raise ParameterError(f"deployment.model_path = {model_path!r}: with --cluster, 05_deployment analyses the CNN "
                             "that 04_cnn trains in the same run (a path of this machine means nothing on a "
                             "worker); leave model_path empty, or run without --cluster.")
    if model_path:
        path = Path(model_path).expanduser()
        if not path.is_file() or not path.with_suffix(".json").is_file():
            raise ParameterError(f"deployment.model_path = {model_path!r}: no saved model there (a .keras file with "
                                 "its .json beside it, as 04_cnn saves in models/); give such a file, or leave "
                                 "model_path empty to analyse the CNN this run trains.")
    elif "04_cnn" not in parameters:
        raise ParameterError("05_deployment analyses the CNN that 04_cnn saves in the same run, but this run leaves "
                             "04_cnn out; add it (`--only cnn deployment`) or set deployment.model_path=PATH to a "
                             "saved .keras file (e.g. reports/latest/models/cnn_selected.keras).")


def name_run(profile_path: Path, profile: dict, parameters: dict[str, dict]) -> str:
    """Return the default run folder name: what ran, then a timestamp.

    The profile's name when the datasets are the profile's own (``sample-20261122-101500``); the datasets'
    names when ``--set`` or a section changed them (``mnist-20261122-101500`` for ``--set dataset=mnist``
    on the sample profile).
    """
    datasets = sorted({key[0] for key in find_datasets(parameters)})
    stamp = f"{datetime.now():%Y%m%d-%H%M%S}"
    if not datasets or datasets == [profile.get("dataset")]:
        return f"{profile_path.stem}-{stamp}"
    return f"{'+'.join(datasets)}-{stamp}"


def run_suite(
    profile_path: str | Path | None = None,
    *,
    only: list[str] | None = None,
    overrides: list[str] = (),
    out_dir: str | Path | None = None,
    jobs: int = 1,
    show_code: bool = False,
    timeout: float | None = DEFAULT_CELL_TIMEOUT_SECONDS,
    run_name: str | None = None,
    progress: bool = True,
    cluster: str | None = None,
) -> RunOutcome:
    """Run the suite: validate, execute, render, and write ``index.html`` and ``run.json``.

    Parameters
    ----------
    profile_path : path-like, optional
        A YAML profile; ``params/sample.yaml`` by default.
    only : list of str, optional
        Notebooks to run (``eda`` or ``01_eda``); all by default.
    overrides : list of str
        ``key=value`` or ``section.key=value`` strings applied over the profile.
    out_dir : path-like, optional
        The reports folder; ``reports/`` by default. The run goes to ``<out_dir>/<run_name>/``, and
        ``<out_dir>/latest`` points at it when every notebook succeeded.
    jobs : int, default=1
        Notebooks run in parallel (01-04 only; the comparison runs last). Ignored with ``cluster``.
    show_code : bool, default=False
        Show code cells in the HTML.
    timeout : float or None
        Seconds allowed per cell.
    run_name : str, optional
        The run folder's name; by default what ran (see :func:`name_run`) and a timestamp.
    progress : bool, default=True
        Print a line per notebook and a progress bar per cell (the bar only when ``jobs == 1``).
    cluster : str, optional
        Execute each notebook as a task on Dask: ``local:N`` (a local cluster of N worker processes) or a
        scheduler's address, ``tcp://HOST:8786`` (see :mod:`digitrec_utils.running.cluster`).

    Returns
    -------
    outcome : RunOutcome
        Its ``status`` is ``interrupted`` when SIGINT or SIGTERM stopped the run; ``run.json`` and
        ``index.html`` are written all the same, and ``latest`` does not move.

    Raises
    ------
    ParameterError
        Before anything runs, when the profile, ``--only``, ``--set`` or ``jobs`` is invalid.
    DatasetError
        Before anything runs, when a dataset the run needs is missing or corrupt.
    ParameterError
        Also when 05_deployment would have no model to analyse (:func:`check_deployment_model`).
    ClusterError
        Before anything runs, when the cluster cannot be started or its scheduler reached.
    """
    check_jobs(jobs)
    profile_path, profile, parameters = prepare_run(profile_path, only=only, overrides=overrides)
    check_deployment_model(parameters, cluster=cluster)
    reports_root = locate_reports_root(out_dir)
    with open_executor(cluster, jobs=jobs, show_code=show_code, timeout=timeout, progress=progress) as executor:
        executor.check_datasets(parameters)
        run_dir = make_run_dir(reports_root, run_name or name_run(profile_path, profile, parameters))
        started_at, started = datetime.now(UTC), time.perf_counter()
        runs = {stem: NotebookRun(stem, {**values, "output_dir": str(run_dir)}) for stem, values in parameters.items()}
        batch = [Job(run, run_dir, needs=find_inputs(stem, runs)) for stem, run in runs.items()]
        interrupted_by = executor.execute(batch)
    outcome = RunOutcome(run_dir=run_dir, notebooks=list(runs.values()), interrupted_by=interrupted_by)
    finish_run_folder(outcome, profile_path, profile, started_at, time.perf_counter() - started, progress=progress)
    if outcome.ok:
        point_latest(reports_root, run_dir)
    return outcome


def check_jobs(jobs) -> None:
    """Reject a ``--jobs`` value that is not a whole number of at least 1."""
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ParameterError(f"--jobs: {jobs!r} must be a whole number of at least 1.")


def locate_reports_root(out_dir: str | Path | None) -> Path:
    """Return the reports folder as an absolute path (the kernels run elsewhere and write to it)."""
    return (Path(out_dir) if out_dir else config.REPORTS_DIR).resolve()


@dataclass
class Job:
    """One notebook execution to do: its run, the folder it writes to, and the runs whose files it reads."""

    run: NotebookRun
    run_dir: Path
    needs: list[NotebookRun] = field(default_factory=list)
    # The folders of the needed runs that this notebook reads (results records, saved models).
    reads: tuple[str, ...] = ("results", "models")


def find_inputs(stem: str, runs: dict[str, NotebookRun]) -> list[NotebookRun]:
    """Return the runs of the same folder whose results or saved model the notebook ``stem`` reads.

    05_deployment reads the CNN that 04_cnn saves; 06_model_comparison reads the records of the model
    notebooks and 05_deployment. The others read nothing of the run.
    """
    reads = {"05_deployment": ("04_cnn",), "06_model_comparison": (*MODEL_NOTEBOOKS, "05_deployment")}
    return [runs[name] for name in reads.get(stem, ()) if name in runs]


def finish_run_folder(outcome: RunOutcome, profile_path: Path, profile: dict, started_at, seconds: float, *,
                      progress: bool) -> None:
    """Remove what interrupted notebooks half-wrote, then write the run's ``run.json`` and ``index.html``."""
    if outcome.interrupted_by is not None:
        remove_unfinished(outcome)
        if progress:
            print(f"interrupted by {outcome.interrupted_by}: kernels stopped, unfinished notebooks of "
                  f"{outcome.run_dir.name} removed; latest was left where it was.", file=sys.stderr, flush=True)
    outcome.manifest = _build_manifest(outcome, profile_path, profile, started_at, seconds)
    write_text_atomic(outcome.run_dir / "run.json", json.dumps(outcome.manifest, indent=1, default=str) + "\n")
    write_text_atomic(outcome.run_dir / "index.html", render_index_html(outcome.manifest, run_dir=outcome.run_dir))


def open_executor(cluster: str | None, *, jobs: int, show_code: bool, timeout, progress: bool):
    """Return the context manager that executes jobs: Dask's when ``cluster`` is given, else local processes.

    Dask is imported only in the first case, so that a local run starts as quickly as before.
    """
    if cluster:
        from digitrec_utils.running.cluster import ClusterExecutor

        return ClusterExecutor(cluster, show_code=show_code, timeout=timeout, progress=progress)
    return LocalExecutor(jobs=jobs, show_code=show_code, timeout=timeout, progress=progress)


class LocalExecutor:
    """Executes jobs in child processes of this machine, up to ``jobs`` at a time (see :func:`_execute_all`)."""

    def __init__(self, *, jobs: int, show_code: bool, timeout, progress: bool) -> None:
        self.jobs, self.show_code, self.timeout, self.progress = jobs, show_code, timeout, progress

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc_info) -> None:
        return None

    def check_datasets(self, parameters: dict[str, dict]) -> dict[str, str]:
        """Check the run's datasets here, where the notebooks will read them."""
        return check_datasets(parameters)

    def describe(self) -> str:
        """Where the notebooks ran, for the manifest."""
        return f"this machine, {self.jobs} notebook{'s' if self.jobs > 1 else ''} at a time"

    def execute(self, batch: list[Job]) -> str | None:
        """Execute the jobs, one run folder after another; return the signal that interrupted them, if any.

        Jobs of the same folder run as :func:`_execute_all` runs them; a folder's jobs only read files of
        their own folder or of folders earlier in ``batch``.
        """
        folders: dict[Path, dict[str, NotebookRun]] = {}
        for job in batch:
            folders.setdefault(job.run_dir, {})[job.run.notebook] = job.run
        with kernel_environment(), catch_sigterm() as received:
            for run_dir, runs in folders.items():
                if self.progress and len(folders) > 1:
                    print(f"{run_dir.name}:", flush=True)
                try:
                    _execute_all(runs, run_dir, jobs=self.jobs, show_code=self.show_code, timeout=self.timeout,
                                 progress=self.progress)
                except KeyboardInterrupt:
                    for later in list(folders)[list(folders).index(run_dir) + 1:]:
                        for run in folders[later].values():
                            run.status = "not started"
                    return received.get("signal", "SIGINT")
        return None


@contextlib.contextmanager
def kernel_environment():
    """Within the block, kernel ``python3`` is this interpreter, with :data:`KERNEL_ENVIRONMENT` set.

    ``JUPYTER_PATH`` is restored afterwards, and the private kernelspec folder removed.
    """
    previous_jupyter_path = os.environ.get("JUPYTER_PATH")
    kernels_root = prepare_kernel_environment()
    try:
        yield kernels_root
    finally:
        shutil.rmtree(kernels_root, ignore_errors=True)
        if previous_jupyter_path is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = previous_jupyter_path


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


def _execute_all(runs: dict[str, NotebookRun], run_dir: Path, *, jobs, show_code, timeout, progress) -> None:
    """Execute the notebooks, each in a child process: up to ``jobs`` independent ones at a time, then the rest.

    ``runs`` is updated in place as notebooks finish. On KeyboardInterrupt (SIGINT, or SIGTERM through
    :func:`catch_sigterm`) the children are stopped, their notebooks marked
    ``interrupted`` and the notebooks not yet started ``not started``; then the interrupt propagates.
    """
    independent = [stem for stem in runs if stem not in DEPENDENT_NOTEBOOKS]
    dependent = [stem for stem in runs if stem in DEPENDENT_NOTEBOOKS]
    waiting = independent + dependent
    total = len(runs)
    counter = iter(range(1, total + 1))
    context = multiprocessing.get_context("spawn")
    active: dict[str, tuple] = {}
    arguments = {"run_dir": str(run_dir), "notebooks_dir": str(config.NOTEBOOKS_DIR), "timeout": timeout,
                 "show_code": show_code}

    def _start(stem: str) -> None:
        receiver, sender = context.Pipe(duplex=False)
        bar = progress and jobs == 1
        process = context.Process(target=_execute_in_child, name=f"digitrec-{stem}",
                                  args=(runs[stem], sender), kwargs={**arguments, "progress_bar": bar})
        process.start()
        sender.close()
        active[stem] = (process, receiver)
        if progress:
            print(f"starting {stem}", flush=True)

    def _finish(stem: str, run: NotebookRun) -> None:
        process, receiver = active.pop(stem)
        receiver.close()
        process.join()
        _update_run(runs[stem], run)
        if progress:
            print(f"[{next(counter)}/{total}] {run.describe()}", flush=True)

    try:
        while waiting or active:
            while waiting and len(active) < jobs and (waiting[0] in independent or not active):
                _start(waiting.pop(0))
            receivers = {receiver: stem for stem, (_, receiver) in active.items()}
            sentinels = {process.sentinel: stem for stem, (process, _) in active.items()}
            for ready in wait([*receivers, *sentinels]):
                stem = receivers.get(ready) or sentinels.get(ready)
                if stem not in active:
                    continue
                process, receiver = active[stem]
                if receiver.poll():
                    _finish(stem, receiver.recv())
                elif not process.is_alive():
                    lost = runs[stem]
                    lost.status = "failed"
                    lost.error = f"the notebook's process ended without a result (exit status {process.exitcode})"
                    _finish(stem, lost)
    except KeyboardInterrupt:
        _stop_children(active, runs, progress=progress)
        for stem in waiting:
            runs[stem].status = "not started"
        raise


def _update_run(run: NotebookRun, outcome: NotebookRun) -> None:
    """Copy an outcome, made in another process, into the run object that the caller and its folder share."""
    for item in fields(NotebookRun):
        setattr(run, item.name, getattr(outcome, item.name))


def _stop_children(active: dict[str, tuple], runs: dict[str, NotebookRun], *, progress: bool) -> None:
    """Stop running notebooks: SIGTERM makes each child's papermill client shut its kernel down."""
    for stem, (process, _) in active.items():
        if progress:
            print(f"stopping {stem} and its kernel", file=sys.stderr, flush=True)
        with contextlib.suppress(OSError):
            os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for stem, (process, receiver) in active.items():
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
        receiver.close()
        runs[stem].status = "interrupted"
    active.clear()


def remove_unfinished(outcome: RunOutcome) -> None:
    """Delete what interrupted notebooks had written (partial and executed notebooks, pages, records)."""
    for run in outcome.notebooks:
        if run.status not in ("interrupted", "not started"):
            continue
        page = config.name_page(run.notebook)
        for path in (outcome.run_dir / f".{run.notebook}.partial.ipynb", outcome.run_dir / f"{page}.ipynb",
                     outcome.run_dir / f"{page}.html", config.locate_record(outcome.run_dir, run.notebook)):
            path.unlink(missing_ok=True)
        run.ipynb = run.html = run.results = None


def _execute_in_child(run: NotebookRun, connection, **arguments) -> None:
    """The child process's work: execute one notebook and send the outcome back through ``connection``.

    SIGINT is left to the parent, which stops this process with SIGTERM; while a kernel runs,
    nbclient's own SIGTERM handler shuts the kernel down.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    outcome = execute_notebook(run, **arguments)
    connection.send(outcome)
    connection.close()


def execute_notebook(run: NotebookRun, *, run_dir: str, notebooks_dir: str | None = None, timeout,
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
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    executed = run_dir / f"{config.name_page(run.notebook)}.ipynb"
    partial = run_dir / f".{run.notebook}.partial.ipynb"
    started = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(source), str(partial), parameters=run.parameters, kernel_name="python3", language="python",
            cwd=str(source.parent), progress_bar=progress_bar, log_output=False,
            execution_timeout=timeout, start_timeout=120, config=_kernel_manager_config(),
        )
        run.status = "ok"
    except PapermillExecutionError as error:
        run.status, run.failed_cell = "failed", error.exec_count
        run.error = f"{error.ename}: {str(error.evalue).strip()}"
    except Exception as error:  # A dead kernel or a cell timeout: still keep what ran.
        run.status, run.error = "failed", f"{type(error).__name__}: {str(error).strip()}"
        if partial.exists():
            _append_error_cell(partial, _first_line(run.error))
    run.seconds = round(time.perf_counter() - started, 2)
    if not partial.exists():
        run.status = "failed"
        run.error = run.error or "papermill wrote no output notebook"
        return run
    os.replace(partial, executed)
    run.ipynb = executed.name
    return run


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
    temporary folder pins the kernel to ``sys.executable`` without registering anything globally.
    """
    from ipykernel.kernelspec import write_kernel_spec

    os.environ.update(KERNEL_ENVIRONMENT)
    kernels_root = Path(tempfile.mkdtemp(prefix="digitrec-jupyter-"))
    spec_dir = kernels_root / "kernels" / "python3"
    # ipykernel's own kernelspec for sys.executable, including what it supports (CurveZMQ encryption).
    write_kernel_spec(spec_dir, overrides={"display_name": "Python 3 (digitrec)"})
    existing = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(kernels_root), existing]))
    return kernels_root


def _kernel_manager_config():
    """Return the kernel manager's configuration: encrypted kernel sockets where pyzmq and the kernel allow.

    ipykernel 7.3 and later print a warning at every kernel start whose sockets are plain TCP ("Kernel
    is running over TCP without encryption"). jupyter_client's ``transport_encryption = "auto"`` gives
    the kernel CurveZMQ keys when the kernelspec declares support, which ipykernel's does; with an
    older jupyter_client, or a pyzmq built without CurveZMQ, nothing is changed.
    """
    import zmq
    from jupyter_client.manager import KernelManager
    from traitlets.config import Config

    kernel_config = Config()
    if "transport_encryption" in KernelManager.class_trait_names() and zmq.has("curve"):
        kernel_config.KernelManager.transport_encryption = "auto"
    return kernel_config


def make_run_dir(reports_root: Path, name: str) -> Path:
    """Create a new, empty run folder; add a suffix rather than reuse an existing one."""
    reports_root.mkdir(parents=True, exist_ok=True)
    candidate, suffix = reports_root / name, 1
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            suffix += 1
            candidate = reports_root / f"{name}-{suffix}"


def point_latest(reports_root: Path, run_dir: Path) -> None:
    """Point ``<reports_root>/latest`` at the run folder, replacing the old link atomically."""
    link = reports_root / "latest"
    temporary = reports_root / f".latest-{os.getpid()}"
    try:
        if temporary.is_symlink():
            temporary.unlink()
        temporary.symlink_to(run_dir.name, target_is_directory=True)
        os.replace(temporary, link)
    except OSError as error:
        print(f"warning: could not point {link} at {run_dir.name} ({error}).", file=sys.stderr)


def _build_manifest(outcome: RunOutcome, profile_path: Path, profile: dict, started_at, seconds: float) -> dict:
    """Return the run manifest written to ``run.json`` and shown on the index page."""
    return {
        "run": outcome.run_dir.name,
        "status": outcome.status,
        "interrupted_by": outcome.interrupted_by,
        "profile": str(profile_path),
        "profile_values": profile,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "started": started_at.isoformat(timespec="seconds"),
        "seconds": round(seconds, 2),
        "notebooks": [asdict(run) for run in outcome.notebooks],
        "dataset_sha256": {run.notebook: run.dataset_sha256 for run in outcome.notebooks},
        "environment": collect_environment(),
    }
