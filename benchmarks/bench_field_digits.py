"""A saved model on digits that are not MNIST's own arrays, through ``digitrec predict``'s path (issue 24).

Measures, for one saved model (an image that ``predict`` refuses counts as wrong and not answered):

- ``field``: every labelled set under ``<data>/field/`` (``semeion``, ``optdigits``): accuracy with its 95%
  interval, and at the model's saved threshold the share answered and the accuracy of the answered;
- ``mnist-png``: MNIST's 10,000 test digits written as 56x56 PNG files, dark ink on white (each image
  inverted and enlarged 2x, nothing else), against the same model on the arrays;
- ``moved``: the 10,000 test digits shifted by 4 pixels along both axes (the four diagonal directions in
  turn) and sheared by 0.35 about their top-left corner, as 28x28 arrays;
- ``photos``: 300 single photo-like digits of :func:`digitrec_utils.imaging.envelopes.make_photo_digit` (lined,
  unevenly lit paper, JPEG) from mnist-sample's test digits (``--dataset``'s with that option);
- ``batches``: ``predict`` over 10,000 clean scans (the PNG files above): images per second, and the peak
  memory (resident set) for 1,000 and for 10,000 files, each in a fresh process.

Usage::

    DIGITREC_DATA=$PWD/../shared/data .venv/bin/python benchmarks/bench_field_digits.py \\
        --model reports/latest/models/cnn_selected.keras [--only field photos] [--field-sets semeion]
        [--dataset mnist] [--json out.json]

The MNIST test digits are the real MNIST's (``<data>/mnist``) unless ``--dataset`` names another source,
whose test split (made as the suite makes it, seed 42) then serves every part.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from digitrec_utils import config
from digitrec_utils.data.types import DATASET_NAMES
from digitrec_utils.evaluation.abstention import measure_selective
from digitrec_utils.evaluation.evaluation import compute_accuracy_interval
from digitrec_utils.evaluation.scores import compute_score
from digitrec_utils.models.model_files import load_model_bundle, read_abstention

PARTS = ("field", "mnist-png", "moved", "photos", "batches")


def _data_root() -> Path:
    return config.get_data_root() or config.PROJECT_ROOT.parent / "shared" / "data"


def _figures(right: np.ndarray, scores: np.ndarray, abstention: dict | None) -> dict:
    low, high = compute_accuracy_interval(int(right.sum()), len(right))
    result = {"images": len(right), "accuracy": float(right.mean()), "accuracy_ci95": [low, high]}
    if abstention:
        outcome = measure_selective(scores, right, abstention.get("threshold") or 0.0)
        result.update(answered=outcome.coverage, answered_ci95=list(outcome.coverage_ci95),
                      answered_accuracy=outcome.accuracy, answered_accuracy_ci95=list(outcome.accuracy_ci95))
    return result


def _entries_figures(entries: list[dict], labels, abstention) -> dict:
    right = np.array([entry.get("label") == str(label) for entry, label in zip(entries, labels, strict=True)])
    scores = np.array([entry.get("score", -1.0) if "label" in entry else -1.0 for entry in entries])
    return {**_figures(right, scores, abstention), "refused": sum("error" in entry for entry in entries)}


def _arrays_figures(model, images: np.ndarray, labels: np.ndarray, abstention) -> dict:
    from digitrec_utils.data.preparation import prepare_image_batch

    prepared, usable = prepare_image_batch(images)
    probabilities = np.asarray(model.predict(prepared[..., None], verbose=0, batch_size=1000), dtype=np.float64)
    right = usable & (probabilities.argmax(axis=1) == labels)
    scores = np.where(usable, compute_score(probabilities, (abstention or {}).get("score", "top_probability")), -1.0)
    return _figures(right, scores, abstention)


def _load_test_digits(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """The test digits of ``dataset``, split as the suite splits it (seed 42)."""
    from digitrec_utils.data.loading import load_dataset
    from digitrec_utils.data.splits import make_splits

    data_dir = _data_root() / "mnist" if dataset == "mnist" else None
    splits = make_splits(load_dataset(dataset, data_dir=data_dir, test_fraction=0.2, seed=42), val_fraction=0.1,
                         seed=42)
    return splits.x_test, splits.y_test


def _write_mnist_pngs(folder: Path, dataset: str) -> tuple[list[Path], np.ndarray, np.ndarray]:
    images, labels = _load_test_digits(dataset)
    paths = []
    for index, image in enumerate(images):
        path = folder / f"{index:05d}.png"
        Image.fromarray(255 - image).resize((56, 56), Image.Resampling.BICUBIC).save(path)
        paths.append(path)
    return paths, images, labels


def _move(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from scipy import ndimage

    directions = [(-4, -4), (-4, 4), (4, -4), (4, 4)]
    shifted = np.stack([ndimage.shift(image, directions[index % 4], order=0) for index, image in enumerate(images)])
    # Column moves by 0.35 times the row, about the top-left corner (output (r, c) reads input (r, c - 0.35 r)).
    matrix = np.array([[1.0, 0.0], [-0.35, 1.0]])
    sheared = np.stack([ndimage.affine_transform(image.astype(np.float32), matrix, order=1) for image in images])
    return shifted, np.clip(np.rint(sheared), 0, 255).astype(np.uint8)


def _peak_memory(model: str, paths_file: Path) -> tuple[float, float]:
    """Run ``digitrec predict`` over the files listed in ``paths_file`` in a fresh process; (seconds, peak MiB)."""
    code = ("import resource, sys, time; from digitrec_utils.cli import main; "
            "paths = open(sys.argv[1]).read().split(); started = time.perf_counter(); "
            "main(['predict', *paths, '--model', sys.argv[2], '--jsonl']); "
            "print('SECONDS', time.perf_counter() - started, file=sys.stderr); "
            "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, file=sys.stderr)")
    finished = subprocess.run([sys.executable, "-c", code, str(paths_file), model], capture_output=True, text=True)
    figures = dict(line.split()[:2] for line in finished.stderr.splitlines() if line.startswith(("SECONDS", "PEAK")))
    return float(figures["SECONDS"]), float(figures["PEAK"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="A saved .keras model with its JSON.")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--json", default=None, help="Also write the figures to this JSON file.")
    parser.add_argument("--field-sets", nargs="+", default=None, metavar="SET",
                        help="Only these sets of <data>/field (for example semeion alone while choosing, so that "
                             "optdigits stays a figure to report); default every set there.")
    parser.add_argument("--dataset", default=None, choices=DATASET_NAMES,
                        help="Whose test digits every part uses (default: the real MNIST's, and mnist-sample's "
                             "for the photos).")
    arguments = parser.parse_args()
    from digitrec_utils.imaging.predict import predict_images

    model, description = load_model_bundle(arguments.model)
    abstention = read_abstention(description)
    results: dict = {"model": arguments.model, "abstention": abstention and {
        key: abstention.get(key) for key in ("score", "threshold", "chosen_on")}}
    if "field" in arguments.only:
        from digitrec_utils.data.labelled import find_labelled_files

        folders = sorted(folder for folder in (_data_root() / "field").iterdir() if folder.is_dir())
        unknown = set(arguments.field_sets or ()) - {folder.name for folder in folders}
        if unknown:
            parser.error(f"--field-sets: no set {', '.join(sorted(unknown))} in {_data_root() / 'field'}; "
                         f"it has {', '.join(folder.name for folder in folders)}.")
        for folder in folders:
            if arguments.field_sets is None or folder.name in arguments.field_sets:
                files = find_labelled_files(folder)
                entries = predict_images(files.paths, model, abstention=abstention)
                results[f"field/{folder.name}"] = _entries_figures(entries, files.labels, abstention)
                print(folder.name, json.dumps(results[f"field/{folder.name}"]), flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        if {"mnist-png", "moved", "batches"} & set(arguments.only):
            paths, images, labels = _write_mnist_pngs(Path(scratch), arguments.dataset or "mnist")
        if "mnist-png" in arguments.only:
            entries = predict_images(paths, model, abstention=abstention)
            results["mnist-png"] = {"files": _entries_figures(entries, labels, abstention),
                                    "arrays": _arrays_figures(model, images, labels, abstention)}
            print("mnist-png", json.dumps(results["mnist-png"]), flush=True)
        if "moved" in arguments.only:
            shifted, sheared = _move(images)
            results["moved"] = {"shifted by 4": _arrays_figures(model, shifted, labels, abstention),
                                "sheared by 0.35": _arrays_figures(model, sheared, labels, abstention)}
            print("moved", json.dumps(results["moved"]), flush=True)
        if "batches" in arguments.only:
            for count in (1_000, 10_000):
                listing = Path(scratch) / f"paths{count}.txt"
                listing.write_text("\n".join(str(path) for path in paths[:count]))
                seconds, peak = _peak_memory(arguments.model, listing)
                results[f"batches/{count}"] = {"seconds": seconds, "images_per_second": count / seconds,
                                               "peak_mib": peak}
                print(f"batches/{count}", json.dumps(results[f"batches/{count}"]), flush=True)
    if "photos" in arguments.only:
        from digitrec_utils.data.ink import survey_image
        from digitrec_utils.data.preparation import prepare_image
        from digitrec_utils.imaging.envelopes import make_photo_digit

        test_images, test_labels = _load_test_digits(arguments.dataset or "mnist-sample")
        photos = [make_photo_digit(test_images[index], seed=index) for index in range(300)]
        started = time.perf_counter()
        prepared = np.stack([prepare_image(photo) for photo in photos])
        probabilities = model.predict(prepared[..., None], verbose=0)
        right = probabilities.argmax(axis=1) == test_labels[:300]
        results["photos"] = {**_figures(right, np.zeros(300), None), "seconds": time.perf_counter() - started,
                             "taken_for_scans": sum(survey_image(photo).kind == "scan" for photo in photos)}
        print("photos", json.dumps(results["photos"]), flush=True)
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"done in {time.perf_counter() - started:.0f} s")
