"""digitrec run end to end: rejection before execution, failures, interruption, latest and offline HTML."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from fake_notebooks import SAVE_RECORD, write_failing, write_notebook, write_sleeping, write_succeeding

from digitrec_utils import config
from digitrec_utils.cli import EXIT_FAILED, EXIT_OK, EXIT_REJECTED, main
from digitrec_utils.reporting.html import find_external_references
from digitrec_utils.running import runner
from digitrec_utils.utils.scratch import remove_owned_folder

QUICK = ["--set", "eda.pca_points=100", "--set", "eda.n_grid_images=10", "--quiet"]


@pytest.fixture(scope="module")
def successful_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    status = main(["run", "--only", "eda", "--out", str(out), "--name", "good", *QUICK])
    return status, out


@pytest.mark.parametrize(
    "arguments, message",
    [(["--set", "epoch=3"], "unknown key 'epoch'"),
     (["--set", "seed=abc"], "seed = 'abc' has the wrong type"),
     (["--set", "eda.pca_point=5"], "did you mean 'pca_points'"),
     (["--only", "edda"], "unknown notebook 'edda'"),
     (["no-such-profile.yaml"], "profile no-such-profile.yaml not found")],
)
def test_bad_input_is_rejected_before_anything_runs(tmp_path, capsys, arguments, message):
    status = main(["run", "--out", str(tmp_path), *arguments])
    assert status == EXIT_REJECTED
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # No run folder: nothing started.


def test_an_unwritable_out_and_a_reused_name_are_rejected_before_anything_runs(successful_run, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    status = main(["run", "--only", "eda", "--out", str(blocker / "reports"), *QUICK])
    assert status == EXIT_REJECTED
    assert "--out" in capsys.readouterr().err and blocker.read_text() == "not a folder"
    _, out = successful_run
    before = {path.name: path.stat().st_mtime_ns for path in (out / "good").iterdir()}
    status = main(["run", "--only", "eda", "--out", str(out), "--name", "good", *QUICK])
    assert status == EXIT_REJECTED
    error = capsys.readouterr().err
    assert "--name" in error and "already exists" in error
    assert {path.name: path.stat().st_mtime_ns for path in (out / "good").iterdir()} == before
    assert not list(out.glob("good-*"))  # No second folder either.


def test_successful_run_writes_reports_manifest_and_latest(successful_run):
    status, out = successful_run
    assert status == EXIT_OK
    run_dir = out / "good"
    assert (out / "latest").resolve() == run_dir.resolve()
    assert {path.name for path in run_dir.iterdir()} == {"01_eda.ipynb", "01_eda.html", "index.html", "run.json",
                                                        "results"}
    manifest = json.loads((run_dir / "run.json").read_text())
    notebook = manifest["notebooks"][0]
    assert manifest["status"] == "ok" and notebook["status"] == "ok" and notebook["seconds"] > 0
    assert notebook["parameters"]["pca_points"] == 100
    assert re.fullmatch(r"[0-9a-f]{64}", manifest["dataset_sha256"]["01_eda"])
    assert manifest["environment"]["packages"]["papermill"]
    assert "4,000 train / 1,000 test images" in notebook["headline"]


def test_html_is_self_contained_with_code_hidden_and_contents(successful_run):
    _, out = successful_run
    for page in ("01_eda.html", "index.html"):
        html = (out / "good" / page).read_text()
        assert find_external_references(html) == [], page
        assert not re.search(r"""(src|href)\s*=\s*["']https?:""", html)
    report = (out / "good" / "01_eda.html").read_text()
    assert '<nav class="digitrec-toc">' in report and 'href="#Principal-components"' in report
    assert "load_dataset(dataset" not in report  # Code hidden by default.
    assert "data:image/png;base64," in report
    assert "\x08" not in report  # No progress-bar backspaces.


@pytest.fixture
def empty_profile(tmp_path):
    """A profile that sets nothing, for notebooks of the tests whose parameters differ from the suite's."""
    path = tmp_path / "empty.yaml"
    path.write_text("{}\n")
    return path


def test_failing_notebook_still_renders_with_the_whole_error_and_exits_non_zero(tmp_path, capsys, monkeypatch,
                                                                             empty_profile):
    notebooks = tmp_path / "notebooks"
    write_succeeding(notebooks, "01_eda")
    message = "the first line\nPlaces tried, in order:\n  - here\n  - there\nTo fix it, do this."
    write_failing(notebooks, "02_classical_baselines", message)
    monkeypatch.setattr(config, "NOTEBOOKS_DIR", notebooks)
    monkeypatch.chdir(tmp_path)  # A relative --out still reaches the kernels, which run in the notebooks' folder.
    status = main(["run", str(empty_profile), "--out", "out", "--name", "bad", "--quiet"])
    assert status == EXIT_FAILED
    error_line = capsys.readouterr().err
    assert "02_classical_baselines: FAILED" in error_line and "ValueError" in error_line and "cell [" in error_line
    run_dir = tmp_path / "out" / "bad"
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["status"] == "failed"
    assert [run["status"] for run in manifest["notebooks"]] == ["ok", "failed"]
    assert manifest["notebooks"][1]["error"] == f"ValueError: {message}"  # The whole message, every line.
    report = (run_dir / "02_classical_baselines.html").read_text()
    assert "An Exception was encountered" in report  # Papermill's banner.
    assert "To fix it, do this." in report  # The error text.
    assert "raise ValueError(" in re.sub(r"<[^>]+>", "", report)  # The failing cell's code stays visible.
    index = (run_dir / "index.html").read_text()
    assert "1 of 2 notebooks failed" in index and "To fix it, do this." in index
    assert not list(run_dir.glob(".*partial*"))
    assert not (tmp_path / "out" / "latest").exists()  # latest never points at a failed run.


