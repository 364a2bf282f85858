"""Ink in photos and scans of paper: lighting corrected, ruled and grid lines removed, specks dropped.

``digitrec predict`` and ``digitrec read`` take images larger than 28x28 through :func:`find_photo_ink`:

1. **Orientation.** Ink is made light on dark, as in MNIST: an image whose border is light (median above
   127) has dark ink and is inverted. (No median filter: it erases a ballpoint's 1-pixel strokes.)
2. **Lighting.** Uneven light and grey paper are a slowly varying background under the ink. It is
   estimated by a grey opening (SciPy) much wider than a stroke, on a copy shrunk 4 times (fast), and
   subtracted, so that paper is 0 everywhere.
3. **Ink.** Two maps of ink, each with its lines (4) subtracted: the corrected grey levels (for strokes
   of any width) and Sato's ridge filter at 1.5 pixels (scikit-image's ``sato``, made for thin
   vessels: a ballpoint's 1-pixel stroke that JPEG has faded). In each, ink is what a hysteresis threshold
   keeps (``apply_hysteresis_threshold``): above :data:`LOW` of the map's ink level and connected to
   pixels above :data:`HIGH` of it. The two masks are joined, and gaps of a few pixels on and next to a
   line (where a stroke crossed it and lost its contrast) are closed. (A global threshold let faint grid lines in
   and the crop spanned the photo; Sauvola's local threshold, tried first, follows the paper's texture
   once the light is corrected.)
4. **Lines.** Ruled and grid lines run from edge to edge, horizontally or vertically; a digit reaches
   neither both ends of a row nor both ends of a column. A row whose first and last :data:`LINE_END` are
   both dark holds a line, whose level goes from the one end's median to the other's; it is subtracted
   along the row (the same for columns), so a stroke that crosses a line keeps its contrast above it.
5. **Specks.** Components smaller than :data:`MIN_SPECK_SHARE` of the image, than 8 pixels or than
   :data:`RELATIVE_SPECK` of the largest component go.

:func:`normalise_strokes` then widens a pen's thin strokes towards MNIST's (about 2.5 pixels of a
20-pixel digit) before the crop, scale and centring of :func:`digitrec_utils.data.preparation.prepare_image`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.filters import apply_hysteresis_threshold, sato, threshold_otsu
from skimage.morphology import skeletonize

# Hysteresis thresholds, as shares of the image's ink level (its 99.9th percentile): ink is above LOW and
# connected to pixels above HIGH.
LOW, HIGH = 0.15, 0.35
# An image whose ink level is below this many grey levels above the paper holds no ink.
MIN_LEVEL = 8.0
# Scale (pixels) of the ridge filter that finds a pen's thin strokes: one scale of 1.5 read 300 photo-like
# digits as well as 1 and 2 together (0.983 and 0.983) in a third of the time (56 against 166 ms per digit).
RIDGE_SIGMAS = (1.5,)
# A line is dark in both this share of a row (column) at its start and at its end,
LINE_END = 0.1
# by at least this many grey levels above the paper.
LINE_PRESENT = 3.0
# Components smaller than this share of the image's pixels are specks.
MIN_SPECK_SHARE = 2e-5
MIN_SPECK_PIXELS = 8
# Components smaller than this share of the largest one are specks too (noise that the ridge filter took
# for strokes); a 5's flag or a broken 4's part is far larger.
RELATIVE_SPECK = 0.05
# MNIST's stroke width as a share of the digit's height (about 2.5 pixels in a 20-pixel box).
MNIST_STROKE_SHARE = 0.12


@dataclass
class PhotoInk:
    """The ink found in a photo.

    Attributes
    ----------
    strength : ndarray of shape (height, width), float
        How far each pixel is above the paper (0-255), after the lighting correction.
    mask : ndarray of shape (height, width), bool
        The ink, without lines and specks.
    lines : ndarray of shape (height, width), bool
        The ruled or grid lines that were removed.
    """

    strength: np.ndarray
    mask: np.ndarray
    lines: np.ndarray


def find_photo_ink(pixels: np.ndarray) -> PhotoInk:
    """Find the ink of a grayscale photo or scan (see the module's steps).

    Parameters
    ----------
    pixels : ndarray of shape (height, width)
        Grey levels 0-255, either ink colour.
    """

    pixels = np.asarray(pixels, dtype=np.float32)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    if float(np.median(border)) > 127:
        pixels = 255.0 - pixels
    raw = np.clip(pixels - _estimate_background(pixels), 0.0, 255.0)
    line_strength = _estimate_lines(raw)
    strength = np.clip(raw - line_strength, 0.0, 255.0)
    level = float(np.percentile(strength, 99.9))
    lines = line_strength >= MIN_LEVEL
    if level < MIN_LEVEL:  # Blank paper, or nothing but lines.
        return PhotoInk(strength, np.zeros(pixels.shape, dtype=bool), lines)
    ridges = sato(raw, sigmas=RIDGE_SIGMAS, black_ridges=False).astype(np.float32)
    ridges = np.clip(ridges - _estimate_lines(ridges), 0.0, None)
    mask = _hysteresis(strength) | _hysteresis(ridges)
    if lines.any():
        # A stroke that crosses a line lost its contrast there: bridge such gaps, on and next to lines only.

        near_lines = ndimage.binary_dilation(lines, iterations=3)
        mask |= ndimage.binary_closing(mask, structure=np.ones((5, 5), dtype=bool)) & near_lines
    return PhotoInk(strength, _remove_specks(mask), lines)


def _remove_specks(mask: np.ndarray) -> np.ndarray:
    """Drop components smaller than :data:`MIN_SPECK_SHARE` of the image or :data:`RELATIVE_SPECK` of the largest."""

    labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return mask
    sizes = np.bincount(labels.ravel())[1:]
    minimum = max(MIN_SPECK_PIXELS, MIN_SPECK_SHARE * mask.size, RELATIVE_SPECK * sizes.max())
    kept = np.flatnonzero(sizes >= minimum) + 1
    return np.isin(labels, kept)


def _hysteresis(values: np.ndarray) -> np.ndarray:
    """Pixels above ``LOW`` of the image's level that connect to pixels above ``HIGH`` of it (scikit-image)."""

    # The level: a pen's strokes may cover well under 1% of a photo, so a high percentile.
    level = float(np.percentile(values, 99.9))
    if level <= 0.0:
        return np.zeros(values.shape, dtype=bool)
    return apply_hysteresis_threshold(values, LOW * level, HIGH * level)


def _odd(value: int) -> int:
    return value if value % 2 else value + 1


def _estimate_background(pixels: np.ndarray) -> np.ndarray:
    """The slowly varying paper level under light ink: a wide grey opening of a 4x smaller copy, enlarged back."""

    factor = 4 if min(pixels.shape) >= 64 else 1
    small = pixels[::factor, ::factor]
    size = max(3, min(small.shape) // 8)
    opened = ndimage.grey_opening(small, size=(size, size))
    smooth = ndimage.uniform_filter(opened, size=size)
    if factor == 1:
        return smooth
    zoomed = ndimage.zoom(smooth, (pixels.shape[0] / small.shape[0], pixels.shape[1] / small.shape[1]), order=1)
    return zoomed[:pixels.shape[0], :pixels.shape[1]]


def _estimate_lines(strength: np.ndarray) -> np.ndarray:
    """The strength of ruled and grid lines: rows (columns) that are dark at both ends of the image.

    Ruled and grid lines run from edge to edge; a digit's strokes never reach both ends of a row. A row
    holds a line when the medians of its first and last :data:`LINE_END` are both at least
    :data:`LINE_PRESENT` above the paper; the line's level then goes linearly from the one to the other
    along the row, because uneven light fades a line more at one end (the lower of the two, tried first,
    left the brighter end of such a line behind as marks). Neighbouring rows share their maximum, so that a
    line tilted by a pixel or two is still caught. (The median along stretches of a row, tried before
    that, took a digit's long vertical stroke for a grid line.)
    """

    estimate = np.zeros_like(strength)
    for axis in (0, 1):
        data = strength if axis == 0 else strength.T
        end = max(2, int(LINE_END * data.shape[1]))
        if data.shape[1] < 4 * end:
            continue
        first = ndimage.maximum_filter1d(np.median(data[:, :end], axis=1), size=5)
        last = ndimage.maximum_filter1d(np.median(data[:, -end:], axis=1), size=5)
        # A line present at both ends; across the row its level goes from one end's to the other's, since
        # uneven light fades a line at one end more than at the other.
        present = np.minimum(first, last) >= LINE_PRESENT
        along = np.linspace(0.0, 1.0, data.shape[1], dtype=np.float32)
        result = np.where(present[:, None], first[:, None] + (last - first)[:, None] * along[None, :], 0.0)
        estimate = np.maximum(estimate, result if axis == 0 else result.T)
    return estimate


def _measure_stroke_width(mask: np.ndarray) -> float:
    """The mean stroke width of ``mask`` in pixels: twice the distance to the background along its skeleton."""

    if not mask.any():
        return 0.0
    skeleton = skeletonize(mask)
    distances = ndimage.distance_transform_edt(mask)[skeleton]
    return float(2.0 * distances.mean()) if distances.size else 0.0


def normalise_strokes(mask: np.ndarray, strength: np.ndarray) -> np.ndarray:
    """Return one digit's ink as grey levels with MNIST's stroke width for its size.

    Strokes thinner than 70% of MNIST's width for the digit's height (a ballpoint, a pencil) are redrawn
    along their skeleton with a disk of MNIST's width, then smoothed like MNIST's anti-aliased edges;
    thicker strokes keep their own grey levels (within 2 pixels of the mask, median-filtered 3x3).

    Parameters
    ----------
    mask : ndarray of shape (height, width), bool
        The digit's ink.
    strength : ndarray of shape (height, width), float
        Ink strength 0-255 (:attr:`PhotoInk.strength`).

    Returns
    -------
    ink : ndarray of shape (height, width), float32, 0-255
    """

    rows, columns = np.nonzero(mask)
    if rows.size == 0:
        return np.zeros(mask.shape, dtype=np.float32)
    digit_height = max(rows.max() - rows.min() + 1, (columns.max() - columns.min() + 1) * 0.6)
    target = MNIST_STROKE_SHARE * digit_height
    if _measure_stroke_width(mask) >= 0.7 * target:
        # Thick strokes keep their grey levels, without the specks of noise on them (a 3x3 median).
        near = ndimage.binary_dilation(mask, iterations=2)
        return np.where(near, ndimage.median_filter(strength, size=3), 0.0).astype(np.float32)
    radius = max(1.0, target / 2)
    # Everything within the radius of the skeleton: a dilation by a disk, by way of the distance transform
    # (a dilation with a disk of radius 18 took 0.15 s on a 400x400 photo; this takes a hundredth of that).
    redrawn = ndimage.distance_transform_edt(~skeletonize(mask)) <= radius
    smooth = ndimage.gaussian_filter(redrawn.astype(np.float32), sigma=max(0.5, radius / 3))
    return (255.0 * smooth / max(float(smooth.max()), 1e-6)).astype(np.float32)


# A clean scan's background is plain: the middle half of its background pixels lie within this many grey
# levels (a phone photo's uneven light and paper texture spread them wider).
SCAN_BACKGROUND_SPREAD = 12.0
# The class that holds at least this share of the image's border is its background.
BORDER_MAJORITY = 0.75
# and its ink stands this far from the background (a faint pencil photo does not).
SCAN_MIN_CONTRAST = 60.0
# A ruled or grid line in a scan: a row (column) at least this long whose pixels are ink over this share of it.
SCAN_LINE_LENGTH = 48
SCAN_LINE_SHARE = 0.98
# and whose band of such rows is at most this share of the image across.
SCAN_LINE_THICKNESS = 0.05
# In a clean scan, ink is what lies at least this share of the way from the background to the ink level.
SCAN_INK_SHARE = 0.35


@dataclass(frozen=True)
class ImageSurvey:
    """What an image is, measured: a clean scan or a photo, and the levels that tell.

    Attributes
    ----------
    kind : {"scan", "photo"}
        ``scan``: a plain background and a clear ink level (a scanner's output, a digit drawn on screen,
        a bitmap); ``photo``: anything else (paper texture, uneven light, ruled or grid lines).
    dark_ink : bool
        Whether the ink is darker than the background.
    background : float
        The background's grey level (0-255, as in the file).
    ink_level : float
        The ink's grey level (the 90th percentile of the ink side, as in the file).
    background_spread : float
        How far the background's grey levels spread, a pixel away from the ink: the larger of their
        interquartile range (paper texture, noise) and the range of their medians over the image's four
        quadrants (uneven light).
    ruled_lines : bool
        Whether a long row or column is ink nearly end to end (a ruled or grid line).
    """

    kind: str
    dark_ink: bool
    background: float
    ink_level: float
    background_spread: float
    ruled_lines: bool

    def describe(self) -> str:
        """One sentence: the kind and the measurements that decided it."""
        ink = "dark ink on a light background" if self.dark_ink else "light ink on a dark background"
        lines = ", ruled or grid lines" if self.ruled_lines else ""
        return (f"{self.kind}: {ink}, background spread {self.background_spread:.0f} grey levels, contrast "
                f"{abs(self.ink_level - self.background):.0f}{lines}")


def survey_image(pixels: np.ndarray) -> ImageSurvey:
    """Tell a clean scan from a photo by properties measured on the image.

    Otsu's threshold (scikit-image) splits the pixels into two classes; the background is the one that
    holds most of the border (:data:`BORDER_MAJORITY`), or, where the border is mixed, the wider one (the
    ink's strokes have the smaller mean distance to the other class). The image is a clean scan when the
    background is plain (:data:`SCAN_BACKGROUND_SPREAD`), the ink stands clear of it
    (:data:`SCAN_MIN_CONTRAST`) and no long row or column is ink from end to end (:data:`SCAN_LINE_SHARE`);
    anything else is a photo. The image's size plays no part: a large clean scan is a scan, and a small
    crop of a photo is a photo.

    Parameters
    ----------
    pixels : ndarray of shape (height, width)
        Grey levels 0-255, either ink colour.
    """

    pixels = np.asarray(pixels, dtype=np.float32)
    if float(pixels.max()) == float(pixels.min()):
        level = float(pixels.flat[0])
        return ImageSurvey("scan", level > 127, level, level, 0.0, False)
    threshold = threshold_otsu(pixels)
    above = pixels > threshold
    # The background holds most of the border: a digit may touch its frame, but rarely fills three
    # quarters of its border. Where the border is mixed (a small scan whose digit fills its frame, as
    # semeion's do: 81 of 1,593 have as much ink as paper on their border, or more ink than paper in all),
    # the ink is the thinner of the two classes: strokes are a few pixels wide, the background between and
    # around them wider (its mean distance to the other class is larger).
    border = np.concatenate([above[0], above[-1], above[:, 0], above[:, -1]])
    light_border = float(border.mean())
    if light_border >= BORDER_MAJORITY or light_border <= 1.0 - BORDER_MAJORITY:
        dark_ink = light_border >= BORDER_MAJORITY
    else:
        distance_dark = ndimage.distance_transform_edt(~above)[~above].mean()
        distance_light = ndimage.distance_transform_edt(above)[above].mean()
        dark_ink = bool(distance_dark <= distance_light)
    ink = ~above if dark_ink else above
    ink_pixels = pixels[ink]
    # The background's spread is measured a pixel away from the ink, where anti-aliased edges do not reach.
    inner = ndimage.binary_erosion(~ink, structure=np.ones((3, 3), dtype=bool))
    background_mask = inner if inner.sum() >= 0.1 * inner.size else ~ink
    low, background, high = np.percentile(pixels[background_mask], [25, 50, 75])
    spread = max(float(high - low), _measure_unevenness(pixels, background_mask))
    ink_level = float(np.percentile(ink_pixels, 10 if dark_ink else 90))
    ruled = _has_ruled_lines(ink)
    plain = spread <= SCAN_BACKGROUND_SPREAD
    clear = abs(ink_level - background) >= SCAN_MIN_CONTRAST
    return ImageSurvey("scan" if plain and clear and not ruled else "photo", bool(dark_ink), float(background),
                       ink_level, spread, ruled)


def _measure_unevenness(pixels: np.ndarray, background: np.ndarray) -> float:
    """The range of the background's median level over the image's four quadrants (uneven light spans it)."""
    height, width = pixels.shape
    medians = []
    for rows in (slice(0, height // 2), slice(height // 2, height)):
        for columns in (slice(0, width // 2), slice(width // 2, width)):
            quadrant = pixels[rows, columns][background[rows, columns]]
            if quadrant.size:
                medians.append(float(np.median(quadrant)))
    return max(medians) - min(medians) if medians else 0.0


def _has_ruled_lines(ink: np.ndarray) -> bool:
    """Whether a thin band of rows (columns) of at least :data:`SCAN_LINE_LENGTH` pixels is ink end to end.

    A row counts when ink covers :data:`SCAN_LINE_SHARE` of it; a band of such rows is a ruled line when it
    is thin, at most :data:`SCAN_LINE_THICKNESS` of the image across (and 2 pixels), since a tightly cropped
    digit's own stroke may run from edge to edge too, but is a tenth of the digit wide.
    """
    for axis, length, across in ((1, ink.shape[1], ink.shape[0]), (0, ink.shape[0], ink.shape[1])):
        if length < SCAN_LINE_LENGTH:
            continue
        full = np.flatnonzero(ink.mean(axis=axis) >= SCAN_LINE_SHARE)
        if not full.size:
            continue
        bands = np.split(full, np.flatnonzero(np.diff(full) > 1) + 1)
        if any(len(band) <= max(2, SCAN_LINE_THICKNESS * across) for band in bands):
            return True
    return False


def find_scan_ink(pixels: np.ndarray, survey: ImageSurvey) -> PhotoInk:
    """Find the ink of a clean scan: its levels stretched from the background (0) to the ink (255).

    The ink (``mask``) is what lies at least :data:`SCAN_INK_SHARE` of the way from the background to the
    ink level, without specks (components smaller than :data:`RELATIVE_SPECK` of the largest); ``strength``
    is every pixel's stretched level, of which :func:`digitrec_utils.data.preparation.prepare_found_ink` keeps
    those within a pixel of the ink, so that anti-aliased edges stay.
    """

    pixels = np.asarray(pixels, dtype=np.float32)
    span = survey.ink_level - survey.background
    if abs(span) < MIN_LEVEL:
        empty = np.zeros(pixels.shape, dtype=bool)
        return PhotoInk(np.zeros(pixels.shape, dtype=np.float32), empty, empty)
    strength = np.clip((pixels - survey.background) / span, 0.0, 1.0) * 255.0
    labels, count = ndimage.label(strength >= SCAN_INK_SHARE * 255.0, structure=np.ones((3, 3), dtype=bool))
    mask = labels > 0
    if count > 1:
        sizes = np.bincount(labels.ravel())[1:]
        mask = np.isin(labels, np.flatnonzero(sizes >= RELATIVE_SPECK * sizes.max()) + 1)
    return PhotoInk(strength.astype(np.float32), mask, np.zeros(pixels.shape, dtype=bool))


def find_ink(pixels: np.ndarray) -> tuple[PhotoInk, ImageSurvey]:
    """Find the ink of any image, the way its kind needs (:func:`survey_image`).

    A clean scan goes through :func:`find_scan_ink`, a photo through :func:`find_photo_ink`.

    Returns
    -------
    ink : PhotoInk
    survey : ImageSurvey
    """
    survey = survey_image(pixels)
    if survey.kind == "scan":
        return find_scan_ink(pixels, survey), survey
    return find_photo_ink(pixels), survey
