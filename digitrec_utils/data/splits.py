"""Honest splits: a stratified validation part (and held-out test part where a source has none), subsamples."""

from __future__ import annotations

import math

import numpy as np
from sklearn.model_selection import train_test_split

from digitrec_utils.data.readers import (
    N_CLASSES,
)
from digitrec_utils.data.types import OFFICIAL_TRAIN_SIZES, SOURCE_SIZES, Dataset, Splits
from digitrec_utils.exceptions import ParameterError


def choose_split_seed(split_seed: int, seed: int) -> int:
    """Return the seed of the data splits: ``split_seed``, or ``seed`` when ``split_seed`` is negative.

    A seed sweep with a fixed split (``digitrec run --seeds ... --fixed-split``) varies ``seed`` (the
    training) and pins ``split_seed``; otherwise a seed changes the split and the training together.

    Examples
    --------
    >>> choose_split_seed(-1, 7), choose_split_seed(42, 7)
    (7, 42)
    """
    return int(seed if split_seed is None or split_seed < 0 else split_seed)


def make_splits(
    dataset: Dataset,
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    train_size: int | None = None,
) -> Splits:
    """Carve a stratified validation part out of the training part; leave the test part untouched.

    Parameters
    ----------
    dataset : Dataset
    val_fraction : float, default=0.1
        Fraction of the (possibly subsampled) training part that becomes validation data.
    seed : int, default=0
        Seeds the subsample and the validation carve; the same seed gives the same indices.
    train_size : int, optional
        Draw a stratified subsample of this many images from the training part first (train and
        validation together), for quick runs. None uses the whole training part.

    Returns
    -------
    splits : Splits
        The three parts, with disjoint index sets (checked here).
    """
    if not 0.0 < val_fraction < 1.0:
        raise ParameterError(f"val_fraction: {val_fraction!r} must lie strictly between 0 and 1.")
    n_available = len(dataset.y_train)
    pool = np.arange(n_available)
    if train_size is not None:
        if not isinstance(train_size, (int, np.integer)) or not N_CLASSES * 2 <= train_size <= n_available:
            raise ParameterError(
                f"train_size: {train_size!r} must be a whole number from {N_CLASSES * 2} to {n_available:,} "
                f"(the training part of {dataset.name!r}), or null for all of it."
            )
        if train_size < n_available:
            pool = _stratified_subset(pool, dataset.y_train, train_size, seed, "train_size")
    train_indices, val_indices = split_stratified(pool, dataset.y_train[pool], val_fraction, seed, "val_fraction")
    train_indices = np.sort(train_indices)
    val_indices = np.sort(val_indices)
    test_indices = np.arange(len(dataset.y_test))
    _check_disjoint(train_indices, val_indices, test_indices, n_available)
    return Splits(
        x_train=dataset.x_train[train_indices],
        y_train=dataset.y_train[train_indices],
        x_val=dataset.x_train[val_indices],
        y_val=dataset.y_train[val_indices],
        x_test=dataset.x_test,
        y_test=dataset.y_test,
        train_indices=train_indices,
        val_indices=val_indices,
        test_indices=test_indices,
        class_names=dataset.class_names,
        seed=seed,
    )


def count_training_images(
    name: str, *, test_fraction: float = 0.2, val_fraction: float = 0.1, train_size: int | None = None
) -> int | None:
    """Return how many images :func:`make_splits` will leave for training, without loading anything.

    Parameters
    ----------
    name : str
        A dataset name.
    test_fraction, val_fraction : float
        As passed to :func:`load_dataset` and :func:`make_splits`.
    train_size : int, optional
        As passed to :func:`make_splits`.

    Returns
    -------
    n_train : int or None
        None for ``csv`` and ``folder`` (and unknown names), whose size is known only once the files are read.
    """
    if name in OFFICIAL_TRAIN_SIZES:
        pool = OFFICIAL_TRAIN_SIZES[name]
    elif name in SOURCE_SIZES:
        pool = SOURCE_SIZES[name] - math.ceil(test_fraction * SOURCE_SIZES[name])
    else:
        return None
    if train_size is not None:
        pool = min(pool, train_size)
    return pool - math.ceil(val_fraction * pool)  # As train_test_split rounds a float test_size.


