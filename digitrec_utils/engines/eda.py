"""Exploratory data analysis, vectorized: every question the original reports asked of the data.

Each function returns numbers and tables, plus a one- or two-sentence finding computed from them. The
``01_eda`` notebook shows them with the figures of :mod:`digitrec_utils.plots.figures`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp
from sklearn.decomposition import PCA

from digitrec_utils.data.preprocessing import PixelStandardizer, flatten_images, scale_images
from digitrec_utils.data.types import Dataset


@dataclass
class Finding:
    """A result with its computed interpretation, and the arrays behind it for the figures."""

    table: pd.DataFrame
    text: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def _compute_image_means(images: np.ndarray) -> np.ndarray:
    """Return each image's mean pixel value (0-255), of shape (n_samples,)."""
    return flatten_images(images).mean(axis=1)


def summarize_overview(dataset: Dataset) -> Finding:
    """Return counts, shapes, dtypes and value ranges of the train and test parts."""
    rows = []
    for part, images, labels in (("train", dataset.x_train, dataset.y_train), ("test", dataset.x_test, dataset.y_test)):
        rows.append({
            "part": part, "images": len(images), "image shape": "x".join(map(str, images.shape[1:])),
            "dtype": str(images.dtype), "pixel min": int(images.min()), "pixel max": int(images.max()),
            "classes present": int(np.unique(labels).size),
        })
    table = pd.DataFrame(rows).set_index("part")
    total = len(dataset.y_train) + len(dataset.y_test)
    text = (f"{dataset.name} holds {total:,} images of {table.iloc[0]['image shape']} {table.iloc[0]['dtype']} pixels "
            f"in {len(dataset.class_names)} classes: {len(dataset.y_train):,} for training and "
            f"{len(dataset.y_test):,} for testing ({dataset.source.split}).")
    return Finding(table, text)


def count_classes(dataset: Dataset) -> Finding:
    """Return the images per class in train and test, the imbalance ratio, and the rarest class."""
    n_classes = len(dataset.class_names)
    train_counts = np.bincount(dataset.y_train, minlength=n_classes)
    test_counts = np.bincount(dataset.y_test, minlength=n_classes)
    table = pd.DataFrame({
        "class": list(dataset.class_names),
        "train": train_counts,
        "train share": train_counts / train_counts.sum(),
        "test": test_counts,
        "test share": test_counts / max(test_counts.sum(), 1),
    })
    ratio = train_counts.max() / max(train_counts.min(), 1)
    rarest, commonest = int(np.argmin(train_counts)), int(np.argmax(train_counts))
    if ratio < 1.0001:
        text = f"The training classes are exactly balanced, {train_counts[0]:,} images each (imbalance ratio 1.00)."
    else:
        judgement = "mild enough that accuracy stays a fair summary" if ratio < 1.5 else "worth weighting for"
        text = (f"Class {dataset.class_names[rarest]} is the rarest with {train_counts[rarest]:,} training images and "
                f"class {dataset.class_names[commonest]} the commonest with {train_counts[commonest]:,}: an imbalance "
                f"ratio of {ratio:.2f}, {judgement}.")
    shift = np.abs(table["train share"] - table["test share"]).max()
    text += f" Train and test class shares differ by at most {shift:.1%}."
    return Finding(table, text)


def to_long_counts(counts: pd.DataFrame) -> pd.DataFrame:
    """Reshape :func:`count_classes`'s table to the long form that the bar plot takes."""
    return counts.melt(id_vars="class", value_vars=["train", "test"], var_name="part", value_name="count")


def compute_class_statistics(images: np.ndarray, labels: np.ndarray, n_classes: int = 10):
    """Return the per-class mean and per-pixel standard deviation images, in [0, 1] units.

    Returns
    -------
    means : ndarray of shape (n_classes, 28, 28)
    stds : ndarray of shape (n_classes, 28, 28)
    """
    means = np.zeros((n_classes, *images.shape[1:]), dtype=np.float64)
    stds = np.zeros_like(means)
    for label in range(n_classes):
        members = scale_images(images[labels == label])
        if len(members):
            means[label] = members.mean(axis=0, dtype=np.float64)
            stds[label] = members.std(axis=0, dtype=np.float64)
    return means, stds


