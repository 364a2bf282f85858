"""Runs that remember: what made each notebook's result, and the reuse of results whose making did not change.

Before a run executes anything, each notebook gets a fingerprint, a SHA-256 over the parts that make its
result (:func:`fingerprint_jobs`):

``notebook``
    its cells' types and sources, not their outputs, execution counts or metadata;
``parameters``
    its parameters with the notebook's defaults filled in, less where the run writes (``output_dir``,
    ``sweep_dir``);
``code``
    every file of the installed ``digitrec_utils`` package (its sources and templates);
``libraries``
    the versions of the libraries that compute and render the results
    (:data:`digitrec_utils.utils.environment.TRACKED_PACKAGES`);
``data``
    the bytes of every file of its dataset, of the labelled folders it reads (``field_data``,
    ``threshold_field_data``, ``office_data``) and of a saved model it is given (``model_path``);
``inputs``
    the fingerprints of the notebooks whose files it reads (:func:`~digitrec_utils.running.runner.find_inputs`;
    the stability report reads every seed's model notebooks).

A notebook whose fingerprint equals that of a notebook which succeeded in an earlier run, and whose files
there are still as that run left them (their SHA-256 are in its ``run.json``), is not executed: its page,
executed notebook, results record and, for 04_cnn, the saved model are copied into the new run folder, and
its entry names the run it came from (``reused_from``). A notebook that failed, was interrupted or never
started is never reused, whatever became of the others of its run. Earlier runs are looked for in the
reports folder, ``latest`` first and then newest first; ``--reuse RUN`` names the one to look in and
``--fresh`` looks in none.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from digitrec_utils import config
from digitrec_utils.data.labelled import find_labelled_files, resolve_field_folder
from digitrec_utils.data.loading import list_dataset_files
from digitrec_utils.data.readers import compute_sha256
from digitrec_utils.exceptions import ParameterError
from digitrec_utils.params import RESERVED_KEYS, get_default, get_notebook_parameters
from digitrec_utils.running.outcomes import Job, NotebookRun
from digitrec_utils.running.preflight import DATASET_KEYS
from digitrec_utils.utils.environment import collect_package_versions
from digitrec_utils.utils.files import open_atomic

# The package whose files make the ``code`` part of every fingerprint.
PACKAGE_DIR = Path(__file__).resolve().parents[1]
# The package's folder of the notebooks and profiles it carries when installed (not part of its code).
SUITE_FOLDER = "suite"
# The notebook that saves the run's model: everything in the run's models/ folder is one of its results.
MODEL_SAVING_NOTEBOOK = "04_cnn"
MODELS_FOLDER = "models"
# The notebook that writes its threshold into the run's saved model's JSON.
THRESHOLD_NOTEBOOK = "05_deployment"
# The parameters that name labelled folder trees a notebook reads besides its dataset.
FIELD_FOLDER_KEYS = ("field_data", "threshold_field_data", "office_data")
# The parts of a fingerprint, in the order a reason to run again names them.
PARTS = ("notebook", "parameters", "code", "libraries", "data", "inputs")
# A finished run folder's manifest, and a finished sweep folder's.
MANIFEST_NAMES = ("run.json", "sweep.json")


@dataclass
class EarlierResult:
    """A notebook's entry in an earlier run's manifest, and the folder that holds its files."""

    folder: Path
    run: str
    entry: dict


@dataclass
class ResultIndex:
    """The results of earlier runs that may be reused, found by notebook and fingerprint.

    Attributes
    ----------
    sources : list of Path
        The run folders looked in, in order of preference.
    by_fingerprint : dict of (str, str) to list of EarlierResult
        ``(notebook, fingerprint)`` -> the successful results with that fingerprint, preferred first.
    by_notebook : dict of str to EarlierResult
        Each notebook's preferred earlier result whatever its fingerprint, to say what changed since.
    """

    sources: list[Path] = field(default_factory=list)
    by_fingerprint: dict[tuple[str, str], list[EarlierResult]] = field(default_factory=dict)
    by_notebook: dict[str, EarlierResult] = field(default_factory=dict)


def _hash_json(value) -> str:
    """Return the SHA-256 of ``value`` as canonical JSON (sorted keys), so that equal values hash equally."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def fingerprint_notebook_source(path: str | os.PathLike) -> str:
    """Return the SHA-256 of a notebook's cells' types and sources, ignoring outputs, counts and metadata."""
    cells = json.loads(Path(path).read_text(encoding="utf-8")).get("cells", [])
    return _hash_json([[cell.get("cell_type"), "".join(cell.get("source", ""))] for cell in cells])


