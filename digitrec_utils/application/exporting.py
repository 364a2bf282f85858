"""``digitrec export``: the saved model in a portable format (ONNX, LiteRT, SavedModel), with its JSON beside it."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from digitrec_utils import config
from digitrec_utils.application.models import ignore
from digitrec_utils.models.export import choose_export_path, describe_export_path, export_model
from digitrec_utils.models.model_files import find_latest_model


@dataclass
class ExportOutcome:
    """Where the exported model and its JSON went."""

    path: Path
    description_path: Path


def export_saved_model(model: str | os.PathLike | None = None, *, format_name: str,
                       out: str | os.PathLike | None = None, notify: Callable[[str], None] = ignore) -> ExportOutcome:
    """Export ``model`` (by default the newest good run's) to ``format_name``, beside it unless ``out`` says where."""
    model_path = Path(model) if model else find_latest_model(config.REPORTS_DIR)
    path = Path(out) if out else choose_export_path(model_path, format_name)
    notify(f"exporting {model_path} to {format_name}")
    export_model(model_path, format_name=format_name, out=path)
    return ExportOutcome(path, describe_export_path(path))
