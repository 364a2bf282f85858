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
import signal
import sys
import tempfile
import time
from dataclasses import asdict, fields
from datetime import UTC, datetime
from multiprocessing.connection import wait
from pathlib import Path

from digitrec_utils import config
from digitrec_utils.declarations import MODEL_NOTEBOOKS
from digitrec_utils.exceptions import ParameterError
from digitrec_utils.params import (
    DEPENDENT_NOTEBOOKS,
    list_notebooks,
    load_profile,
    locate_profile,
    resolve_notebook_name,
    resolve_parameters,
)
from digitrec_utils.reporting.index_page import render_index_html
from digitrec_utils.running.execution import (
    MAX_SOCKET_PATH,
    catch_sigterm,
    execute_in_child,
    kernel_environment,
    progress_file,
    share_cores,
)
from digitrec_utils.running.outcomes import Job, NotebookRun, RunOutcome
from digitrec_utils.running.preflight import check_datasets, check_deployment_model, find_datasets
from digitrec_utils.running.reuse import find_sources, fingerprint_data, record_result_files, skip_unchanged
from digitrec_utils.running.tracking import check_tracking, log_outcome
from digitrec_utils.utils.environment import collect_environment
from digitrec_utils.utils.files import write_text_atomic
from digitrec_utils.utils.progress import read_progress

DEFAULT_PROFILE = config.PARAMS_DIR / "sample.yaml"
# The characters multiprocessing's fork server adds to the temporary folder's path for its socket
# ("/pymp-XXXXXXXX/listener-XXXXXXXX").
FORK_SERVER_SOCKET_NAME = 33
# The longest a cell may go without printing anything before it is stopped as hung (running.silence).
DEFAULT_CELL_TIMEOUT_SECONDS = 1800
# How often, at most, the progress of each running notebook (its latest training epoch) is printed.
PROGRESS_SECONDS = 20

# Seconds an interrupted notebook's process gets to shut its kernel down before it is killed.
STOP_GRACE_SECONDS = 30


