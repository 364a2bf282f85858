"""Reading digit strings in photos (``digitrec read``): segmentation into digits, and the string each image holds.

1. The ink is found as for a single digit (:func:`digitrec_utils.data.ink.find_ink`): a clean scan has its
   levels stretched from the paper to the ink; a photo has its light corrected, lines removed and specks
   dropped.
2. **Components** of the ink (SciPy's ``label``, 8-connected) are grouped into digits, left to right. A
   component joins its left neighbour when their columns overlap by at least half the narrower one's width
   (a 5's flag, the bar of a 7), or by a fifth of it when together they are no wider than 0.9 of the digit
   height (a broken 4), or when it is small (under :data:`SMALL_PART` of the digit height across) and lies
   within :data:`NEAR` of the digit height from it (from its right neighbour, when nothing is on its left).
   A small part near no digit is a stray mark and is dropped.
3. A group wider than :data:`WIDE` times the digit height may hold touching digits. It is cut in as many
   parts as its width suggests (a digit is about :data:`DIGIT_WIDTH` of its height wide), at a minimum of
   the ink's column profile near each even cut. For two parts the model decides: of the whole and the
   cuts at the three lowest minima in its middle half, the reading with the highest product of top
   probabilities wins (a broad 0 or 2 stays whole).
4. Each digit's ink is prepared as ``digitrec predict`` prepares an image of its kind
   (:func:`digitrec_utils.data.preparation.prepare_found_ink`), and the digits of a batch of images are classified
   together.

The digit height is the median height of the components at least half as tall as the tallest.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage
from tqdm import tqdm

from digitrec_utils.data.ink import find_ink
from digitrec_utils.data.preparation import PROGRESS_MINIMUM, prepare_found_ink, read_image
from digitrec_utils.evaluation.scores import compute_score
from digitrec_utils.exceptions import ImageError

# A part this narrow and short (share of the digit height) may belong to a neighbour.
SMALL_PART = 0.35
# How close (share of the digit height) a small part must be to join a neighbour.
NEAR = 0.15
# A group wider than this share of the digit height holds touching digits.
WIDE = 1.15
# A handwritten digit's width as a share of its height, on average (MNIST's boxes: about 0.7).
DIGIT_WIDTH = 0.7
# Batches up to this size are classified by calling the model directly rather than through predict.
SMALL_BATCH = 64
# Photos are read this many at a time by iterate_readings.
READ_BATCH_SIZE = 64
# More components than this (after specks are dropped) is text or a texture, not a number.
MAX_COMPONENTS = 60


@dataclass
class DigitInk:
    """One digit found in a photo: its box in the photo's pixels and its prepared 28x28 image."""

    box: tuple[int, int, int, int]
    image: np.ndarray


@dataclass
class Segmented:
    """The digits of one photo, left to right, and the cleaned ink a debugging person needs to see."""

    digits: list[DigitInk]
    mask: np.ndarray


def segment_digits(pixels: np.ndarray, *, source: str = "image", classify=None) -> Segmented:
    """Find the digits of a photo or scan, left to right (see the module's steps).

    Parameters
    ----------
    pixels : ndarray of shape (height, width), uint8
    source : str
        Names the image in errors.
    classify : callable, optional
        Takes prepared images of shape (n, 28, 28) and returns class probabilities (n, n_classes); used to
        choose where to cut two touching digits. Without it, the deepest minimum wins.

    Raises
    ------
    ImageError
        When no ink is found (a blank photo, or only lines: an empty form), or there are far too many
        components for a number (a photo of text or a texture).
    """

    pixels = np.asarray(pixels)
    photo, survey = find_ink(pixels)
    if not photo.mask.any():
        what = "only ruled or grid lines (an empty form?)" if photo.lines.any() else "no ink (a blank photo?)"
        raise ImageError(f"{source}: {what}; give a photo of written digits.")
    labels, count = ndimage.label(photo.mask, structure=np.ones((3, 3), dtype=bool))
    if count > MAX_COMPONENTS:
        raise ImageError(f"{source}: {count} separate marks, far more than a number has (at most "
                         f"{MAX_COMPONENTS}); is it a photo of text or a texture? Crop it to the digits.")
    boxes = [(region[1].start, region[0].start, region[1].stop, region[0].stop)
             for region in ndimage.find_objects(labels)]
    heights = np.array([bottom - top for _, top, _, bottom in boxes])
    digit_height = float(np.median(heights[heights >= 0.5 * heights.max()]))
    groups = _group_components(boxes, digit_height)
    digits = []
    for members in groups:
        group_mask = np.isin(labels, [member + 1 for member in members])
        for part in _split_touching(group_mask, digit_height, photo.strength, classify, survey.kind):
            digits.append(part)
    return Segmented(digits, photo.mask)


