"""One notebook's execution: each kernel's own sockets, and a kernel that dies before its first cell started again."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
from fake_notebooks import write_notebook

from digitrec_utils.running import execution
from digitrec_utils.running.outcomes import NotebookRun

# A kernel launcher that dies (as a kernel that lost the race for its port does) until it has been started
# more than DEATHS times, counted in COUNTER; then it is an ordinary ipykernel.
FLAKY_KERNEL = """\
import pathlib
import sys

counter, deaths = pathlib.Path(sys.argv[1]), int(sys.argv[2])
started = int(counter.read_text()) if counter.exists() else 0
counter.write_text(str(started + 1))
if started < deaths:
    sys.exit(1)
from ipykernel.kernelapp import launch_new_instance

sys.argv = [sys.argv[0], *sys.argv[3:]]
launch_new_instance()
"""


@pytest.fixture
def flaky_kernel(tmp_path, monkeypatch):
    """Return a function that makes kernel ``python3`` die ``deaths`` times, and the file counting its starts."""

    def _install(deaths: int) -> Path:
        launcher = tmp_path / "flaky_kernel.py"
        launcher.write_text(FLAKY_KERNEL)
        counter = tmp_path / "kernel-starts.txt"
        spec_dir = tmp_path / "jupyter" / "kernels" / "python3"
        spec_dir.mkdir(parents=True)
        argv = [sys.executable, str(launcher), str(counter), str(deaths), "-f", "{connection_file}"]
        (spec_dir / "kernel.json").write_text(json.dumps(
            {"argv": argv, "display_name": "flaky", "language": "python"}))
        monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
        return counter

    return _install


def _execute(folder: Path, body: str) -> NotebookRun:
    source = write_notebook(folder / "notebooks", "nb", body)
    run_dir = folder / "run"
    run_dir.mkdir()
    return execution.run_papermill(NotebookRun("nb", {}), source=source, run_dir=run_dir, timeout=60)


def _outputs(run_dir: Path, run: NotebookRun) -> str:
    notebook = nbformat.read(str(run_dir / run.ipynb), as_version=4)
    return "".join(output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", []))


def test_a_kernel_that_dies_before_the_first_cell_is_started_again(tmp_path, flaky_kernel, capsys):
    counter = flaky_kernel(deaths=1)
    run = _execute(tmp_path, 'print("ran once")')
    assert ("nb: its kernel did not start (RuntimeError: Kernel died before replying to kernel_info); "
            "starting kernel 2 of at most 3.") in capsys.readouterr().err
    assert run.status == "ok", run.error
    assert run.kernel_starts == 2 and counter.read_text() == "2"
    assert _outputs(tmp_path / "run", run).count("ran once") == 1
    assert "started 2 kernels: the first died before running any cell" in run.describe()
    assert not list((tmp_path / "run").glob(".*partial*"))


def test_kernels_that_keep_dying_are_started_a_bounded_number_of_times(tmp_path, flaky_kernel, monkeypatch):
    monkeypatch.setattr(execution, "KERNEL_STARTS", 2)
    counter = flaky_kernel(deaths=5)
    run = _execute(tmp_path, 'print("never")')
    assert run.status == "failed" and "Kernel died before replying to kernel_info" in run.error
    assert run.kernel_starts == 2 and counter.read_text() == "2"
    assert "FAILED" in run.describe() and "started 2 kernels" in run.describe()
    # The failed notebook is still kept, with the error visible in it.
    assert "Execution stopped: RuntimeError: Kernel died" in (tmp_path / "run" / run.ipynb).read_text()


def test_a_kernel_that_dies_after_a_cell_started_is_not_started_again(tmp_path, flaky_kernel):
    counter = flaky_kernel(deaths=0)
    marker = tmp_path / "cell-ran.txt"
    run = _execute(tmp_path, f"import os, pathlib\npathlib.Path({str(marker)!r}).write_text('x')\nos._exit(1)")
    assert run.status == "failed" and "DeadKernelError" in run.error
    assert run.kernel_starts == 1 and counter.read_text() == "1"
    assert marker.read_text() == "x"  # The cell ran once; its side effects were not repeated.
    assert "kernels" not in run.describe()


def test_the_progress_line_counts_the_kernels_that_died_first():
    run = NotebookRun("01_eda", {}, status="failed", seconds=3.0, error="RuntimeError: Kernel died", kernel_starts=3)
    assert run.describe().endswith("(started 3 kernels: the first 2 died before running any cell)")
    assert NotebookRun("01_eda", {}, status="ok", kernel_starts=1).describe() == "01_eda: ok in 0.0 s"


# The cell prints the transport, socket address and connection file that the kernel was given.
PRINT_SOCKETS = ("from ipykernel.kernelapp import IPKernelApp\n"
                 "app = IPKernelApp.instance()\nprint(app.transport, app.ip, app.connection_file)")


@pytest.mark.skipif(os.name == "nt", reason="Windows kernels keep TCP (KERNEL_TRANSPORT)")
def test_each_kernel_gets_unix_sockets_in_a_folder_of_its_own_removed_afterwards(tmp_path):
    run = _execute(tmp_path, PRINT_SOCKETS)
    assert run.status == "ok", run.error
    transport, prefix, connection_file = _outputs(tmp_path / "run", run).split()
    assert transport == "ipc"
    sockets = Path(prefix).parent
    assert Path(connection_file).parent == sockets  # Not a tmpXXXXXXXX.json left in the temporary folder.
    # Not jupyter_client's default "kernel-ipc" in the working folder, which every notebook of a run shares.
    assert sockets.is_absolute() and sockets.name.startswith("digitrec-kernel-")
    assert tmp_path not in sockets.parents
    assert not sockets.exists()
    assert not list((tmp_path / "notebooks").glob("kernel-*"))


def test_a_temporary_folder_too_long_for_unix_sockets_keeps_tcp(tmp_path, monkeypatch):
    deep = tmp_path / ("d" * (execution.MAX_SOCKET_PATH - len(str(tmp_path))))
    deep.mkdir()
    monkeypatch.delenv(execution.KERNELS_ROOT_VARIABLE, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    run = _execute(tmp_path, PRINT_SOCKETS)
    assert run.status == "ok", run.error
    assert _outputs(tmp_path / "run", run).split()[0] == "tcp"


def test_a_cell_that_prints_as_it_works_outlasts_the_timeout_and_a_silent_one_is_stopped_as_hung(tmp_path):
    # The timeout counts silence: 6 s of work printing every 0.3 s goes on past a 3-second timeout.
    source = write_notebook(tmp_path / "notebooks", "04_cnn",
                            "import time\nfor step in range(20):\n    print(step, flush=True)\n    time.sleep(0.3)\n"
                            "print('finished')")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    slow = execution.run_papermill(NotebookRun("04_cnn", {}), source=source, run_dir=run_dir, timeout=3)
    assert slow.status == "ok", slow.error
    assert "finished" in _outputs(run_dir, slow)
    # 30 s without a word is stopped after the 2 s of silence it may have, well before the work would end.
    silent_source = write_notebook(tmp_path / "silent", "04_cnn", "import time\nprint('start', flush=True)\n"
                                   "time.sleep(30)\nprint('never')")
    silent_dir = tmp_path / "silent_run"
    silent_dir.mkdir()
    silent = execution.run_papermill(NotebookRun("04_cnn", {}), source=silent_source, run_dir=silent_dir, timeout=2)
    assert silent.status == "failed" and silent.seconds < 20
    assert silent.error.startswith("CellTimeoutError: a cell of 04_cnn printed nothing for 2 s")
    assert "--timeout 4" in silent.error and "cnn.modern_epochs" in silent.error and "cnn.cv_folds" in silent.error
    # The executed notebook keeps what ran and shows the message.
    notebook = nbformat.read(str(silent_dir / silent.ipynb), as_version=4)
    assert "start" in _outputs(silent_dir, silent) and "never" not in _outputs(silent_dir, silent)
    assert "printed nothing for 2 s" in notebook.cells[-1].source
