"""Execution of the suite's notebooks as tasks on a Dask cluster (``digitrec run --cluster``).

Each notebook execution is one task. The client sends the notebook's source, its parameters and its
inputs (the results records and saved models of the notebooks it reads) as bytes; the worker writes them
into a temporary run folder, runs papermill there with its own installed digitrec and its own data, and
returns the executed notebook and every file the notebook wrote or changed, as bytes, with the worker's
temporary folder written as the client's run folder. The client renders the HTML and writes every file
atomically under the run folder, exactly as a local run does. Notebooks that read others' files are Dask
dependencies of them, so they start once their inputs exist.

Faults: a task that raises (a worker's error, not a notebook's: a failing notebook returns its outcome
with the error, as locally) is retried once (``retries=1``); a worker that dies mid-notebook has its
task rescheduled by the scheduler (its ``distributed.scheduler.allowed-failures``). After that the
notebook is marked failed with the worker's error, and the others still run. A scheduler that cannot be
reached, or a worker with another digitrec version, stops the run before anything starts.

This module is imported only with ``--cluster``: a local run never imports Dask.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import logging
import os
import sys
import tempfile
import threading
from pathlib import Path

from digitrec_utils import __version__, config
from digitrec_utils import __version__ as installed
from digitrec_utils.data.readers import compute_sha256
from digitrec_utils.exceptions import ClusterError, ParameterError
from digitrec_utils.running.execution import (
    OPENMP_THREAD_VARIABLES,
    catch_sigterm,
    finish_notebook,
    prepare_kernel_environment,
    remove_abandoned_kernel_folders,
    run_papermill,
    share_cores,
)
from digitrec_utils.running.outcomes import Job, NotebookRun
from digitrec_utils.running.preflight import check_datasets
from digitrec_utils.running.reuse import find_batch_root, fingerprint_data, label_run
from digitrec_utils.utils.files import open_atomic
from digitrec_utils.utils.scratch import remove_owned_folder

LOCAL_PREFIX = "local:"
# Seconds the client waits for a remote scheduler before giving up.
CONNECT_TIMEOUT_SECONDS = 10
# A task that raises is tried once more; a worker that dies is the scheduler's business (allowed-failures).
TASK_RETRIES = 1
# The fields of a notebook's outcome that a worker sends back and the client copies into its run.
TASK_OUTCOME_FIELDS = ("status", "seconds", "error", "failed_cell", "ipynb", "worker", "kernel_starts")
# Threads of each kernel on a local cluster: None for an equal share of the cores (cores // N), 0 to leave
# them unbounded (each library uses every core). benchmarks/bench_cluster.py compares the two.
LOCAL_KERNEL_THREADS: int | None = None
# The environment variables that bound a kernel's threads: BLAS and OpenMP, TensorFlow, joblib's n_jobs=-1.
THREAD_VARIABLES = (*OPENMP_THREAD_VARIABLES, "TF_NUM_INTRAOP_THREADS", "LOKY_MAX_CPU_COUNT")


class ClusterExecutor:
    """Executes jobs as Dask tasks, on a local cluster (``local:N``) or through a scheduler's address.

    Use it as a context manager: entering starts or reaches the cluster (and checks every worker's digitrec
    version), leaving closes the client and any local cluster.

    Parameters
    ----------
    address : str
        ``local:N`` or a scheduler address such as ``tcp://HOST:8786``.
    show_code : bool
    timeout : float or None
        Seconds allowed per cell.
    progress : bool
        Print the dashboard's address and one line per finished task.
    tls : dict, optional
        For a ``tls://`` address: ``ca_file``, ``cert`` and ``key``, the files of this client's certificate
        (:func:`build_security`); Dask's configuration gives what is left out.
    """

    def __init__(self, address: str, *, show_code: bool, timeout, progress: bool, tls: dict | None = None) -> None:
        self.address, self.show_code, self.timeout, self.progress = address, show_code, timeout, progress
        self.n_local_workers = _parse_cluster_address(address)
        self.security = build_security(address, **(tls or {}))
        self.cluster = self.client = None
        self.kernel_threads: int | None = None
        self._futures: dict[int, object] = {}  # id of a NotebookRun -> its task's future.

    def __enter__(self) -> ClusterExecutor:
        from distributed import Client, LocalCluster

        dashboard = importlib.util.find_spec("bokeh") is not None
        if self.n_local_workers:
            # One task at a time per worker process; its kernel gets an equal share of the cores.
            share = share_cores(self.n_local_workers)
            self.kernel_threads = share if LOCAL_KERNEL_THREADS is None else LOCAL_KERNEL_THREADS or None
            try:
                self.cluster = LocalCluster(n_workers=self.n_local_workers, threads_per_worker=1, processes=True,
                                            dashboard_address=":0" if dashboard else None,
                                            silence_logs=logging.ERROR)
            except Exception as error:  # Dask's own errors (ports, processes) say what went wrong.
                raise ClusterError(f"--cluster {self.address}: the local Dask cluster did not start ({error}); "
                                   "nothing was run.") from None
            self.client = Client(self.cluster)
        else:
            if self.security is None and self.progress:
                print(f"Dask: {self.address} is not encrypted, and anyone who reaches its scheduler runs code on "
                      "its workers; use it on a trusted network only, or tls:// (docs/RUNNING.md).", flush=True)
            try:
                self.client = Client(self.address, timeout=CONNECT_TIMEOUT_SECONDS, security=self.security)
            except (OSError, TimeoutError, ValueError) as error:
                if self.security is not None:
                    raise ClusterError(
                        f"--cluster {self.address}: no TLS connection with a Dask scheduler there ({error}). Either "
                        "none listens there, or the scheduler refused this client's certificate (its certificate "
                        "authority must have signed it), or the authority of --tls-ca-file did not sign the "
                        "scheduler's; check the address, --tls-ca-file, --tls-cert and --tls-key. Nothing was "
                        "run.") from None
                raise ClusterError(
                    f"--cluster {self.address}: no Dask scheduler could be reached there ({error}). Start one with "
                    "`dask scheduler` and workers with `dask worker ADDRESS`, or check the host and port "
                    "(8786 by default); nothing was run.") from None
        try:
            self._check_versions()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        if self.progress:
            workers = self.client.scheduler_info().get("workers", {})
            print(f"Dask: {self.describe()}, {len(workers)} worker(s).", flush=True)
            if dashboard and self.client.dashboard_link:
                print(f"Dask dashboard: {self.client.dashboard_link}", flush=True)
        return self

    def __exit__(self, *exc_info) -> None:
        with contextlib.suppress(Exception):
            if self.client is not None:
                self.client.close()
        with contextlib.suppress(Exception):
            if self.cluster is not None:
                self.cluster.close()
                # A local worker killed during the run (out of memory, say) left its folders in this
                # machine's temporary folder; the others removed theirs as they closed.
                remove_abandoned_kernel_folders()

    def describe(self) -> str:
        """Where the notebooks ran, for the manifest."""
        if self.n_local_workers:
            threads = (f"{self.kernel_threads} thread{'s' if self.kernel_threads > 1 else ''} per kernel"
                       if self.kernel_threads else "kernels' threads unbounded")
            return f"a local Dask cluster of {self.n_local_workers} worker processes ({threads})"
        return f"the Dask cluster at {self.address}"

    def _check_versions(self) -> None:
        """Raise ClusterError, before anything runs, when a worker's digitrec differs from the client's."""
        versions = self.client.run(_read_worker_version)
        if not versions:
            raise ClusterError(f"--cluster {self.address}: the scheduler has no workers; start some with "
                               f"`dask worker {self.address}`.")
        different = {worker: version for worker, version in versions.items() if version != __version__}
        if different:
            listed = ", ".join(f"{worker} has {version}" for worker, version in sorted(different.items()))
            raise ClusterError(f"--cluster {self.address}: the client runs digitrec {__version__}, but {listed}; "
                               "install the same digitrec on every worker. Nothing was run.")

    def check_datasets(self, parameters: dict[str, dict]) -> dict[str, str]:
        """Check the run's datasets on a worker, where the notebooks will read them.

        Raises
        ------
        DatasetError
            As :func:`digitrec_utils.running.preflight.check_datasets` raises it on the worker.
        """
        return self.client.submit(check_datasets, parameters, pure=False,
                                  key=f"check-datasets-{_token()}").result()

    def fingerprint_data(self, notebooks: dict[str, dict]) -> dict[str, str]:
        """Hash each notebook's data on a worker, where the notebooks will read them (``reuse.fingerprint_data``)."""
        return self.client.submit(fingerprint_data, notebooks, pure=False, key=f"fingerprint-data-{_token()}").result()

    def execute(self, batch: list[Job]) -> str | None:
        """Submit each job as a task once its inputs exist, as many at a time as the workers have threads.

        A job's inputs are passed as its task's dependencies (the futures of the jobs it reads), so their
        outputs go from worker to worker; the files of an input reused from an earlier run, which no task
        made, are scattered to the cluster from the run folder. Jobs are submitted in ``batch`` order, no more than the
        cluster's threads at a time: Dask would otherwise hand each worker several notebooks at once (its
        ``worker-saturation`` for tasks it cannot queue), and one worker could be left idle while another
        works through its list. Returns the signal's name when SIGINT or SIGTERM stopped the run (its tasks
        are then cancelled), else None. Each run of ``batch`` is updated in place.
        """
        from distributed import as_completed

        root = find_batch_root(batch)
        labels = {id(job.run): label_run(job.run, root) for job in batch}
        waiting, in_flight, done = list(batch), {}, set()
        self._scatter_reused_inputs(batch, done)
        finished = as_completed()
        counter = iter(range(1, len(batch) + 1))

        def _submit_ready() -> None:
            capacity = max(1, sum(self.client.nthreads().values()))
            for job in [job for job in waiting if all(id(run) in done for run in job.needs)]:
                if len(in_flight) >= capacity:
                    return
                future = self.client.submit(_execute_task, self._build_payload(job),
                                            *[self._futures[id(run)] for run in job.needs],
                                            key=f"{labels[id(job.run)]}-{_token()}", retries=TASK_RETRIES, pure=False)
                self._futures[id(job.run)] = future
                in_flight[future.key] = job
                waiting.remove(job)
                finished.add(future)

        with catch_sigterm() as received:
            try:
                _submit_ready()
                for future in finished:
                    job = in_flight.pop(future.key)
                    self._collect(job, future)
                    done.add(id(job.run))
                    if self.progress:
                        where = f" on {job.run.worker}" if job.run.worker else ""
                        print(f"[{next(counter)}/{len(batch)}] {labels[id(job.run)]}: "
                              f"{job.run.describe().split(': ', 1)[1]}{where}", flush=True)
                    _submit_ready()
            except KeyboardInterrupt:
                running = set()
                with contextlib.suppress(Exception):  # The tasks that workers were executing.
                    running = {key for keys in self.client.run(_list_executing).values() for key in keys}
                self.client.cancel([self._futures[id(job.run)] for job in in_flight.values()], force=True)
                for key, job in in_flight.items():
                    job.run.status = "interrupted" if key in running else "not started"
                for job in waiting:
                    job.run.status = "not started"
                return received.get("signal", "SIGINT")
        return None

    def _scatter_reused_inputs(self, batch: list[Job], done: set[int]) -> None:
        """Send the files of each input that is not executed (its result was reused) to the cluster, once."""
        executed = {id(job.run) for job in batch}
        for needed in {id(run): run for job in batch for run in job.needs if id(run) not in executed}.values():
            folder = Path(needed.parameters["output_dir"])
            files = {name: (folder / name).read_bytes() for name in needed.files}
            self._futures[id(needed)] = self.client.scatter({"files": files}, hash=False)
            done.add(id(needed))

    def _build_payload(self, job: Job) -> dict:
        """What the worker needs: the source, the parameters, where the inputs go, the limits."""
        source = config.NOTEBOOKS_DIR / f"{job.run.notebook}.ipynb"
        return {"notebook": job.run.notebook, "source": source.read_bytes(), "source_path": str(source),
                "parameters": job.run.parameters,
                "run_dir": str(job.run_dir), "version": __version__, "timeout": self.timeout,
                "kernel_threads": self.kernel_threads, "reads": list(job.reads),
                "inputs": [os.path.relpath(Path(run.parameters["output_dir"]), job.run_dir) for run in job.needs]}

    def _collect(self, job: Job, future) -> None:
        """Write a finished task's files under its run folder, render its page, and fill its run."""
        run = job.run
        if future.status != "finished":
            failed_inputs = [needed.notebook for needed in job.needs if self._futures[id(needed)].status == "error"]
            run.status = "failed"
            if failed_inputs:
                run.error = f"not run: its input {', '.join(failed_inputs)} failed on the cluster"
            else:
                error = future.exception()
                run.error = f"on the cluster: {type(error).__name__}: {str(error).strip()}"
            return
        output = future.result()
        for relative, data in output["files"].items():
            with open_atomic(job.run_dir / relative) as stream:
                stream.write(data)
        for name in TASK_OUTCOME_FIELDS:
            setattr(run, name, output[name])
        if run.ipynb is not None:
            finish_notebook(run, job.run_dir, show_code=self.show_code)


