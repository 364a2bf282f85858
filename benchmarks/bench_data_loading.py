"""Time loading a full dataset (Fashion-MNIST by default): parsing the gz files, and a second load from the cache.

Each measurement runs in a fresh Python process, as a user's next session would, against a fresh
cache folder. The figure reported is the load call itself; the process's wall time (interpreter
start and imports included) is printed beside it.

Usage::

    .venv/bin/python benchmarks/bench_data_loading.py [--repeats 3] [--dataset mnist]

Targets (issue 2): parse under 3 s, second load from the cache under 1 s, on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

_CHILD = """
import json, time
started = time.perf_counter()
from digitrec_utils.data.loading import load_dataset
imported = time.perf_counter()
dataset = load_dataset({name!r}, use_cache={use_cache})
loaded = time.perf_counter()
print(json.dumps({{"import_s": imported - started, "load_s": loaded - imported, "n_train": len(dataset.y_train)}}))
"""


def _run_child(name: str, use_cache: bool, cache_dir: str) -> dict:
    environment = dict(os.environ, DIGITREC_CACHE=cache_dir)
    started = time.perf_counter()
    output = subprocess.run(
        [sys.executable, "-c", _CHILD.format(name=name, use_cache=use_cache)],
        check=True, capture_output=True, text=True, env=environment,
    ).stdout
    figures = json.loads(output.strip().splitlines()[-1])
    figures["process_s"] = time.perf_counter() - started
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dataset", default="fashion-mnist", choices=["mnist", "fashion-mnist"],
                        help="An official dataset, found where digitrec finds it (DIGITREC_DATA, ...).")
    arguments = parser.parse_args()
    rows = {"parse gz (no cache)": [], "first load (parse + write cache)": [], "second load (from cache)": []}
    for _ in range(arguments.repeats):
        with tempfile.TemporaryDirectory() as cache_dir:
            rows["parse gz (no cache)"].append(_run_child(arguments.dataset, False, cache_dir))
            rows["first load (parse + write cache)"].append(_run_child(arguments.dataset, True, cache_dir))
            rows["second load (from cache)"].append(_run_child(arguments.dataset, True, cache_dir))
    print(f"{arguments.dataset} (60,000 + 10,000 images), {arguments.repeats} fresh processes each, median:")
    print(f"  {'step':<36}{'load s':>8}{'import s':>10}{'process s':>11}")
    for step, runs in rows.items():
        load = statistics.median(run["load_s"] for run in runs)
        imported = statistics.median(run["import_s"] for run in runs)
        process = statistics.median(run["process_s"] for run in runs)
        print(f"  {step:<36}{load:>8.3f}{imported:>10.3f}{process:>11.3f}")


if __name__ == "__main__":
    main()
