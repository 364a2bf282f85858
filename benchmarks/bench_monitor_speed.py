"""``digitrec monitor`` against ``digitrec predict`` on the same files, side by side in one run (issue 53).

Writes ``--files`` of MNIST's test digits as PNG files (repeated when more than 10,000 are asked for), then runs
each command as a user types it, one after the other, in its own process, and reports the seconds and the peak
memory (the process's largest resident set) of each, and their ratio. The target: monitor at least half as fast as
predict, with memory bounded.

Example (2 cores, float32)::

    DIGITREC_HIDE_BFLOAT16=1 python benchmarks/bench_monitor_speed.py --model reports/latest/models/cnn_selected.keras
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from digitrec_utils.data.loading import load_dataset
from digitrec_utils.utils.environment import collect_environment

# Runs the command line in this process and prints its peak resident memory (kilobytes on Linux) when it ends.
_MEASURED = ("import resource, sys\nfrom digitrec_utils.cli import main\nstatus = main(sys.argv[1:])\n"
             "print('maxrss', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
             "sys.exit(status)")


def _run(arguments: list[str]) -> tuple[float, float]:
    """Seconds and peak memory (MB) of one command."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", _MEASURED, *arguments], capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    seconds = time.perf_counter() - started
    if result.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(arguments[:1])} failed:\n{result.stderr[-2000:]}")
    peak = [line for line in result.stderr.splitlines() if line.startswith("maxrss")][-1]
    return seconds, int(peak.split()[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("DIGITREC_DATA", "../shared/data")))
    arguments = parser.parse_args()
    environment = collect_environment()
    print(f"CPU: {environment['cpu']} ({environment['cpu_count']} cores)")
    mnist = load_dataset("mnist", data_dir=str(arguments.data.resolve()))
    with tempfile.TemporaryDirectory() as folder:
        stream = Path(folder) / "stream"
        stream.mkdir()
        for number in range(arguments.files):
            Image.fromarray(mnist.x_test[number % len(mnist.x_test)]).save(stream / f"{number:06d}.png")
        rows = {}
        for name, command in (("predict", ["predict", str(stream), "--model", str(arguments.model), "--json"]),
                              ("monitor", ["monitor", str(stream), "--model", str(arguments.model), "--json"])):
            rows[name] = _run(command)
            print(f"{name}: {rows[name][0]:.1f} s, {arguments.files / rows[name][0]:,.0f} files/s, peak "
                  f"{rows[name][1]:,.0f} MB", flush=True)
    print(f"monitor runs at {rows['predict'][0] / rows['monitor'][0]:.2f} of predict's speed "
          f"(target: at least 0.5), {arguments.files:,} files")


if __name__ == "__main__":
    main()