def build_security(address: str, *, ca_file: str | None = None, cert: str | None = None, key: str | None = None):
    """Return the Dask ``Security`` of a client of a ``tls://`` scheduler, or None for other addresses (and for
    none, ``""``, a run on this machine).

    Each of the three files comes from its argument (``--tls-ca-file``, ``--tls-cert``, ``--tls-key``), else from
    Dask's configuration (``distributed.comm.tls.ca-file``, ``distributed.comm.tls.client.cert`` and ``.key``,
    which ``DASK_DISTRIBUTED__COMM__TLS__CA_FILE`` and the like set). Encryption is then required: the client
    talks to no scheduler without it, and the scheduler, which checks certificates both ways, refuses a client
    whose certificate its authority did not sign.

    Raises
    ------
    ParameterError
        Before anything runs: certificates given for an address that is not ``tls://``, a ``tls://`` address
        without the three files, or a file that does not exist.
    """
    import dask

    given = {"--tls-ca-file": ca_file, "--tls-cert": cert, "--tls-key": key}
    if not address.startswith("tls://"):
        named = [option for option, value in given.items() if value]
        if named:
            where = f"--cluster is {address}" if address else "no --cluster is given"
            raise ParameterError(f"{', '.join(named)}: certificates are for a tls:// scheduler, and {where}; give "
                                 "the scheduler's tls:// address (--cluster tls://HOST:8786), or leave the "
                                 "certificates out.")
        return None
    configured = {"--tls-ca-file": "distributed.comm.tls.ca-file", "--tls-cert": "distributed.comm.tls.client.cert",
                  "--tls-key": "distributed.comm.tls.client.key"}
    files = {option: value or dask.config.get(configured[option], default=None) for option, value in given.items()}
    missing = [option for option, value in files.items() if not value]
    if missing:
        raise ParameterError(f"--cluster {address}: a tls:// scheduler needs this client's certificate authority, "
                             f"certificate and key; give {', '.join(missing)} (or set "
                             f"{', '.join(configured[option] for option in missing)} in Dask's configuration). "
                             "docs/RUNNING.md shows how to make them.")
    absent = [f"{option} {value}" for option, value in files.items() if not Path(value).expanduser().is_file()]
    if absent:
        raise ParameterError(f"--cluster {address}: no such file: {'; '.join(absent)}.")
    from distributed import Security

    return Security(require_encryption=True, tls_ca_file=str(Path(files["--tls-ca-file"]).expanduser()),
                    tls_client_cert=str(Path(files["--tls-cert"]).expanduser()),
                    tls_client_key=str(Path(files["--tls-key"]).expanduser()))