def _check_disjoint(train_indices, val_indices, test_indices, n_train_part: int) -> None:
    """Raise AssertionError unless train, val and test index sets are pairwise disjoint.

    Test positions are offset by the size of the training part so that all three live in one index
    space: the training part's images first, the test part's after them.
    """
    test_global = np.asarray(test_indices) + n_train_part
    parts = {"train": np.asarray(train_indices), "val": np.asarray(val_indices), "test": test_global}
    names = list(parts)
    for first_position, first in enumerate(names):
        for second in names[first_position + 1 :]:
            shared = np.intersect1d(parts[first], parts[second])
            if shared.size:
                raise AssertionError(f"{first} and {second} share {shared.size} indices; the splits leak.")


def split_stratified(indices, labels, fraction, seed, key):
    """Split ``indices`` into (rest, held-out fraction), stratified on ``labels``."""

    try:
        return train_test_split(indices, test_size=fraction, stratify=labels, random_state=seed)
    except ValueError as error:
        raise ParameterError(
            f"{key}: cannot make a stratified split of {len(indices):,} images with fraction {fraction} "
            f"({error}). Use a larger dataset or train_size, or a fraction nearer 0.5."
        ) from None


def _stratified_subset(indices, labels, size, seed, key):
    """Return a stratified, seeded subset of ``indices`` of the given size."""
    return np.sort(np.asarray(indices)[_draw_stratified_subset(labels, size, seed, key)])


def take_stratified_subset(images: np.ndarray, labels: np.ndarray, size: int, seed: int, key: str):
    """Return ``(images, labels)`` cut to a stratified, seeded subsample of ``size``; all of them when
    ``size`` is 0 or at least their number.

    Raises
    ------
    ParameterError
        Naming ``key`` when a stratified subsample of that size cannot be drawn.
    """
    if not size or size >= len(labels):
        return images, labels
    chosen = _draw_stratified_subset(labels, size, seed, key)
    return images[chosen], labels[chosen]


def _draw_stratified_subset(labels: np.ndarray, size: int, seed: int, key: str = "train_size") -> np.ndarray:
    """Return the sorted positions of a stratified, seeded subsample of ``size`` of ``labels``.

    Parameters
    ----------
    labels : ndarray of shape (n_samples,)
    size : int
        How many positions to draw, fewer than ``n_samples``.
    seed : int
    key : str
        The parameter that asked for the subsample, named in errors.

    Returns
    -------
    positions : ndarray of int of shape (size,)

    Raises
    ------
    ParameterError
        When a stratified subsample of that size cannot be drawn.
    """

    positions = np.arange(len(labels))
    try:
        subset, _ = train_test_split(positions, train_size=size, stratify=labels, random_state=seed)
    except ValueError as error:
        raise ParameterError(f"{key}: cannot draw a stratified subsample of {size:,} of {len(labels):,} images "
                             f"({error}). Choose a size from the number of classes to {len(labels) - 1:,}.") from None
    return np.sort(subset)


def split_labelled_digits(labels: np.ndarray, *, share: float, seed: int, needed_per_class: int,
                          what: str) -> tuple[np.ndarray, np.ndarray]:
    """Split positions of labelled digits in two stratified, seeded parts: (the rest, ``share`` of them).

    Parameters
    ----------
    labels : ndarray of shape (n,)
        Class positions; -1 for digits that take no part.
    share : float
        The second part's share, strictly between 0 and 1.
    seed : int
    needed_per_class : int
        The fewest digits of a class this split may be given, so that both parts (and any split after it)
        hold some of each.
    what : str
        What is split, named in errors ("the office's digits").

    Raises
    ------
    ParameterError
        Naming each class with too few digits, how many it has and how many are needed.
    """
    labels = np.asarray(labels)
    positions = np.flatnonzero(labels >= 0)
    counts = np.bincount(labels[positions], minlength=int(labels.max(initial=0)) + 1)
    short = {label: int(count) for label, count in enumerate(counts) if 0 < count < needed_per_class}
    if short:
        listed = ", ".join(f"class {label}: {count}" for label, count in short.items())
        raise ParameterError(f"{what}: too few digits of some classes to split ({listed}); each class needs at "
                             f"least {needed_per_class}. Label more of them, or leave the class out.")
    rest, second = split_stratified(positions, labels[positions], share, seed, what)
    return np.sort(rest), np.sort(second)


def draw_per_class(positions: np.ndarray, labels: np.ndarray, count: int, seed: int, *,
                   what: str = "label_counts") -> np.ndarray:
    """Return a stratified, seeded draw of ``count`` of ``positions`` (all of them when ``count`` reaches their
    number), sorted."""
    positions = np.asarray(positions)
    if count >= len(positions):
        return np.sort(positions)
    return np.sort(positions[_draw_stratified_subset(np.asarray(labels)[positions], count, seed, what)])
