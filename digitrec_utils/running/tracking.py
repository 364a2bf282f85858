"""A run's history in MLflow (``digitrec run --track [URI]``): one MLflow run per suite run, a child per notebook.

After the run folder is written, the suite's run is logged to an MLflow tracking store: a local SQLite store in
the reports folder by default (``<reports>/mlflow.db``, its artifacts in ``<reports>/mlartifacts/``), or the
tracking server or store that ``URI`` names. In the experiment ``digitrec``:

- the suite's run (named after the run folder): its status, profile, dataset checksum, git commit and command as
  tags, and the recommended model's test accuracy with its interval as metrics;
- one child per notebook: its parameters, its headline figures as metrics (each model's accuracies, the
  notebook's own figures, the seconds of each step), its status, fingerprint and ``reused_from`` as tags, and its
  page and executed notebook as artifacts; a sweep nests each seed's notebooks under a run for the seed;
- the run's saved CNN (the model ``digitrec predict`` uses) logged with MLflow's Keras flavour and registered as
  ``digitrec`` with the alias ``candidate``; ``digitrec compare``, or a person, promotes a version to
  ``champion``.

MLflow is an optional extra (``pip install -e '.[mlflow]'``), imported only here and only with ``--track``;
without it ``--track`` is refused before anything runs. A store that cannot be written is reported on standard
error, and the run's reports and exit status are kept as they are.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import sys
from pathlib import Path

from digitrec_utils import config
from digitrec_utils.exceptions import ParameterError
from digitrec_utils.params import RESERVED_KEYS
from digitrec_utils.reporting.results import load_results
from digitrec_utils.utils.environment import collect_package_versions

EXPERIMENT = "digitrec"
REGISTERED_MODEL = "digitrec"
CANDIDATE_ALIAS = "candidate"
# The records' sections whose top-level numbers are logged as metrics, prefixed with the section's name.
FIGURE_SECTIONS = ("deployment", "adaptation", "stability")
# Characters MLflow refuses in a metric's or parameter's name.
_UNSAFE = re.compile(r"[^\w\-. /]")
# MLflow's longest parameter value.
PARAMETER_LENGTH = 6000


def check_tracking(track: str | None) -> None:
    """Refuse ``--track`` before anything runs when MLflow is not installed."""
    if track is not None and importlib.util.find_spec("mlflow") is None:
        raise ParameterError("--track logs the run to MLflow, which is not installed; install the extra "
                             "(pip install -e '.[mlflow]'), or run without --track.")


def locate_store(track: str, reports_root: Path) -> str:
    """Return the tracking URI: ``track`` itself, or the SQLite store in the reports folder when it is empty."""
    return track or f"sqlite:///{(reports_root / 'mlflow.db').resolve()}"


def log_outcome(outcome, *, track: str, reports_root: Path, progress: bool) -> str | None:
    """Log a finished run or sweep to MLflow; return the suite's MLflow run id, or None when the store failed.

    Parameters
    ----------
    outcome : RunOutcome or SweepOutcome
        With its ``manifest`` written.
    track : str
        The tracking URI, or "" for the SQLite store in ``reports_root``.
    reports_root : Path
    progress : bool
        Say where the run was logged.
    """
    uri = locate_store(track, reports_root)
    try:
        run_id = _log(outcome, uri=uri, reports_root=reports_root)
    except Exception as error:  # MLflow's and the store's own errors say what went wrong.
        print(f"digitrec: the run was not logged to MLflow at {uri} ({type(error).__name__}: {error}); its reports "
              "are complete all the same.", file=sys.stderr, flush=True)
        return None
    if progress:
        print(f"MLflow: logged as run {run_id} of experiment {EXPERIMENT!r} at {uri}", flush=True)
    return run_id


def _log(outcome, *, uri: str, reports_root: Path) -> str:
    """Log the outcome (see the module's docstring) and return the suite's MLflow run id."""
    import mlflow

    # MLflow's notices (a new store's tables, each registered version) would interleave with the run's lines.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        artifacts = (reports_root / "mlartifacts").resolve().as_uri() if uri.startswith("sqlite:") else None
        mlflow.create_experiment(EXPERIMENT, artifact_location=artifacts)
    mlflow.set_experiment(EXPERIMENT)
    manifest = outcome.manifest
    seeds = getattr(outcome, "seeds", None)
    with mlflow.start_run(run_name=outcome.folder.name) as suite:
        mlflow.set_tags(_describe_manifest(manifest))
        if seeds is None:
            _log_notebooks(outcome.notebooks, outcome.run_dir)
            _log_recommended(outcome.run_dir)
            _register_model(outcome.run_dir)
        else:
            for seed, seed_outcome in seeds.items():
                with mlflow.start_run(run_name=f"seed{seed}", nested=True):
                    mlflow.set_tags({"digitrec.seed": seed, "digitrec.status": seed_outcome.status})
                    _log_notebooks(seed_outcome.notebooks, seed_outcome.run_dir)
                    _log_recommended(seed_outcome.run_dir)
            if outcome.stability is not None:
                _log_notebooks([outcome.stability], outcome.sweep_dir)
        return suite.info.run_id


def _describe_manifest(manifest: dict) -> dict[str, str]:
    """The suite run's tags: what ran, where from, its status and its data."""
    git = manifest.get("environment", {}).get("git", {})
    checksums = sorted({value for value in (manifest.get("dataset_sha256") or {}).values() if value})
    return {"digitrec.folder": manifest.get("run") or manifest.get("sweep", ""),
            "digitrec.status": manifest.get("status", ""), "digitrec.profile": Path(manifest.get("profile", "")).name,
            "digitrec.command": manifest.get("command", "")[:PARAMETER_LENGTH],
            "digitrec.git_commit": str(git.get("commit") or "unknown") + (" (dirty)" if git.get("dirty") else ""),
            "digitrec.dataset_sha256": ", ".join(checksums)}


def _log_notebooks(runs, run_dir: Path) -> None:
    """One nested MLflow run per notebook: parameters, figures, tags and its page and executed notebook."""
    import mlflow

    for run in runs:
        with mlflow.start_run(run_name=run.notebook, nested=True):
            mlflow.set_tags({"digitrec.notebook": run.notebook, "digitrec.status": run.status,
                             "digitrec.fingerprint": run.fingerprint or "",
                             "digitrec.reused_from": run.reused_from or "", "digitrec.headline": run.headline})
            mlflow.log_params({_name(key): str(value)[:PARAMETER_LENGTH] for key, value in run.parameters.items()
                               if key not in RESERVED_KEYS})
            metrics = {"seconds": run.reused_seconds if run.reused_from else run.seconds}
            if run.results and (run_dir / run.results).is_file():
                metrics.update(collect_figures(load_results(run_dir / run.results)))
            mlflow.log_metrics(metrics)
            for name in (run.html, run.ipynb):
                if name and (run_dir / name).is_file():
                    mlflow.log_artifact(str(run_dir / name))


def collect_figures(record: dict) -> dict[str, float]:
    """Return a results record's headline figures as MLflow metrics.

    Each model's test and validation accuracy, the 95% interval of its test accuracy, its macro F1 and training
    seconds (``<model>.test_accuracy``...); the selected and recommended models' test accuracy; the numbers at the
    top of the notebook's own section (``deployment.clean_accuracy``...); the seconds of each step
    (``seconds.<step>``).
    """
    figures: dict[str, float] = {}
    for model in record.get("models", []):
        for key in ("test_accuracy", "val_accuracy", "macro_f1", "train_seconds"):
            if _is_number(model.get(key)):
                figures[f"{model['name']}.{key}"] = float(model[key])
        low, high = (model.get("test_accuracy_ci95") or [None, None])[:2]
        if _is_number(low) and _is_number(high):
            figures[f"{model['name']}.test_accuracy_ci95_low"] = float(low)
            figures[f"{model['name']}.test_accuracy_ci95_high"] = float(high)
        if model["name"] == record.get("selected_model") and _is_number(model.get("test_accuracy")):
            figures["selected.test_accuracy"] = float(model["test_accuracy"])
    recommended = (record.get("recommendation") or {}).get("recommended") or {}
    if _is_number(recommended.get("test_accuracy")):
        figures["recommended.test_accuracy"] = float(recommended["test_accuracy"])
    for section in FIGURE_SECTIONS:
        for key, value in (record.get(section) or {}).items():
            if _is_number(value):
                figures[f"{section}.{key}"] = float(value)
    for step, seconds in (record.get("timings") or {}).items():
        if _is_number(seconds):
            figures[f"seconds.{_name(step)}"] = float(seconds)
    return {_name(key): value for key, value in figures.items()}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _name(text: str) -> str:
    """A metric's or parameter's name as MLflow accepts it (letters, digits, ``_-. /``)."""
    return _UNSAFE.sub("_", str(text))


def _log_recommended(run_dir: Path) -> None:
    """The recommended model's test accuracy and interval on the run it belongs to, where 06 named one."""
    import mlflow

    from digitrec_utils.reporting.index_page import read_recommendation

    recommendation = read_recommendation(run_dir)
    if not recommendation:
        return
    best = recommendation["recommended"]
    mlflow.set_tags({"digitrec.recommended": f"{best['name']} ({best['notebook']})"})
    low, high = best["test_accuracy_ci95"]
    mlflow.log_metrics({"recommended.test_accuracy": best["test_accuracy"],
                        "recommended.test_accuracy_ci95_low": low, "recommended.test_accuracy_ci95_high": high})


def _register_model(run_dir: Path) -> None:
    """Log the run's saved CNN with MLflow's Keras flavour, register it and point ``candidate`` at the version."""
    path = run_dir / config.SAVED_MODEL_NAME
    if not path.is_file():
        return
    import mlflow
    import numpy as np
    from mlflow.models import infer_signature

    from digitrec_utils.models.backend import keras

    model = keras.saving.load_model(path, compile=False)
    example = np.zeros((1, *model.input_shape[1:]), dtype="float32")
    signature = infer_signature(example, np.asarray(model.predict(example, verbose=0)))
    # Named here, MLflow does not infer the requirements by loading the model in another Python (20 s).
    installed = collect_package_versions()
    requirements = [f"{name}=={installed[name]}" for name in ("keras", "tensorflow", "numpy") if installed[name]]
    logged = mlflow.keras.log_model(model, name="model", signature=signature, pip_requirements=requirements,
                                    registered_model_name=REGISTERED_MODEL)
    mlflow.log_artifact(str(path.with_suffix(".json")), artifact_path="model_description")
    client = mlflow.MlflowClient()
    version = logged.registered_model_version
    client.set_registered_model_alias(REGISTERED_MODEL, CANDIDATE_ALIAS, str(version))
    client.set_model_version_tag(REGISTERED_MODEL, str(version), "digitrec.folder", run_dir.name)