def _group_components(boxes: list[tuple[int, int, int, int]], digit_height: float) -> list[list[int]]:
    """Group components into digits: overlapping columns, or a small part near a neighbour."""
    order = sorted(range(len(boxes)), key=lambda index: (boxes[index][0] + boxes[index][2]) / 2)
    groups: list[list[int]] = []
    extents: list[list[int]] = []
    for index in order:
        left, top, right, bottom = boxes[index]
        width = right - left
        small = width < SMALL_PART * digit_height and bottom - top < SMALL_PART * digit_height
        joined = False
        for group, extent in zip(reversed(groups), reversed(extents), strict=True):
            overlap = min(right, extent[2]) - max(left, extent[0])
            narrower = min(width, extent[2] - extent[0])
            gap = max(left - extent[2], extent[0] - right, 0)
            union = max(right, extent[2]) - min(left, extent[0])
            if (overlap >= 0.5 * narrower or (overlap > 0.2 * narrower and union <= 0.9 * digit_height)
                    or (small and gap <= NEAR * digit_height)):
                group.append(index)
                extent[:] = [min(extent[0], left), min(extent[1], top), max(extent[2], right), max(extent[3], bottom)]
                joined = True
                break
        if not joined:
            groups.append([index])
            extents.append([left, top, right, bottom])
    # A small part that found no digit to its left may belong to the one on its right; one that is near no
    # digit at all is a stray mark, not a digit.
    kept_groups, kept_extents = [], []
    for position, (group, extent) in enumerate(zip(groups, extents, strict=True)):
        small = max(extent[2] - extent[0], extent[3] - extent[1]) < SMALL_PART * digit_height
        if not small:
            kept_groups.append(group)
            kept_extents.append(extent)
            continue
        following = position + 1 < len(groups) and extents[position + 1][0] - extent[2] <= NEAR * digit_height
        if following:
            groups[position + 1].extend(group)
            nxt = extents[position + 1]
            nxt[:] = [min(nxt[0], extent[0]), min(nxt[1], extent[1]), max(nxt[2], extent[2]), max(nxt[3], extent[3])]
    return kept_groups


def _split_touching(mask: np.ndarray, digit_height: float, strength: np.ndarray, classify, kind: str
                    ) -> list[DigitInk]:
    """Cut a group of ink into digits where it is too wide for one, and prepare each part."""
    columns = np.flatnonzero(mask.any(axis=0))
    left, right = int(columns.min()), int(columns.max()) + 1
    width = right - left
    parts = 1 if width <= WIDE * digit_height else max(2, int(round(width / (DIGIT_WIDTH * digit_height))))
    if parts == 1:
        return [_prepare_part(mask, strength, kind)]
    profile = mask[:, left:right].sum(axis=0).astype(float)
    if parts == 2 and classify is not None:
        # A wide digit (a broad 0 or 2) is as likely as two touching ones: the model decides, and the halves
        # must read more confidently together than the whole does.
        whole = _prepare_part(mask, strength, kind)
        candidates = _lowest_minima(profile, int(0.25 * width), int(0.75 * width), count=3)
        readings = [[whole]] + [[_prepare_part(_columns(mask, left, left + cut), strength, kind),
                                 _prepare_part(_columns(mask, left + cut, right), strength, kind)]
                                for cut in candidates]
        # One call of the model for all the readings: the whole, and each cut's two halves.
        top = np.asarray(classify(np.stack([part.image for reading in readings for part in reading]))).max(axis=1)
        scores, position = [], 0
        for reading in readings:
            scores.append(float(np.prod(top[position:position + len(reading)])))
            position += len(reading)
        return readings[int(np.argmax(scores))]
    cuts = [left]
    for number in range(1, parts):
        even = int(number * width / parts)
        window = int(0.2 * width / parts)
        lowest = _lowest_minima(profile, max(1, even - window), min(width - 1, even + window + 1), count=1)
        cuts.append(left + lowest[0])
    cuts.append(right)
    parts_ink = [_columns(mask, start, stop) for start, stop in zip(cuts[:-1], cuts[1:], strict=True)]
    return [_prepare_part(part, strength, kind) for part in parts_ink if part.any()]


