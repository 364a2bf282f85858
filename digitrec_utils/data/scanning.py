"""Training digits made to look like other writers' scans, for ``cnn_modern`` to read other hands and scanners.

Digits from another source differ from MNIST's in ways a model trained on MNIST alone has never seen
(``semeion``, ``optdigits``: see docs/DATA.md). :func:`simulate_scans` gives an MNIST digit those ways, in
the order a scanner and a form would, and then prepares it exactly as ``digitrec predict`` prepares a clean
scan (:func:`digitrec_utils.data.preparation.prepare_image`), so that the copy is what the model would be fed:

=====================  ==============================================================================
change                 how
=====================  ==============================================================================
crossed 7              a bar across a 7's stem, with a share ``crossed_seven`` (many European writers
                       cross their 7s; MNIST's American writers rarely do)
slant                  a horizontal shear of -0.4 to 0.4, with a share ``slant``
aspect ratio           the digit's box is stretched to a square (as semeion's forms did), with a share
                       :data:`SCAN_SETTINGS` ``square``; else its width changes by a factor 0.8 to 1.25
low resolution         the box is scaled to fill a frame of 16 to 32 pixels (16x16 and 32x32 are the
                       field sets'), losing detail as those scanners did, with a margin of 0 to 2 pixels
stroke width           a thicker pen (grey dilation by a 2x2 square) or a thinner one (erosion), each
                       with a share ``pen``, at the low resolution
blur                   a Gaussian blur of sigma 0.4 to 0.8 pixels, with a share ``blur``
binarisation           a threshold at 30% to 60% of the ink level, with a share ``binary``
=====================  ==============================================================================

The copies are made once, before training, with a seed of their own (NumPy, SciPy and Pillow): the saved
model stays a plain Keras model, with nothing of this at inference. The settings were chosen on
``semeion`` (the "other scanner" validation set) and never on ``optdigits``, which is only reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage
from scipy.ndimage import gaussian_filter, map_coordinates

from digitrec_utils.data.preparation import prepare_image_with_kind
from digitrec_utils.exceptions import ImageError


@dataclass(frozen=True)
class ScanSettings:
    """How often each change of :func:`simulate_scans` happens, and its range (see the module's table)."""

    elastic: float = 0.0
    elastic_alpha: tuple[float, float] = (4.0, 10.0)
    square: float = 0.5
    slant: float = 0.5
    slant_amount: tuple[float, float] = (-0.4, 0.4)
    crossed_seven: float = 0.3
    width_factor: tuple[float, float] = (0.8, 1.25)
    frame: tuple[int, int] = (16, 32)
    margin: tuple[int, int] = (0, 2)
    pen: float = 0.4
    blur: float = 0.2
    blur_sigma: tuple[float, float] = (0.4, 0.8)
    binary: float = 0.7
    binary_level: tuple[float, float] = (0.3, 0.6)


SCAN_SETTINGS = ScanSettings()


def _simulate_scan(digit: np.ndarray, rng: np.random.Generator, settings: ScanSettings = SCAN_SETTINGS, *,
                  label: int | None = None) -> np.ndarray:
    """Return one MNIST digit as another scanner would have made it: dark ink on white, a small frame.

    Parameters
    ----------
    digit : ndarray of shape (28, 28), uint8
        Light ink on a dark background (MNIST's convention).
    rng : numpy.random.Generator
    label : int, optional
        The digit's label: a 7 may be crossed, as many European writers cross theirs.

    Returns
    -------
    scan : ndarray of shape (frame, frame), uint8
        Dark ink on a white background, as a scanned file holds it.
    """

    if rng.random() < settings.elastic:
        digit = _distort(digit, rng.uniform(*settings.elastic_alpha), rng)
    rows, columns = np.nonzero(digit > 0)
    if rows.size == 0:
        raise ValueError("_simulate_scan needs a digit with ink.")
    crop = digit[rows.min():rows.max() + 1, columns.min():columns.max() + 1].astype(np.float32)
    if label == 7 and rng.random() < settings.crossed_seven:
        crop = _cross_seven(crop)
    if rng.random() < settings.slant:
        crop = _slant(crop, rng.uniform(*settings.slant_amount))
    height, width = crop.shape
    side = int(rng.integers(settings.frame[0], settings.frame[1] + 1))
    margin = int(rng.integers(settings.margin[0], settings.margin[1] + 1))
    box = max(4, side - 2 * margin)
    if rng.random() < settings.square:
        size = (box, box)
    else:
        stretched = width * rng.uniform(*settings.width_factor)
        scale = box / max(height, stretched)
        size = (max(1, min(box, round(stretched * scale))), max(1, min(box, round(height * scale))))
    resized = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BILINEAR, reducing_gap=None))
    frame = np.zeros((side, side), dtype=np.float32)
    top, left = (side - size[1]) // 2, (side - size[0]) // 2
    frame[top:top + size[1], left:left + size[0]] = resized
    pen = rng.random()
    if pen < settings.pen / 2:
        frame = ndimage.grey_dilation(frame, size=(2, 2))
    elif pen < settings.pen:
        thinner = ndimage.grey_erosion(frame, size=(2, 2))
        if thinner.max() >= 0.5 * frame.max():  # A pen so thin that the digit vanishes is no scan.
            frame = thinner
    if rng.random() < settings.blur:
        frame = ndimage.gaussian_filter(frame, sigma=rng.uniform(*settings.blur_sigma))
    peak = max(float(frame.max()), 1.0)
    if rng.random() < settings.binary:
        frame = np.where(frame >= rng.uniform(*settings.binary_level) * peak, 255.0, 0.0)
    else:
        frame = frame * (255.0 / peak)
    return (255 - np.clip(np.rint(frame), 0, 255)).astype(np.uint8)


