"""Test doubles for checking that the test split never reaches tuning or training."""

from __future__ import annotations

import numpy as np


class Forbidden:
    """Stands in for the test split; any use of it fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"the test split was read ({name})")

    def __array__(self, *args, **kwargs):
        raise AssertionError("the test split was converted to an array")

    def __len__(self):
        raise AssertionError("the test split's length was read")

    def __getitem__(self, item):
        raise AssertionError("the test split was indexed")


def row_keys(features) -> set[bytes]:
    """Return one key per image, from pixels in [0, 1] (any shape per image), to compare sets of rows."""
    pixels = np.rint(np.asarray(features, dtype=np.float64).reshape(len(features), -1) * 255).astype(np.uint8)
    return {row.tobytes() for row in pixels}


def spy_on_training_datasets(monkeypatch) -> list[tuple[bool, set[bytes]]]:
    """Record the rows of every dataset ``training.make_dataset`` builds, through which every fit passes.

    Returns the list it fills: one ``(shuffled, row keys)`` per dataset; shuffled ones are training batches,
    the others validation batches.
    """
    from digitrec_utils.models import training

    seen = []
    original = training.make_dataset

    def spy(images, labels, batch_size, *, shuffle, seed, **options):
        seen.append((shuffle, row_keys(images)))
        return original(images, labels, batch_size, shuffle=shuffle, seed=seed, **options)

    monkeypatch.setattr(training, "make_dataset", spy)
    return seen
