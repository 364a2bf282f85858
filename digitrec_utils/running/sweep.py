"""Seed sweeps: the suite once per seed, then the stability report over the seeds, all in one folder.

``digitrec run --seeds 1-5`` fills ``<reports>/<run name>-seeds/``::

    seed1/ ... seed5/     one normal run folder per seed (index.html, run.json, results/, models/, pages)
    stability.html        07_stability's page: accuracy across seeds, choices, the lead per seed
    stability.json        its results record
    stability.ipynb       the executed notebook
    sweep.json            the sweep's manifest: seeds, split, per-seed outcomes, environment
    index.html            the sweep's index, linking every seed's reports and the stability page

By default a seed changes the split and the training together, as a new collection of data and a
retraining would; ``fixed_split`` keeps the profile's split (``split_seed``) and varies the training
only. Every seed's parameters are validated, and the datasets checked, before any notebook starts.
``latest`` moves to the sweep only when every notebook of every seed, and the stability report,
succeeded. Execution is the runner's: local processes, or Dask tasks with ``cluster``.
"""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from digitrec_utils import __version__, config
from digitrec_utils.declarations import MODEL_NOTEBOOKS
from digitrec_utils.exceptions import ParameterError
from digitrec_utils.params import (
    SECTIONS,
    get_default,
    get_notebook_parameters,
    parse_override,
    resolve_parameters,
)
from digitrec_utils.reporting.index_page import create_environment, read_recommendation
from digitrec_utils.reporting.ranking import recommend_from_records
from digitrec_utils.reporting.results import load_model_records
from digitrec_utils.running.outcomes import Job, NotebookRun, OutcomeStatus, RunOutcome
from digitrec_utils.running.preflight import check_deployment_model
from digitrec_utils.running.reuse import find_sources, record_result_files
from digitrec_utils.running.runner import (
    DEFAULT_CELL_TIMEOUT_SECONDS,
    check_jobs,
    check_run_name,
    execute_changed,
    finish_run_folder,
    locate_reports_root,
    make_run_dir,
    name_run,
    open_executor,
    plan_jobs,
    point_latest,
    prepare_run,
    remove_unfinished,
)
from digitrec_utils.running.tracking import check_tracking, log_outcome
from digitrec_utils.utils.environment import collect_environment
from digitrec_utils.utils.files import write_text_atomic
from digitrec_utils.utils.paths import describe_path, hide_machine_paths

# The most seeds one sweep may run; more is almost certainly a typo (1-1000 for 1-10).
MAX_SEEDS = 100
# Parameters that --seeds and --fixed-split set, which --set may not.
SWEEP_KEYS = ("seed", "split_seed")
_RANGE = re.compile(r"^(\d+)-(\d+)$")


def parse_seeds(text: str) -> list[int]:
    """Read ``--seeds``: a comma-separated list of seeds and ranges (``1,2,3``, ``1-5``, ``1-3,10``).

    Raises
    ------
    ParameterError
        For anything else, a repeated seed, fewer than two seeds, or more than :data:`MAX_SEEDS`.

    Examples
    --------
    >>> parse_seeds("1-3,10")
    [1, 2, 3, 10]
    """
    seeds: list[int] = []
    for part in str(text).replace(" ", "").split(","):
        match = _RANGE.match(part)
        if match and int(match.group(1)) <= int(match.group(2)):
            seeds += range(int(match.group(1)), int(match.group(2)) + 1)
        elif part.isdigit():
            seeds.append(int(part))
        else:
            raise ParameterError(f"--seeds {text!r}: {part!r} is not a seed or a range; give whole numbers from 0, "
                                 "as 1,2,3 or 1-5 (or both: 1-3,10).")
    repeated = sorted({seed for seed in seeds if seeds.count(seed) > 1})
    if repeated:
        raise ParameterError(f"--seeds {text!r}: seed(s) {', '.join(map(str, repeated))} given twice; give each once.")
    if len(seeds) < 2:
        raise ParameterError(f"--seeds {text!r}: a sweep needs at least two seeds to compare (e.g. --seeds 1-3); "
                             "for one seed, use --set seed=N.")
    if len(seeds) > MAX_SEEDS:
        raise ParameterError(f"--seeds {text!r}: {len(seeds)} seeds; a sweep runs at most {MAX_SEEDS}.")
    if any(seed > 2**32 - 1 for seed in seeds):
        raise ParameterError(f"--seeds {text!r}: seeds go up to {2**32 - 1}.")
    return seeds


def _check_overrides(overrides) -> None:
    """Reject ``--set seed=...`` (or ``split_seed``) in a sweep: the sweep sets them itself."""
    for text in overrides:
        _, key, _ = parse_override(text)
        if key in SWEEP_KEYS:
            raise ParameterError(f"--set {text}: --seeds sets each run's seed (and --fixed-split its split_seed); "
                                 "drop this --set, or drop --seeds for a single run with that seed.")


