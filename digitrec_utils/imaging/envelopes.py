"""Photo-like images of handwritten digits and digit strings, made from MNIST digits, for tests and reports.

A postal office photographs or scans paper: a ballpoint or pencil stroke much thinner than MNIST's, ruled
or squared paper, uneven light, JPEG compression. These generators turn 28x28 MNIST digits into such
images, seeded, with settings fixed in :data:`PHOTO` (no easier than issue 16 asks):

=====================  ==============================================================================
setting                value
=====================  ==============================================================================
digit height           300 pixels for a single digit, 110 to 130 in a string
stroke                 the digit's skeleton (scikit-image), widened to 1 to 3 pixels at that scale
ink                    grey level 30 to 90; the paper 190 to 235
lines                  grid (horizontal and vertical) or ruled (horizontal), 1 to 2 pixels wide, every 30
                       to 60 pixels, grey level 40 to 70 below the paper
light                  a linear brightness gradient across the image, losing 30% to 45% of the paper's
                       level at the dark side, in a random direction
noise                  Gaussian, sigma 4 grey levels
compression            JPEG, quality 70
strings                3 to 6 digits; gaps from -4 pixels (touching) to half a digit wide; the baseline
                       wanders by up to a fifth of the digit height
=====================  ==============================================================================
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image
from skimage.morphology import dilation, disk, skeletonize


@dataclass(frozen=True)
class PhotoSettings:
    """How photo-like images are made (see the module's table)."""

    digit_height: int = 300
    string_digit_height: tuple[int, int] = (110, 130)
    stroke_width: tuple[int, int] = (1, 3)
    ink_level: tuple[int, int] = (30, 90)
    paper_level: tuple[int, int] = (190, 235)
    line_spacing: tuple[int, int] = (30, 60)
    line_width: tuple[int, int] = (1, 2)
    line_darkness: tuple[int, int] = (40, 70)
    gradient: tuple[float, float] = (0.30, 0.45)
    noise_sigma: float = 4.0
    jpeg_quality: int = 70
    gap: tuple[float, float] = (-4.0, 0.5)  # Pixels for the low end (touching), digit widths for the high end.
    baseline_wander: float = 0.2


PHOTO = PhotoSettings()


def _draw_thin_digit(digit: np.ndarray, height: int, stroke: int) -> np.ndarray:
    """Return a 28x28 MNIST digit redrawn ``height`` pixels tall with strokes ``stroke`` pixels wide.

    The digit is upscaled (Pillow, bicubic), thresholded, reduced to its skeleton and widened again with a
    disk (scikit-image), so that its stroke is a pen's, not MNIST's thick blur.

    Returns
    -------
    ink : ndarray of shape (height, width), bool
        Cropped to the digit.
    """

    digit = np.asarray(digit, dtype=np.uint8)
    rows, columns = np.nonzero(digit > 40)
    if rows.size == 0:
        raise ValueError("_draw_thin_digit needs a digit with ink.")
    crop = digit[rows.min():rows.max() + 1, columns.min():columns.max() + 1]
    scale = height / crop.shape[0]
    size = (max(2, round(crop.shape[1] * scale)), height)
    large = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BICUBIC)) > 110
    skeleton = skeletonize(large)
    radius = max(0, (stroke - 1) // 2)
    widened = dilation(skeleton, disk(radius)) if radius else skeleton
    if stroke == 2:
        widened = widened | np.roll(widened, 1, axis=1)
    return widened


def _paper(rng: np.random.Generator, shape: tuple[int, int], settings: PhotoSettings) -> np.ndarray:
    """Paper with grid or ruled lines and a brightness gradient, as grey levels (float)."""
    height, width = shape
    paper = np.full(shape, float(rng.integers(*settings.paper_level, endpoint=True)))
    spacing = int(rng.integers(*settings.line_spacing, endpoint=True))
    line_width = int(rng.integers(*settings.line_width, endpoint=True))
    darkness = float(rng.integers(*settings.line_darkness, endpoint=True))
    grid = rng.random() < 0.5
    offset = int(rng.integers(0, spacing))
    for row in range(offset, height, spacing):
        paper[row:row + line_width, :] -= darkness
    if grid:
        offset = int(rng.integers(0, spacing))
        for column in range(offset, width, spacing):
            paper[:, column:column + line_width] = np.minimum(paper[:, column:column + line_width],
                                                              paper[0, 0] - darkness)
    return paper


def _light_and_compress(image: np.ndarray, rng: np.random.Generator, settings: PhotoSettings) -> np.ndarray:
    """Apply a linear brightness gradient, Gaussian noise and JPEG compression; return uint8 grey levels."""

    height, width = image.shape
    angle = rng.uniform(0.0, 2.0 * np.pi)
    rows, columns = np.mgrid[0:height, 0:width]
    position = (columns - width / 2) * np.cos(angle) + (rows - height / 2) * np.sin(angle)
    position = (position - position.min()) / max(float(np.ptp(position)), 1.0)
    loss = rng.uniform(*settings.gradient)
    lit = image * (1.0 - loss * position) + rng.normal(0.0, settings.noise_sigma, image.shape)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(np.rint(lit), 0, 255).astype(np.uint8)).save(buffer, format="JPEG",
                                                                          quality=settings.jpeg_quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("L"))