def test_failed_run_does_not_touch_an_earlier_good_run_nor_latest(successful_run, capsys, monkeypatch, tmp_path,
                                                                   empty_profile):
    _, out = successful_run
    before = (out / "good" / "01_eda.html").read_bytes()
    write_failing(tmp_path / "notebooks", "01_eda", "broken on purpose")
    monkeypatch.setattr(config, "NOTEBOOKS_DIR", tmp_path / "notebooks")
    status = main(["run", str(empty_profile), "--out", str(out), "--name", "broken", "--quiet"])
    assert status == EXIT_FAILED
    assert (out / "good" / "01_eda.html").read_bytes() == before
    assert (out / "latest").resolve() == (out / "good").resolve()
    assert json.loads((out / "broken" / "run.json").read_text())["status"] == "failed"


def test_a_missing_dataset_stops_the_run_before_any_kernel_with_one_error(tmp_path, capsys, monkeypatch):
    def no_kernels(*args, **kwargs):
        raise AssertionError("a notebook started although its dataset is missing")

    monkeypatch.setattr(runner, "_execute_all", no_kernels)
    status = main(["run", "--only", "eda", "classical", "--out", str(tmp_path), "--set", "dataset=mnist", "--quiet"])
    assert status == EXIT_REJECTED
    error = capsys.readouterr().err
    assert error.count("Cannot find the 'mnist' dataset") == 1
    assert "needed by 01_eda, 02_classical_baselines" in error and "To fix it" in error
    assert list(tmp_path.iterdir()) == []  # No run folder: nothing started.


def test_a_corrupt_dataset_is_named_before_the_run(tmp_path, capsys, monkeypatch, write_idx_dataset):
    monkeypatch.setattr(runner, "_execute_all", lambda *args, **kwargs: pytest.fail("a notebook started"))
    write_idx_dataset(tmp_path / "data")
    labels = tmp_path / "data" / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[:-6])  # A download cut short.
    status = main(["run", "--only", "eda", "--out", str(tmp_path / "out"), "--set", "dataset=fashion-mnist",
                   "--set", f"data_dir={tmp_path / 'data'}", "--quiet"])
    assert status == EXIT_REJECTED
    error = capsys.readouterr().err
    assert "t10k-labels-idx1-ubyte.gz" in error and "truncated or corrupt" in error
    assert not (tmp_path / "out").exists()


def test_the_run_folder_is_named_after_what_ran():
    profile_path, profile, parameters = runner.prepare_run(only=["eda"])
    assert runner.name_run(profile_path, profile, parameters).startswith("sample-")
    profile_path, profile, parameters = runner.prepare_run(only=["eda"], overrides=["dataset=mnist"])
    assert re.fullmatch(r"mnist-\d{8}-\d{6}", runner.name_run(profile_path, profile, parameters))