def _lowest_minima(profile: np.ndarray, start: int, stop: int, *, count: int) -> list[int]:
    """The positions of the ``count`` lowest values of a smoothed ``profile`` within [start, stop)."""

    smooth = ndimage.uniform_filter1d(profile, size=3)
    stop = max(stop, start + 1)
    window = smooth[start:stop]
    order = np.argsort(window, kind="stable")[:count]
    return [int(start + position) for position in order]


def _columns(mask: np.ndarray, start: int, stop: int) -> np.ndarray:
    kept = np.zeros_like(mask)
    kept[:, start:stop] = mask[:, start:stop]
    return kept


def _prepare_part(mask: np.ndarray, strength: np.ndarray, kind: str) -> DigitInk:
    """One digit's box and its 28x28 image, prepared as ``digitrec predict`` prepares an image of its kind."""
    rows, columns = np.nonzero(mask)
    box = (int(columns.min()), int(rows.min()), int(columns.max()) + 1, int(rows.max()) + 1)
    crop = (slice(box[1], box[3]), slice(box[0], box[2]))
    try:
        # The digit is cut to its own box: it fills that box without having been stretched to a frame.
        image = prepare_found_ink(mask[crop], strength[crop], kind, own_frame=False)
    except ImageError:
        image = np.zeros((28, 28), dtype=np.float32)
    return DigitInk(box, image)


def read_images(paths: Sequence[str | os.PathLike], model, *, class_names: Sequence[str] | None = None,
                abstention: dict | None = None, expect_digits: int | None = None,
                debug_dir: str | os.PathLike | None = None) -> list[dict]:
    """Read the digit string of each image; a bad file gives an entry with an error and does not stop the others.

    Parameters
    ----------
    paths : sequence of path-like
    model : keras.Model
        Takes (n, 28, 28, 1) inputs in [0, 1] and outputs probabilities.
    class_names : sequence of str, optional
        The digits 0-9 by default.
    abstention : dict, optional
        ``{"score", "threshold"}``: a digit whose score is below the threshold is unsure (``?`` in the text).
        Without it every digit is accepted.
    expect_digits : int, optional
        An image whose string has another length is not accepted.
    debug_dir : path-like, optional
        Writes, per image, the cleaned ink, the boxes drawn on the photo and each prepared digit as PNG.

    Returns
    -------
    entries : list of dict
        ``{"path", "text", "confidence", "accepted", "digits": [{"label", "probability", "accepted", "box"}]}``
        (each digit also has ``score`` with ``abstention``), or ``{"path", "error"}``.
    """
    return list(iterate_readings(paths, model, class_names=class_names, abstention=abstention,
                                 expect_digits=expect_digits, debug_dir=debug_dir))


def iterate_readings(paths: Sequence[str | os.PathLike], model, *, batch_size: int = READ_BATCH_SIZE,
                     progress: bool | None = None, **options) -> Iterator[dict]:
    """Read image files a batch at a time, yielding each entry as soon as its batch is done.

    Takes the arguments of :func:`read_images` (``options``), plus ``batch_size`` and ``progress``: a
    progress bar on standard error, by default when there are more than
    :data:`digitrec_utils.data.preparation.PROGRESS_MINIMUM` images. Memory stays bounded whatever their number.
    """

    show = len(paths) > PROGRESS_MINIMUM if progress is None else progress
    with tqdm(total=len(paths), unit="image", file=sys.stderr, disable=not show, desc="digitrec") as bar:
        for start in range(0, len(paths), batch_size):
            named = []
            for path in paths[start:start + batch_size]:
                try:
                    named.append((str(path), read_image(path)))
                except ImageError as error:
                    named.append((str(path), error))
            yield from read_pixel_images(named, model, **options)
            bar.update(len(named))