@dataclass
class SweepOutcome(OutcomeStatus):
    """Everything a sweep produced.

    Attributes
    ----------
    sweep_dir : Path
    seeds : dict of int to RunOutcome
        One run folder per seed.
    stability : NotebookRun
        The stability report's run.
    manifest : dict
        The content of ``sweep.json``.
    interrupted_by : str or None
    """

    sweep_dir: Path
    seeds: dict[int, RunOutcome] = field(default_factory=dict)
    stability: NotebookRun | None = None
    manifest: dict = field(default_factory=dict)
    interrupted_by: str | None = None

    @property
    def folder(self) -> Path:
        """The folder whose ``index.html`` leads to every page."""
        return self.sweep_dir

    @property
    def notebooks(self) -> list[NotebookRun]:
        """Every notebook run of the sweep: each seed's, then the stability report's."""
        runs = [run for outcome in self.seeds.values() for run in outcome.notebooks]
        return runs + ([self.stability] if self.stability is not None else [])


def run_sweep(
    profile_path: str | Path | None = None,
    *,
    seeds: list[int],
    fixed_split: bool = False,
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
) -> SweepOutcome:
    """Run the chosen notebooks once per seed, then the stability report; see the module's docstring.

    Parameters are those of :func:`digitrec_utils.running.runner.run_suite`, and:

    Parameters
    ----------
    seeds : list of int
        From :func:`parse_seeds`.
    fixed_split : bool, default=False
        Keep the profile's split in every seed (``split_seed`` set to the profile's seed) and vary the
        training only.

    Returns
    -------
    outcome : SweepOutcome

    Raises
    ------
    ParameterError
        Before anything runs: bad parameters in any seed, ``--set seed``, or no model notebook to compare.
    DatasetError, ClusterError
        Before anything runs, as for :func:`digitrec_utils.running.runner.run_suite`.
    """
    check_jobs(jobs)
    check_tracking(track)
    _check_overrides(overrides)
    seeds = list(seeds)
    profile_path, profile, base = prepare_run(profile_path, only=only, overrides=overrides, sweep=True)
    pinned = _pin_split(base) if fixed_split else []
    per_seed = {seed: prepare_run(profile_path, only=only, sweep=True,
                                  overrides=[*overrides, f"seed={seed}", *pinned])[2] for seed in seeds}
    if not any(stem in base for stem in MODEL_NOTEBOOKS):
        raise ParameterError("--only: a sweep compares models across seeds, so it needs at least one of the model "
                             "notebooks (classical, dense, cnn).")
    if not (config.NOTEBOOKS_DIR / f"{config.STABILITY_NOTEBOOK}.ipynb").is_file():
        raise ParameterError(f"no {config.STABILITY_NOTEBOOK}.ipynb in {config.NOTEBOOKS_DIR}: a sweep ends with it.")
    comparison = [stem for stem in ("06_model_comparison",) if (config.NOTEBOOKS_DIR / f"{stem}.ipynb").is_file()]
    resolved = resolve_parameters(profile, [*comparison, config.STABILITY_NOTEBOOK], overrides=list(overrides),
                                  source=str(profile_path))
    stability_values = resolved[config.STABILITY_NOTEBOOK]
    for stem in comparison:  # Each seed's recommendation is made as 06 makes it, with its tolerance.
        if "tolerance" in resolved[stem]:
            stability_values.setdefault("tolerance", resolved[stem]["tolerance"])
    for parameters in per_seed.values():
        check_deployment_model(parameters, cluster=cluster)
    reports_root = locate_reports_root(out_dir)
    if run_name:
        check_run_name(reports_root, f"{run_name}-seeds")
    sources = find_sources(reports_root, reuse, fresh=fresh)
    with open_executor(cluster, jobs=jobs, show_code=show_code, timeout=timeout, progress=progress,
                       tls=tls) as executor:
        executor.check_datasets(base)
        name = run_name or name_run(profile_path, profile, base)
        sweep_dir = make_run_dir(reports_root, f"{name}-seeds")
        started_at, started = datetime.now(UTC), time.perf_counter()
        folders: dict[int, tuple[Path, dict[str, NotebookRun]]] = {}
        batch: list[Job] = []
        for seed, parameters in per_seed.items():
            run_dir = sweep_dir / f"seed{seed}"
            run_dir.mkdir()
            runs, jobs_of_seed = plan_jobs(parameters, run_dir)
            folders[seed] = (run_dir, runs)
            batch += jobs_of_seed
        stability = NotebookRun(config.STABILITY_NOTEBOOK,
                                {**stability_values, "sweep_dir": str(sweep_dir), "output_dir": str(sweep_dir)})
        model_runs = [run for _, runs in folders.values() for stem, run in runs.items()
                      if stem in MODEL_NOTEBOOKS]
        batch.append(Job(stability, sweep_dir, needs=model_runs, reads=("results",)))
        interrupted_by = execute_changed(executor, batch, sources, root=sweep_dir, progress=progress)
        executed_on = executor.describe()
    outcome = SweepOutcome(sweep_dir=sweep_dir, stability=stability, interrupted_by=interrupted_by)
    remove_unfinished(RunOutcome(run_dir=sweep_dir, notebooks=[stability]))
    record_result_files([stability], sweep_dir)
    for seed, (run_dir, runs) in folders.items():
        unfinished = any(run.status in ("interrupted", "not started") for run in runs.values())
        seed_outcome = RunOutcome(run_dir=run_dir, notebooks=list(runs.values()),
                                  interrupted_by=interrupted_by if unfinished else None)
        finish_run_folder(seed_outcome, profile_path, profile, started_at,
                          sum(run.seconds for run in runs.values()), progress=progress)
        outcome.seeds[seed] = seed_outcome
    outcome.manifest = _build_manifest(outcome, profile_path, profile, started_at, time.perf_counter() - started,
                                       fixed_split=fixed_split, executed_on=executed_on)
    write_text_atomic(sweep_dir / "sweep.json", json.dumps(outcome.manifest, indent=1, default=str) + "\n")
    write_text_atomic(sweep_dir / "index.html", _render_sweep_index(outcome.manifest, sweep_dir=sweep_dir))
    if outcome.ok:
        point_latest(reports_root, sweep_dir)
    elif progress:
        print(f"{reports_root / 'latest'} was left where it was: not every notebook of every seed succeeded.",
              file=sys.stderr, flush=True)
    if track is not None:
        log_outcome(outcome, track=track, reports_root=reports_root, progress=progress)
    return outcome


