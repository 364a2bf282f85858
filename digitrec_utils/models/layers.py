"""digitrec's own Keras layers: the mail changes that ``cnn_modern`` trains on, and the mirror of clothes.

``RandomMailChanges`` gives training images the pen widths, scanner
noise and occlusions of real mail; it passes images through at inference and is left out of saved models
(:mod:`digitrec_utils.models.inference`). The mirror that Fashion-MNIST's test-time averaging needs is built
from Keras's own layers (:func:`build_mirror_layer`); ``MirrorImages``, the custom layer older models used
for it, stays registered so that their files still load.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from digitrec_utils.models.backend import keras

ops = keras.ops

# Share of training images that get one corruption-like change when robustness augmentation is on.
ROBUSTNESS_RATE = 0.5


@keras.saving.register_keras_serializable(package="digitrec")
class MirrorImages(keras.layers.Layer):
    """Flip images of shape (batch, height, width, channels) left to right, always (not a random layer).

    Older models used it to mirror images. Models saved since the mirror became Keras's own layers
    (:func:`build_mirror_layer`) do not contain it; it stays registered so that digitrec still loads the older
    files, and :func:`digitrec_utils.models.inference.build_inference_model` replaces it when such a file is
    saved again or exported.
    """

    def call(self, inputs):
        return keras.ops.flip(inputs, axis=2)


def build_mirror_layer(input_shape: Sequence[int], name: str = "mirror"):
    """Return a block of Keras's own layers that mirrors images of ``input_shape`` (height, width, channels).

    Keras has a random flip for training (``RandomFlip``) but no flip for inference, so the columns are
    reversed by a frozen ``Dense`` layer whose kernel is the reversed identity matrix, between two
    ``Permute`` layers that make the width the last axis. Each output pixel is one input pixel times 1 plus
    the others times 0, so the flip is exact in float32, and any Keras, ONNX or LiteRT runtime runs it.
    """

    height, width, channels = (int(size) for size in input_shape)
    reverse_columns = keras.layers.Dense(width, use_bias=False, trainable=False, name="reverse_columns")
    block = keras.Sequential([keras.Input(shape=(height, width, channels)), keras.layers.Permute((1, 3, 2)),
                              reverse_columns, keras.layers.Permute((1, 3, 2))], name=name)
    reverse_columns.set_weights([np.eye(width, dtype="float32")[::-1]])
    return block


def _pick(variants, generator):
    """Return, per image, one of ``variants`` (arrays of one shape) drawn uniformly."""
    batch = ops.shape(variants[0])[0]
    choice = keras.random.randint((batch,), 0, len(variants), seed=generator)
    weights = ops.reshape(ops.one_hot(choice, len(variants), dtype=variants[0].dtype),
                          (batch, len(variants), 1, 1, 1))
    return ops.sum(ops.stack(variants, axis=1) * weights, axis=1)


@keras.saving.register_keras_serializable(package="digitrec")
class RandomMailChanges(keras.layers.Layer):
    """Give a share ``rate`` of the images one change of a kind in ``kinds``, in training only."""

    def __init__(self, kinds=("pen", "noise", "occlusion"), rate=ROBUSTNESS_RATE, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.kinds, self.rate, self.seed = list(kinds), float(rate), seed
        self.generator = keras.random.SeedGenerator(seed)

    def _pen(self, images):
        def thinner(size):
            return -ops.max_pool(-images, size, strides=1, padding="same")

        return _pick([ops.max_pool(images, 2, strides=1, padding="same"),
                     ops.max_pool(images, 3, strides=1, padding="same"), thinner(2), thinner(3)], self.generator)

    def _noise(self, images):
        shape = ops.shape(images)
        sigma = keras.random.uniform((shape[0], 1, 1, 1), 0.0, 0.25, seed=self.generator)
        gaussian = images + keras.random.normal(shape, seed=self.generator) * sigma
        amount = keras.random.uniform((shape[0], 1, 1, 1), 0.0, 0.10, seed=self.generator)
        draw = keras.random.uniform(shape, seed=self.generator)
        salted = ops.where(draw < amount / 2, 0.0, ops.where(draw > 1.0 - amount / 2, 1.0, images))
        return ops.clip(_pick([gaussian, salted], self.generator), 0.0, 1.0)

    def _occlusion(self, images):
        batch = ops.shape(images)[0]
        side = ops.cast(ops.shape(images)[1], "float32")
        rows = ops.reshape(ops.arange(0, 28, dtype="float32"), (1, 28, 1, 1))
        columns = ops.reshape(ops.arange(0, 28, dtype="float32"), (1, 1, 28, 1))
        position = ops.floor(keras.random.uniform((batch, 1, 1, 1), 6.0, side - 8.0, seed=self.generator))
        across = ops.cast((rows >= position) & (rows < position + 2), images.dtype)
        down = ops.cast((columns >= position) & (columns < position + 2), images.dtype)
        stripe = images * (1.0 - _pick([across + 0.0 * columns, down + 0.0 * rows], self.generator))
        centre_row = keras.random.uniform((batch, 1, 1, 1), 6.0, side - 6.0, seed=self.generator)
        centre_column = keras.random.uniform((batch, 1, 1, 1), 6.0, side - 6.0, seed=self.generator)
        radius = keras.random.uniform((batch, 1, 1, 1), 2.0, 3.0, seed=self.generator)
        inside = (rows - centre_row) ** 2 + (columns - centre_column) ** 2 <= radius ** 2
        blot = ops.where(inside, 1.0, images)
        return _pick([stripe, blot], self.generator)

    def call(self, inputs, training=None):
        if not training or not self.kinds:
            return inputs
        changed = _pick([getattr(self, f"_{kind}")(inputs) for kind in self.kinds], self.generator)
        chosen = keras.random.uniform((ops.shape(inputs)[0], 1, 1, 1), seed=self.generator) < self.rate
        return ops.where(chosen, changed, inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "kinds": self.kinds, "rate": self.rate, "seed": self.seed}


def _gaussian_kernel(sigma: float) -> np.ndarray:
    """The normalized 1-D Gaussian of standard deviation ``sigma`` pixels, 3 ``sigma`` each way."""
    radius = int(np.ceil(3 * sigma))
    offsets = np.arange(-radius, radius + 1, dtype="float32")
    kernel = np.exp(-offsets ** 2 / (2 * sigma ** 2))
    return kernel / kernel.sum()


@keras.saving.register_keras_serializable(package="digitrec")
class RandomElasticDistortion(keras.layers.Layer):
    """Move every pixel of each image by its own smooth random field, in training only (Simard et al., 2003).

    A field of uniform noise in [-1, 1] per pixel and axis is smoothed by a Gaussian of ``sigma`` pixels
    and scaled by ``alpha``; each output pixel is read, bilinearly, where the field points, and black
    where it points outside the image.

    Keras 3 has ``RandomElasticTransform``, but as of Keras 3.15 its TensorFlow backend draws the same noise for
    both axes (every pixel moves along the diagonal), loops over the images of a batch in Python (so a batch of
    unknown size is taken as one image), and samples with ``keras.ops.image.map_coordinates``, which took 8.5 ms
    per batch of 128 on 2 cores against 2.3 ms for the bilinear gather here.
    """

    def __init__(self, alpha=34.0, sigma=4.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.alpha, self.sigma, self.seed = float(alpha), float(sigma), seed
        self.generator = keras.random.SeedGenerator(seed)
        kernel = _gaussian_kernel(self.sigma)
        # Depthwise kernels for the two channels of the field (rows, columns), down and then across.
        self._down = np.tile(kernel.reshape(-1, 1, 1, 1), (1, 1, 2, 1))
        self._across = np.tile(kernel.reshape(1, -1, 1, 1), (1, 1, 2, 1))

    def call(self, inputs, training=None):
        if not training or self.alpha == 0:
            return inputs
        shape = ops.shape(inputs)
        batch, height, width = shape[0], inputs.shape[1], inputs.shape[2]
        noise = keras.random.uniform((batch, height, width, 2), -1.0, 1.0, seed=self.generator)
        field = ops.depthwise_conv(ops.depthwise_conv(noise, self._down, padding="same"), self._across,
                                   padding="same") * self.alpha
        rows = ops.reshape(ops.arange(height, dtype="float32"), (1, height, 1)) + field[..., 0]
        columns = ops.reshape(ops.arange(width, dtype="float32"), (1, 1, width)) + field[..., 1]
        top, left = ops.floor(rows), ops.floor(columns)
        below, beside = rows - top, columns - left
        # A border of one black pixel: every point outside the image reads it (bilinear, constant 0).
        padded = ops.reshape(ops.pad(inputs[..., 0], [[0, 0], [1, 1], [1, 1]]), (batch, -1))

        def read(row, column):
            row = ops.clip(ops.cast(row, "int32") + 1, 0, height + 1)
            column = ops.clip(ops.cast(column, "int32") + 1, 0, width + 1)
            return ops.take_along_axis(padded, ops.reshape(row * (width + 2) + column, (batch, -1)), axis=1)

        def weight(values):
            return ops.reshape(values, (batch, -1))

        warped = (read(top, left) * weight((1 - below) * (1 - beside))
                  + read(top, left + 1) * weight((1 - below) * beside)
                  + read(top + 1, left) * weight(below * (1 - beside))
                  + read(top + 1, left + 1) * weight(below * beside))
        return ops.reshape(warped, shape)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "sigma": self.sigma, "seed": self.seed}


def build_affine_transforms(angles, zooms, shifts, side: int):
    """Return, per image, the projective transform that rotates, zooms and then shifts it, in one step.

    Keras's ``RandomRotation``, ``RandomZoom`` and ``RandomTranslation`` each resample the image; one
    transform that composes them resamples once. The transform maps an output pixel ``p`` (column, row) to
    the input point ``c + z R(angle) (p - shift - c)``, ``c`` the image's centre: what the three layers
    in that order read, so that a digit is turned by ``angle`` radians, scaled by ``1 / z`` about its
    centre and moved by ``shift`` pixels (positive: right and down).

    Parameters
    ----------
    angles, zooms : tensors of shape (n,)
    shifts : tensor of shape (n, 2)
        Pixels across and down.
    side : int
        The images' height and width.

    Returns
    -------
    transforms : tensor of shape (n, 8)
        In the layout of ``keras.ops.image.affine_transform``.
    """

    ops = keras.ops
    centre = (side - 1) / 2.0
    cosine, sine = ops.cos(angles) * zooms, ops.sin(angles) * zooms
    across, down = centre + shifts[:, 0], centre + shifts[:, 1]
    zeros = ops.zeros_like(angles)
    return ops.stack([cosine, -sine, centre - cosine * across + sine * down,
                      sine, cosine, centre - sine * across - cosine * down, zeros, zeros], axis=1)


@keras.saving.register_keras_serializable(package="digitrec")
class RandomGeometry(keras.layers.Layer):
    """Rotate by up to ``rotation`` radians, zoom by up to ``zoom`` and shift by up to ``shift`` of the side.

    Each image draws its own angle, zoom factor (``1 - zoom`` to ``1 + zoom``) and shifts across and down
    (``-shift`` to ``shift`` of the side), uniformly; in training only.

    It draws what Keras's ``RandomRotation``, ``RandomZoom`` (the same factor both ways) and ``RandomTranslation``
    draw, with their bilinear interpolation and black fill, but resamples each image once
    (:func:`build_affine_transforms`) instead of three times: faster (docs/RESULTS.md, training throughput), and
    one blur instead of three.
    """

    def __init__(self, rotation=0.0, zoom=0.0, shift=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rotation, self.zoom, self.shift, self.seed = float(rotation), float(zoom), float(shift), seed
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training:
            return inputs
        batch, side = ops.shape(inputs)[0], inputs.shape[1]
        angles = keras.random.uniform((batch,), -self.rotation, self.rotation, seed=self.generator)
        zooms = 1.0 + keras.random.uniform((batch,), -self.zoom, self.zoom, seed=self.generator)
        shifts = keras.random.uniform((batch, 2), -self.shift, self.shift, seed=self.generator) * side
        return ops.image.affine_transform(inputs, build_affine_transforms(angles, zooms, shifts, side),
                                          interpolation="bilinear", fill_mode="constant", fill_value=0.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rotation": self.rotation, "zoom": self.zoom, "shift": self.shift,
                "seed": self.seed}