def describe_class_statistics(means: np.ndarray, stds: np.ndarray, class_names) -> str:
    """Name the most variable class and the two classes whose mean images are closest."""
    spread = stds.mean(axis=(1, 2))
    flat = means.reshape(len(means), -1)
    distances = np.sqrt(((flat[:, None, :] - flat[None, :, :]) ** 2).sum(axis=2))
    np.fill_diagonal(distances, np.inf)
    first, second = np.unravel_index(np.argmin(distances), distances.shape)
    most, least = int(np.argmax(spread)), int(np.argmin(spread))
    return (f"Class {class_names[most]} varies most from image to image (mean pixel standard deviation "
            f"{spread[most]:.3f}) and class {class_names[least]} least ({spread[least]:.3f}). The mean images of "
            f"{class_names[first]} and {class_names[second]} are the closest pair (L2 distance "
            f"{distances[first, second]:.2f}), so those two are the likeliest to be confused.")


def find_typical_images(images: np.ndarray, labels: np.ndarray, means: np.ndarray) -> Finding:
    """For each class, find the most and least typical image by L2 distance to the class mean.

    The distance is the Euclidean norm of the pixel difference, ``||x - mean||``, in [0, 1] units; a
    signed mean difference would let bright and dark deviations cancel out.

    Returns
    -------
    finding : Finding
        ``table`` has one row per class: label, typical index, its distance, atypical index, its distance.
    """
    rows = []
    for label in range(len(means)):
        indices = np.flatnonzero(labels == label)
        if indices.size == 0:
            continue
        members = flatten_images(scale_images(images[indices]))
        distances = np.linalg.norm(members - means[label].reshape(1, -1).astype(np.float32), axis=1)
        rows.append({"label": label, "typical index": int(indices[np.argmin(distances)]),
                     "typical distance": float(distances.min()), "atypical index": int(indices[np.argmax(distances)]),
                     "atypical distance": float(distances.max()), "median distance": float(np.median(distances))})
    table = pd.DataFrame(rows)
    worst = table.loc[table["atypical distance"].idxmax()]
    ratio = table["atypical distance"] / table["median distance"]
    text = (f"The least typical image overall belongs to class {int(worst['label'])} "
            f"(index {int(worst['atypical index'])}, L2 distance {worst['atypical distance']:.2f} from its class mean"
            "); the least typical image of each class "
            f"lies {ratio.min():.1f} to {ratio.max():.1f} times as far from the mean as the median image.")
    return Finding(table, text)


def compute_intensity_statistics(dataset: Dataset) -> Finding:
    """Return per-image mean intensity and pixel-value statistics of the training part."""
    train = dataset.x_train
    pixel_counts = np.bincount(train.ravel(), minlength=256)
    zero_fraction = pixel_counts[0] / pixel_counts.sum()
    saturated_fraction = pixel_counts[255] / pixel_counts.sum()
    image_means = _compute_image_means(train)
    table = pd.DataFrame({
        "statistic": ["zero pixels", "saturated pixels (255)", "mean pixel value", "median per-image mean",
                      "darkest image mean", "brightest image mean"],
        "value": [zero_fraction, saturated_fraction, float(train.mean()), float(np.median(image_means)),
                  float(image_means.min()), float(image_means.max())],
    })
    text = (f"{zero_fraction:.1%} of all training pixels are exactly 0 (background) and {saturated_fraction:.1%} are "
            f"255; per-image mean intensity ranges from {image_means.min():.1f} to {image_means.max():.1f} "
            f"(median {np.median(image_means):.1f}), so ink coverage varies "
            f"{image_means.max() / max(image_means.min(), 1e-9):.0f}-fold.")
    return Finding(table, text, {"pixel_counts": pixel_counts, "image_means": image_means})


def compare_train_test(dataset: Dataset) -> Finding:
    """Compare train and test intensity distributions with a two-sample Kolmogorov-Smirnov test."""
    train_means, test_means = _compute_image_means(dataset.x_train), _compute_image_means(dataset.x_test)
    statistic, p_value = ks_2samp(train_means, test_means)
    mean_image_gap = np.abs(scale_images(dataset.x_train).mean(axis=0) - scale_images(dataset.x_test).mean(axis=0))
    table = pd.DataFrame({
        "statistic": ["train mean intensity", "test mean intensity", "KS statistic (per-image means)", "KS p-value",
                      "largest pixel gap between mean images"],
        "value": [float(train_means.mean()), float(test_means.mean()), float(statistic), float(p_value),
                  float(mean_image_gap.max())],
    })
    verdict = ("no evidence that they differ" if p_value >= 0.05
               else "a detectable difference" + (", though a small one" if statistic < 0.05 else ""))
    text = (f"Per-image mean intensity averages {train_means.mean():.1f} in train and {test_means.mean():.1f} in test; "
            f"the Kolmogorov-Smirnov test gives D = {statistic:.3f}, p = {p_value:.3g}: {verdict}.")
    return Finding(table, text, {"train_means": train_means, "test_means": test_means})


