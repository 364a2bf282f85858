"""Small synthetic datasets for tests: random images and the IDX encoding."""

from __future__ import annotations

import numpy as np


def encode_idx(array: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX: two zero bytes, type 0x08, the number of dims, the dims, the data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(size).to_bytes(4, "big") for size in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def make_images(n_samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return random uint8 images of shape (n, 28, 28) and balanced labels 0-9."""
    generator = np.random.default_rng(seed)
    images = generator.integers(0, 256, size=(n_samples, 28, 28), dtype=np.uint8)
    labels = (np.arange(n_samples) % 10).astype(np.uint8)
    return images, labels