def fingerprint_code(package_dir: Path | None = None) -> str:
    """Return the SHA-256 over every file of the package (relative path and bytes), caches left out.

    The notebooks and profiles that an installed package carries (``suite/``) are left out too: a notebook's
    source and parameters are parts of their own, so that editing one notebook or profile does not make
    every notebook run again.
    """
    root = package_dir or PACKAGE_DIR
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if path.is_file() and "__pycache__" not in parts and parts[0] != SUITE_FOLDER and path.suffix != ".pyc":
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(compute_sha256(path).encode())
    return digest.hexdigest()


def describe_libraries() -> dict[str, str | None]:
    """Return the installed version of each library that computes or renders results (digitrec's code aside)."""
    return {name: version for name, version in collect_package_versions().items() if name != "digitrec"}


def fill_defaults(notebook: str, values: dict) -> dict:
    """Return a notebook's parameters with its declared defaults filled in and the run's own keys left out."""
    schema = get_notebook_parameters(notebook)
    filled = {key: get_default(schema, key) for key in schema}
    filled.update(values)
    return {key: value for key, value in filled.items() if key not in RESERVED_KEYS}


def fingerprint_data(notebooks: dict[str, dict]) -> dict[str, str]:
    """Return, for each notebook, the SHA-256 of every data file it reads.

    Call it where the notebooks will read their data (on a worker of a cluster), after the datasets were
    checked (:func:`~digitrec_utils.running.preflight.check_datasets`). A source read by several notebooks
    (or seeds) is hashed once.

    Parameters
    ----------
    notebooks : dict of str to dict
        A label -> the notebook's parameters with its defaults filled in (:func:`fill_defaults`).

    Returns
    -------
    digests : dict of str to str
        The label -> one SHA-256 over its dataset's files, its labelled folders and the model it is given.
    """
    memo: dict[tuple, str] = {}

    def _remember(key: tuple, compute) -> str:
        if key not in memo:
            memo[key] = compute()
        return memo[key]

    digests = {}
    for label, filled in notebooks.items():
        data_dir = filled.get("data_dir") or None
        parts = []
        if "dataset" in filled:
            key = tuple(filled.get(name) or None for name in DATASET_KEYS)
            parts.append(_remember(("dataset", *key), lambda key=key: _hash_files(list_dataset_files(
                key[0], data_dir=key[1], images_csv=key[2], labels_csv=key[3]))))
        for name in FIELD_FOLDER_KEYS:
            folders = filled.get(name) or []
            for folder in [folders] if isinstance(folders, str) else folders:
                parts.append(_remember(("folder", folder, data_dir), lambda folder=folder, data_dir=data_dir: (
                    find_labelled_files(resolve_field_folder(folder, data_dir=data_dir)).compute_sha256())))
        model_path = filled.get("model_path") or ""
        if model_path:
            model = Path(model_path).expanduser()
            parts.append(_remember(("model", str(model)), lambda model=model: _hash_files(
                [model, model.with_suffix(".json")])))
        digests[label] = _hash_json(parts)
    return digests


def _hash_files(paths: list[Path]) -> str:
    """Return one SHA-256 over the files' names and bytes."""
    return _hash_json([[Path(path).name, compute_sha256(Path(path))] for path in paths])


def label_run(run: NotebookRun, folder: Path) -> str:
    """Name a notebook's run from ``folder``: ``04_cnn`` in the same folder, ``seed1/04_cnn`` from a sweep's."""
    relative = os.path.relpath(run.parameters["output_dir"], folder)
    return run.notebook if relative == "." else f"{Path(relative).as_posix()}/{run.notebook}"