def _image_digests(images: np.ndarray) -> np.ndarray:
    """Return a BLAKE2b digest of each image's bytes."""
    rows = flatten_images(np.ascontiguousarray(images))
    return np.array([hashlib.blake2b(row.tobytes(), digest_size=16).hexdigest() for row in rows])


def find_duplicates(dataset: Dataset) -> Finding:
    """Find exact duplicate images within train, within test, and across the two, by hashing their bytes.

    Also counts duplicate groups whose copies carry different labels.
    """
    train_digests, test_digests = _image_digests(dataset.x_train), _image_digests(dataset.x_test)
    frame = pd.DataFrame({
        "digest": np.concatenate([train_digests, test_digests]),
        "part": ["train"] * len(train_digests) + ["test"] * len(test_digests),
        "label": np.concatenate([dataset.y_train, dataset.y_test]),
    })

    def _extra_copies(digests: np.ndarray) -> int:
        return int(len(digests) - np.unique(digests).size)

    across = np.isin(test_digests, train_digests)
    groups = frame[frame.duplicated("digest", keep=False)].groupby("digest")["label"].nunique()
    table = pd.DataFrame({
        "check": ["extra copies within train", "extra copies within test", "test images also in train",
                  "duplicate groups with conflicting labels"],
        "count": [_extra_copies(train_digests), _extra_copies(test_digests), int(across.sum()),
                  int((groups > 1).sum())],
    })
    if across.any():
        text = (f"{int(across.sum()):,} test images ({across.mean():.2%}) also appear in train, byte for byte; "
                "a model can score them by memory, so test accuracy is slightly optimistic.")
    else:
        text = "No test image appears in train, byte for byte, so the test split is free of exact leaks."
    text += (f" Within train there are {table['count'][0]:,} extra copies and within test {table['count'][1]:,}; "
             f"{table['count'][3]:,} duplicate groups carry conflicting labels.")
    return Finding(table, text)


def compute_pca(train_images: np.ndarray, *, n_points: int, seed: int):
    """Fit PCA on training images and project a seeded subsample to 2-D.

    Uses scikit-learn's ``PCA(svd_solver="covariance_eigh")``, which decomposes the 784x784 covariance
    matrix and so takes about a second on 60,000 images.

    Returns
    -------
    cumulative : ndarray of shape (n_components,)
        Cumulative explained variance ratio.
    points : ndarray of shape (n_points, 2)
    chosen : ndarray of shape (n_points,)
        Indices of the projected images in ``train_images``.
    text : str
    """

    flat = flatten_images(scale_images(train_images))
    pca = PCA(svd_solver="covariance_eigh", random_state=seed).fit(flat)
    cumulative = np.cumsum(pca.explained_variance_ratio_)
    generator = np.random.default_rng(seed)
    chosen = np.sort(generator.choice(len(flat), size=min(n_points, len(flat)), replace=False))
    points = pca.transform(flat[chosen])[:, :2]
    needed = {mark: int(np.searchsorted(cumulative, mark) + 1) for mark in (0.8, 0.9, 0.95)}
    text = (f"The first two principal components explain {cumulative[1]:.1%} of the pixel variance; "
            f"{needed[0.8]} components explain 80%, {needed[0.9]} explain 90% and {needed[0.95]} explain 95% "
            f"of {flat.shape[1]} pixels, so the images live in a much smaller space than their pixel count.")
    return cumulative, points, chosen, text


def show_standardization_effect(train_images: np.ndarray, *, n_examples: int, seed: int):
    """Standardize training images pixel by pixel (statistics from train) and describe the effect.

    Returns
    -------
    originals : ndarray of shape (n_examples, 28, 28)
        Scaled to [0, 1].
    standardized : ndarray of shape (n_examples, 28, 28)
    text : str
    """
    standardizer = PixelStandardizer().fit(train_images)
    generator = np.random.default_rng(seed)
    chosen = np.sort(generator.choice(len(train_images), size=min(n_examples, len(train_images)), replace=False))
    originals = scale_images(train_images[chosen])
    standardized = standardizer.transform(train_images[chosen])
    constant = int(standardizer.constant_mask_.sum())
    largest = float(np.abs(standardizer.transform(train_images[: min(len(train_images), 5000)])).max())
    text = (f"Standardization centres every pixel on its training mean and divides by its training standard deviation; "
            f"{constant} pixels never vary in train and are left at 0. Values now reach {largest:.0f} standard "
            "deviations where a rarely-inked pixel is inked, which magnifies stray strokes near the border.")
    return originals, standardized, text
