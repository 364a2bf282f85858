"""Time a saved model on this machine: images per second on a batch, and single-image latency.

By default the saved CNN of the newest run under reports/ whose 04_cnn succeeded (what ``digitrec
predict`` uses), on the embedded sample's test images prepared as ``predict`` prepares them.

Usage::

    .venv/bin/python benchmarks/bench_model_speed.py [--model PATH] [--batch-size 1000] [--single 200]

These machines are shared and noisy: compare two models only within one run of this script.
"""

from __future__ import annotations

import argparse

import numpy as np

from digitrec_utils import config
from digitrec_utils.data.loading import load_dataset
from digitrec_utils.data.preparation import prepare_image
from digitrec_utils.declarations import DATASET_NAMES
from digitrec_utils.evaluation.speed import measure_speed
from digitrec_utils.models.model_files import find_latest_model, load_model_bundle
from digitrec_utils.models.training import configure_keras


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="A .keras model saved by the suite (default: the newest).")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--single", type=int, default=200, help="Timed single-image calls.")
    parser.add_argument("--dataset", default="mnist-sample", choices=DATASET_NAMES,
                        help="Whose test digits are classified (default mnist-sample).")
    arguments = parser.parse_args()
    print(configure_keras())
    path = arguments.model or find_latest_model(config.REPORTS_DIR)
    model, description = load_model_bundle(path)
    images = np.stack([prepare_image(image) for image in load_dataset(arguments.dataset, seed=42).x_test])[..., None]
    speed = measure_speed(model, images, batch_size=arguments.batch_size, n_single=arguments.single)
    print(f"{description.get('model', path)}: {speed.describe()}")


if __name__ == "__main__":
    main()