def _select_notebooks(only: list[str] | None, *, sweep: bool = False) -> list[str]:
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

    ``sweep`` allows ``--only`` to name the stability notebook (see ``_select_notebooks``).

    Returns
    -------
    profile_path : Path
    profile : dict
    parameters : dict of str to dict
        Notebook stem -> validated parameters, in run order.
    """
    profile_path = locate_profile(profile_path) if profile_path else DEFAULT_PROFILE
    profile = load_profile(profile_path)
    notebooks = _select_notebooks(list(only or []), sweep=sweep)
    parameters = resolve_parameters(profile, notebooks, overrides=list(overrides), source=str(profile_path))
    return profile_path, profile, parameters


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
    reuse: str | Path | None = None,
    fresh: bool = False,
    tls: dict | None = None,
    track: str | None = None,
) -> RunOutcome:
    """Run the suite: validate, reuse what did not change, execute the rest, render, and write ``index.html`` and
    ``run.json``.

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
    reuse : path-like, optional
        The earlier run (or sweep) folder whose unchanged results are copied rather than executed again; by
        default every finished run in the reports folder, ``latest`` first (see :mod:`digitrec_utils.running.reuse`).
    fresh : bool, default=False
        Execute every notebook, reusing nothing.
    tls : dict, optional
        With a ``tls://`` cluster: this client's ``ca_file``, ``cert`` and ``key`` (see
        :func:`digitrec_utils.running.cluster.build_security`).
    track : str, optional
        Log the run to MLflow once it is written: a tracking URI, or "" for the SQLite store in the reports folder
        (:mod:`digitrec_utils.running.tracking`); None logs nothing.

    Returns
    -------
    outcome : RunOutcome
        Its ``status`` is ``interrupted`` when SIGINT or SIGTERM stopped the run; ``run.json`` and
        ``index.html`` are written all the same, and ``latest`` does not move.

    Raises
    ------
    ParameterError
        Before anything runs, when the profile, ``--only``, ``--set``, ``jobs`` or ``reuse`` is invalid.
    DatasetError
        Before anything runs, when a dataset the run needs is missing or corrupt.
    ParameterError
        Also when 05_deployment would have no model to analyse (:func:`check_deployment_model`).
    ClusterError
        Before anything runs, when the cluster cannot be started or its scheduler reached.
    """
    check_jobs(jobs)
    check_tracking(track)
    profile_path, profile, parameters = prepare_run(profile_path, only=only, overrides=overrides)
    check_deployment_model(parameters, cluster=cluster)
    reports_root = locate_reports_root(out_dir)
    if run_name:
        check_run_name(reports_root, run_name)
    sources = find_sources(reports_root, reuse, fresh=fresh)
    with open_executor(cluster, jobs=jobs, show_code=show_code, timeout=timeout, progress=progress,
                       tls=tls) as executor:
        executor.check_datasets(parameters)
        run_dir = make_run_dir(reports_root, run_name or name_run(profile_path, profile, parameters))
        if progress:
            print(config.describe_suite_source(), flush=True)
        started_at, started = datetime.now(UTC), time.perf_counter()
        runs, batch = plan_jobs(parameters, run_dir)
        interrupted_by = execute_changed(executor, batch, sources, root=run_dir, progress=progress)
    outcome = RunOutcome(run_dir=run_dir, notebooks=list(runs.values()), interrupted_by=interrupted_by)
    finish_run_folder(outcome, profile_path, profile, started_at, time.perf_counter() - started, progress=progress)
    if outcome.ok:
        point_latest(reports_root, run_dir)
    if track is not None:
        log_outcome(outcome, track=track, reports_root=reports_root, progress=progress)
    return outcome


def check_jobs(jobs) -> None:
    """Reject a ``--jobs`` value that is not a whole number of at least 1."""
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ParameterError(f"--jobs: {jobs!r} must be a whole number of at least 1.")


def locate_reports_root(out_dir: str | Path | None) -> Path:
    """Return the reports folder as an absolute path (the kernels run elsewhere and write to it).

    Nothing is created here: the folder is made with the run folder (:func:`make_run_dir`), once the data
    are found.

    Raises
    ------
    ParameterError
        Before any notebook starts, when the folder could not be made or written to: the nearest folder
        that exists on its path is a file, or cannot be written to. The message names ``--out``.
    """
    root = (Path(out_dir) if out_dir else config.REPORTS_DIR).expanduser().resolve()
    existing = next(folder for folder in (root, *root.parents) if folder.exists())
    if not existing.is_dir():
        _refuse_out(root, f"{existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        _refuse_out(root, f"{existing} cannot be written to")
    return root


def _refuse_out(root: Path, reason: str):
    raise ParameterError(f"--out {root}: the reports cannot be written there ({reason}); give a folder you can "
                         "write to, e.g. --out ~/digitrec-reports.")


def check_run_name(reports_root: Path, folder_name: str) -> None:
    """Raise ParameterError when ``--name`` would reuse a run folder: a named run never writes into another run."""
    if (reports_root / folder_name).exists():
        raise ParameterError(f"--name: {reports_root / folder_name} already exists, and a run never writes into "
                             "another; choose another --name, or remove that folder first.")


def plan_jobs(parameters: dict[str, dict], run_dir: Path) -> tuple[dict[str, NotebookRun], list[Job]]:
    """Return each notebook's run (writing into ``run_dir``) and its job, with the runs it reads, in run order."""
    runs = {stem: NotebookRun(stem, {**values, "output_dir": str(run_dir)}) for stem, values in parameters.items()}
    return runs, [Job(run, run_dir, needs=find_inputs(stem, runs)) for stem, run in runs.items()]


def execute_changed(executor, batch: list[Job], sources: list[Path], *, root: Path, progress: bool) -> str | None:
    """Copy the results of the unchanged jobs from ``sources`` and execute the others (:mod:`running.reuse`).

    Returns the signal that interrupted the execution, if any.
    """
    to_execute = skip_unchanged(batch, sources, hash_data=executor.fingerprint_data, root=root, progress=progress)
    return executor.execute(to_execute) if to_execute else None


def find_inputs(stem: str, runs: dict[str, NotebookRun]) -> list[NotebookRun]:
    """Return the runs of the same folder whose results or saved model the notebook ``stem`` reads.

    05_deployment and 08_adaptation read the CNN that 04_cnn saves (08 after 05 has saved its threshold);
    06_model_comparison reads the records of the model notebooks, 05_deployment and 08_adaptation. The others
    read nothing of the run.
    """
    reads = {"05_deployment": ("04_cnn",), "08_adaptation": ("04_cnn", "05_deployment"),
             "06_model_comparison": (*MODEL_NOTEBOOKS, "05_deployment", "08_adaptation")}
    return [runs[name] for name in reads.get(stem, ()) if name in runs]


def finish_run_folder(outcome: RunOutcome, profile_path: Path, profile: dict, started_at, seconds: float, *,
                      progress: bool) -> None:
    """Remove what interrupted notebooks half-wrote, then write the run's ``run.json`` and ``index.html``."""
    if outcome.interrupted_by is not None:
        remove_unfinished(outcome)
        if progress:
            print(f"interrupted by {outcome.interrupted_by}: kernels stopped, unfinished notebooks of "
                  f"{outcome.run_dir.name} removed; latest was left where it was.", file=sys.stderr, flush=True)
    record_result_files(outcome.notebooks, outcome.run_dir)
    outcome.manifest = _build_manifest(outcome, profile_path, profile, started_at, seconds)
    write_text_atomic(outcome.run_dir / "run.json", json.dumps(outcome.manifest, indent=1, default=str) + "\n")
    write_text_atomic(outcome.run_dir / "index.html", render_index_html(outcome.manifest, run_dir=outcome.run_dir))


