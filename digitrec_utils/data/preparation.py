"""Prepare any digit image the way MNIST's digits were made, with NumPy, SciPy, scikit-image and Pillow only.

MNIST's preparation (LeCun et al.): the digit is a light stroke on a dark background, its bounding box is
scaled so that the longer side is 20 pixels (keeping the aspect ratio), and it is placed in a 28x28
field so that its centre of mass is at the centre. :func:`prepare_image` does the same to any PNG, JPEG,
BMP or GIF, with Pillow for reading and resizing, NumPy for the bounding box and SciPy for the centre
of mass and the shift. It lives in the data layer, below the saved-model files (which record
:data:`PREPARATION_VERSION`) and ``digitrec predict`` (which feeds the prepared images to a model).
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage
from tqdm import tqdm

from digitrec_utils.data.ink import find_ink, normalise_strokes
from digitrec_utils.data.properties import RAW_PROPERTIES, measure_raw_properties
from digitrec_utils.exceptions import ImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
# Larger images are shrunk to this many pixels while they are read (a phone photo of 12 MP becomes about
# 2,000 x 1,500): digits stay tens of pixels tall, and memory stays far under 1 GiB.
MAX_PIXELS = 3_000_000
# An image that would decode to more pixels than this is refused before it is decoded (after a JPEG's
# reduced decoding, which keeps a 50-megapixel phone photo small): 40 megapixels holds an A4 page scanned
# at 600 dpi (35 megapixels) and decodes to at most 160 MB; a decompression bomb (a PNG of a few hundred
# kilobytes that holds 15,000 x 15,000 pixels) is named and the other files go on.
MAX_DECODED_PIXELS = 40_000_000
# The version of the preparation below: a threshold chosen on images prepared one way (saved with a model
# by 05_deployment) is only valid for images prepared the same way. 2: photo-grade ink (digitrec.ink);
# 3: clean scans told from photos and prepared their own way, 28x28 digits re-centred by mass; 4: a scan
# whose digit was stretched to fill its square frame is narrowed back (STRETCHED_WIDTH).
PREPARATION_VERSION = 4
# Pixels (0-255, after inversion to a dark background) at least this far above the background count as ink.
INK_THRESHOLD = 40
# In a clean scan, whose paper is 0 after its levels are stretched, the crop starts at this grey level.
SCAN_CROP_THRESHOLD = 10
# In a 28x28 image, taken as cropped already, a faded scan's ink may lie only this far above the background.
FIELD_INK_THRESHOLD = 24
DIGIT_BOX = 20
# A clean scan whose ink touches all four sides of a square image was stretched to fill its box, as
# semeion's forms were: its digit's own width is lost, and MNIST's digits keep theirs (their boxes' median
# width is 0.8 of their height). Such a digit is narrowed to this share of its stretched width before it is
# scaled. Chosen on semeion with the sample model: 0.904 read right at 1 (no narrowing), 0.913 at 0.85,
# 0.923 at 0.7, 0.929 at 0.6, 0.928 at 0.55, 0.924 at 0.5, 0.903 at 0.4 (docs/RESULTS.md).
STRETCHED_WIDTH = 0.6
# Files are read, prepared and classified this many at a time: memory stays bounded whatever their number.
BATCH_SIZE = 512
# A progress bar goes to standard error when there are more images than this.
PROGRESS_MINIMUM = 300
# A 28x28 digit whose centre of mass is this many pixels or more off MNIST's, along either axis, is moved
# back; MNIST's own digits lie within a pixel of it (their centre is weighed on the whole image, ours on
# the ink above RECENTRE_NOISE_FLOOR only, so that noise does not pull it).
RECENTRE_TOLERANCE = 2
RECENTRE_NOISE_FLOOR = 0.25
FIELD = 28
# Where MNIST puts a digit's centre of mass, in 0-based pixel coordinates of both axes: the mean over
# mnist-sample's 5,000 digits is 14.0 to within 0.1 (half a pixel below and right of the field's middle).
MASS_CENTRE = 14.0


def read_image(path: str | os.PathLike, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file as grayscale uint8 of shape (height, width); transparent pixels count as white.

    Only the file's header is read before its size is checked: an image that would decode to more than
    :data:`MAX_DECODED_PIXELS` (a decompression bomb: a small PNG of 15,000 x 15,000 white pixels) is refused
    then, in milliseconds. A larger JPEG is decoded at a fraction of its size (Pillow's ``draft``), and any
    image of more than ``max_pixels`` pixels is shrunk to fit while it is read (``reduce``), so that a
    50-megapixel photo never sits in memory at full size as floats. A phone photo whose EXIF orientation says
    it was taken sideways is turned upright, as a phone shows it; 16-bit images keep their grey levels; an
    animated GIF gives its first frame.

    Raises
    ------
    ImageError
        Naming the file when it is missing, unreadable, truncated, not an image, or too large to decode.
    """

    path = Path(path)
    try:
        with warnings.catch_warnings():
            # The size is checked below, before any decoding, against a limit lower than Pillow's warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.seek(0)  # The first frame of an animated GIF.
                if image.width * image.height > max_pixels:
                    factor = int(np.ceil(np.sqrt(image.width * image.height / max_pixels)))
                    image.draft("L", (image.width // factor, image.height // factor))
                _check_decoded_size(path, image.width, image.height)
                if image.width * image.height > max_pixels:
                    image = image.reduce(int(np.ceil(np.sqrt(image.width * image.height / max_pixels))))
                image = ImageOps.exif_transpose(image)
                return _convert_to_grey(image)
    except Image.DecompressionBombError as error:  # Pillow refuses above twice its own limit, at open.
        raise ImageError(f"{path}: {_describe_too_large()} ({error})") from error
    except FileNotFoundError as error:
        raise ImageError(f"{path}: no such file.") from error
    except IsADirectoryError as error:
        if not os.access(path, os.R_OK | os.X_OK):
            raise ImageError(f"{path}: a folder that cannot be read (permission denied); make it readable "
                             "(chmod +rx) to read its images.") from error
        raise ImageError(f"{path}: is a folder, not an image file.") from error
    except PermissionError as error:
        raise ImageError(f"{path}: cannot be read (permission denied); make it readable (chmod +r).") from error
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as error:
        raise ImageError(f"{path}: not a readable image ({type(error).__name__}); use a PNG, JPEG, BMP or GIF "
                         "file.") from error


def _describe_too_large(width: int | None = None, height: int | None = None) -> str:
    """Say that an image is larger than digitrec decodes, and what to do about it."""
    size = f"{width:,} x {height:,} pixels ({width * height / 1e6:,.0f} megapixels) is " if width else "it is "
    return (f"{size}more than digitrec decodes ({MAX_DECODED_PIXELS / 1e6:.0f} megapixels); scale it down or crop "
            "it to the digits (a 300 dpi scan of a page is 9 megapixels).")


def _check_decoded_size(path: Path, width: int, height: int) -> None:
    """Raise ImageError, naming ``path``, when an image would decode to more than :data:`MAX_DECODED_PIXELS`."""
    if width * height > MAX_DECODED_PIXELS:
        raise ImageError(f"{path}: {_describe_too_large(width, height)}")


def _convert_to_grey(image) -> np.ndarray:
    """Return a Pillow image of any mode as grayscale uint8, transparent pixels white, 16-bit levels kept."""

    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # Pillow's conversion to "L" clips 16- and 32-bit levels at 255, which turns most of an image white.
        levels = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or levels.max() > 255 else 255.0
        return np.clip(np.round(levels * (255.0 / top)), 0, 255).astype(np.uint8)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("L"), dtype=np.uint8)


def prepare_image(pixels: np.ndarray, *, source: str = "image") -> np.ndarray:
    """Turn a grayscale image of any size into a 28x28 MNIST-style input.

    1. An image that is already 28x28 is taken as cropped (MNIST's own images, or corrupted copies of
       them): cropping it again would take noise for ink and shrink the digit. Its levels change (the
       background becomes 0 and the brightest pixel 1, dark ink is inverted), so that a faded, grey or
       brightened scan reads like a clean one, and a digit off MNIST's centre of mass by two pixels or
       more is moved back (:func:`_prepare_fields`). A centred MNIST digit passes unchanged.
    2. Any other image is surveyed (:func:`digitrec_utils.imaging.ink.survey_image`): a clean scan (a plain
       background and a clear ink level: a scanner's output, a bitmap, a digit drawn on screen) has its
       levels stretched from the background to the ink (:func:`digitrec_utils.imaging.ink.find_scan_ink`); a
       photo has its lighting corrected, ruled and grid lines removed, specks dropped
       (:func:`digitrec_utils.imaging.ink.find_photo_ink`) and a pen's thin strokes widened towards MNIST's
       (:func:`digitrec_utils.imaging.ink.normalise_strokes`).
    3. The ink is cropped, scaled so that its longer side is 20 pixels and centred by mass in 28x28
       (:func:`place_in_field`).

    Parameters
    ----------
    pixels : ndarray of shape (height, width), uint8
    source : str
        Names the image in errors.

    Returns
    -------
    image : ndarray of shape (28, 28), float32 in [0, 1]

    Raises
    ------
    ImageError
        When the image holds no ink (a blank or uniform image).
    """
    return prepare_image_with_kind(pixels, source=source)[0]


def prepare_image_with_kind(pixels: np.ndarray, *, source: str = "image") -> tuple[np.ndarray, str]:
    """Prepare an image as :func:`prepare_image` does, and say how: ``field``, ``scan`` or ``photo``."""
    pixels = np.asarray(pixels, dtype=np.float32)
    if pixels.ndim != 2 or min(pixels.shape) < 1:
        raise ImageError(f"{source}: expected a 2-D grayscale image, got shape {pixels.shape}.")
    if pixels.shape == (FIELD, FIELD):
        prepared, usable = _prepare_fields(pixels[None])
        if not usable[0]:
            raise ImageError(f"{source}: no ink found (the image is blank or uniform); give an image with a "
                             "visible digit.")
        return prepared[0], "field"
    ink, survey = find_ink(pixels)
    if not ink.mask.any():
        raise ImageError(f"{source}: no ink found (the image is blank, uniform or only lines); give an image with a "
                         "visible digit.")
    return prepare_found_ink(ink.mask, ink.strength, survey.kind, source=source), survey.kind


def prepare_found_ink(mask: np.ndarray, strength: np.ndarray, kind: str, *, source: str = "image",
                      own_frame: bool = True) -> np.ndarray:
    """Place one digit's ink in a 28x28 field, the way its kind of image needs.

    A photo's strokes are brought towards MNIST's width first (:func:`digitrec_utils.imaging.ink.normalise_strokes`)
    and its crop starts at :data:`INK_THRESHOLD`, above what is left of the paper. A clean scan keeps its
    own strokes and grey levels (redrawing them at MNIST's width read semeion's digits no better: 0.887
    against 0.898 with the sample model), and its crop starts at :data:`SCAN_CROP_THRESHOLD`, so that
    anti-aliased edges count as they did when MNIST was made.

    Parameters
    ----------
    mask : ndarray of shape (height, width), bool
        The digit's ink.
    strength : ndarray of shape (height, width), float
        Ink strength 0-255, light ink on dark.
    kind : {"scan", "photo"}
    own_frame : bool, default=True
        Whether ``mask`` and ``strength`` cover the whole image the digit came in, so that a scan whose ink
        fills them was stretched to its frame and is narrowed (:func:`is_stretched_to_frame`); False for a
        digit cut to its own box from a larger image, as ``digitrec read`` cuts each digit of a string.
    """

    if kind == "scan":
        # The scan's grey levels within a pixel of this digit's ink, and nothing of a neighbour's.
        near = ndimage.binary_dilation(mask, structure=np.ones((3, 3), dtype=bool))
        ink = np.where(near, strength, 0.0)
        width_factor = STRETCHED_WIDTH if own_frame and is_stretched_to_frame(ink, SCAN_CROP_THRESHOLD) else 1.0
        return place_in_field(ink, source=source, threshold=SCAN_CROP_THRESHOLD, width_factor=width_factor)
    return place_in_field(normalise_strokes(mask, strength), source=source)


def is_stretched_to_frame(ink: np.ndarray, threshold: float = SCAN_CROP_THRESHOLD) -> bool:
    """Say whether a digit's ink touches all four sides of a square image, as a digit stretched to its box does.

    Parameters
    ----------
    ink : ndarray of shape (height, width)
        Ink strength 0-255, light ink on dark.
    threshold : float
        The level from which a pixel counts as ink.
    """
    height, width = ink.shape
    if height != width:
        return False
    inked = ink >= threshold
    return bool(inked[0].any() and inked[-1].any() and inked[:, 0].any() and inked[:, -1].any())


def place_in_field(ink: np.ndarray, *, source: str = "image", threshold: float = INK_THRESHOLD,
                   width_factor: float = 1.0) -> np.ndarray:
    """Crop ink (light on dark, 0-255) to its box, scale its longer side to 20 pixels and centre it by mass in 28x28.

    The crop is the bounding box of the pixels at least ``threshold`` above 0 (:data:`INK_THRESHOLD` for a
    photo, :data:`SCAN_CROP_THRESHOLD` for a clean scan); it is resized with
    Pillow's Lanczos filter, keeping the aspect ratio (its width first multiplied by ``width_factor``, which
    narrows a digit stretched to its frame: :data:`STRETCHED_WIDTH`), pasted into a 28x28 field, and shifted
    so that its centre of mass sits where MNIST's do (SciPy's ``center_of_mass`` and ``shift``, whole pixels).

    Returns
    -------
    image : ndarray of shape (28, 28), float32 in [0, 1]
    """

    rows, columns = np.nonzero(ink >= threshold)
    if rows.size == 0:
        raise ImageError(f"{source}: no ink found (the image is blank or uniform); give an image with a "
                         "visible digit.")
    cropped = ink[rows.min():rows.max() + 1, columns.min():columns.max() + 1]
    height, width = cropped.shape[0], cropped.shape[1] * width_factor
    scale = DIGIT_BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = np.asarray(Image.fromarray(cropped.astype(np.float32)).resize(size, Image.Resampling.LANCZOS))
    resized = np.clip(resized, 0.0, 255.0)
    field = np.zeros((FIELD, FIELD), dtype=np.float32)
    top, left = (FIELD - size[1]) // 2, (FIELD - size[0]) // 2
    field[top:top + size[1], left:left + size[0]] = resized
    centre_row, centre_column = ndimage.center_of_mass(field)
    offset = (round(MASS_CENTRE - centre_row), round(MASS_CENTRE - centre_column))
    centred = ndimage.shift(field, offset, order=0, mode="constant", cval=0.0)
    return (centred / max(float(centred.max()), 1.0)).astype(np.float32)


def prepare_image_batch(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply :func:`prepare_image` to each image of a stack, as ``digitrec predict`` does to each file.

    Parameters
    ----------
    images : ndarray of shape (n_images, height, width), uint8

    Returns
    -------
    prepared : ndarray of shape (n_images, 28, 28), float32 in [0, 1]
        Images in which no ink was found are all zeros.
    usable : ndarray of shape (n_images,), bool
        False where :func:`prepare_image` found no ink: ``predict`` reports those files as errors, so a
        report counts them as not answered.
    """
    images = np.asarray(images)
    if images.ndim == 3 and images.shape[1:] == (FIELD, FIELD):
        return _prepare_fields(images)
    prepared = np.zeros((len(images), FIELD, FIELD), dtype=np.float32)
    usable = np.zeros(len(images), dtype=bool)
    for index, image in enumerate(images):
        try:
            prepared[index] = prepare_image(image)
            usable[index] = True
        except ImageError:
            pass
    return prepared, usable


def _prepare_fields(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Prepare a stack of 28x28 images (:func:`prepare_image`, step 2), each on its own, in one vectorized pass.

    ``prepare_image`` calls it with a stack of one; the 05 report with hundreds of thousands of corrupted
    images, which one at a time took about a minute of its full-scale run. ``tests/test_predict.py``
    checks that an image comes out the same alone as within a stack.

    Returns
    -------
    prepared : ndarray of shape (n_images, 28, 28), float32 in [0, 1]
        All zeros where no ink was found.
    usable : ndarray of shape (n_images,), bool
        Whether ink was found: the brightest pixel at least ``FIELD_INK_THRESHOLD`` above the background.
    """
    pixels = images.astype(np.float32)
    # The background is the median of the border pixels.
    border = np.concatenate([pixels[:, 0], pixels[:, -1], pixels[:, :, 0], pixels[:, :, -1]], axis=1)
    background = np.median(border, axis=1)
    # The ink covers a fifth of a 28x28 digit: it is dark when the darkest pixels lie further below the
    # background than the lightest lie above it (a brightened scan has a grey background and light ink).
    low, high = np.percentile(pixels.reshape(len(pixels), -1), [1, 99], axis=1)
    dark = background - low > high - background
    pixels = np.where(dark[:, None, None], 255.0 - pixels, pixels).astype(np.float32)
    background = np.where(dark, 255.0 - background, background).astype(np.float32)
    peak = pixels.max(axis=(1, 2)) - background
    usable = peak >= FIELD_INK_THRESHOLD
    safe_peak = np.where(usable, peak, 1.0).astype(np.float32)[:, None, None]
    prepared = np.clip(pixels - background[:, None, None], 0.0, safe_peak) / safe_peak
    prepared[~usable] = 0.0
    return _recentre_fields(prepared.astype(np.float32)), usable


def _recentre_fields(fields: np.ndarray) -> np.ndarray:
    """Move each 28x28 digit whose centre of mass lies :data:`RECENTRE_TOLERANCE` pixels or more off MNIST's back.

    The centre is weighed on the ink above :data:`RECENTRE_NOISE_FLOOR` only, so that noise spread over
    the field does not pull it; the move is by whole pixels (no resampling), so that a centred digit, and
    a moved one, keep their pixel values exactly. Vectorized: one gather for the whole stack.
    """
    weights = np.clip(fields - RECENTRE_NOISE_FLOOR, 0.0, None)
    total = weights.sum(axis=(1, 2))
    grid = np.arange(FIELD, dtype=np.float32)
    safe_total = np.where(total > 0, total, 1.0)
    centre_rows = (weights.sum(axis=2) * grid).sum(axis=1) / safe_total
    centre_columns = (weights.sum(axis=1) * grid).sum(axis=1) / safe_total
    offsets = np.stack([np.rint(MASS_CENTRE - centre_rows), np.rint(MASS_CENTRE - centre_columns)], axis=1)
    offsets[total <= 0] = 0
    moved = np.flatnonzero(np.abs(offsets).max(axis=1) >= RECENTRE_TOLERANCE)
    if not moved.size:
        return fields
    shifts = offsets[moved].astype(int)
    source_rows = np.arange(FIELD)[None, :] - shifts[:, :1]
    source_columns = np.arange(FIELD)[None, :] - shifts[:, 1:]
    inside = (((source_rows >= 0) & (source_rows < FIELD))[:, :, None]
              & ((source_columns >= 0) & (source_columns < FIELD))[:, None, :])
    gathered = fields[moved[:, None, None], np.clip(source_rows, 0, FIELD - 1)[:, :, None],
                      np.clip(source_columns, 0, FIELD - 1)[:, None, :]]
    fields = fields.copy()
    fields[moved] = np.where(inside, gathered, 0.0)
    return fields


def collect_image_files(inputs: Iterable[str | os.PathLike]) -> tuple[list[Path], list[Path]]:
    """Expand files and folders into the image files to read, and the other files the folders held.

    A folder is walked with its sub-folders (hidden files and folders left out, links to folders followed
    once each, so that a link loop ends), sorted, and gives the files whose suffix is an image's
    (:data:`IMAGE_SUFFIXES`, any case); its other files (a README, notes) are returned apart, for the caller
    to list once. A file named on its own is always read, whatever its suffix, so that a non-image given by
    name is reported as an error. A folder that cannot be read is returned among the images, so that
    reading it names it with its reason (:func:`read_image`) and the other files go on.

    Returns
    -------
    images : list of Path
    skipped : list of Path
        Files found in folders that are not images by their suffix.
    """
    images: list[Path] = []
    skipped: list[Path] = []
    for item in inputs:
        path = Path(item)
        if not path.is_dir():
            images.append(path)
            continue
        found: list[Path] = []
        unreadable: list[OSError] = []
        visited: set[tuple[int, int]] = set()
        for folder, folders, files in os.walk(path, onerror=unreadable.append, followlinks=True):
            identity = os.stat(folder)
            if (identity.st_dev, identity.st_ino) in visited:  # A link back to a folder already walked.
                folders.clear()
                continue
            visited.add((identity.st_dev, identity.st_ino))
            folders[:] = [name for name in folders if not name.startswith(".")]
            found += [Path(folder, name) for name in files if not name.startswith(".")]
        found += [Path(error.filename) for error in unreadable]
        for child in sorted(found):
            if child.is_dir():
                images.append(child)  # Unreadable: read_image names it.
            elif child.is_file():
                (images if child.suffix.lower() in IMAGE_SUFFIXES else skipped).append(child)
    return images, skipped


def describe_skipped(skipped: Sequence[Path], *, shown: int = 5) -> str:
    """One line naming the files that were skipped because they are not images (the first ``shown`` of them)."""
    names = ", ".join(str(path) for path in skipped[:shown])
    more = f" and {len(skipped) - shown:,} more" if len(skipped) > shown else ""
    files = "1 file that is" if len(skipped) == 1 else f"{len(skipped):,} files that are"
    return f"skipped {files} not PNG, JPEG, BMP or GIF: {names}{more}"


@dataclass
class PreparedBatch:
    """A batch of image files, read and prepared for the model.

    Attributes
    ----------
    paths : list of str
        The batch's files, in order.
    images : ndarray of shape (n_prepared, 28, 28), float32
        The prepared images of the files that could be used.
    positions : list of int
        For each prepared image, its file's position in ``paths``.
    kinds : list of str
        For each prepared image, how it was prepared: ``field``, ``scan`` or ``photo``.
    errors : dict of int to str
        For each file that could not be used, its position and the reason.
    file_properties : ndarray of shape (n_prepared, 4) or None
        For each prepared image, its file's properties before preparation
        (:func:`digitrec_utils.data.properties.measure_raw_properties`), when they were asked for.
    """

    paths: list[str]
    images: np.ndarray
    positions: list[int]
    kinds: list[str]
    errors: dict[int, str]
    file_properties: np.ndarray | None = None


def prepare_image_files(paths: Sequence[str | os.PathLike], *, batch_size: int = BATCH_SIZE,
                        progress: bool | None = None, measure_files: bool = False) -> Iterator[PreparedBatch]:
    """Read and prepare image files a batch at a time, so that memory stays bounded whatever their number.

    Parameters
    ----------
    paths : sequence of path-like
    batch_size : int, default=BATCH_SIZE
    progress : bool, optional
        Show a progress bar on standard error; by default when there are more than
        :data:`PROGRESS_MINIMUM` files.
    measure_files : bool, default=False
        Measure each file's properties before preparation too (``digitrec monitor`` compares them).

    Yields
    ------
    batch : PreparedBatch
    """

    if batch_size < 1:
        raise ValueError(f"batch_size = {batch_size}: prepare at least one image at a time.")
    show = len(paths) > PROGRESS_MINIMUM if progress is None else progress
    with tqdm(total=len(paths), unit="image", file=sys.stderr, disable=not show, desc="digitrec") as bar:
        for start in range(0, len(paths), batch_size):
            names = [str(path) for path in paths[start:start + batch_size]]
            images, positions, kinds, errors, measured = [], [], [], {}, []
            for position, name in enumerate(names):
                try:
                    pixels = read_image(name)
                    image, kind = prepare_image_with_kind(pixels, source=name)
                except ImageError as error:
                    errors[position] = str(error)
                    continue
                images.append(image)
                positions.append(position)
                kinds.append(kind)
                if measure_files:
                    measured.append(measure_raw_properties(pixels))
            stacked = np.stack(images) if images else np.zeros((0, FIELD, FIELD), dtype=np.float32)
            file_properties = (np.array(measured, dtype=np.float64).reshape(-1, len(RAW_PROPERTIES))
                               if measure_files else None)
            yield PreparedBatch(names, stacked, positions, kinds, errors, file_properties)
            bar.update(len(names))
