"""A whole run against a run that changes one parameter of 06, one after the other on one machine (issue 54).

Runs the profile with ``--fresh`` into a scratch reports folder and times it; then runs it again with one parameter
of 06_model_comparison changed, as a user types it, and times that; then plans (executes nothing) a run with one
parameter of 04_cnn changed, to show what it would execute. Each command runs in its own process. The target: the
second run executes 06 alone and takes at most 1/20 of the first.

Example (2 cores, float32; about 25 minutes for the full-MNIST profile)::

    DIGITREC_HIDE_BFLOAT16=1 DIGITREC_DATA=$PWD/../shared/data python benchmarks/bench_reuse.py params/mnist.yaml
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from digitrec_utils.running import reuse
from digitrec_utils.running.runner import plan_jobs, prepare_run
from digitrec_utils.utils.environment import collect_environment

CHANGES = {"06": "comparison.n_runner_ups=4", "04": "cnn.cv_epochs=3"}


def _run(profile: str, out: Path, name: str, *arguments: str) -> tuple[float, dict]:
    """Run ``digitrec run`` in its own process; return its seconds and its manifest."""
    command = [sys.executable, "-m", "digitrec_utils.cli", "run", profile, "--out", str(out), "--name", name,
               "--jobs", "2", "--quiet", *arguments]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return seconds, json.loads((out / name / "run.json").read_text(encoding="utf-8"))


def _plan(profile: str, out: Path, change: str) -> list[str]:
    """The notebooks a run with ``change`` would execute, planned in a scratch folder."""
    _, _, parameters = prepare_run(profile, overrides=[change])
    with tempfile.TemporaryDirectory(dir=out) as scratch:
        _, batch = plan_jobs(parameters, Path(scratch))
        to_execute = reuse.skip_unchanged(batch, reuse.find_sources(out, None, fresh=False),
                                          hash_data=reuse.fingerprint_data, root=Path(scratch), progress=False)
    return [job.run.notebook for job in to_execute]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", nargs="?", default="params/sample.yaml")
    parser.add_argument("--keep", type=Path, default=None, help="Write the runs here and keep them.")
    arguments = parser.parse_args()
    environment = collect_environment()
    print(f"CPU: {environment['cpu']} ({environment['cpu_count']} cores); profile {arguments.profile}; "
          f"DIGITREC_HIDE_BFLOAT16={os.environ.get('DIGITREC_HIDE_BFLOAT16', '')}")
    with tempfile.TemporaryDirectory() as scratch:
        out = arguments.keep or Path(scratch)
        full_seconds, full = _run(arguments.profile, out, "full", "--fresh")
        print(f"full run: {full_seconds:.1f} s, executed "
              f"{', '.join(run['notebook'] for run in full['notebooks'] if not run['reused_from'])}")
        again_seconds, again = _run(arguments.profile, out, "changed-06", "--set", CHANGES["06"])
        executed = [run["notebook"] for run in again["notebooks"] if not run["reused_from"]]
        print(f"with {CHANGES['06']}: {again_seconds:.1f} s, executed {', '.join(executed)}; reused "
              f"{', '.join(run['notebook'] for run in again['notebooks'] if run['reused_from'])}")
        print(f"ratio: {again_seconds / full_seconds:.4f} of the full run (1/{full_seconds / again_seconds:.0f}); "
              "target at most 1/20")
        print(f"with {CHANGES['04']}, a run would execute: {', '.join(_plan(arguments.profile, out, CHANGES['04']))}")


if __name__ == "__main__":
    main()