def fingerprint_jobs(batch: list[Job], filled: dict[str, dict], data_digests: dict[str, str], root: Path) -> None:
    """Give every job's run its fingerprint and the parts it is made of, inputs before the jobs that read them.

    Parameters
    ----------
    batch : list of Job
    filled : dict of str to dict
        Each run's parameters with their defaults (:func:`fill_defaults`), by :func:`label_run` from ``root``.
    data_digests : dict of str to str
        From :func:`fingerprint_data`, by the same labels.
    root : Path
        The run folder, or the sweep's.
    """
    code, libraries = fingerprint_code(), describe_libraries()
    for job in order_by_inputs(batch):
        run = job.run
        label = label_run(run, root)
        inputs = {label_run(needed, job.run_dir): needed.fingerprint for needed in job.needs}
        parts = {"notebook": fingerprint_notebook_source(config.NOTEBOOKS_DIR / f"{run.notebook}.ipynb"),
                 "parameters": _hash_json(filled[label]), "code": code, "libraries": libraries,
                 "data": data_digests[label], "inputs": inputs}
        run.fingerprint_parts = parts
        run.fingerprint = _hash_json(parts)


def order_by_inputs(batch: list[Job]) -> list[Job]:
    """Return the jobs with each after the jobs of ``batch`` whose files it reads (``batch``'s order otherwise)."""
    ordered: list[Job] = []
    placed: set[int] = set()
    waiting = list(batch)
    in_batch = {id(job.run) for job in batch}
    while waiting:
        ready = [job for job in waiting if all(id(needed) in placed or id(needed) not in in_batch
                                               for needed in job.needs)]
        if not ready:
            raise RuntimeError("the notebooks' inputs form a cycle: " + ", ".join(job.run.notebook for job in waiting))
        for job in ready:
            ordered.append(job)
            placed.add(id(job.run))
            waiting.remove(job)
    return ordered


def list_result_files(run: NotebookRun, run_dir: Path) -> list[str]:
    """Return the files that make a notebook's result, relative to its run folder.

    Its executed notebook, page and results record; for 04_cnn every file of the run's ``models/`` folder;
    for 05_deployment the saved model's JSON, into which it writes its threshold. The model's JSON is thus a
    result of both, and copying 05's after 04's keeps the threshold beside the page that chose it.
    """
    names = [name for name in (run.ipynb, run.html, run.results) if name]
    models = run_dir / MODELS_FOLDER
    if run.notebook == MODEL_SAVING_NOTEBOOK and models.is_dir():
        names += sorted(path.relative_to(run_dir).as_posix() for path in models.iterdir()
                        if path.is_file() and not path.name.startswith("."))
    threshold_file = config.SAVED_MODEL_NAME.with_suffix(".json")
    writes_threshold = run.notebook == THRESHOLD_NOTEBOOK and not run.parameters.get("model_path")
    if writes_threshold and (run_dir / threshold_file).is_file():
        names.append(threshold_file.as_posix())
    return names


def record_result_files(runs: list[NotebookRun], run_dir: Path) -> None:
    """Record the SHA-256 of each successful notebook's result files, once the run has finished writing them."""
    for run in runs:
        if run.status == "ok":
            run.files = {name: compute_sha256(run_dir / name) for name in list_result_files(run, run_dir)
                         if (run_dir / name).is_file()}


def find_sources(reports_root: Path, reuse: str | os.PathLike | None, *, fresh: bool) -> list[Path]:
    """Return the earlier run folders whose results may be reused, in order of preference.

    Parameters
    ----------
    reports_root : Path
    reuse : path-like, optional
        ``--reuse``: a run or sweep folder, as a path or a name under ``reports_root``. By default every
        finished run under ``reports_root``, ``latest`` first, then the newest first.
    fresh : bool
        ``--fresh``: none.

    Raises
    ------
    ParameterError
        When ``reuse`` is given with ``fresh``, or names no finished run folder.
    """
    if fresh:
        if reuse:
            raise ParameterError("--reuse and --fresh contradict each other: --fresh runs every notebook; "
                                 "give one of them.")
        return []
    if reuse:
        folder = Path(reuse).expanduser()
        folder = folder if folder.is_dir() else reports_root / reuse
        if not _read_manifest(folder):
            raise ParameterError(f"--reuse {reuse}: no finished run there (a run folder holds run.json, a sweep "
                                 f"folder sweep.json); give a folder under {reports_root}, e.g. --reuse latest.")
        return [folder.resolve()]
    if not reports_root.is_dir():
        return []
    folders = [path for path in reports_root.iterdir() if path.is_dir() and not path.is_symlink()
               and not path.name.startswith(".")]
    latest = reports_root / "latest"
    preferred = [latest.resolve()] if latest.is_symlink() and latest.resolve().is_dir() else []
    timed = sorted(((_manifest_time(path), path.resolve()) for path in folders), reverse=True)
    return preferred + [path for written, path in timed if written and path not in preferred]