def _processes_with_environment(text: str) -> list[str]:
    """Return the command lines of running processes whose environment contains ``text`` (e.g. ``KEY=value``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environment = (entry / "environ").read_bytes().decode(errors="replace")
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in environment.split("\0") and "ipykernel" in command:
            found.append(command)
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to look for leftover kernels")
def test_sigterm_stops_the_run_cleanly(tmp_path, empty_profile):
    notebooks, out = tmp_path / "notebooks", tmp_path / "out"
    marker = tmp_path / "sleeping"
    write_succeeding(notebooks, "01_eda")
    write_sleeping(notebooks, "02_classical_baselines", marker)
    write_succeeding(notebooks, "03_dense_nets")
    (out / "earlier").mkdir(parents=True)
    (out / "latest").symlink_to("earlier", target_is_directory=True)
    temporary = tmp_path / "tmp"  # The run's and its kernels' temporary files, to find any left behind.
    temporary.mkdir()
    environment = {**os.environ, "DIGITREC_NOTEBOOKS": str(notebooks), "TMPDIR": str(temporary)}
    kernel_marker = f"DIGITREC_NOTEBOOKS={notebooks}"  # Kernels inherit the run's environment.
    process = subprocess.Popen(
        [sys.executable, "-m", "digitrec_utils.cli", "run", str(empty_profile), "--out", str(out), "--name",
         "stopped"], env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert marker.exists(), "the sleeping notebook never started"
        assert _processes_with_environment(kernel_marker), "no kernel found to stop"
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=120)
    finally:
        if process.poll() is None:  # Stop it the way it is meant to be stopped, so that no kernel is left.
            process.send_signal(signal.SIGTERM)
            try:
                process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
    assert process.returncode == 128 + signal.SIGTERM, errors
    assert "interrupted by SIGTERM" in errors
    time.sleep(1)
    assert _processes_with_environment(kernel_marker) == []  # Every kernel was shut down.
    # Nor is any kernel's folder of sockets or connection file left behind.
    assert sorted(path.name for path in temporary.rglob("*")) == []
    run_dir = out / "stopped"
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["interrupted_by"] == "SIGTERM"
    assert [run["status"] for run in manifest["notebooks"]] == ["ok", "interrupted", "not started"]
    assert "Interrupted by SIGTERM" in (run_dir / "index.html").read_text()
    assert sorted(path.name for path in run_dir.iterdir()) == ["01_eda.html", "01_eda.ipynb", "index.html",
                                                              "results", "run.json"]
    assert [path.name for path in (run_dir / "results").iterdir()] == ["01_eda.json"]
    assert (out / "latest").resolve() == (out / "earlier").resolve()


def test_kernels_run_on_this_interpreter_with_encrypted_sockets(monkeypatch):
    import sys

    import zmq
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    from digitrec_utils.running import execution

    monkeypatch.setenv("JUPYTER_PATH", "")
    monkeypatch.setenv(execution.KERNELS_ROOT_VARIABLE, "")
    for key in execution.KERNEL_ENVIRONMENT:
        monkeypatch.setenv(key, "")  # Restored, like JUPYTER_PATH, when the test ends.
    kernels_root = execution.prepare_kernel_environment()
    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
        assert Path(spec.resource_dir).is_relative_to(kernels_root)
        assert spec.argv[0] == sys.executable
        manager = KernelManager(kernel_name="python3", config=execution._kernel_manager_config(kernels_root))
        assert manager.transport == execution.KERNEL_TRANSPORT
        if zmq.has("curve"):  # Then ipykernel gets keys and does not warn about plain TCP.
            assert manager.transport_encryption == "auto"
            assert manager._kernel_supports_curve_encryption()
    finally:
        remove_owned_folder(kernels_root)


def test_a_running_notebook_shows_its_latest_progress_line_while_it_works(tmp_path, capsys, monkeypatch,
                                                                           empty_profile):
    body = ("import time\nfrom digitrec_utils.utils.progress import report_progress\n"
            "report_progress('network 1 epoch 1/2: about 2.0 s left at most')\ntime.sleep(1.5)\n"
            "report_progress('network 1 epoch 2/2')\ntime.sleep(1.5)\n" + SAVE_RECORD.format(stem="01_eda"))
    write_notebook(tmp_path / "notebooks", "01_eda", body)
    monkeypatch.setattr(config, "NOTEBOOKS_DIR", tmp_path / "notebooks")
    monkeypatch.setattr(runner, "PROGRESS_SECONDS", 0.2)
    status = main(["run", str(empty_profile), "--out", str(tmp_path / "out"), "--name", "progress"])
    assert status == EXIT_OK
    printed = capsys.readouterr().out
    first = printed.index("01_eda: network 1 epoch 1/2: about 2.0 s left at most")
    assert printed.index("01_eda: network 1 epoch 2/2", first) < printed.index("[1/1] 01_eda: ok")
    assert printed.count("01_eda: network 1 epoch 1/2") == 1  # Each line once, however often the runner looks.
    assert not list((tmp_path / "out" / "progress").glob(".*progress"))  # The kernel's file is gone.


def test_notebooks_run_side_by_side_share_the_cores_and_those_run_alone_keep_them(tmp_path, monkeypatch,
                                                                                   empty_profile):
    # Each notebook's record says how many OpenMP threads its kernel was given.
    body = ("import os\nfrom digitrec_utils.reporting.results import build_results, save_results\n"
            "save_results(build_results('{stem}', {{'name': dataset, 'sha256': '0' * 64}}, {{}}, seed=seed,\n"
            "             headline=os.environ.get('OMP_NUM_THREADS', 'unset')), output_dir)")
    for stem in ("01_eda", "06_model_comparison"):  # 01 may run beside others; 06 always runs alone.
        write_notebook(tmp_path / "notebooks", stem, body.format(stem=stem))
    monkeypatch.setattr(config, "NOTEBOOKS_DIR", tmp_path / "notebooks")
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)

    def threads(jobs: int) -> dict[str, str]:
        out = Path(tempfile.mkdtemp(dir=tmp_path))
        assert main(["run", str(empty_profile), "--out", str(out), "--name", "run", "--jobs", str(jobs),
                     "--quiet"]) == EXIT_OK
        manifest = json.loads((out / "run" / "run.json").read_text())
        return {run["notebook"]: run["headline"] for run in manifest["notebooks"]}

    shared = str(max(1, (os.cpu_count() or 1) // 2))
    assert threads(2) == {"01_eda": shared, "06_model_comparison": "unset"}
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # The user's own setting wins.
    assert set(threads(2).values()) == {"3"}
