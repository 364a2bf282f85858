"""``digitrec data``: a dataset's files and summary, as the suite would load it."""

from __future__ import annotations

from digitrec_utils.data.loading import check_dataset, load_dataset
from digitrec_utils.data.official import OFFICIAL_IDX_SHA256


def describe_dataset(name: str, *, data_dir: str | None = None) -> list[str]:
    """Lines on a dataset (``digitrec data``): its files and checksums where it has official ones, then its summary."""
    lines = []
    if name in OFFICIAL_IDX_SHA256:
        lines.append(f"Files: {check_dataset(name, data_dir=data_dir)}.")
    lines.append(str(load_dataset(name, data_dir=data_dir)))
    return lines