def _parse_cluster_address(address: str) -> int | None:
    """Return N for ``local:N``, None for a scheduler address; raise ParameterError for anything else.

    Examples
    --------
    >>> _parse_cluster_address("local:2"), _parse_cluster_address("tcp://10.0.0.5:8786")
    (2, None)
    """
    if address.startswith(LOCAL_PREFIX):
        count = address[len(LOCAL_PREFIX):]
        if not count.isdigit() or int(count) < 1:
            raise ParameterError(f"--cluster {address}: give local:N with N worker processes, at least 1 "
                                 "(e.g. local:2).")
        return int(count)
    if "://" not in address:
        raise ParameterError(f"--cluster {address}: give local:N for a cluster on this machine, or a scheduler's "
                             "address such as tls://HOST:8786 (or tcp://HOST:8786 on a trusted network).")
    return None


# The worker's side. Everything below runs in a Dask worker process.

_worker_lock = threading.Lock()
_worker_kernels: list[Path] = []


def _list_executing(dask_worker) -> list[str]:
    """The keys of the tasks this worker is executing (called on every worker by the client)."""
    return [task.key for task in dask_worker.state.executing]


def _read_worker_version() -> str:
    """The digitrec version installed where this runs (called on every worker by the client)."""
    return installed


def _execute_task(payload: dict, *inputs: dict) -> dict:
    """Execute one notebook in a temporary run folder on this worker and return its outcome and files.

    Parameters
    ----------
    payload : dict
        From :meth:`ClusterExecutor._build_payload`.
    *inputs : dict
        The outputs of the tasks whose files this notebook reads, in the order of ``payload["inputs"]``.

    Returns
    -------
    output : dict
        The :data:`TASK_OUTCOME_FIELDS` (``ipynb``: the executed notebook's name or None), and files:
        relative path -> bytes, for the executed notebook and every file the notebook wrote or changed.

    Raises
    ------
    ClusterError
        When this worker's digitrec differs from the client's.
    """
    from distributed import get_worker

    worker = get_worker()
    installed = _read_worker_version()
    if payload["version"] != installed:
        raise ClusterError(f"worker {worker.address} has digitrec {installed}, the client {payload['version']}; "
                           "install the same digitrec on every worker.")
    with _worker_lock:
        if not _worker_kernels:  # Once per worker process; the kernelspec's folder goes when the process does.
            _worker_kernels.append(prepare_kernel_environment())
            atexit.register(remove_owned_folder, _worker_kernels[0])
        else:  # A worker that this one replaced may have been killed with its folder in place.
            remove_abandoned_kernel_folders()
        if payload["kernel_threads"]:
            os.environ.update({name: str(payload["kernel_threads"]) for name in THREAD_VARIABLES})
    # Inside the worker's own folder, so that a killed worker's task files go with that folder.
    with tempfile.TemporaryDirectory(prefix="digitrec-task-", dir=_worker_kernels[0]) as scratch:
        run_dir, notebooks = Path(scratch) / "run", Path(scratch) / "notebooks"
        run_dir.mkdir()
        notebooks.mkdir()
        source = notebooks / f"{payload['notebook']}.ipynb"
        source.write_bytes(payload["source"])
        for prefix, output in zip(payload["inputs"], inputs, strict=True):
            for relative, data in output["files"].items():
                if Path(relative).parts[0] in payload["reads"]:
                    target = run_dir / prefix / relative
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
        before = _hash_folder(run_dir)
        client_dir = payload["run_dir"]
        parameters = {key: str(run_dir) if value == client_dir else value
                      for key, value in payload["parameters"].items()}
        run = run_papermill(NotebookRun(payload["notebook"], parameters), source=source, run_dir=run_dir,
                            timeout=payload["timeout"])
        files = {}
        for relative, digest in _hash_folder(run_dir).items():
            if before.get(relative) != digest and not Path(relative).name.startswith("."):
                data = (run_dir / relative).read_bytes()
                if relative.endswith((".ipynb", ".json")):  # Paths as the client's run would show them.
                    data = data.replace(str(run_dir).encode(), client_dir.encode())
                    data = data.replace(str(source).encode(), payload["source_path"].encode())
                files[relative] = data
    run.worker = worker.name if isinstance(worker.name, str) else worker.address
    return {**{name: getattr(run, name) for name in TASK_OUTCOME_FIELDS}, "files": files}


def _hash_folder(folder: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``folder``."""
    return {str(path.relative_to(folder)): compute_sha256(path) for path in folder.rglob("*") if path.is_file()}


def _token() -> str:
    """A short random suffix that keeps task keys unique across runs on one scheduler."""
    return os.urandom(4).hex()
