"""Datasets, splits, readers of files on disk, preprocessing, corruptions and generated images."""