def _manifest_time(folder: Path) -> float:
    """When the folder's manifest was written (0 when it has none)."""
    for name in MANIFEST_NAMES:
        with_manifest = folder / name
        if with_manifest.is_file():
            return with_manifest.stat().st_mtime
    return 0.0


def _read_manifest(folder: Path) -> dict | None:
    """Return the folder's ``run.json`` or ``sweep.json``, or None when it has neither or it cannot be read."""
    for name in MANIFEST_NAMES:
        try:
            return json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
    return None


def index_results(sources: list[Path]) -> ResultIndex:
    """Index the successful notebooks of the ``sources`` by notebook and fingerprint (see :class:`ResultIndex`)."""
    index = ResultIndex(sources=list(sources))
    for source in sources:
        manifest = _read_manifest(source)
        if manifest is None:
            continue
        if "sweep" in manifest:
            entries = [(source, source.name, manifest.get("stability"))]
            entries += [(source / run["folder"], f"{source.name}/{run['folder']}", notebook)
                        for run in manifest.get("runs", []) for notebook in run.get("notebooks", [])]
        else:
            entries = [(source, source.name, notebook) for notebook in manifest.get("notebooks", [])]
        for folder, name, entry in entries:
            if not entry or entry.get("status") != "ok" or not entry.get("fingerprint") or not entry.get("files"):
                continue
            earlier = EarlierResult(folder, name, entry)
            index.by_notebook.setdefault(entry["notebook"], earlier)
            index.by_fingerprint.setdefault((entry["notebook"], entry["fingerprint"]), []).append(earlier)
    return index


def reuse_results(batch: list[Job], index: ResultIndex, *, progress: bool) -> list[Job]:
    """Copy the results of unchanged notebooks from earlier runs; return the jobs that must still be executed.

    Every run of ``batch`` must have its fingerprint (:func:`fingerprint_jobs`). A reused run takes the
    earlier entry's status, headline and files, ``reused_from`` names the run it came from and
    ``reused_seconds`` how long it took where it was executed; its own ``seconds`` are zero. A job is
    executed when no earlier result matches, or when the files of every match changed since their run
    (edited or removed by hand).
    A notebook that reads one which runs again runs again too. Each decision is printed with its reason when
    ``progress`` is true and earlier runs were looked in. The jobs to execute keep ``batch``'s order.
    """
    root = find_batch_root(batch)
    to_execute = []
    for job in order_by_inputs(batch):
        run, refused = job.run, None
        rerun_inputs = [needed.notebook for needed in job.needs if not needed.reused_from]
        # What reads a notebook that runs again runs again too: the new result may differ, whatever made it.
        candidates = [] if rerun_inputs else index.by_fingerprint.get((run.notebook, run.fingerprint), [])
        if rerun_inputs and index.sources:
            refused = f"what it reads runs again ({', '.join(rerun_inputs)})"
        for earlier in candidates:
            refused = _copy_result(earlier, job.run_dir)
            if refused is None:
                _take_entry(run, earlier)
                break
        if run.reused_from:
            if progress:
                print(f"reusing {label_run(run, root)} from {run.reused_from} (unchanged)", flush=True)
            continue
        to_execute.append(job)
        reason = refused or explain_change(run, index)
        if progress and reason:
            print(f"running {label_run(run, root)}: {reason}", flush=True)
    executing = {id(job) for job in to_execute}
    return [job for job in batch if id(job) in executing]


def find_batch_root(batch: list[Job]) -> Path:
    """Return the folder that every job's folder lies in: the run's, or the sweep's."""
    return Path(os.path.commonpath([str(job.run_dir) for job in batch]))


