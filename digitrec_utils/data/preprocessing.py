"""Preprocessing helpers: scaling, pixel-wise standardization fitted on train only, and reshaping."""

from __future__ import annotations

import numpy as np
from sklearn.preprocessing import StandardScaler


def scale_images(images: np.ndarray) -> np.ndarray:
    """Scale uint8 pixel values to float32 in [0, 1].

    Parameters
    ----------
    images : ndarray of shape (n_samples, 28, 28), dtype uint8

    Returns
    -------
    scaled : ndarray of the same shape, dtype float32
    """
    return np.asarray(images, dtype=np.float32) / np.float32(255.0)


def flatten_images(images: np.ndarray) -> np.ndarray:
    """Flatten images to one row of pixels each.

    Parameters
    ----------
    images : ndarray of shape (n_samples, 28, 28)

    Returns
    -------
    rows : ndarray of shape (n_samples, 784)
    """
    images = np.asarray(images)
    return images.reshape(len(images), -1)


def add_channel_axis(images: np.ndarray) -> np.ndarray:
    """Add a trailing channel axis, as Keras's convolution layers expect.

    Parameters
    ----------
    images : ndarray of shape (n_samples, 28, 28)

    Returns
    -------
    images : ndarray of shape (n_samples, 28, 28, 1)
    """
    return np.asarray(images)[..., np.newaxis]


class PixelStandardizer:
    """Pixel-wise standardization: subtract each pixel's mean and divide by its standard deviation.

    The statistics come from the data passed to :meth:`fit` (the training part only) and are then
    applied unchanged to validation and test data, so nothing leaks from them. Pixels whose standard
    deviation is zero (e.g. MNIST's always-black corners) are divided by 1, never by 0, so no NaN
    appears. This wraps scikit-learn's :class:`~sklearn.preprocessing.StandardScaler`.

    Attributes
    ----------
    mean_ : ndarray of shape (28, 28)
        Per-pixel mean of the training images, in [0, 1] units.
    scale_ : ndarray of shape (28, 28)
        Per-pixel standard deviation, with zeros replaced by 1.
    """

    def __init__(self) -> None:
        self._scaler = StandardScaler()
        self._image_shape: tuple[int, ...] | None = None

    def fit(self, images: np.ndarray) -> PixelStandardizer:
        """Learn the per-pixel statistics from training images (uint8 or float in [0, 1])."""
        images = _as_unit_float(images)
        self._image_shape = images.shape[1:]
        self._scaler.fit(flatten_images(images))
        return self

    def transform(self, images: np.ndarray) -> np.ndarray:
        """Standardize images with the training statistics; returns float32 of the input's shape."""
        if self._image_shape is None:
            raise RuntimeError("PixelStandardizer.transform called before fit; call fit(x_train) first.")
        images = _as_unit_float(images)
        standardized = self._scaler.transform(flatten_images(images))
        return standardized.astype(np.float32).reshape(images.shape)

    def fit_transform(self, images: np.ndarray) -> np.ndarray:
        """Fit on ``images`` and return them standardized."""
        return self.fit(images).transform(images)

    @property
    def mean_(self) -> np.ndarray:
        return self._scaler.mean_.reshape(self._image_shape)

    @property
    def scale_(self) -> np.ndarray:
        return self._scaler.scale_.reshape(self._image_shape)

    @property
    def constant_mask_(self) -> np.ndarray:
        """Boolean mask of pixels that never vary in the training images (divided by 1, not 0)."""
        return (self._scaler.var_ == 0).reshape(self._image_shape)


def _as_unit_float(images: np.ndarray) -> np.ndarray:
    """Return images as float32 in [0, 1], scaling uint8 input."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return scale_images(images)
    return images.astype(np.float32, copy=False)