def read_pixel_images(named: Sequence[tuple[str, object]], model, *, class_names: Sequence[str] | None = None,
                      abstention: dict | None = None, expect_digits: int | None = None,
                      debug_dir: str | os.PathLike | None = None) -> list[dict]:
    """Read the digit string of each ``(name, pixels)`` pair, as :func:`read_images` does for files.

    ``pixels`` may be an :class:`~digitrec_utils.exceptions.ImageError` (a file that could not be read):
    its entry then carries the error. Returns the same entries as :func:`read_images`, ``path`` being the name.
    """
    def classify(images: np.ndarray) -> np.ndarray:
        inputs = images[..., None].astype(np.float32)
        if len(inputs) <= SMALL_BATCH:  # Calling the model directly skips predict's set-up (about 20 ms a call).
            return np.asarray(model(inputs, training=False), dtype=np.float64)
        return np.asarray(model.predict(inputs, verbose=0), dtype=np.float64)

    entries, found = [], []
    for name, pixels in named:
        try:
            if isinstance(pixels, ImageError):
                raise pixels
            segmented = segment_digits(pixels, source=name, classify=classify)
            entries.append({"path": name})
            found.append((len(entries) - 1, pixels, segmented))
        except ImageError as error:
            entries.append({"path": name, "error": str(error)})
    if not found:
        return entries
    images = np.stack([digit.image for _, _, segmented in found for digit in segmented.digits])
    probabilities = classify(images)
    names = list(class_names or [str(digit) for digit in range(probabilities.shape[1])])
    threshold = (abstention or {}).get("threshold") or 0.0
    scores = compute_score(probabilities, (abstention or {}).get("score", "top_probability"))
    position = 0
    for index, pixels, segmented in found:
        digits = []
        for digit in segmented.digits:
            row = probabilities[position]
            entry = {"label": names[int(row.argmax())], "probability": float(row.max()),
                     "accepted": bool(scores[position] >= threshold), "box": list(digit.box)}
            if abstention:
                entry["score"] = float(scores[position])
            digits.append(entry)
            position += 1
        confidence = float(np.prod([digit.get("score", digit["probability"]) for digit in digits]))
        text = "".join(digit["label"] if digit["accepted"] else "?" for digit in digits)
        accepted = all(digit["accepted"] for digit in digits) and (expect_digits is None
                                                                    or len(digits) == expect_digits)
        entries[index].update(text=text, confidence=confidence, accepted=accepted, digits=digits)
        if debug_dir is not None:
            _write_debug_images(Path(debug_dir), Path(entries[index]["path"]), pixels, segmented, digits)
    return entries


def _write_debug_images(folder: Path, path: Path, pixels: np.ndarray, segmented: Segmented, digits: list[dict]
                       ) -> list[Path]:
    """Write ``<stem>-ink.png``, ``<stem>-boxes.png`` and ``<stem>-digit-<k>.png`` into ``folder``."""

    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / f"{path.stem}-ink.png", folder / f"{path.stem}-boxes.png"]
    Image.fromarray((segmented.mask * 255).astype(np.uint8)).save(written[0])
    drawn = Image.fromarray(np.asarray(pixels, dtype=np.uint8)).convert("RGB")
    pen = ImageDraw.Draw(drawn)
    for digit in digits:
        colour = (0, 160, 0) if digit["accepted"] else (220, 0, 0)
        pen.rectangle(digit["box"], outline=colour, width=2)
        pen.text((digit["box"][0], max(0, digit["box"][1] - 12)), digit["label"], fill=colour)
    drawn.save(written[1])
    for number, digit in enumerate(segmented.digits, start=1):
        target = folder / f"{path.stem}-digit-{number}.png"
        Image.fromarray((digit.image * 255).astype(np.uint8)).save(target)
        written.append(target)
    return written


def format_reading(entry: dict) -> str:
    """One line for an entry of :func:`read_images`: ``path: 90210 (confidence 0.97)``, ``unsure`` when not accepted."""
    if "error" in entry:
        return f"error: {entry['error']}"
    unsure = "" if entry["accepted"] else "  unsure"
    return f"{entry['path']}: {entry['text'] or '-'} (confidence {entry['confidence']:.2f}){unsure}"
