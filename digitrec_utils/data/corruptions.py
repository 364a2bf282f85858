"""Realistic, seeded corruptions of 28x28 digits, in the spirit of MNIST-C (Mu and Gilmer, 2019).

What a postal office's digits do that the test set's do not: other pens (thicker, thinner), slanted and
rotated writing, digits off centre or of another size, scanner noise, blur, faded or dark scans, lines
and smudges across the digit, wobbly strokes. Each corruption takes uint8 images of shape (n, 28, 28)
(light ink on a dark background, MNIST's convention) and a severity 1, 2 or 3, and returns new uint8
images of the same shape; labels are unchanged. The transformations come from scikit-image
(``transform``, ``morphology``, ``util``, ``draw``) and SciPy (``ndimage``); only the choice of
parameters is ours.

Severities (:data:`SEVERITIES`, one value per level 1, 2, 3). The middle level is at least as strong as
rotation 20 degrees, shear 0.3, translation 4 pixels, Gaussian noise sigma 40 of 255, Gaussian blur
sigma 1.0, and dilation and erosion by a 2-pixel disk.

=================  ==========================================================  =====================
corruption         parameter                                                   levels 1 / 2 / 3
=================  ==========================================================  =====================
rotation           degrees, random sign                                        10 / 20 / 30
shear              horizontal shear (slant), random sign                       0.15 / 0.3 / 0.45
scale              relative size change, random shrink or enlarge              0.15 / 0.25 / 0.35
translation        pixels, random direction                                    2 / 4 / 6
dilation           grey dilation (thicker pen) by a footprint                  2x2 / disk r1 / disk r2
erosion            grey erosion (thinner pen) by a footprint                   2x2 / disk r1 / disk r2
gaussian_noise     sigma, of 255                                               20 / 40 / 60
shot_noise         photons per full-scale pixel (fewer is noisier)             60 / 25 / 10
impulse_noise      share of pixels set to black or white                       0.03 / 0.06 / 0.10
gaussian_blur      sigma, pixels                                               0.7 / 1.0 / 1.5
motion_blur        length of the blur line, pixels, random angle               3 / 5 / 7
contrast           remaining contrast around the mean                          0.5 / 0.3 / 0.15
brightness         added grey level, of 255                                    50 / 90 / 130
stripes            dark stripes across the digit, each 2 pixels wide           1 / 2 / 3
blots              ink blots of radius 2 to 3 pixels                           1 / 2 / 3
elastic            displacement scale alpha (smoothing sigma 3), pixels        8 / 12 / 16
=================  ==========================================================  =====================

The footprints are scikit-image's: a 2x2 square (2 pixels across), ``disk(1)`` (a 3x3 cross, 3 pixels
across: stronger than a 2-pixel disk) and ``disk(2)`` (5 pixels across).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.ndimage import convolve, gaussian_filter, map_coordinates, shift
from skimage.draw import disk as draw_disk
from skimage.draw import line
from skimage.filters import gaussian
from skimage.morphology import dilation, disk, erosion
from skimage.transform import AffineTransform, rotate, warp
from skimage.util import random_noise

from digitrec_utils.declarations import CORRUPTION_NAMES
from digitrec_utils.declarations import SEVERITY_LEVELS as LEVELS
from digitrec_utils.exceptions import ParameterError

SEVERITIES: dict[str, tuple] = {
    "rotation": (10.0, 20.0, 30.0),
    "shear": (0.15, 0.3, 0.45),
    "scale": (0.15, 0.25, 0.35),
    "translation": (2, 4, 6),
    "dilation": ("square2", "disk1", "disk2"),
    "erosion": ("square2", "disk1", "disk2"),
    "gaussian_noise": (20.0, 40.0, 60.0),
    "shot_noise": (60.0, 25.0, 10.0),
    "impulse_noise": (0.03, 0.06, 0.10),
    "gaussian_blur": (0.7, 1.0, 1.5),
    "motion_blur": (3, 5, 7),
    "contrast": (0.5, 0.3, 0.15),
    "brightness": (50.0, 90.0, 130.0),
    "stripes": (1, 2, 3),
    "blots": (1, 2, 3),
    "elastic": (8.0, 12.0, 16.0),
}
SIDE = 28


def corrupt(images: np.ndarray, name: str, severity: int, *, seed: int = 0) -> np.ndarray:
    """Return corrupted copies of ``images``; the same seed gives the same images.

    Parameters
    ----------
    images : ndarray of shape (n_images, 28, 28), dtype uint8
        Light ink on a dark background.
    name : str
        One of :data:`CORRUPTION_NAMES`.
    severity : {1, 2, 3}
    seed : int, default=0
        Seeds every random choice (angles, directions, noise); each corruption and severity draws from
        its own stream, so adding one does not change the others.

    Returns
    -------
    corrupted : ndarray of shape (n_images, 28, 28), dtype uint8
        In the order of ``images``, whose labels stay valid.

    Raises
    ------
    ParameterError
        For an unknown corruption or severity, naming the allowed values.
    """
    if name not in SEVERITIES:
        raise ParameterError(f"corruption {name!r} is unknown; allowed values are {', '.join(CORRUPTION_NAMES)}.")
    if severity not in LEVELS:
        raise ParameterError(f"severity {severity!r} is not allowed; use 1, 2 or 3.")
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
        raise ParameterError(f"corrupt needs images of shape (n, 28, 28), not {images.shape}.")
    rng = np.random.default_rng([seed, CORRUPTION_NAMES.index(name), severity])
    level = SEVERITIES[name][severity - 1]
    pixels = images.astype(np.float64) / 255.0
    corrupted = _CORRUPTIONS[name](pixels, level, rng)
    return np.clip(np.rint(corrupted * 255.0), 0, 255).astype(np.uint8)


def _each(pixels: np.ndarray, transform: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    return np.stack([transform(image) for image in pixels]) if len(pixels) else pixels.copy()


def _warp(image: np.ndarray, matrix) -> np.ndarray:
    """Apply an affine transformation about the image's centre (scikit-image's ``warp``)."""

    centre = (SIDE - 1) / 2.0
    to_centre = AffineTransform(translation=(-centre, -centre))
    back = AffineTransform(translation=(centre, centre))
    combined = AffineTransform(matrix=back.params @ matrix @ to_centre.params)
    return warp(image, combined.inverse, order=1, mode="constant", cval=0.0, preserve_range=True)


def _rotation(pixels, degrees, rng):
    signs = rng.choice([-1.0, 1.0], size=len(pixels))
    return np.stack([rotate(image, sign * degrees, order=1, mode="constant", cval=0.0, preserve_range=True)
                     for image, sign in zip(pixels, signs, strict=True)]) if len(pixels) else pixels.copy()


def _shear(pixels, amount, rng):
    signs = rng.choice([-1.0, 1.0], size=len(pixels))
    # A slant: x moves with y, as a right- or left-leaning hand writes.
    return np.stack([_warp(image, np.array([[1.0, sign * amount, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
                     for image, sign in zip(pixels, signs, strict=True)]) if len(pixels) else pixels.copy()


def _scale(pixels, change, rng):
    factors = 1.0 + rng.choice([-1.0, 1.0], size=len(pixels)) * change
    return np.stack([_warp(image, np.diag([factor, factor, 1.0]))
                     for image, factor in zip(pixels, factors, strict=True)]) if len(pixels) else pixels.copy()


def _translation(pixels, distance, rng):
    angles = rng.uniform(0.0, 2.0 * np.pi, size=len(pixels))
    return np.stack([shift(image, (distance * np.sin(angle), distance * np.cos(angle)), order=1, mode="constant",
                           cval=0.0) for image, angle in zip(pixels, angles, strict=True)]) \
        if len(pixels) else pixels.copy()


def _footprint(kind: str) -> np.ndarray:
    return np.ones((2, 2), dtype=bool) if kind == "square2" else disk(int(kind[-1])).astype(bool)


def _dilation(pixels, kind, rng):
    footprint = _footprint(kind)
    return _each(pixels, lambda image: dilation(image, footprint))


def _erosion(pixels, kind, rng):
    footprint = _footprint(kind)
    return _each(pixels, lambda image: erosion(image, footprint))


def _gaussian_noise(pixels, sigma, rng):
    return pixels + rng.normal(0.0, sigma / 255.0, size=pixels.shape)


def _shot_noise(pixels, photons, rng):
    return rng.poisson(np.clip(pixels, 0.0, 1.0) * photons) / photons


def _impulse_noise(pixels, amount, rng):
    seeds = rng.integers(0, 2**31 - 1, size=len(pixels))
    return np.stack([random_noise(np.clip(image, 0.0, 1.0), mode="s&p", amount=amount, rng=int(seed))
                     for image, seed in zip(pixels, seeds, strict=True)]) if len(pixels) else pixels.copy()


def _gaussian_blur(pixels, sigma, rng):
    return _each(pixels, lambda image: gaussian(image, sigma=sigma, mode="constant", cval=0.0,
                                                preserve_range=True))


def _motion_blur(pixels, length, rng):
    angles = rng.uniform(0.0, np.pi, size=len(pixels))
    blurred = []
    for image, angle in zip(pixels, angles, strict=True):
        kernel = np.zeros((length, length))
        middle = (length - 1) / 2.0
        dy, dx = middle * np.sin(angle), middle * np.cos(angle)
        rows, columns = line(int(round(middle - dy)), int(round(middle - dx)), int(round(middle + dy)),
                             int(round(middle + dx)))
        kernel[rows, columns] = 1.0
        blurred.append(convolve(image, kernel / kernel.sum(), mode="constant", cval=0.0))
    return np.stack(blurred) if blurred else pixels.copy()


def _contrast(pixels, remaining, rng):
    means = pixels.mean(axis=(1, 2), keepdims=True)
    return (pixels - means) * remaining + means


def _brightness(pixels, added, rng):
    return pixels + added / 255.0


def _stripes(pixels, count, rng):
    """Dark stripes across the digit (a ruled line that erased ink, a fold), each 2 pixels wide."""
    striped = pixels.copy()
    for image in striped:
        for _ in range(count):
            if rng.random() < 0.5:
                row = int(rng.integers(6, SIDE - 8))
                image[row:row + 2, :] = 0.0
            else:
                column = int(rng.integers(6, SIDE - 8))
                image[:, column:column + 2] = 0.0
    return striped


def _blots(pixels, count, rng):
    """Round ink blots (a smudge, a drop of ink) of radius 2 to 3 pixels near the digit."""

    blotted = pixels.copy()
    for image in blotted:
        for _ in range(count):
            centre = (int(rng.integers(6, SIDE - 6)), int(rng.integers(6, SIDE - 6)))
            rows, columns = draw_disk(centre, float(rng.uniform(2.0, 3.0)), shape=image.shape)
            image[rows, columns] = 1.0
    return blotted


def _elastic(pixels, alpha, rng):
    """Simard et al.'s elastic distortion: a smoothed random displacement field (SciPy's ndimage)."""

    rows, columns = np.meshgrid(np.arange(SIDE), np.arange(SIDE), indexing="ij")
    distorted = []
    for image in pixels:
        dy = gaussian_filter(rng.uniform(-1.0, 1.0, size=(SIDE, SIDE)), 3.0, mode="constant") * alpha
        dx = gaussian_filter(rng.uniform(-1.0, 1.0, size=(SIDE, SIDE)), 3.0, mode="constant") * alpha
        distorted.append(map_coordinates(image, [rows + dy, columns + dx], order=1, mode="constant", cval=0.0))
    return np.stack(distorted) if distorted else pixels.copy()


_CORRUPTIONS: dict[str, Callable] = {
    "rotation": _rotation, "shear": _shear, "scale": _scale, "translation": _translation,
    "dilation": _dilation, "erosion": _erosion, "gaussian_noise": _gaussian_noise, "shot_noise": _shot_noise,
    "impulse_noise": _impulse_noise, "gaussian_blur": _gaussian_blur, "motion_blur": _motion_blur,
    "contrast": _contrast, "brightness": _brightness, "stripes": _stripes, "blots": _blots, "elastic": _elastic,
}