def make_photo_digit(digit: np.ndarray, *, seed: int, settings: PhotoSettings = PHOTO) -> np.ndarray:
    """Return a photo-like image of one MNIST digit: thin dark ink on lined, unevenly lit paper, JPEG-compressed.

    Parameters
    ----------
    digit : ndarray of shape (28, 28), uint8
        Light ink on a dark background (MNIST's convention).
    seed : int

    Returns
    -------
    photo : ndarray of shape (height, width), uint8
        About 400 pixels on each side, dark ink on light paper.
    """
    rng = np.random.default_rng([seed, 16])
    stroke = int(rng.integers(*settings.stroke_width, endpoint=True))
    ink = _draw_thin_digit(digit, settings.digit_height, stroke)
    margin = int(rng.integers(40, 90))
    shape = (ink.shape[0] + 2 * margin, max(ink.shape[1], 150) + 2 * margin + int(rng.integers(0, 80)))
    image = _paper(rng, shape, settings)
    top = margin + int(rng.integers(-20, 21))
    left = (shape[1] - ink.shape[1]) // 2 + int(rng.integers(-30, 31))
    top, left = int(np.clip(top, 0, shape[0] - ink.shape[0])), int(np.clip(left, 0, shape[1] - ink.shape[1]))
    region = image[top:top + ink.shape[0], left:left + ink.shape[1]]
    region[ink] = float(rng.integers(*settings.ink_level, endpoint=True))
    return _light_and_compress(image, rng, settings)


@dataclass(frozen=True)
class Envelope:
    """A photo-like digit string and what it holds.

    Attributes
    ----------
    image : ndarray of shape (height, width), uint8
    text : str
    boxes : list of (x0, y0, x1, y1)
        Each digit's box in the image, left to right.
    touching : list of bool
        Whether each digit touches the next (the last is False).
    """

    image: np.ndarray
    text: str
    boxes: list[tuple[int, int, int, int]]
    touching: list[bool]


def make_envelope(digits: np.ndarray, labels, *, seed: int, settings: PhotoSettings = PHOTO) -> Envelope:
    """Return a photo-like string of the given MNIST digits, left to right.

    Parameters
    ----------
    digits : ndarray of shape (n_digits, 28, 28), uint8
    labels : sequence of int
    seed : int
    """
    rng = np.random.default_rng([seed, 61])
    height = int(rng.integers(*settings.string_digit_height, endpoint=True))
    stroke = int(rng.integers(*settings.stroke_width, endpoint=True))
    inks = [_draw_thin_digit(digit, height, stroke) for digit in digits]
    margin_x, margin_y = int(rng.integers(40, 80)), int(rng.integers(60, 90))
    wander = int(settings.baseline_wander * height)
    positions, x, touching = [], margin_x, []
    for number, ink in enumerate(inks):
        y = margin_y + int(rng.integers(-wander, wander + 1))
        positions.append((x, y))
        if number + 1 < len(inks):
            low, high = settings.gap[0], settings.gap[1] * ink.shape[1]
            gap = int(round(rng.uniform(low, high)))
            touching.append(gap <= 0)
            x += ink.shape[1] + gap
    touching.append(False)
    width = x + inks[-1].shape[1] + margin_x
    shape = (height + 2 * margin_y + 1, width)
    image = _paper(rng, shape, settings)
    level = float(rng.integers(*settings.ink_level, endpoint=True))
    boxes = []
    for ink, (left, top) in zip(inks, positions, strict=True):
        top = int(np.clip(top, 0, shape[0] - ink.shape[0]))
        region = image[top:top + ink.shape[0], left:left + ink.shape[1]]
        region[ink] = level
        boxes.append((left, top, left + ink.shape[1], top + ink.shape[0]))
    return Envelope(_light_and_compress(image, rng, settings), "".join(str(int(label)) for label in labels),
                    boxes, touching)