def _copy_result(earlier: EarlierResult, run_dir: Path) -> str | None:
    """Copy an earlier result's files into ``run_dir`` after checking them; return why not, or None when done.

    Every file is checked against the SHA-256 recorded when its run ended before any is copied, and each is
    copied under a temporary name and renamed into place.
    """
    files = earlier.entry["files"]
    changed = [name for name, digest in files.items()
               if not (earlier.folder / name).is_file() or compute_sha256(earlier.folder / name) != digest]
    if changed:
        return (f"its result in {earlier.run} changed since that run ({', '.join(changed)}), so it is not "
                "reused")
    for name in files:
        with open_atomic(run_dir / name) as target, open(earlier.folder / name, "rb") as source:
            shutil.copyfileobj(source, target)
    return None


def _take_entry(run: NotebookRun, earlier: EarlierResult) -> None:
    """Fill a reused run from the earlier entry it was copied from."""
    for name in ("status", "headline", "dataset_sha256", "ipynb", "html", "results", "files", "worker",
                 "kernel_starts"):
        setattr(run, name, earlier.entry.get(name))
    run.seconds = 0.0
    run.reused_from = earlier.run
    # An entry that was itself reused keeps the seconds of the run that executed it.
    run.reused_seconds = float(earlier.entry.get("reused_seconds") or earlier.entry.get("seconds") or 0.0)


def explain_change(run: NotebookRun, index: ResultIndex) -> str:
    """Say why a notebook runs again: what differs from its latest earlier result, part by part.

    Returns an empty string when no earlier run was looked in (``--fresh``, or no reports yet).
    """
    if not index.sources:
        return ""
    earlier = index.by_notebook.get(run.notebook)
    if earlier is None:
        return "no earlier run holds a result of it that can be reused"
    before = earlier.entry.get("fingerprint_parts") or {}
    reasons = []
    for part in PARTS:
        old, new = before.get(part), run.fingerprint_parts.get(part)
        if old == new:
            continue
        if part == "parameters":
            reasons.append(_describe_parameter_change(run, earlier.entry))
        elif part == "libraries":
            changed = [f"{name} {(old or {}).get(name)} -> {version}" for name, version in (new or {}).items()
                       if (old or {}).get(name) != version]
            reasons.append("libraries changed (" + ", ".join(changed) + ")")
        elif part == "inputs":
            changed = sorted(name for name in set(old or {}) | set(new or {}) if (old or {}).get(name) != new.get(name))
            reasons.append("what it reads changed (" + ", ".join(changed) + ")")
        else:
            reasons.append({"notebook": "its notebook changed", "code": "digitrec's code changed",
                            "data": "its data changed"}[part])
    return "; ".join(reasons) + f" since {earlier.run}"


def _describe_parameter_change(run: NotebookRun, entry: dict) -> str:
    """Name the parameters whose values differ from the earlier entry's, with both values."""
    try:
        old = fill_defaults(run.notebook, entry.get("parameters") or {})
    except ParameterError:
        old = dict(entry.get("parameters") or {})
    new = fill_defaults(run.notebook, run.parameters)
    changed = [f"{key} {old.get(key)!r} -> {new.get(key)!r}" for key in sorted(set(old) | set(new))
               if old.get(key) != new.get(key)]
    return "parameters changed (" + (", ".join(changed) or "their defaults") + ")"


def skip_unchanged(batch: list[Job], sources: list[Path], *, hash_data, root: Path, progress: bool) -> list[Job]:
    """Fingerprint every job, copy the unchanged ones' results from ``sources``; return the jobs to execute.

    Parameters
    ----------
    batch : list of Job
    sources : list of Path
        From :func:`find_sources`; empty with ``--fresh``, when every job is returned (fingerprinted all the
        same, so that a later run can reuse them).
    hash_data : callable
        :func:`fingerprint_data`, called where the notebooks read their data (the executor's).
    root : Path
        The run folder, or the sweep's.
    progress : bool
        Print each decision and its reason.
    """
    filled = {label_run(job.run, root): fill_defaults(job.run.notebook, job.run.parameters) for job in batch}
    fingerprint_jobs(batch, filled, hash_data(filled), root)
    return reuse_results(batch, index_results(sources), progress=progress)
