"""Preprocessing: scaling, standardization fitted on train only, and reshaping."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import make_images

from digitrec_utils.data.preprocessing import PixelStandardizer, add_channel_axis, flatten_images, scale_images


def test_scale_images_maps_uint8_to_unit_float32():
    images = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    scaled = scale_images(images)
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled, [[[0.0, 1.0], [0.2, 0.4]]], rtol=1e-6)


def test_flatten_and_channel_axis_shapes():
    images, _ = make_images(3)
    assert flatten_images(images).shape == (3, 784)
    assert add_channel_axis(images).shape == (3, 28, 28, 1)
    np.testing.assert_array_equal(flatten_images(images)[1], images[1].ravel())


def test_standardization_uses_train_statistics_only():
    generator = np.random.default_rng(0)
    train = generator.integers(0, 100, size=(50, 28, 28)).astype(np.uint8)
    test = generator.integers(150, 256, size=(20, 28, 28)).astype(np.uint8)  # A shifted distribution.
    standardizer = PixelStandardizer().fit(train)
    train_scaled, test_scaled = scale_images(train), scale_images(test)
    np.testing.assert_allclose(standardizer.mean_, train_scaled.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(standardizer.scale_, train_scaled.std(axis=0), rtol=1e-4)
    transformed = standardizer.transform(test)
    expected = (test_scaled - train_scaled.mean(axis=0)) / train_scaled.std(axis=0)
    np.testing.assert_allclose(transformed, expected, rtol=1e-4, atol=1e-4)
    # Had the test set leaked into the statistics, its mean would be near zero; it is far above.
    assert transformed.mean() > 3.0
    np.testing.assert_allclose(standardizer.transform(train).mean(axis=0), 0.0, atol=1e-5)


def test_constant_pixels_do_not_produce_nan():
    train = np.zeros((10, 28, 28), dtype=np.uint8)
    train[:, 10, 10] = np.arange(10)
    standardizer = PixelStandardizer()
    transformed = standardizer.fit_transform(train)
    assert np.isfinite(transformed).all()
    assert standardizer.scale_[0, 0] == 1.0
    assert standardizer.constant_mask_.sum() == 28 * 28 - 1 and not standardizer.constant_mask_[10, 10]
    other = np.full((2, 28, 28), 255, dtype=np.uint8)
    assert np.isfinite(standardizer.transform(other)).all()


def test_transform_before_fit_says_what_to_do():
    with pytest.raises(RuntimeError, match=r"call fit\(x_train\) first"):
        PixelStandardizer().transform(np.zeros((1, 28, 28), dtype=np.uint8))
