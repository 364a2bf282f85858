"""digitrec run --cluster on a distributed.LocalCluster (2 worker processes, 1 thread each): a two-seed sweep
that matches a local run, a worker killed mid-notebook, a scheduler nobody listens on, another version."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from fake_notebooks import write_notebook, write_sleeping, write_succeeding

from digitrec_utils import config
from digitrec_utils.cli import EXIT_FAILED, EXIT_OK, EXIT_REJECTED, main
from digitrec_utils.reporting.results import load_results
from digitrec_utils.running import cluster

QUICK_PROFILE = Path(__file__).parents[1] / "fixtures" / "quick-profile.yaml"
# A small notebook set: classical models (compared exactly with a local run), a CNN (compared within tolerance),
# whose saved model 05_deployment reads on another task. The stability report reads every seed's records.
SMALL = ["--only", "classical", "cnn", "deployment", "--set", "classical.models=[knn,logreg,tree]",
         "--set", "cnn.networks=[cnn_small]", "--set", "cnn.cv_folds=0", "--set", "cnn.precision=float32",
         "--set", "deployment.corruptions=[rotation]", "--set", "deployment.severities=[1]",
         "--set", "deployment.n_test_images=100", "--set", "deployment.n_nondigit_images=50",
         "--set", "deployment.n_envelopes=0", "--set", "train_size=600"]
# Each kernel's threads, as the local cluster of 2 workers sets them; the local run of the comparison gets the same.
KERNEL_THREADS = str(max(1, (os.cpu_count() or 1) // 2))


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """A two-seed sweep on a local cluster of 2 workers, and a local run of seed 2 with the same thread settings."""
    out = tmp_path_factory.mktemp("reports")
    with pytest.MonkeyPatch.context() as patch:
        for name in cluster.THREAD_VARIABLES:
            patch.setenv(name, KERNEL_THREADS)
        cluster_status = main(["run", str(QUICK_PROFILE), *SMALL, "--seeds", "1-2", "--cluster", "local:2",
                               "--out", str(out), "--name", "dask"])
        local_status = main(["run", str(QUICK_PROFILE), "--only", "classical", "cnn", *SMALL[4:], "--set", "seed=2",
                             "--jobs", "2", "--out", str(out / "apart"), "--name", "local", "--quiet"])
    return {"out": out, "cluster": cluster_status, "local": local_status}


def test_a_sweep_on_a_local_cluster_fills_one_folder_per_seed_and_the_stability_report(sweeps, capsys):
    out = sweeps["out"]
    assert sweeps["cluster"] == EXIT_OK and sweeps["local"] == EXIT_OK
    sweep_dir = out / "dask-seeds"
    manifest = json.loads((sweep_dir / "sweep.json").read_text())
    assert manifest["status"] == "ok" and manifest["seeds"] == [1, 2]
    assert manifest["executed_on"].startswith("a local Dask cluster of 2 worker processes")
    for seed in (1, 2):
        run = json.loads((sweep_dir / f"seed{seed}" / "run.json").read_text())
        assert [notebook["status"] for notebook in run["notebooks"]] == ["ok", "ok", "ok"]
        assert all(notebook["worker"] for notebook in run["notebooks"])  # Each says where it ran,
        assert all(notebook["kernel_starts"] >= 1 for notebook in run["notebooks"])  # and how many kernels it took.
        for stem in ("02_classical_baselines", "04_cnn", "05_deployment"):
            assert (sweep_dir / f"seed{seed}" / f"{stem}.html").is_file()
            record = load_results(sweep_dir / f"seed{seed}" / "results" / f"{stem}.json")
            assert record["params"].get("seed", seed) == seed
            assert record["params"]["output_dir"] == str(sweep_dir / f"seed{seed}")  # Not the worker's folder.
    executed = (sweep_dir / "seed1" / "02_classical_baselines.ipynb").read_text()
    assert "digitrec-task-" not in executed  # The worker's temporary folder shows nowhere.
    record = load_results(sweep_dir / "stability.json")
    assert record["stability"]["seeds"] == [1, 2] and record["stability"]["split"] == "varied"
    assert len(record["stability"]["models"]) == 4  # Three classical models and a CNN.
    # 05 analysed the model that 04 trained on another task, and wrote its threshold back into it.
    model = json.loads((sweep_dir / "seed1" / "models" / "cnn_selected.json").read_text())
    assert "abstention" in model  # 04 saves the model without it; 05 adds it.
    assert (sweep_dir / "stability.html").is_file()
    assert (out / "latest").resolve() == sweep_dir.resolve()


def test_the_cluster_gives_the_results_of_a_local_run_with_the_same_seed(sweeps):
    on_cluster = sweeps["out"] / "dask-seeds" / "seed2" / "results"
    local = sweeps["out"] / "apart" / "local" / "results"
    for stem in ("02_classical_baselines", "04_cnn"):
        cluster_models = {model["name"]: model for model in load_results(on_cluster / f"{stem}.json")["models"]}
        local_models = {model["name"]: model for model in load_results(local / f"{stem}.json")["models"]}
        assert cluster_models.keys() == local_models.keys()
        for name, model in local_models.items():
            if stem == "02_classical_baselines":  # Classical models: exactly the same predictions.
                assert cluster_models[name]["test_predictions"] == model["test_predictions"], name
            else:  # Networks: the same thread settings; at most one test image in a thousand changes.
                assert cluster_models[name]["test_accuracy"] == pytest.approx(model["test_accuracy"], abs=1e-3), name


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_scheduler_nobody_listens_on_stops_the_run_before_anything_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_SECONDS", 2)
    address = f"tcp://127.0.0.1:{_free_port()}"
    assert main(["run", "--only", "eda", "--cluster", address, "--out", str(tmp_path / "out")]) == EXIT_REJECTED
    error = capsys.readouterr().err
    assert f"--cluster {address}: no Dask scheduler could be reached there" in error and "dask scheduler" in error
    assert not (tmp_path / "out").exists()


def test_workers_of_another_digitrec_version_are_refused_before_anything_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cluster, "__version__", "0.0.0-other")  # The client's version, as the workers see it.
    assert main(["run", "--only", "eda", "--cluster", "local:1", "--out", str(tmp_path / "out")]) == EXIT_REJECTED
    error = capsys.readouterr().err
    assert "the client runs digitrec 0.0.0-other" in error and "install the same digitrec on every worker" in error
    assert not (tmp_path / "out").exists()


@pytest.fixture
def temporary_folder(tmp_path, monkeypatch) -> Path:
    """The temporary folder of this process and of the workers it starts, to find what they leave behind."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _left_behind(folder: Path) -> list[str]:
    """digitrec's folders in ``folder`` (Dask keeps its own scratch space there too)."""
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("digitrec-"))


