"""Seed sweeps without a cluster: reading --seeds, rejecting what a sweep cannot do, the stability figures,
and a local sweep whose second seed fails."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from fake_notebooks import write_notebook

from digitrec_utils import config
from digitrec_utils.cli import EXIT_FAILED, EXIT_REJECTED, main
from digitrec_utils.engines import stability
from digitrec_utils.evaluation.evaluation import evaluate_model
from digitrec_utils.exceptions import ParameterError
from digitrec_utils.reporting.results import build_model_record, build_results, validate_results
from digitrec_utils.running.sweep import parse_seeds


@pytest.mark.parametrize("text, seeds", [("1,2,3", [1, 2, 3]), ("1-5", [1, 2, 3, 4, 5]), ("7, 3", [7, 3]),
                                         ("1-3,10", [1, 2, 3, 10]), ("0-1", [0, 1])])
def test_seeds_are_read_as_lists_and_ranges(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text, message", [("1", "at least two seeds"), ("1,1", "given twice"),
                                           ("1-3,2", "given twice"), ("a-b", "not a seed or a range"),
                                           ("5-1", "not a seed or a range"), ("1,-2", "not a seed"),
                                           ("1-200", "at most 100")])
def test_bad_seeds_are_refused_with_the_fix(text, message):
    with pytest.raises(ParameterError, match=message):
        parse_seeds(text)


@pytest.mark.parametrize("arguments, message", [
    (["--seeds", "1-2", "--set", "seed=3"], "--seeds sets each run's seed"),
    (["--seeds", "1-2", "--set", "classical.split_seed=3"], "--seeds sets each run's seed"),
    (["--fixed-split"], "use it with --seeds"),
    (["--only", "stability"], "run a sweep with --seeds"),
    (["--seeds", "1-2", "--only", "eda"], "needs at least one of the model notebooks"),
    (["--seeds", "1-2", "--cluster", "local:0"], "at least 1"),
    (["--cluster", "somewhere:8786"], "scheduler's address such as tls://HOST:8786"),
    (["--seeds", "1-2", "--set", "stability.sweep_dir=x"], "set by digitrec run itself"),
])
def test_what_a_sweep_cannot_do_is_refused_before_anything_runs(tmp_path, capsys, arguments, message):
    out = tmp_path / "out"
    assert main(["run", *arguments, "--out", str(out)]) == EXIT_REJECTED
    assert message in capsys.readouterr().err
    assert not out.exists()  # Nothing was created, let alone run.


def test_a_fixed_split_pins_split_seed_and_a_varied_one_leaves_it(monkeypatch):
    from digitrec_utils.running import sweep

    seen = []
    monkeypatch.setattr(sweep, "open_executor", lambda *args, **kwargs: pytest.fail("nothing may run"))
    real_prepare = sweep.prepare_run

    def _recording_prepare(*args, **kwargs):
        seen.append(kwargs.get("overrides"))
        return real_prepare(*args, **kwargs)

    monkeypatch.setattr(sweep, "prepare_run", _recording_prepare)
    monkeypatch.setattr(sweep, "check_deployment_model", lambda *args, **kwargs: (_ for _ in ()).throw(
        ParameterError("stop here")))
    with pytest.raises(ParameterError, match="stop here"):
        sweep.run_sweep(seeds=[3, 4], fixed_split=True, only=["classical", "cnn"])
    assert seen[1] == ["seed=3", "classical.split_seed=42", "cnn.split_seed=42"]  # The sample profile's seed.
    assert seen[2] == ["seed=4", "classical.split_seed=42", "cnn.split_seed=42"]
    seen.clear()
    with pytest.raises(ParameterError, match="stop here"):
        sweep.run_sweep(seeds=[3, 4], only=["classical"])
    assert seen[1:] == [["seed=3"], ["seed=4"]]


def _record(seed: int, accuracies: dict[str, tuple[float, float]], *, split_seed: int = -1, n_images: int = 400):
    """A classical record of ``seed`` whose models reach the given (validation, test) accuracies.

    Each model is wrong on the first images of the test split, so that a more accurate model is right on every
    image a less accurate one gets right: the paired test then sees a one-sided difference.
    """
    truth = np.arange(n_images) % 10
    models = []
    for name, (val_accuracy, test_accuracy) in accuracies.items():
        predicted = truth.copy()
        wrong = int(round((1 - test_accuracy) * n_images))
        predicted[:wrong] = (truth[:wrong] + 1) % 10
        models.append(build_model_record(name, "classical", name, evaluate_model(truth, predicted),
                                         val_accuracy=val_accuracy, predict_ms_per_1k=1.0, train_seconds=1.0))
    best = max(accuracies, key=lambda name: accuracies[name][0])
    return build_results("02_classical_baselines", {"name": "mnist-sample", "sha256": "0" * 64},
                         {"seed": seed, "split_seed": split_seed}, seed=seed, models=models, selected_model=best,
                         test_labels=truth)


def test_the_spread_choices_and_lead_across_seeds_are_computed_from_the_records():
    sweep = {1: {"02_classical_baselines": _record(1, {"svm": (0.95, 0.95), "knn": (0.90, 0.90)})},
             2: {"02_classical_baselines": _record(2, {"svm": (0.94, 0.93), "knn": (0.92, 0.89)})},
             3: {"02_classical_baselines": _record(3, {"svm": (0.90, 0.88), "knn": (0.93, 0.91)})}}
    seed_table = stability.gather_seed_table(sweep)
    assert seed_table.groupby("seed")["recommended"].sum().tolist() == [1, 1, 1]  # One per seed.
    summary = stability.summarize_stability(seed_table).set_index("model")
    assert summary.loc["svm", "recommended"] == 2 and summary.loc["knn", "recommended"] == 1
    assert summary.loc["svm", "chosen"] == 2  # The notebook's own choice, on validation, as the comparison's.
    np.testing.assert_allclose(summary.loc["svm", "mean"], np.mean([0.95, 0.93, 0.88]))
    np.testing.assert_allclose(summary.loc["svm", "std"], np.std([0.95, 0.93, 0.88], ddof=1))
    assert (summary.loc["svm", "min"], summary.loc["svm", "max"]) == (0.88, 0.95)
    assert 0.01 < summary.loc["svm", "single-run ±"] < 0.05  # Wilson's half-width for 400 images.

    ordered = stability.summarize_stability(seed_table)
    recommended, runner_up, lead = stability.compare_lead_by_seed(sweep, ordered)
    assert (recommended, runner_up) == ("02_classical_baselines/svm", "02_classical_baselines/knn")
    assert lead["difference"].round(4).tolist() == [0.05, 0.04, -0.03]
    assert lead["only runner-up right"].tolist() == [0, 0, 12]
    assert lead["p-value"].iloc[0] < 0.05 and lead["reading"].iloc[2].startswith("trails")
    text = stability.describe_stability(ordered, recommended, runner_up, lead, fixed_split=False)
    assert "recommended svm in 2 of 3" in text and "ahead on test in 2 of 3 seeds" in text
    assert "does not hold in every seed" in text

    section = stability.summarize_for_record(ordered, recommended, runner_up, lead, seeds=list(sweep),
                                             fixed_split=False)
    assert section["lead_holds"] is False and section["models"][0]["single_run_half_width"] > 0
    record = build_results("07_stability", {"name": "mnist-sample", "sha256": "0" * 64}, {}, seed=1,
                           stability=section)
    json.dumps(record, allow_nan=False)  # Plain JSON, no NaN.
    validate_results(record)


def test_a_lead_that_holds_in_every_seed_is_said_to_hold_and_the_split_mode_is_read():
    sweep = {seed: {"02_classical_baselines": _record(seed, {"svm": (0.95, 0.96), "knn": (0.90, 0.90)},
                                                      split_seed=42)} for seed in (1, 2)}
    summary = stability.summarize_stability(stability.gather_seed_table(sweep))
    recommended, runner_up, lead = stability.compare_lead_by_seed(sweep, summary)
    assert stability.read_split_mode(sweep) is True
    text = stability.describe_stability(summary, recommended, runner_up, lead, fixed_split=True)
    assert "the split was fixed" in text and "The lead holds in every seed." in text
    varied = {seed: {"02_classical_baselines": _record(seed, {"svm": (0.9, 0.9)})} for seed in (1, 2)}
    assert stability.read_split_mode(varied) is False


def test_a_local_sweep_with_a_failing_seed_keeps_latest_and_still_compares_the_others(tmp_path, capsys, monkeypatch):
    notebooks, out = tmp_path / "notebooks", tmp_path / "out"
    write_notebook(notebooks, "02_classical_baselines",
                   "if seed == 2:\n    raise ValueError('seed 2 fails on purpose')\n"
                   "from digitrec_utils.reporting.results import build_results, save_results\n"
                   "save_results(build_results('02_classical_baselines', {'name': dataset, 'sha256': '0' * 64}, "
                   "{'seed': seed}, seed=seed, headline='fake'), output_dir)")
    shutil.copy(config.NOTEBOOKS_DIR / "07_stability.ipynb", notebooks)
    monkeypatch.setattr(config, "NOTEBOOKS_DIR", notebooks)
    (out / "earlier").mkdir(parents=True)
    (out / "latest").symlink_to("earlier", target_is_directory=True)
    profile = tmp_path / "empty.yaml"
    profile.write_text("{}\n")
    status = main(["run", str(profile), "--seeds", "1,2", "--out", str(out), "--name", "two", "--quiet"])
    assert status == EXIT_FAILED
    assert "seed2: 02_classical_baselines: FAILED" in capsys.readouterr().err
    sweep_dir = out / "two-seeds"
    manifest = json.loads((sweep_dir / "sweep.json").read_text())
    assert manifest["status"] == "failed" and manifest["seeds"] == [1, 2] and manifest["split"] == "varied"
    assert [run["status"] for run in manifest["runs"]] == ["ok", "failed"]
    assert manifest["stability"]["status"] == "ok"  # It compares the seeds that have results.
    assert json.loads((sweep_dir / "seed1" / "run.json").read_text())["status"] == "ok"
    assert (sweep_dir / "stability.html").is_file() and (sweep_dir / "stability.json").is_file()
    index = (sweep_dir / "index.html").read_text()
    assert 'href="seed1/index.html"' in index and 'href="stability.html"' in index
    assert "1 of 2 seeds had a failed notebook" in index and str(tmp_path) not in index
    times = re.findall(r'<td class="number">([^<]*)</td>', index[index.index("Notebook time"):])
    assert len(times) >= 2 and all(re.fullmatch(r"\d+\.\d s|\d+ min \d+ s|–", time) for time in times), times
    assert (out / "latest").resolve() == (out / "earlier").resolve()  # Not every seed succeeded.


class _FakeExecutor:
    """An executor that starts no notebook: ``execute`` hands each batch of jobs to ``on_execute``."""

    def __init__(self, on_execute):
        self.on_execute = on_execute

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return None

    def check_datasets(self, parameters):
        return {}

    def fingerprint_data(self, notebooks):
        return {label: "no data" for label in notebooks}

    def describe(self):
        return "nowhere"

    def execute(self, batch):
        self.on_execute(batch)
        return None


def test_a_sweep_builds_one_job_per_seed_and_notebook_with_its_inputs_and_the_report_last(tmp_path, monkeypatch):
    from digitrec_utils.running import sweep

    batches = []
    monkeypatch.setattr(sweep, "open_executor", lambda *args, **kwargs: _FakeExecutor(batches.append))
    outcome = sweep.run_sweep(seeds=[5, 6], only=["classical", "cnn", "deployment", "comparison"],
                              overrides=["comparison.tolerance=0.01"], out_dir=tmp_path, run_name="graph")
    jobs = {(job.run_dir.name, job.run.notebook): job for job in batches[0]}
    assert list(jobs)[-1] == ("graph-seeds", "07_stability")  # Last, in the sweep folder.
    assert len(jobs) == 9
    for seed in (5, 6):
        folder = f"seed{seed}"
        assert jobs[folder, "04_cnn"].run.parameters["seed"] == seed
        assert jobs[folder, "04_cnn"].run.parameters["output_dir"] == str(tmp_path / "graph-seeds" / folder)
        assert [run.notebook for run in jobs[folder, "05_deployment"].needs] == ["04_cnn"]
        assert [run.notebook for run in jobs[folder, "06_model_comparison"].needs] == [
            "02_classical_baselines", "04_cnn", "05_deployment"]
    report = jobs["graph-seeds", "07_stability"]
    assert sorted((run.parameters["seed"], run.notebook) for run in report.needs) == [
        (5, "02_classical_baselines"), (5, "04_cnn"), (6, "02_classical_baselines"), (6, "04_cnn")]
    assert report.reads == ("results",)  # The records only, not the models.
    assert report.run.parameters["tolerance"] == 0.01  # The comparison's, so that each seed's choice is 06's.
    assert report.run.parameters["sweep_dir"] == str(tmp_path / "graph-seeds")
    assert outcome.status == "failed"  # Nothing ran, so nothing succeeded, and latest stays away.
    assert not (tmp_path / "latest").exists()
    assert json.loads((tmp_path / "graph-seeds" / "sweep.json").read_text())["executed_on"] == "nowhere"


def test_a_sweep_without_the_comparison_names_each_seeds_recommended_model_as_the_stability_report_counts_it(
        tmp_path, monkeypatch):
    from digitrec_utils.reporting.results import save_results
    from digitrec_utils.running import sweep

    accuracies = {1: {"svm": (0.95, 0.94), "knn": (0.90, 0.92)}, 2: {"svm": (0.91, 0.93), "knn": (0.93, 0.95)}}

    def _write_classical_records(batch):  # The classical notebooks write their records, as the real ones do.
        for job in batch:
            if job.run.notebook == "02_classical_baselines":
                seed = job.run.parameters["seed"]
                save_results(_record(seed, accuracies[seed]), job.run.parameters["output_dir"])

    monkeypatch.setattr(sweep, "open_executor", lambda *args, **kwargs: _FakeExecutor(_write_classical_records))
    outcome = sweep.run_sweep(seeds=[1, 2], only=["classical"], out_dir=tmp_path, run_name="plain")
    recommended = [(run["seed"], run["recommended"]["name"], run["recommended"]["test_accuracy"])
                   for run in outcome.manifest["runs"]]
    assert recommended == [(1, "svm", 0.94), (2, "knn", 0.95)]  # Best on validation, not on test.
    index = (tmp_path / "plain-seeds" / "index.html").read_text()
    rows = index[index.index("<tbody>", index.index("<h2>Seeds</h2>")):]
    assert "svm (classical)" in rows and "knn (classical)" in rows and "0.9500" in rows