def _distort(digit: np.ndarray, alpha: float, rng: np.random.Generator) -> np.ndarray:
    """Simard et al.'s elastic distortion of a 28x28 digit (another hand's wobble), as ``corruptions`` makes it."""

    side = digit.shape[0]
    rows, columns = np.meshgrid(np.arange(side), np.arange(digit.shape[1]), indexing="ij")
    dy = gaussian_filter(rng.uniform(-1.0, 1.0, size=digit.shape), 3.0, mode="constant") * alpha
    dx = gaussian_filter(rng.uniform(-1.0, 1.0, size=digit.shape), 3.0, mode="constant") * alpha
    distorted = map_coordinates(digit.astype(np.float32), [rows + dy, columns + dx], order=1, mode="constant", cval=0.0)
    return np.clip(np.rint(distorted), 0, 255).astype(np.uint8)


def _cross_seven(crop: np.ndarray) -> np.ndarray:
    """Draw a bar across a 7's stem at half its height, a third of the digit wide, as thick as its strokes."""
    crop = crop.copy()
    height, width = crop.shape
    row = height // 2
    ink = np.flatnonzero(crop[row] > 0.5 * crop.max())
    if not ink.size:
        return crop
    centre = int(ink.mean())
    half = max(2, width // 6)
    thickness = max(1, min(3, height // 8))
    top = max(0, row - thickness // 2)
    crop[top:top + thickness, max(0, centre - half):min(width, centre + half + 1)] = crop.max()
    return crop


def _slant(crop: np.ndarray, amount: float) -> np.ndarray:
    """Shear a digit's box horizontally (a writer's slant), widening the box so that nothing is cut."""

    height, width = crop.shape
    extra = int(np.ceil(abs(amount) * height))
    padded = np.pad(crop, ((0, 0), (extra, extra)))
    # Output (row, column) reads input (row, column + amount * (row - middle)): the top leans one way.
    matrix = np.array([[1.0, 0.0], [amount, 1.0]])
    offset = np.array([0.0, -amount * (height - 1) / 2])
    slanted = ndimage.affine_transform(padded, matrix, offset=offset, order=1, mode="constant", cval=0.0)
    columns = np.flatnonzero(slanted.max(axis=0) > 0)
    return slanted[:, columns.min():columns.max() + 1] if columns.size else crop


def simulate_scans(images: np.ndarray, *, seed: int, settings: ScanSettings = SCAN_SETTINGS,
                   labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return scanned-looking copies of MNIST digits, prepared as ``digitrec predict`` prepares a clean scan.

    Parameters
    ----------
    images : ndarray of shape (n_images, 28, 28), uint8
        Light ink on a dark background.
    seed : int
    labels : ndarray of shape (n_images,), optional
        Their labels, for the changes that depend on the digit (a crossed 7).

    Returns
    -------
    prepared : ndarray of shape (n_images, 28, 28), float32 in [0, 1]
        All zeros where preparation found no ink.
    usable : ndarray of shape (n_images,), bool
        False where no ink was found, or where the copy was taken for a photo (about 1 in 100).
    """
    rng = np.random.default_rng([seed, 1593])
    prepared = np.zeros((len(images), 28, 28), dtype=np.float32)
    usable = np.zeros(len(images), dtype=bool)
    for index, digit in enumerate(images):
        label = None if labels is None else int(labels[index])
        try:
            image, kind = prepare_image_with_kind(_simulate_scan(digit, rng, settings, label=label))
        except (ImageError, ValueError):
            continue
        # A copy that the survey takes for a photo (a blot of ink in a tiny frame) is no scan to learn from; a
        # 28x28 one is prepared as predict prepares any 28x28 file (a field), and is kept.
        if kind != "photo":
            prepared[index], usable[index] = image, True
    return prepared, usable
