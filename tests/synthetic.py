"""Small synthetic datasets for tests: random images and the IDX encoding."""

from __future__ import annotations

import json
from pathlib import Path

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


def write_run_folder(reports: Path, name: str, started: str, statuses: dict[str, str], model: Path | None = None):
    """Write a run folder with a run.json of the given notebook statuses and, optionally, a copy of a saved model."""
    folder = reports / name
    folder.mkdir(parents=True)
    notebooks = [{"notebook": notebook, "status": status} for notebook, status in statuses.items()]
    (folder / "run.json").write_text(json.dumps({"run": name, "started": started, "notebooks": notebooks}))
    if model is not None:
        (folder / "models").mkdir()
        for source in (model, model.with_suffix(".json")):
            (folder / "models" / f"cnn_selected{source.suffix}").write_bytes(source.read_bytes())
    return folder
