"""Simple properties of digit images, measured so that a stream of them can be compared with a reference.

Two kinds (issue 53, ``digitrec monitor``):

- **The prepared 28x28 field** (:func:`measure_field_properties`): how much ink, how tall and wide the digit's
  box is, its slant, its stroke width and how far its centre of mass lies from MNIST's. The preparation makes
  the box 20 pixels on its longer side and centres it, so these move when the writing or the scan changes
  what the preparation has to work with: thin pens, slanted hands, stretched forms.
- **The file before preparation** (:func:`measure_raw_properties`): its size, its contrast and whether its ink
  is darker than its background. A new scanner or form moves these before it moves anything else.

Each is a number per image, so that a two-sample test can compare two sets of them
(:func:`digitrec_utils.evaluation.monitoring.check_window`).
"""

from __future__ import annotations

import numpy as np
from skimage.morphology import skeletonize

# A pixel of a prepared field (0 to 1) counts as ink from this level: half the brightest stroke.
INK_LEVEL = 0.5
FIELD_PROPERTIES = ("ink share", "height", "width", "slant", "stroke width", "centre offset")
RAW_PROPERTIES = ("file width", "file height", "file contrast", "dark ink")
# Where MNIST puts a digit's centre of mass (data.preparation.MASS_CENTRE), in pixels of the 28x28 field.
_MASS_CENTRE = 14.0


def measure_field_properties(images: np.ndarray) -> dict[str, np.ndarray]:
    """Measure each prepared 28x28 digit: ink share, box height and width, slant, stroke width, centre offset.

    Parameters
    ----------
    images : ndarray of shape (n_images, 28, 28)
        Prepared digits, light ink on a dark background, values in [0, 1].

    Returns
    -------
    properties : dict of str to ndarray of shape (n_images,)
        ``ink share``: the share of the field at :data:`INK_LEVEL` or above. ``height``, ``width``: the box of
        those pixels, in pixels (0 for a field without ink). ``slant``: the shear of the ink's second moments,
        horizontal pixels per vertical pixel (positive leans right, as italics). ``stroke width``: the ink's
        area over its skeleton's length, in pixels (a bar reads a little wider than it is, its skeleton
        stopping short of its ends). ``centre offset``: the distance of the centre of mass from MNIST's, in
        pixels.

    Examples
    --------
    >>> field = np.zeros((1, 28, 28)); field[0, 4:24, 13:16] = 1.0
    >>> {name: round(float(value[0]), 2) for name, value in measure_field_properties(field).items()}
    {'ink share': 0.08, 'height': 20.0, 'width': 3.0, 'slant': 0.0, 'stroke width': 3.33, 'centre offset': 0.5}
    """
    images = np.asarray(images, dtype=np.float64).reshape(-1, 28, 28)
    ink = images >= INK_LEVEL
    rows, columns = ink.any(axis=2), ink.any(axis=1)
    height = _measure_extent(rows)
    width = _measure_extent(columns)
    weights = images.sum(axis=(1, 2))
    safe_weights = np.where(weights > 0, weights, 1.0)
    grid = np.arange(28, dtype=np.float64)
    centre_rows = (images.sum(axis=2) * grid).sum(axis=1) / safe_weights
    centre_columns = (images.sum(axis=1) * grid).sum(axis=1) / safe_weights
    row_offsets = grid[None, :, None] - centre_rows[:, None, None]
    column_offsets = grid[None, None, :] - centre_columns[:, None, None]
    shear = (images * row_offsets * column_offsets).sum(axis=(1, 2))
    spread = (images * row_offsets ** 2).sum(axis=(1, 2))
    # Rows grow downwards: a stroke leaning right has its top to the right, a negative row-column moment.
    slant = np.where(spread > 0, -shear / np.where(spread > 0, spread, 1.0), 0.0) + 0.0  # No -0.0.
    skeleton_length = np.array([skeletonize(mask).sum() for mask in ink], dtype=np.float64)
    area = ink.sum(axis=(1, 2)).astype(np.float64)
    stroke_width = np.where(skeleton_length > 0, area / np.where(skeleton_length > 0, skeleton_length, 1.0), 0.0)
    offset = np.hypot(centre_rows - _MASS_CENTRE, centre_columns - _MASS_CENTRE)
    offset = np.where(weights > 0, offset, 0.0)
    return {"ink share": ink.mean(axis=(1, 2)), "height": height, "width": width, "slant": slant,
            "stroke width": stroke_width, "centre offset": offset}


def measure_raw_properties(pixels: np.ndarray) -> tuple[float, float, float, float]:
    """Measure an image file's pixels before preparation: width, height, contrast and ink polarity.

    Parameters
    ----------
    pixels : ndarray of shape (height, width)
        Grey levels 0-255, as :func:`digitrec_utils.data.preparation.read_image` gives them.

    Returns
    -------
    properties : tuple of float
        In the order of :data:`RAW_PROPERTIES`: ``file width`` and ``file height`` in pixels, ``file contrast``
        (the grey levels between the 1st and 99th percentiles) and ``dark ink`` (1 when the border's median is
        lighter than the middle grey, the ink then being darker than the paper; 0 for MNIST's light ink).

    Examples
    --------
    >>> page = np.full((40, 30), 250, dtype=np.uint8); page[10:30, 12:18] = 20
    >>> measure_raw_properties(page)
    (30.0, 40.0, 230.0, 1.0)
    """
    pixels = np.asarray(pixels, dtype=np.float32)
    low, high = np.percentile(pixels, [1, 99])
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return (float(pixels.shape[1]), float(pixels.shape[0]), float(high - low),
            float(np.median(border) > 127.5))


def _measure_extent(occupied: np.ndarray) -> np.ndarray:
    """The number of pixels from the first occupied line to the last, per image (0 where none is)."""
    any_occupied = occupied.any(axis=1)
    first = occupied.argmax(axis=1)
    last = occupied.shape[1] - 1 - occupied[:, ::-1].argmax(axis=1)
    return np.where(any_occupied, last - first + 1, 0).astype(np.float64)