def open_executor(cluster: str | None, *, jobs: int, show_code: bool, timeout, progress: bool, tls: dict | None = None):
    """Return the context manager that executes jobs: Dask's when ``cluster`` is given, else local processes.

    Dask is imported only in the first case, so that a local run starts as quickly as before.
    """
    if cluster:
        from digitrec_utils.running.cluster import ClusterExecutor

        return ClusterExecutor(cluster, show_code=show_code, timeout=timeout, progress=progress, tls=tls)
    if tls and any(tls.values()):  # Certificates without a cluster: refused as for a tcp:// one.
        from digitrec_utils.running.cluster import build_security

        build_security("", **tls)
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

    def fingerprint_data(self, notebooks: dict[str, dict]) -> dict[str, str]:
        """Hash each notebook's data here, where the notebooks will read them (see ``reuse.fingerprint_data``)."""
        return fingerprint_data(notebooks)

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


def _choose_start_method() -> str:
    """How each notebook's process starts: forked from a server process, where its socket's path fits, else spawned.

    The server imported the execution module (papermill, nbconvert, nbclient) once; a spawned process spent
    3.5 s on those imports before its notebook's kernel started. The server is a fresh process with no threads,
    so forking it is safe; it keeps the environment and folder of its start, so each child is given the run's
    (``environment``, ``working_folder``). Its Unix socket lies in the temporary folder, whose path may be too
    long for one (as for the kernels' sockets, :data:`~digitrec_utils.running.execution.MAX_SOCKET_PATH`);
    Windows has no fork server.
    """
    fits = len(tempfile.gettempdir()) + FORK_SERVER_SOCKET_NAME <= MAX_SOCKET_PATH
    return "forkserver" if fits and "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def _execute_all(runs: dict[str, NotebookRun], run_dir: Path, *, jobs, show_code, timeout, progress) -> None:
    """Execute the notebooks, each in a child process: up to ``jobs`` independent ones at a time, then the rest.

    ``runs`` is updated in place as notebooks finish. On KeyboardInterrupt (SIGINT, or SIGTERM through
    :func:`catch_sigterm`) the children are stopped, their notebooks marked
    ``interrupted`` and the notebooks not yet started ``not started``; then the interrupt propagates.
    """
    independent = [stem for stem in runs if stem not in DEPENDENT_NOTEBOOKS]
    dependent = [stem for stem in DEPENDENT_NOTEBOOKS if stem in runs]
    waiting = independent + dependent
    total = len(runs)
    counter = iter(range(1, total + 1))
    start_method = _choose_start_method()
    context = multiprocessing.get_context(start_method)
    if start_method == "forkserver":
        context.set_forkserver_preload([execute_in_child.__module__])
    active: dict[str, tuple] = {}
    shown: dict[str, str] = {}
    arguments = {"run_dir": str(run_dir), "notebooks_dir": str(config.NOTEBOOKS_DIR), "timeout": timeout,
                 "show_code": show_code, "environment": dict(os.environ), "working_folder": os.getcwd()}

    def _start(stem: str) -> None:
        receiver, sender = context.Pipe(duplex=False)
        bar = progress and jobs == 1
        # Notebooks that may run beside others share the cores; 05 and 06 run alone and keep them all.
        threads = share_cores(jobs) if jobs > 1 and stem in independent else None
        process = context.Process(target=execute_in_child, name=f"digitrec-{stem}", args=(runs[stem], sender),
                                  kwargs={**arguments, "progress_bar": bar, "kernel_threads": threads})
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
            readies = wait([*receivers, *sentinels], timeout=PROGRESS_SECONDS if progress else None)
            if progress:
                _show_progress(active, run_dir, shown, after_bar=jobs == 1)
            for ready in readies:
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


def _show_progress(active: dict[str, tuple], run_dir: Path, shown: dict[str, str], *, after_bar: bool) -> None:
    """Print each running notebook's latest progress line (a training epoch, with its estimate), once each.

    ``after_bar``: papermill's progress bar (one notebook at a time) holds the line, so a new one is begun.
    """
    for stem in active:
        line = read_progress(progress_file(run_dir, stem))
        if line and shown.get(stem) != line:
            shown[stem] = line
            print(f"{chr(10) if after_bar else ''}{stem}: {line}", flush=True)


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


def make_run_dir(reports_root: Path, name: str) -> Path:
    """Create a new, empty run folder; add a suffix rather than reuse an existing one.

    Raises
    ------
    ParameterError
        When the reports folder cannot be made (``--out`` names where it may not be); nothing has run yet.
    """
    try:
        reports_root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        _refuse_out(reports_root, error.strerror or type(error).__name__)
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