def _kill_worker_when_written(marker: Path) -> threading.Thread:
    """Start a thread that waits for ``marker`` (a kernel's parent process id) and kills that Dask worker."""

    def _kill():
        deadline = time.monotonic() + 180
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)
        os.kill(int(marker.read_text()), signal.SIGKILL)

    killer = threading.Thread(target=_kill, daemon=True)
    killer.start()
    return killer


def test_a_worker_killed_mid_notebook_has_its_task_run_again_elsewhere(tmp_path, capsys, monkeypatch,
                                                                     temporary_folder):
    notebooks, marker = tmp_path / "notebooks", tmp_path / "first-attempt"
    # The first attempt writes its worker's process id and sleeps; the second, on another worker, finishes.
    write_notebook(notebooks, "01_eda",
                   f"import os, pathlib, time\nmarker = pathlib.Path({str(marker)!r})\n"
                   "if not marker.exists():\n    marker.write_text(str(os.getppid()))\n    time.sleep(120)\n"
                   "from digitrec_utils.reporting.results import build_results, save_results\n"
                   "save_results(build_results('01_eda', {'name': dataset, 'sha256': '0' * 64}, {}, seed=seed, "
                   "headline='finished on the second attempt'), output_dir)")
    monkeypatch.setattr(config, "NOTEBOOKS_DIR", notebooks)
    profile = tmp_path / "empty.yaml"
    profile.write_text("{}\n")

    killer = _kill_worker_when_written(marker)
    status = main(["run", str(profile), "--cluster", "local:2", "--out", str(tmp_path / "out"), "--name", "killed"])
    killer.join(timeout=5)
    assert status == EXIT_OK, capsys.readouterr().err
    run = json.loads((tmp_path / "out" / "killed" / "run.json").read_text())
    assert run["notebooks"][0]["status"] == "ok" and run["notebooks"][0]["headline"] == "finished on the second attempt"
    assert "01_eda: ok" in capsys.readouterr().out
    # The killed worker's kernelspec and task files were removed by the processes that outlived it.
    assert _left_behind(temporary_folder) == []


