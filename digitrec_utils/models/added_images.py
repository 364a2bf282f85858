"""Images added to ``cnn_modern``'s training part: copies made to look like other writers' scans, and generated
images of no digit (outlier exposure). The validation part stays the dataset's own, so that early stopping and
model choice are not changed by them.
"""

from __future__ import annotations

import numpy as np

from digitrec_utils.data.nondigits import make_nondigits
from digitrec_utils.data.preparation import prepare_image_batch
from digitrec_utils.data.preprocessing import add_channel_axis, scale_images
from digitrec_utils.data.scanning import simulate_scans
from digitrec_utils.models.training import OUTLIER_LABEL

# Added to the seed of the generated images of no digit used in training, so that they never repeat the
# ones 05_deployment draws with the run's seed (and the next) to choose and to report.
OUTLIER_SEED_OFFSET = 7919
# The scanned-looking copies (add_scan_copies) draw their digits and changes from seeds of their own too.
SCAN_SEED_OFFSET = 1593


def prepare_images(images: np.ndarray) -> np.ndarray:
    """Return uint8 images of shape (n, 28, 28) as float32 of shape (n, 28, 28, 1) in [0, 1]."""
    return add_channel_axis(scale_images(images))


def add_scan_copies(originals: np.ndarray, original_labels: np.ndarray, x_train: np.ndarray, y_train: np.ndarray,
                    share: float, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Append copies of a share of the training digits made to look like other writers' scans, with their labels.

    The digits are drawn at random (seeded) from the training part only; each copy is stretched, brought to a
    low resolution, given another pen, blurred or binarised and then prepared as ``digitrec predict`` prepares
    a clean scan (:func:`digitrec_utils.data.scanning.simulate_scans`). The validation part stays MNIST's own, so
    that early stopping and model choice are not changed by what the copies look like.

    Parameters
    ----------
    originals : ndarray of shape (n_train, 28, 28), uint8
        The training digits as the dataset holds them.
    original_labels : ndarray of shape (n_train,)
    x_train : ndarray of shape (n, 28, 28, 1), float32
        The training images so far (``originals`` prepared, perhaps with more appended).
    y_train : ndarray of shape (n,)
    share : float
        How many copies to add, as a share of ``len(originals)``.
    seed : int
    """
    rng = np.random.default_rng([seed, SCAN_SEED_OFFSET])
    count = int(round(share * len(originals)))
    # Every digit once per whole share, then a random draw for the rest (a share of 1.5: each once, half twice).
    chosen = np.concatenate([np.tile(np.arange(len(originals)), count // len(originals)),
                             rng.choice(len(originals), size=count % len(originals), replace=False)])
    prepared, usable = simulate_scans(originals[chosen], seed=seed + SCAN_SEED_OFFSET,
                                      labels=np.asarray(original_labels)[chosen])
    copies = prepared[usable][..., None].astype(x_train.dtype)
    return (np.concatenate([x_train, copies]),
            np.concatenate([np.asarray(y_train, dtype=np.int64),
                            np.asarray(original_labels)[chosen[usable]].astype(np.int64)]))


def describe_scan_copies(share: float) -> str:
    """Return the sentence on the scanned-looking copies :func:`add_scan_copies` adds, or "" when it adds none.

    Parameters
    ----------
    share : float
        ``modern_scan_copies``: how many copies, as a share of the training digits.
    """
    if not share:
        return ""
    if share < 1:
        amount = f"{share:.0%} of the training digits get a scanned-looking copy, which joins them"
    elif share == 1:
        amount = "every training digit gets a scanned-looking copy, which joins them"
    else:
        amount = f"{share:g} times as many scanned-looking copies as training digits join them"
    return (f"Before training, {amount} (a slant, a crossed 7, the box stretched, 16 to 32 pixels, another pen, "
            "blur, black and white), prepared as digitrec predict prepares a scan.")


def show_scan_copies(images: np.ndarray, labels: np.ndarray, *, seed: int) -> np.ndarray:
    """Return ``images`` prepared as training digits, then one scanned-looking copy of each, for a figure.

    The copies come from :func:`digitrec_utils.data.scanning.simulate_scans` with the seed ``add_scan_copies``
    uses; a copy that could not be made is left blank.
    """
    copies, _ = simulate_scans(images, seed=seed + SCAN_SEED_OFFSET, labels=labels)
    return np.concatenate([prepare_images(images)[..., 0], copies])


def add_outliers(x_train: np.ndarray, y_train: np.ndarray, share: float, *, seed: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Append generated images of no digit (outlier exposure), labelled ``training.OUTLIER_LABEL``.

    The images come from :func:`digitrec_utils.data.nondigits.make_nondigits` with a seed of their own, and are
    prepared as ``digitrec predict`` prepares a 28x28 image; blank ones (no ink) are left out, since
    ``predict`` never passes them to the model. The network learns to give them a uniform answer, so that
    its confidence is low on what is not a digit. Never the same images as 05_deployment's, which come from
    other seeds; and that report measures rejection on another source too (Fashion-MNIST).

    Parameters
    ----------
    x_train : ndarray of shape (n_train, 28, 28, 1), float32 in [0, 1]
    y_train : ndarray of shape (n_train,)
    share : float
        How many images of no digit to add, as a share of ``n_train``.
    seed : int
    """
    generated, _ = make_nondigits(int(round(share * len(y_train))), seed=seed + OUTLIER_SEED_OFFSET)
    prepared, usable = prepare_image_batch(generated)
    outliers = prepared[usable][..., None]
    return (np.concatenate([x_train, outliers.astype(x_train.dtype)]),
            np.concatenate([np.asarray(y_train, dtype=np.int64), np.full(len(outliers), OUTLIER_LABEL)]))
