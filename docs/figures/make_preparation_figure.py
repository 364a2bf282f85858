"""Draw docs/figures/preparation.png: images of each kind and what ``digitrec predict`` feeds the model.

Every input is made from mnist-sample's embedded digits (nothing from the shared field sets is copied):
a 16x16 black-and-white scan filling its frame (as semeion's), a 32x32 thick-stroked bitmap (as
optdigits'), a 56x56 grey scan (MNIST's own digit, inverted and enlarged), a photo-like digit on lined,
unevenly lit paper, and a 28x28 digit shifted by 4 pixels. Run from the repository root:
``.venv/bin/python docs/figures/make_preparation_figure.py``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402
from scipy import ndimage  # noqa: E402

from digitrec_utils.data.loading import load_dataset  # noqa: E402
from digitrec_utils.data.preparation import prepare_image_with_kind  # noqa: E402
from digitrec_utils.imaging.envelopes import make_photo_digit  # noqa: E402


def _frame_filling(digit: np.ndarray, side: int, *, thicken: bool = False) -> np.ndarray:
    # Cropped at the level it is binarised at, so that its ink touches all four sides of the frame.
    rows, columns = np.nonzero(digit > 90)
    crop = digit[rows.min():rows.max() + 1, columns.min():columns.max() + 1]
    small = np.asarray(Image.fromarray(crop).resize((side, side), Image.Resampling.BILINEAR))
    if thicken:
        small = ndimage.grey_dilation(small, size=(3, 3))
    return np.where(small > 90, 0, 255).astype(np.uint8)


def main() -> None:
    digits = load_dataset("mnist-sample", seed=42).x_test
    inputs = [
        ("16x16 scan, black and white,\nstretched to its frame", _frame_filling(digits[0], 16)),
        ("32x32 bitmap,\nthick strokes", _frame_filling(digits[1], 32, thicken=True)),
        ("56x56 grey scan", 255 - np.asarray(Image.fromarray(digits[2]).resize((56, 56), Image.Resampling.BICUBIC))),
        ("photo: lined paper,\nuneven light, JPEG", make_photo_digit(digits[3], seed=3)),
        ("28x28, shifted\nby 4 pixels", ndimage.shift(digits[4], (4, -4), order=0)),
    ]
    figure, grid = plt.subplots(2, len(inputs), figsize=(2.3 * len(inputs), 5.0))
    for column, (title, image) in enumerate(inputs):
        prepared, kind = prepare_image_with_kind(image)
        grid[0, column].imshow(image, cmap="gray", vmin=0, vmax=255)
        grid[0, column].set_title(title, fontsize=9)
        grid[1, column].imshow(prepared, cmap="gray", vmin=0, vmax=1)
        grid[1, column].set_title(f"prepared as: {kind}", fontsize=9)
        for axes in grid[:, column]:
            axes.set_xticks([])
            axes.set_yticks([])
    grid[0, 0].set_ylabel("the file", fontsize=10)
    grid[1, 0].set_ylabel("what the model is fed", fontsize=10)
    figure.tight_layout()
    target = Path(__file__).with_name("preparation.png")
    figure.savefig(target, dpi=80)
    print(target)


if __name__ == "__main__":
    main()