def test_a_notebook_whose_worker_dies_too_often_is_marked_failed_and_the_others_finish(tmp_path, capsys, monkeypatch,
                                                                                      temporary_folder):
    import dask

    notebooks, marker = tmp_path / "notebooks", tmp_path / "attempt"
    write_notebook(notebooks, "01_eda", f"import os, pathlib, time\npathlib.Path({str(marker)!r}).write_text("
                                        "str(os.getppid()))\ntime.sleep(120)")
    write_succeeding(notebooks, "02_classical_baselines")
    monkeypatch.setattr(config, "NOTEBOOKS_DIR", notebooks)
    profile = tmp_path / "empty.yaml"
    profile.write_text("{}\n")

    killer = _kill_worker_when_written(marker)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):  # The first death is one too many.
        status = main(["run", str(profile), "--cluster", "local:2", "--out", str(tmp_path / "out"), "--name", "lost",
                       "--quiet"])
    killer.join(timeout=5)
    assert status == EXIT_FAILED
    assert "01_eda: FAILED" in capsys.readouterr().err
    run = json.loads((tmp_path / "out" / "lost" / "run.json").read_text())
    assert [notebook["status"] for notebook in run["notebooks"]] == ["failed", "ok"]
    assert "KilledWorker" in run["notebooks"][0]["error"]
    assert not (tmp_path / "out" / "latest").exists()
    assert _left_behind(temporary_folder) == []


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to look for leftover kernels")
def test_an_interrupted_cluster_run_cancels_its_tasks_and_leaves_no_kernel(tmp_path, temporary_folder):
    from test_runner import _processes_with_environment

    notebooks, out, marker = tmp_path / "notebooks", tmp_path / "out", tmp_path / "sleeping"
    write_sleeping(notebooks, "01_eda", marker)
    write_succeeding(notebooks, "06_model_comparison")
    profile = tmp_path / "empty.yaml"
    profile.write_text("{}\n")
    # PYTHONFAULTHANDLER makes the run print every thread's stack on SIGABRT, sent below if it hangs.
    # TMPDIR, set by temporary_folder, reaches the run through os.environ.
    environment = {**os.environ, "DIGITREC_NOTEBOOKS": str(notebooks), "PYTHONFAULTHANDLER": "1"}
    kernel_marker = f"DIGITREC_NOTEBOOKS={notebooks}"  # Kernels inherit it from the workers, which inherit it.
    # A process started in the background of a non-interactive shell (`make test &`) ignores SIGINT, and so
    # do its children, as Unix asks; the run under test is given Python's usual Ctrl-C handling back.
    command = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
               "sys.argv[0] = 'digitrec'; runpy.run_module('digitrec_utils.cli', run_name='__main__')")
    process = subprocess.Popen([sys.executable, "-c", command, "run", str(profile), "--cluster", "local:1",
                                "--out", str(out), "--name", "stopped"], env=environment, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert marker.exists(), "the sleeping notebook never started"
        process.send_signal(signal.SIGINT)
        try:
            _, errors = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)
            output, errors = process.communicate(timeout=30)
            pytest.fail(f"the run did not stop within 120 s of SIGINT; its output:\n{output}\nits stacks:\n{errors}")
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signal.SIGINT, errors
    time.sleep(2)
    assert _processes_with_environment(kernel_marker) == []  # The worker went, and its kernel with it.
    assert _left_behind(temporary_folder) == []
    manifest = json.loads((out / "stopped" / "run.json").read_text())
    assert manifest["status"] == "interrupted"
    assert [run["status"] for run in manifest["notebooks"]] == ["interrupted", "not started"]
