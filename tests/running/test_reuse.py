"""Runs that remember: a notebook whose notebook, parameters, code, libraries, data and inputs are unchanged is
copied from an earlier run, and every kind of change makes it, and what reads it, run again."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import nbformat
import numpy as np
import pytest
from fake_notebooks import SAVE_RECORD, write_notebook

from digitrec_utils import config
from digitrec_utils.exceptions import ParameterError
from digitrec_utils.running import reuse
from digitrec_utils.running.outcomes import NotebookRun
from digitrec_utils.running.runner import plan_jobs, prepare_run, run_suite

# 01 reads the CSV pair; 04 saves a model file as 04_cnn does; 05 reads 04's model and writes its threshold
# into the model's JSON, as 05_deployment does.
DATA_PARAMETERS = ('dataset: str = "csv"  # Dataset.\nimages_csv: str = ""  # Images.\nlabels_csv: str = ""  # '
                   'Labels.\nseed: int = 42  # Seed.\noutput_dir: str = ""  # Set by digitrec run.')
SAVE_MODEL = ('import pathlib\nmodels = pathlib.Path(output_dir) / "models"\nmodels.mkdir(exist_ok=True)\n'
              '(models / "cnn_selected.keras").write_text("weights {version}")\n'
              '(models / "cnn_selected.json").write_text("{{}}")\n')
WRITE_THRESHOLD = ('import json, pathlib\nmodel = pathlib.Path(output_dir) / "models" / "cnn_selected.json"\n'
                   'assert model.with_suffix(".keras").read_text().startswith("weights")\n'
                   'model.write_text(json.dumps({"threshold": seed}))\n')


def _write_data_notebook(folder: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(DATA_PARAMETERS, metadata={"tags": ["parameters"]}),
                      nbformat.v4.new_code_cell(SAVE_RECORD.format(stem="01_eda"))]
    nbformat.write(notebook, str(folder / "01_eda.ipynb"))


def _write_model_notebook(folder: Path, version: int) -> None:
    write_notebook(folder, "04_cnn", SAVE_MODEL.format(version=version) + SAVE_RECORD.format(stem="04_cnn"))


@pytest.fixture
def suite(tmp_path, monkeypatch):
    """Three notebooks of the tests, a CSV dataset, a package of one file and a profile."""
    notebooks, package = tmp_path / "notebooks", tmp_path / "package"
    notebooks.mkdir()
    _write_data_notebook(notebooks)
    _write_model_notebook(notebooks, version=1)
    write_notebook(notebooks, "05_deployment", WRITE_THRESHOLD + SAVE_RECORD.format(stem="05_deployment"))
    monkeypatch.setattr(config, "NOTEBOOKS_DIR", notebooks)
    package.mkdir()
    (package / "module.py").write_text("VALUE = 1\n")
    monkeypatch.setattr(reuse, "PACKAGE_DIR", package)
    images, labels = tmp_path / "images.csv", tmp_path / "labels.csv"
    rng = np.random.default_rng(0)
    np.savetxt(images, rng.integers(0, 256, size=(20, 784)), fmt="%d", delimiter=",")
    np.savetxt(labels, np.arange(20) % 10, fmt="%d")
    profile = tmp_path / "profile.yaml"
    profile.write_text(f"eda:\n  images_csv: {images}\n  labels_csv: {labels}\n")
    return Suite(profile, notebooks, package, images, tmp_path / "out")


class Suite:
    """Runs the notebooks of :func:`suite` for real (``run``), or only plans a run (``plan``)."""

    def __init__(self, profile, notebooks, package, images, out):
        self.profile, self.notebooks, self.package, self.images, self.out = profile, notebooks, package, images, out
        self.count = 0

    def run(self, *overrides, progress=False, **options):
        """Run the suite into ``run<k>``; return the outcome and, by notebook, the run it was reused from."""
        options.setdefault("jobs", 2)
        outcome = run_suite(self.profile, overrides=list(overrides), out_dir=self.out, run_name=f"run{self.count}",
                            progress=progress, **options)
        self.count += 1
        return outcome, {run.notebook: run.reused_from for run in outcome.notebooks}

    def plan(self, *overrides, reuse_from=None) -> list[str]:
        """Return the notebooks a run would execute now, without executing any."""
        _, _, parameters = prepare_run(self.profile, overrides=list(overrides))
        run_dir = Path(tempfile.mkdtemp(dir=self.out.parent))
        _, batch = plan_jobs(parameters, run_dir)
        sources = reuse.find_sources(self.out, reuse_from, fresh=False)
        to_execute = reuse.skip_unchanged(batch, sources, hash_data=reuse.fingerprint_data, root=run_dir,
                                          progress=False)
        return [job.run.notebook for job in to_execute]


def _executed(reused: dict[str, str | None]) -> list[str]:
    return [notebook for notebook, source in reused.items() if source is None]


def test_unchanged_notebooks_are_copied_and_each_kind_of_change_runs_what_it_touches(suite, capsys):
    first, reused = suite.run()
    assert first.ok and _executed(reused) == ["01_eda", "04_cnn", "05_deployment"]

    second, reused = suite.run()
    assert second.ok and reused == {"01_eda": "run0", "04_cnn": "run0", "05_deployment": "run0"}
    for name in ("04_cnn.html", "results/05_deployment.json", "models/cnn_selected.keras",
                 "models/cnn_selected.json"):  # The same bytes, 05's threshold in the model's JSON included.
        assert (second.run_dir / name).read_bytes() == (first.run_dir / name).read_bytes(), name
    index = (second.run_dir / "index.html").read_text()
    assert index.count("status status-reused") == 3 and "from <code>run0</code>" in index
    assert (suite.out / "latest").resolve() == second.run_dir.resolve()

    # A parameter of 05 runs 05 alone, and says why; the model's JSON gets the new threshold. On a cluster, 05's
    # task reads the model that 04 did not make in this run, sent from the run folder.
    capsys.readouterr()
    third, reused = suite.run("deployment.seed=7", progress=True, cluster="local:1")
    printed = capsys.readouterr().out
    assert _executed(reused) == ["05_deployment"]
    assert "reusing 01_eda from run1 (unchanged)" in printed
    assert "running 05_deployment: parameters changed (seed 42 -> 7) since run1" in printed
    assert json.loads((third.run_dir / "models" / "cnn_selected.json").read_text()) == {"threshold": 7}
    # Copied from a copy, 01 still says how long it took where it was executed.
    assert third.notebooks[0].reused_seconds == first.notebooks[0].seconds > 0

    # Each kind of change, planned against these runs: what changed runs again, and what reads it.
    assert suite.plan() == []
    assert suite.plan("deployment.seed=8") == ["05_deployment"]
    assert suite.plan("seed=8") == ["01_eda", "04_cnn", "05_deployment"]
    assert suite.plan(reuse_from="run2") == ["05_deployment"]  # run2 has 05 with seed 7 only.
    _write_model_notebook(suite.notebooks, version=2)  # 04's notebook changed: 05 reads its model.
    assert suite.plan() == ["04_cnn", "05_deployment"]
    _write_model_notebook(suite.notebooks, version=1)
    (suite.package / "module.py").write_text("VALUE = 2\n")  # The package's code changed: everything.
    assert suite.plan() == ["01_eda", "04_cnn", "05_deployment"]
    (suite.package / "module.py").write_text("VALUE = 1\n")
    original = suite.images.read_bytes()  # One pixel of 01's data changed: 01 alone reads that data.
    first_value, rest = original.split(b",", 1)
    suite.images.write_bytes(str((int(first_value) + 1) % 256).encode() + b"," + rest)
    assert suite.plan() == ["01_eda"]
    suite.images.write_bytes(original)
    assert suite.plan() == []

    # Someone edits the saved model of the latest run: its 04 is no longer what that run made, so 04 runs,
    # and 05, which reads it; run2's 04 is not looked at with --reuse.
    (third.run_dir / "models" / "cnn_selected.keras").write_text("edited")
    assert suite.plan(reuse_from=str(third.run_dir)) == ["04_cnn", "05_deployment"]

    # --fresh executes everything.
    _, reused = suite.run(fresh=True)
    assert _executed(reused) == ["01_eda", "04_cnn", "05_deployment"]


def test_a_notebook_that_failed_is_never_reused(suite, tmp_path):
    switch = tmp_path / "fail"
    switch.write_text("yes")
    # The notebook fails while the switch exists; its fingerprint is the same either way.
    write_notebook(suite.notebooks, "05_deployment", f"import pathlib\nif pathlib.Path({str(switch)!r}).exists():\n"
                                                     "    raise ValueError('failing on purpose')\n"
                                                     + SAVE_RECORD.format(stem="05_deployment"))
    failed, _ = suite.run()
    assert not failed.ok and not (suite.out / "latest").exists()
    switch.unlink()
    second, reused = suite.run()
    # The notebooks that succeeded in the failed run are reused; the failed one runs.
    assert second.ok and reused == {"01_eda": "run0", "04_cnn": "run0", "05_deployment": None}


def test_bad_reuse_arguments_are_rejected_before_anything_runs(tmp_path):
    with pytest.raises(ParameterError, match="--reuse no-such-run: no finished run there"):
        reuse.find_sources(tmp_path, "no-such-run", fresh=False)
    with pytest.raises(ParameterError, match="contradict"):
        reuse.find_sources(tmp_path, "latest", fresh=True)
    assert reuse.find_sources(tmp_path / "none-yet", None, fresh=False) == []


def test_a_notebooks_fingerprint_ignores_its_outputs_but_not_its_code(tmp_path):
    path = write_notebook(tmp_path, "01_eda", "print('a')")
    before = reuse.fingerprint_notebook_source(path)
    notebook = nbformat.read(str(path), as_version=4)
    notebook.cells[-1].outputs = [nbformat.v4.new_output("stream", text="a\n")]
    notebook.cells[-1].execution_count = 3
    nbformat.write(notebook, str(path))
    assert reuse.fingerprint_notebook_source(path) == before
    notebook.cells[-1].source = "print('b')"
    nbformat.write(notebook, str(path))
    assert reuse.fingerprint_notebook_source(path) != before


def test_the_reason_names_each_part_that_changed(tmp_path, monkeypatch):
    write_notebook(tmp_path, "01_eda", "print('a')")
    monkeypatch.setattr(config, "NOTEBOOKS_DIR", tmp_path)
    parts = {"notebook": "n", "parameters": "p", "code": "c", "libraries": {"numpy": "2.0"}, "data": "d",
             "inputs": {"04_cnn": "x"}}
    earlier = reuse.EarlierResult(tmp_path, "before", {"notebook": "01_eda", "parameters": {"seed": 1},
                                                       "fingerprint_parts": parts})
    index = reuse.ResultIndex(sources=[tmp_path], by_notebook={"01_eda": earlier})
    run = NotebookRun("01_eda", {"seed": 2, "output_dir": "/elsewhere"})
    run.fingerprint_parts = {**parts, "parameters": "q", "libraries": {"numpy": "2.1"}, "data": "e",
                             "inputs": {"04_cnn": "y"}}
    reason = reuse.explain_change(run, index)
    assert reason == ("parameters changed (seed 1 -> 2); libraries changed (numpy 2.0 -> 2.1); its data changed; "
                      "what it reads changed (04_cnn) since before")
    assert reuse.explain_change(NotebookRun("04_cnn", {}), index) == (
        "no earlier run holds a result of it that can be reused")
    assert reuse.explain_change(run, reuse.ResultIndex()) == ""