def _pin_split(base: dict[str, dict]) -> list[str]:
    """Return the ``--set section.split_seed=N`` overrides that keep each notebook's split at the profile's seed."""
    pinned = []
    for stem, values in base.items():
        schema = get_notebook_parameters(stem)
        if "split_seed" in schema:
            split_seed = values.get("split_seed", get_default(schema, "split_seed"))
            seed = values.get("seed", get_default(schema, "seed")) if split_seed < 0 else split_seed
            pinned.append(f"{SECTIONS[stem]}.split_seed={seed}")
    return pinned


def _build_manifest(outcome: SweepOutcome, profile_path: Path, profile: dict, started_at, seconds: float, *,
                    fixed_split: bool, executed_on: str) -> dict:
    """Return the sweep's manifest, written to ``sweep.json`` and shown on its index page."""
    tolerance = outcome.stability.parameters.get("tolerance", 0.0) if outcome.stability is not None else 0.0
    return {
        "sweep": outcome.sweep_dir.name,
        "status": outcome.status,
        "interrupted_by": outcome.interrupted_by,
        "seeds": list(outcome.seeds),
        "split": "fixed" if fixed_split else "varied",
        "executed_on": executed_on,
        "profile": str(profile_path),
        "profile_values": profile,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "started": started_at.isoformat(timespec="seconds"),
        "seconds": round(seconds, 2),
        "runs": [{"seed": seed, "folder": run.run_dir.name, "status": run.status,
                  "seconds": run.manifest.get("seconds"),
                  "recommended": _read_recommended(run.run_dir, tolerance=tolerance),
                  "notebooks": [asdict(notebook) for notebook in run.notebooks]}
                 for seed, run in outcome.seeds.items()],
        "stability": asdict(outcome.stability) if outcome.stability is not None else None,
        "environment": collect_environment(),
    }


def _read_recommended(run_dir: Path, *, tolerance: float) -> dict | None:
    """The seed's recommended model: its comparison record's or, where 06 did not run, the one 06 would name.

    The second is what the stability report counts for that seed, so that the index's table and headline agree.
    """
    recommendation = read_recommendation(run_dir)
    if recommendation:
        return recommendation["recommended"]
    return recommend_from_records(load_model_records(run_dir), tolerance=tolerance)


def _render_sweep_index(manifest: dict, *, sweep_dir: str | Path) -> str:
    """Render the sweep's ``index.html``: the stability headline, one row per seed, links to every report.

    Parameters
    ----------
    manifest : dict
        The content of ``sweep.json``.
    sweep_dir : path-like
        The sweep folder, for showing paths relative to it.
    """
    template = create_environment(sweep_dir).get_template("sweep_index.html.j2")
    stability_path = config.locate_record(sweep_dir, config.STABILITY_NOTEBOOK)
    try:
        headline = json.loads(stability_path.read_text(encoding="utf-8")).get("headline")
    except (OSError, ValueError):
        headline = None
    command = " ".join(describe_path(word, sweep_dir) if word.startswith("/") else word
                       for word in str(manifest.get("command", "")).split())
    html = template.render(manifest=manifest, headline=headline, command=command, version=__version__,
                           profile=describe_path(manifest.get("profile"), None))
    return hide_machine_paths(html, sweep_dir)
