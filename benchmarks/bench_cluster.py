"""Time the same 4 notebook executions run one after another and on a 2-worker Dask LocalCluster.

Two workloads, both with the embedded sample's profile (params/sample.yaml), so that nothing depends on
data outside the project:

- ``sweep`` (the default): 02_classical_baselines and 03_dense_nets for seeds 1 and 2, then the stability
  report (a fifth, short execution), as ``digitrec run --seeds 1-2 --only classical dense`` runs them:
  what ``--cluster`` is for, with more tasks than workers;
- ``single``: 01_eda to 04_cnn of one run, four notebooks of very unequal length.

Each runs three ways, side by side in one process, into a temporary folder:

1. ``digitrec run --jobs 1``: one notebook at a time, each kernel free to use every core;
2. ``digitrec run --cluster local:2``: 2 worker processes, each kernel's threads bounded to its share of
   the cores (the product's setting: OMP/BLAS, TensorFlow's intra-op pool and joblib);
3. with ``--oversubscribed``, the same cluster with the kernels' threads left unbounded, to show what the
   bound is for.

It prints each wall time and the ratios. These machines are shared and noisy: compare only within one
run of this script.

Usage::

    .venv/bin/python benchmarks/bench_cluster.py [--workload sweep|single] [--oversubscribed]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from digitrec_utils import config
from digitrec_utils.running import cluster
from digitrec_utils.running.runner import run_suite
from digitrec_utils.running.sweep import run_sweep

WORKLOADS = {"sweep": ["classical", "dense"], "single": ["eda", "classical", "dense", "cnn"]}


def _time_run(out: Path, name: str, *, workload: str, **options) -> float:
    started = time.perf_counter()
    execute = (lambda profile, **more: run_sweep(profile, seeds=[1, 2], **more)) if workload == "sweep" else run_suite
    outcome = execute(options.pop("profile"), only=WORKLOADS[workload], out_dir=out, run_name=name.split()[0],
                  progress=False, **options)
    seconds = time.perf_counter() - started
    if not outcome.ok:
        raise SystemExit(f"{name}: a notebook failed: {[run.describe() for run in outcome.notebooks]}")
    busy = sum(run.seconds for run in outcome.notebooks)
    print(f"{name:>24}: {seconds:7.1f} s wall ({busy:.1f} s of notebook execution)", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default=str(config.PARAMS_DIR / "sample.yaml"))
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="sweep")
    parser.add_argument("--dataset", default=None, help="Run on this dataset instead of the profile's.")
    parser.add_argument("--oversubscribed", action="store_true",
                        help="Also run the cluster with the kernels' threads unbounded.")
    arguments = parser.parse_args()
    common = {"profile": arguments.profile, "workload": arguments.workload,
              "overrides": [f"dataset={arguments.dataset}"] if arguments.dataset else []}
    print(f"workload {arguments.workload}: {', '.join(WORKLOADS[arguments.workload])}"
          + (" for seeds 1 and 2, then the stability report" if arguments.workload == "sweep" else ""), flush=True)
    with tempfile.TemporaryDirectory(prefix="digitrec-bench-cluster-") as scratch:
        out = Path(scratch)
        sequential = _time_run(out, "sequential (--jobs 1)", jobs=1, **common)
        on_cluster = _time_run(out, "cluster local:2", cluster="local:2", **common)
        print(f"sequential / cluster local:2 = {sequential / on_cluster:.2f}")
        if arguments.oversubscribed:
            cluster.LOCAL_KERNEL_THREADS = 0
            try:
                unbounded = _time_run(out, "unbounded local:2, threads unbounded", cluster="local:2", **common)
            finally:
                cluster.LOCAL_KERNEL_THREADS = None
            print(f"sequential / local:2 unbounded = {sequential / unbounded:.2f}; "
                  f"unbounded / bounded = {unbounded / on_cluster:.2f}")


if __name__ == "__main__":
    main()
