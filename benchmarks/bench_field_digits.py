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
  memory (resident set) for 1,000 and for 10,000 files, each in a fresh process;
- ``views`` (only when asked for): each field set as ``predict`` prepares it, read again after moving every
  prepared digit (one-pixel shifts, turns of 6 and 12 degrees, shears that change its slant, among them to
  the median slant of 10,000 training digits, MNIST's by default) and as the mean of the probabilities over
  several views, each against the prepared digit by McNemar's exact test; images ``predict`` refuses are
  counted and left out. It is what docs/RESULTS.md cites for applying neither in ``predict``;
  pass ``--field-sets semeion`` so that optdigits stays a figure to report.

Usage::

    DIGITREC_DATA=$PWD/../shared/data .venv/bin/python benchmarks/bench_field_digits.py \\
        --model reports/latest/models/cnn_selected.keras [--only field photos] [--field-sets semeion]
        [--dataset mnist] [--json out.json]
    DIGITREC_DATA=$PWD/../shared/data .venv/bin/python benchmarks/bench_field_digits.py \\
        --model reports/latest/models/cnn_selected.keras --only views --field-sets semeion

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
from digitrec_utils.declarations import DATASET_NAMES
from digitrec_utils.evaluation.abstention import measure_selective
from digitrec_utils.evaluation.evaluation import compute_accuracy_interval
from digitrec_utils.evaluation.scores import compute_score
from digitrec_utils.models.model_files import load_model_bundle, read_abstention

PARTS = ("field", "mnist-png", "moved", "photos", "batches", "views")
# The parts run when --only is not given: views is an experiment, asked for by name.
DEFAULT_PARTS = PARTS[:-1]
# MNIST training digits whose median slant the views shear a digit to.
SLANT_REFERENCE_DIGITS = 10_000


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


def _load_training_digits(dataset: str) -> np.ndarray:
    """The training digits of ``dataset``, split as the suite splits it (seed 42); never its test split."""
    from digitrec_utils.data.loading import load_dataset

    data_dir = _data_root() / "mnist" if dataset == "mnist" else None
    return load_dataset(dataset, data_dir=data_dir, test_fraction=0.2, seed=42).x_train


def _field_folders(parser: argparse.ArgumentParser, names: list[str] | None) -> list[Path]:
    """The labelled sets under ``<data>/field`` named by ``--field-sets`` (every one by default)."""
    root = _data_root() / "field"
    folders = sorted(folder for folder in root.iterdir() if folder.is_dir()) if root.is_dir() else []
    unknown = set(names or ()) - {folder.name for folder in folders}
    if not folders:
        parser.error(f"no labelled sets in {root}: set DIGITREC_DATA to the folder that holds field/.")
    if unknown:
        parser.error(f"--field-sets: no set {', '.join(sorted(unknown))} in {root}; it has "
                     f"{', '.join(folder.name for folder in folders)}.")
    return [folder for folder in folders if names is None or folder.name in names]


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


def _measure_slant(images: np.ndarray) -> np.ndarray:
    """Each image's slant: the columns its ink moves right per row down (central moments mu11 / mu20)."""
    from skimage.measure import moments_central

    slants = []
    for image in images:
        moments = moments_central(image.astype(np.float64), order=2)
        slants.append(moments[1, 1] / moments[2, 0] if moments[2, 0] > 0 else 0.0)
    return np.array(slants)


def _shear(image: np.ndarray, amount: float) -> np.ndarray:
    """Shear ``image`` about its centre of mass's row so that its slant grows by ``amount``."""
    from scipy import ndimage

    row = ndimage.center_of_mass(image)[0]
    # The output (r, c) reads the input (r, c - amount (r - row)).
    return ndimage.affine_transform(image, np.array([[1.0, 0.0], [-amount, 1.0]]), offset=[0.0, amount * row],
                                    order=1)


def _make_views(prepared: np.ndarray, slants: np.ndarray, reference_slant: float) -> dict[str, np.ndarray]:
    """The prepared digits (whose slants are ``slants``) moved each way the views part reads them."""
    from scipy import ndimage

    views = {"as prepared": prepared}
    for name, step in {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}.items():
        views[f"shifted 1 px {name}"] = np.stack([ndimage.shift(image, step, order=0) for image in prepared])
    for degrees in (6, 12, -6, -12):
        turn = f"{abs(degrees)} degrees {'anticlockwise' if degrees > 0 else 'clockwise'}"
        views[f"turned {turn}"] = np.stack([ndimage.rotate(image, degrees, reshape=False, order=1)
                                            for image in prepared])
    for amount in (-0.04, -0.08):
        views[f"sheared by {amount}"] = np.stack([_shear(image, amount) for image in prepared])
    for name, target in {f"the training digits' median slant ({reference_slant:.3f})": reference_slant,
                         "upright": 0.0}.items():
        views[f"sheared to {name}"] = np.stack([_shear(image, target - slant)
                                                for image, slant in zip(prepared, slants, strict=True)])
        views[f"sheared halfway to {name}"] = np.stack([_shear(image, (target - slant) / 2)
                                                        for image, slant in zip(prepared, slants, strict=True)])
    return views


def _views_figures(model, folder: Path, reference_slant: float) -> dict:
    """Read one labelled set as ``predict`` prepares it, then each view of it; McNemar against the prepared digit."""
    from digitrec_utils.data.labelled import open_labelled_source
    from digitrec_utils.evaluation.evaluation import compare_paired

    images, labels, refused = [], [], 0
    for batch in open_labelled_source([folder]).iterate_batches(progress=False):
        images.append(batch.images)
        labels.append(batch.labels[batch.positions])
        refused += len(batch.errors)
    prepared, truth = np.concatenate(images), np.concatenate(labels)
    slants = _measure_slant(prepared)
    probabilities = {name: np.asarray(model.predict(view[..., None], verbose=0, batch_size=512), dtype=np.float64)
                     for name, view in _make_views(prepared, slants, reference_slant).items()}
    averages = {"shifts": ["as prepared", *[name for name in probabilities if name.startswith("shifted")]],
                "6-degree turns": ["as prepared", "turned 6 degrees anticlockwise", "turned 6 degrees clockwise"]}
    averages["seven views"] = averages["shifts"] + averages["6-degree turns"][1:]
    predictions = {name: values.argmax(axis=1) for name, values in probabilities.items()}
    for name, members in averages.items():
        predictions[f"mean over the {name} ({len(members)} views)"] = np.mean(
            [probabilities[member] for member in members], axis=0).argmax(axis=1)
    table = compare_paired(truth, predictions, best="as prepared").table
    rows = [{"view": row["setting"], "errors": int(np.sum(predictions[row["setting"]] != truth)),
             "accuracy": row["accuracy"], "only this right": row["only this right"],
             "only the prepared digit right": row["only best right"], "p_value": row["p-value"]}
            for _, row in table.iterrows()]
    return {"images": len(truth), "refused": refused, "median_slant": float(np.median(slants)),
            "views": rows}


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
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(DEFAULT_PARTS),
                        help=f"The parts to run (default: {', '.join(DEFAULT_PARTS)}; views only when named).")
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

        for folder in _field_folders(parser, arguments.field_sets):
            files = find_labelled_files(folder)
            entries = predict_images(files.paths, model, abstention=abstention)
            results[f"field/{folder.name}"] = _entries_figures(entries, files.labels, abstention)
            print(folder.name, json.dumps(results[f"field/{folder.name}"]), flush=True)
    if "views" in arguments.only:
        folders = _field_folders(parser, arguments.field_sets)
        training = _load_training_digits(arguments.dataset or "mnist")[:SLANT_REFERENCE_DIGITS]
        reference_slant = float(np.median(_measure_slant(training.astype(np.float64) / 255.0)))
        for folder in folders:
            figures = _views_figures(model, folder, reference_slant)
            results[f"views/{folder.name}"] = figures
            print(f"views/{folder.name}: {figures['images']} digits, {figures['refused']} refused, median slant "
                  f"{figures['median_slant']:.3f} (the training digits' {reference_slant:.3f})", flush=True)
            for row in figures["views"]:
                print(f"  {row['view']:<62} {row['errors']:>4} errors  {row['accuracy']:.4f}  only this right "
                      f"{row['only this right']:>3}, only the prepared {row['only the prepared digit right']:>3}, "
                      f"p = {row['p_value']:.2f}", flush=True)
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
