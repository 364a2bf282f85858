"""Debian's Chromium for the browser tests (rendered pages, JupyterLab), driven by Playwright."""

from __future__ import annotations

import shutil
from pathlib import Path

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
SKIP_REASON = "Chromium is absent; apt-get install chromium (CI does where it can)"
# No sandbox (CI runs as root), no GPU, and nothing that reaches the network on its own.
LAUNCH_ARGUMENTS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run"]


def launch_chromium(driver):
    """Launch Debian's Chromium through a started Playwright ``driver``; no browser is downloaded."""
    return driver.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGUMENTS)
