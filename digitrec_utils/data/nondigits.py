"""Images that are not digits, made offline: what lands on a digit reader that holds no digit.

A postal office's digit boxes sometimes hold a stamp, a logo, a smudge, a torn corner or nothing at all.
Fashion-MNIST's clothes are the real source of such images where Debian's package is installed (and
digits are the unknown images for a clothes model); the embedded sample's runs need an offline source
too, and this module draws one with scikit-image's ``draw`` module: blank and noisy squares, filled and
outlined shapes (rectangles, ellipses, polygons), random scribbles, ruled lines and blots. Each image is
28x28 uint8, light on dark like MNIST, seeded.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import grey_dilation
from skimage.draw import bezier_curve, disk, ellipse, ellipse_perimeter, polygon, rectangle, rectangle_perimeter

from digitrec_utils.exceptions import ParameterError

KINDS = ("blank", "noise", "rectangle", "ellipse", "polygon", "scribble", "lines", "blots")
SIDE = 28


def make_nondigits(n_images: int, *, seed: int = 0, kinds: tuple[str, ...] = KINDS) -> tuple[np.ndarray, list[str]]:
    """Return ``n_images`` seeded images of none of the digit classes, and the kind of each.

    Parameters
    ----------
    n_images : int
    seed : int, default=0
    kinds : tuple of str
        Drawn in turn (image ``i`` is of kind ``kinds[i % len(kinds)]``), from :data:`KINDS`.

    Returns
    -------
    images : ndarray of shape (n_images, 28, 28), dtype uint8
    kinds : list of str
    """
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown or not kinds:
        raise ParameterError(f"non-digit kinds {unknown or kinds!r} not allowed; allowed values are "
                             f"{', '.join(KINDS)}.")
    rng = np.random.default_rng([seed, 7])
    images = np.zeros((n_images, SIDE, SIDE), dtype=np.float64)
    drawn = []
    for index in range(n_images):
        kind = kinds[index % len(kinds)]
        images[index] = _DRAW[kind](rng)
        drawn.append(kind)
    return np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8), drawn


def _blank(rng):
    return np.full((SIDE, SIDE), rng.uniform(0.0, 0.1))


def _noise(rng):
    return np.clip(rng.normal(rng.uniform(0.1, 0.4), rng.uniform(0.1, 0.3), (SIDE, SIDE)), 0.0, 1.0)


def _rectangle(rng):
    image = np.zeros((SIDE, SIDE))
    start = tuple(int(value) for value in rng.integers(3, 12, size=2))
    extent = tuple(int(value) for value in rng.integers(8, 16, size=2))
    if rng.random() < 0.5:
        rows, columns = rectangle(start, extent=extent, shape=image.shape)
    else:
        rows, columns = rectangle_perimeter(start, extent=extent, shape=image.shape)
    image[rows, columns] = 1.0
    return image


def _ellipse(rng):
    image = np.zeros((SIDE, SIDE))
    centre = rng.integers(10, 18, size=2)
    radii = rng.integers(4, 10, size=2)
    if rng.random() < 0.5:
        rows, columns = ellipse(int(centre[0]), int(centre[1]), int(radii[0]), int(radii[1]), shape=image.shape)
    else:
        rows, columns = ellipse_perimeter(int(centre[0]), int(centre[1]), int(radii[0]), int(radii[1]),
                                          shape=image.shape)
    image[rows, columns] = 1.0
    return image


def _polygon(rng):
    image = np.zeros((SIDE, SIDE))
    corners = rng.integers(3, SIDE - 3, size=(int(rng.integers(3, 7)), 2))
    rows, columns = polygon(corners[:, 0], corners[:, 1], shape=image.shape)
    image[rows, columns] = 1.0
    return image


def _scribble(rng):
    image = np.zeros((SIDE, SIDE))
    for _ in range(int(rng.integers(2, 5))):
        points = rng.integers(3, SIDE - 3, size=(3, 2))
        rows, columns = bezier_curve(*points[0], *points[1], *points[2], weight=float(rng.uniform(0.5, 3.0)),
                                     shape=image.shape)
        image[rows, columns] = 1.0
    return grey_dilation(image, size=(2, 2))


def _lines(rng):
    image = np.zeros((SIDE, SIDE))
    for row in range(int(rng.integers(2, 6)), SIDE, int(rng.integers(4, 8))):
        image[row:row + 1 + int(rng.integers(0, 2)), :] = rng.uniform(0.5, 1.0)
    return image.T if rng.random() < 0.5 else image


def _blots(rng):
    image = np.zeros((SIDE, SIDE))
    for _ in range(int(rng.integers(1, 4))):
        rows, columns = disk(tuple(int(value) for value in rng.integers(5, SIDE - 5, size=2)),
                             float(rng.uniform(2.0, 6.0)), shape=image.shape)
        image[rows, columns] = 1.0
    return image


_DRAW = {"blank": _blank, "noise": _noise, "rectangle": _rectangle, "ellipse": _ellipse, "polygon": _polygon,
         "scribble": _scribble, "lines": _lines, "blots": _blots}
