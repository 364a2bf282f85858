"""Image properties for monitoring: each checked on drawn shapes whose answer is known by construction."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import line, polygon

from digitrec_utils.data.properties import FIELD_PROPERTIES, measure_field_properties, measure_raw_properties


def _bar(width: int, *, lean: float = 0.0, top: int = 4, bottom: int = 24, left: int = 12) -> np.ndarray:
    """A stroke of ``width`` pixels from ``top`` to ``bottom``, its top moved ``lean`` pixels right per pixel up."""
    field = np.zeros((28, 28))
    rows = np.array([top, top, bottom, bottom])
    height = bottom - top
    columns = np.array([left + lean * height, left + lean * height + width, left + width, left])
    rr, cc = polygon(rows, columns, shape=field.shape)
    field[rr, cc] = 1.0
    return field


def test_a_known_bar_reads_its_box_ink_and_centre():
    field = _bar(4, top=4, bottom=24, left=12)
    properties = {name: float(values[0]) for name, values in measure_field_properties(field[None]).items()}
    ink = field >= 0.5
    rows, columns = np.nonzero(ink)
    assert properties["ink share"] == pytest.approx(ink.sum() / 784)
    assert properties["height"] == rows.max() - rows.min() + 1
    assert properties["width"] == columns.max() - columns.min() + 1
    assert properties["slant"] == pytest.approx(0.0, abs=1e-9)
    centre = (rows.mean(), columns.mean())  # Every ink pixel weighs 1 here.
    assert properties["centre offset"] == pytest.approx(np.hypot(centre[0] - 14, centre[1] - 14))
    assert set(properties) == set(FIELD_PROPERTIES)


def test_slant_follows_the_lean_and_its_sign_and_a_thicker_pen_reads_wider():
    upright, right, left = (_bar(3, lean=lean, left=10)[None] for lean in (0.0, 0.4, -0.4))
    slants = [float(measure_field_properties(image)["slant"][0]) for image in (upright, right, left)]
    assert slants[1] == pytest.approx(0.4, abs=0.05) and slants[2] == pytest.approx(-0.4, abs=0.05)
    thin, thick = np.zeros((28, 28)), np.zeros((28, 28))
    for field, half in ((thin, 0), (thick, 2)):
        for offset in range(-half, half + 1):
            rr, cc = line(4, 8 + offset, 23, 18 + offset)
            field[rr, cc] = 1.0
    widths = measure_field_properties(np.stack([thin, thick]))["stroke width"]
    assert widths[1] > 2.5 * widths[0]


def test_an_empty_field_reads_zeros_rather_than_failing():
    values = measure_field_properties(np.zeros((1, 28, 28)))
    assert all(float(value[0]) == 0.0 for value in values.values())


def test_a_file_reads_its_size_contrast_and_ink_colour():
    page = np.full((40, 30), 250, dtype=np.uint8)
    page[10:30, 12:18] = 20  # Dark ink on light paper.
    assert measure_raw_properties(page) == (30.0, 40.0, 230.0, 1.0)
    mnist_like = np.zeros((28, 28), dtype=np.uint8)
    mnist_like[6:22, 12:16] = 200
    width, height, contrast, dark = measure_raw_properties(mnist_like)
    assert (width, height, dark) == (28.0, 28.0, 0.0) and contrast == 200.0
