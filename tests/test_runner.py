"""digitrec run end to end: rejection before execution, failures, offline HTML, and a browser check."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from digitrec_utils.cli import EXIT_FAILED, EXIT_OK, EXIT_REJECTED, main
from digitrec_utils.html import find_external_references

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
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


def test_failing_notebook_still_renders_with_the_error_and_exits_non_zero(tmp_path, capsys):
    # The csv dataset without its files raises inside the notebook's loading cell.
    status = main(["run", "--only", "eda", "--out", str(tmp_path), "--name", "bad", "--set", "dataset=csv", *QUICK])
    assert status == EXIT_FAILED
    error_line = capsys.readouterr().err
    assert "01_eda: FAILED" in error_line and "ParameterError" in error_line and "cell [" in error_line
    run_dir = tmp_path / "bad"
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["status"] == "failed" and manifest["notebooks"][0]["status"] == "failed"
    report = (run_dir / "01_eda.html").read_text()
    assert "An Exception was encountered" in report  # Papermill's banner.
    assert "images_csv, labels_csv" in report  # The error text.
    assert "load_dataset(dataset" in report  # The failing cell's code stays visible.
    assert "failed" in (run_dir / "index.html").read_text()
    assert not list(run_dir.glob(".*partial*"))


def test_failed_run_does_not_touch_an_earlier_good_run(successful_run, capsys):
    _, out = successful_run
    before = (out / "good" / "01_eda.html").read_bytes()
    status = main(["run", "--only", "eda", "--out", str(out), "--set", "dataset=csv", *QUICK])
    assert status == EXIT_FAILED
    assert (out / "good" / "01_eda.html").read_bytes() == before
    assert (out / "latest").resolve() != (out / "good").resolve()


def _requests_made(netlog: Path) -> list[str]:
    """Return the URLs that the page itself asked Chromium's network stack for.

    Page requests carry the browser's HeadlessChrome user agent; Chromium's own background services
    (component updates, clock checks) send other headers, so they are left out.
    """
    text = netlog.read_text(errors="replace").rstrip()
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # A NetLog cut short at exit lacks its closing brackets.
        log = json.loads(text.rstrip(",") + "]}")
    urls = set()
    for event in log.get("events", []):
        params = event.get("params", {})
        if "url" in params and "HeadlessChrome" in json.dumps(params):  # Its request headers carry the agent.
            urls.add(params["url"])
    return sorted(urls)


def _open_in_chromium(page: Path, workdir: Path) -> tuple[list[str], Path]:
    screenshot, netlog = workdir / f"{page.stem}.png", workdir / f"{page.stem}.netlog.json"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={workdir / 'profile'}", "--host-resolver-rules=MAP * ~NOTFOUND",
         f"--log-net-log={netlog}", "--window-size=1280,1600", f"--screenshot={screenshot}", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    return _requests_made(netlog), screenshot


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is absent; apt-get install chromium (CI does where it can)")
def test_reports_open_offline_in_chromium_with_no_failed_requests(successful_run, tmp_path):
    _, out = successful_run
    control = tmp_path / "control.html"
    control.write_text('<html><body><img src="https://example.com/x.png"></body></html>')
    requested, _ = _open_in_chromium(control, tmp_path)
    assert requested == ["https://example.com/x.png"]  # The check can see a network request.
    for page in (out / "good" / "index.html", out / "good" / "01_eda.html"):
        requested, screenshot = _open_in_chromium(page, tmp_path)
        assert requested == [], f"{page.name} tried to fetch {requested}"
        assert screenshot.stat().st_size > 20_000  # A rendered page, not a blank one.


def test_kernels_run_on_this_interpreter_with_encrypted_sockets(monkeypatch):
    import sys

    import zmq
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    from digitrec_utils import runner

    monkeypatch.setenv("JUPYTER_PATH", "")
    for key in runner.KERNEL_ENVIRONMENT:
        monkeypatch.setenv(key, "")  # Restored, like JUPYTER_PATH, when the test ends.
    kernels_root = runner._prepare_kernel_environment()
    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
        assert Path(spec.resource_dir).is_relative_to(kernels_root)
        assert spec.argv[0] == sys.executable
        manager = KernelManager(kernel_name="python3", config=runner._kernel_manager_config())
        if zmq.has("curve"):  # Then ipykernel gets keys and does not warn about plain TCP.
            assert manager.transport_encryption == "auto"
            assert manager._kernel_supports_curve_encryption()
    finally:
        shutil.rmtree(kernels_root)
