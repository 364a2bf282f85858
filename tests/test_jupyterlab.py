"""The first use of the suite: a notebook opened in JupyterLab, in a real browser, runs from the Run menu.

nbval runs the notebooks in a kernel without the interface; this test starts ``jupyter lab`` from this
Python's environment on a free loopback port with a token of its own, drives Debian's Chromium with
Playwright, opens a copy of ``notebooks/01_eda.ipynb`` (so that nothing is written into the checkout), runs
all cells from the Run menu, waits for the kernel to go idle, saves, and checks the notebook as JupyterLab
saved it and shows it: no error output, the figures rendered, the parameters cell tagged. The server and
every kernel it started are stopped at the end.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from browsers import CHROMIUM, SKIP_REASON, launch_chromium

from digitrec_utils import config

NOTEBOOK = "01_eda.ipynb"
# Seconds allowed for the server to answer, and for the notebook to run once all its cells are queued.
SERVER_START_SECONDS = 90
RUN_SECONDS = 240
# JupyterLab's user settings for the test: every cell rendered (by default only those in view are, so their
# prompts and figures could not be read), and no news pop-up over the page.
SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_jupyter_lab(root: Path, port: int, token: str) -> subprocess.Popen:
    """Start ``jupyter lab`` on ``port`` serving ``root``, with its settings, runtime and workspaces under ``root``."""
    state = root / ".jupyter-state"
    environment = {**os.environ, "JUPYTER_CONFIG_DIR": str(state / "config"),
                   "JUPYTER_RUNTIME_DIR": str(state / "runtime"), "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"),
                   "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI runs as root.
    for name, settings in SETTINGS.items():
        path = state / "settings" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    log = (root / "jupyter-lab.log").open("wb")
    return subprocess.Popen(command, cwd=root, env=environment, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _wait_for_server(server: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"jupyter lab exited with status {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"jupyter lab did not answer within {SERVER_START_SECONDS} s:\n{log.read_text()[-3000:]}")


def _stop(server: subprocess.Popen) -> list:
    """Stop the server and every process it started (kernels included); return those still alive after."""
    import psutil

    try:
        descendants = psutil.Process(server.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    server.send_signal(signal.SIGTERM)  # The server shuts its kernels down on SIGTERM.
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=10)
    _, alive = psutil.wait_procs(descendants, timeout=15)
    for process in alive:
        process.kill()
    return [process for process in alive if process.is_running() and process.status() != psutil.STATUS_ZOMBIE]


@pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)
def test_01_eda_runs_in_jupyterlab_from_the_run_menu(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api", reason="Playwright is part of the dev extra")
    (tmp_path / "notebooks").mkdir()
    copied = tmp_path / "notebooks" / NOTEBOOK
    shutil.copy(config.NOTEBOOKS_DIR / NOTEBOOK, copied)
    port, token = _free_port(), secrets.token_hex(16)
    server = _start_jupyter_lab(tmp_path, port, token)
    try:
        _wait_for_server(server, f"http://127.0.0.1:{port}/api/status?token={token}", tmp_path / "jupyter-lab.log")
        with playwright.sync_playwright() as driver:
            browser = launch_chromium(driver)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"http://127.0.0.1:{port}/lab/tree/notebooks/{NOTEBOOK}?token={token}")
                _run_all_cells_from_the_run_menu(page, tmp_path / "jupyterlab.png")
                figures = page.locator(".jp-OutputArea-output img")
                rendered = figures.evaluate_all("images => images.filter(image => image.naturalWidth > 0).length")
                page.keyboard.press("Control+s")
                page.wait_for_selector(".jp-mod-dirty", state="detached", timeout=30_000)
            finally:
                browser.close()
    finally:
        left = _stop(server)
    assert left == [], f"processes left after jupyter lab stopped: {left}"
    saved = nbformat.read(copied, as_version=4)
    errors = [output for cell in saved.cells if cell.cell_type == "code" for output in cell.outputs
              if output.output_type == "error"]
    assert errors == [], f"a cell raised in JupyterLab: {errors[0].ename}: {errors[0].evalue}" if errors else ""
    unrun = [cell.source[:60] for cell in saved.cells if cell.cell_type == "code" and cell.execution_count is None]
    assert unrun == [], f"cells JupyterLab did not run: {unrun}"
    images = sum("image/png" in output.get("data", {}) for cell in saved.cells if cell.cell_type == "code"
                 for output in cell.outputs)
    assert images >= 3 and rendered >= images, f"{images} figures saved, {rendered} rendered in the page"
    tagged = [cell for cell in saved.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0] is next(cell for cell in saved.cells if cell.cell_type == "code")


def _run_all_cells_from_the_run_menu(page, screenshot: Path) -> None:
    """Wait for the kernel, run every cell from the Run menu, and wait until the kernel is idle with nothing queued.

    The cells are not rendered lazily (:data:`SETTINGS`), so every prompt is in the page.
    """
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    # The status bar says "Python 3 (ipykernel) | Connecting", then "| Idle" once the kernel answers; cells
    # run before that are not queued.
    page.wait_for_selector(".jp-StatusBar-TextItem:has-text('| Idle')", timeout=60_000)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    deadline = time.monotonic() + RUN_SECONDS
    settled = 0
    while time.monotonic() < deadline:
        time.sleep(1)
        prompts = [prompt.strip() for prompt in page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()]
        idle = page.locator(".jp-StatusBar-TextItem:has-text('| Idle')").count()
        # Done when the kernel is idle with no cell queued, twice in a row: every cell ran, or one raised and
        # JupyterLab stopped there (the checks on the saved notebook then say which).
        quiet = idle and "[*]:" not in prompts and any(prompt not in ("[ ]:", "") for prompt in prompts)
        settled = settled + 1 if quiet else 0
        if settled >= 2:
            return
    page.screenshot(path=str(screenshot))
    pytest.fail(f"the notebook did not finish within {RUN_SECONDS} s in JupyterLab; its prompts: {prompts}; "
                f"the page: {screenshot}")
