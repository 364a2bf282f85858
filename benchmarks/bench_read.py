"""Time ``digitrec read`` on a folder of 100 photo-like envelopes of about 1,000 x 300 pixels (issue 16: under 20 s).

Usage::

    .venv/bin/python benchmarks/bench_read.py [--model reports/latest/models/cnn_selected.keras] [--count 100]
        [--digits 7]

The envelopes are made by :func:`digitrec_utils.imaging.envelopes.make_envelope` from mnist-sample's test digits
(7 digits each by default, seeded), written as JPEG files into a temporary folder. The model is loaded once and the
digits of all images are classified in one batch, as the command does; the time printed is that of
``read_images`` (reading the files, finding the ink, segmenting, preparing and classifying), with the
strings read exactly right, and those accepted at the model's saved threshold.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from digitrec_utils.config import REPORTS_DIR
from digitrec_utils.data.loading import load_dataset
from digitrec_utils.data.splits import make_splits
from digitrec_utils.declarations import DATASET_NAMES
from digitrec_utils.imaging.envelopes import make_envelope
from digitrec_utils.imaging.reading import read_images
from digitrec_utils.models.model_files import find_latest_model, load_model_bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="A saved .keras model (default: the newest run's CNN).")
    parser.add_argument("--count", type=int, default=100, help="Envelopes to read (default 100).")
    parser.add_argument("--digits", type=int, default=7, help="Digits per envelope (default 7).")
    parser.add_argument("--dataset", default="mnist-sample", choices=DATASET_NAMES,
                        help="Whose test digits the envelopes are made of (default mnist-sample; mnist needs "
                             "DIGITREC_DATA or the Keras cache).")
    arguments = parser.parse_args()
    model_path = Path(arguments.model) if arguments.model else find_latest_model(REPORTS_DIR)
    model, description = load_model_bundle(model_path)
    splits = make_splits(load_dataset(arguments.dataset, test_fraction=0.2, seed=42), val_fraction=0.1, seed=42)
    with tempfile.TemporaryDirectory() as scratch:
        folder, texts, sizes = Path(scratch), [], []
        for number in range(arguments.count):
            positions = (np.arange(arguments.digits) + arguments.digits * number) % len(splits.y_test)
            envelope = make_envelope(splits.x_test[positions], splits.y_test[positions], seed=number)
            Image.fromarray(envelope.image).save(folder / f"envelope{number:03d}.jpg", quality=90)
            texts.append(envelope.text)
            sizes.append(envelope.image.shape)
        paths = sorted(folder.glob("*.jpg"))
        model.predict(np.zeros((1, 28, 28, 1), dtype=np.float32), verbose=0)  # Warm-up, as a running service.
        started = time.perf_counter()
        entries = read_images(paths, model, class_names=description.get("class_names"),
                              abstention=description.get("abstention"))
        seconds = time.perf_counter() - started
    labels = ["".join(digit["label"] for digit in entry.get("digits", [])) for entry in entries]
    right = sum(label == text for label, text in zip(labels, texts, strict=True))
    accepted = [(label == text) for entry, label, text in zip(entries, labels, texts, strict=True)
                if entry.get("accepted")]
    height, width = np.mean(sizes, axis=0)
    print(f"{arguments.count} envelopes of about {width:.0f} x {height:.0f} pixels read in {seconds:.1f} s "
          f"({seconds / arguments.count * 1000:.0f} ms each) with model {model_path.name} "
          f"({description.get('model')}). {right} of {arguments.count} strings read exactly right; "
          f"{len(accepted)} accepted at the saved threshold, {sum(accepted)} of them right.")


if __name__ == "__main__":
    main()
