"""Which saved model a command uses, and the threshold it answers at: chosen here, once, for every command.

A command names a model with ``--model``; without it, the newest run under ``reports/`` whose 04_cnn notebook
succeeded lends its saved CNN. The threshold is the newest one saved with the model, or ``--min-confidence`` on
the saved score; a saved threshold that may not hold (chosen on images prepared another way) is warned about.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from digitrec_utils import config
from digitrec_utils.exceptions import ParameterError
from digitrec_utils.models.model_files import (
    check_calibration,
    describe_model_origin,
    describe_threshold_in_use,
    find_latest_model,
    load_model_bundle,
    read_abstention,
)


def ignore(message: str) -> None:
    """The default ``notify`` of the services: say nothing."""


@dataclass
class ModelInUse:
    """A loaded saved model, its description and the threshold it answers at.

    Attributes
    ----------
    path : Path
    model : keras.Model
    description : dict
        Its JSON.
    abstention : dict or None
        ``{"score", "threshold", ...}`` in use, or None when every answer is accepted.
    """

    path: Path
    model: object
    description: dict
    abstention: dict | None

    @property
    def name(self) -> str:
        """The model's name in its JSON, else its file's stem."""
        return str(self.description.get("model", self.path.stem))

    @property
    def class_names(self) -> list[str] | None:
        return self.description.get("class_names")


def load_model_in_use(model: str | Path | None = None, *, min_confidence: float | None = None,
                      describe_threshold: bool = False, rechoosing: bool = False,
                      notify: Callable[[str], None] = ignore) -> ModelInUse:
    """Load ``model`` (or the newest good run's saved CNN) and choose the threshold it answers at.

    Parameters
    ----------
    model : path-like, optional
        A ``.keras`` file saved by the suite, with its JSON beside it.
    min_confidence : float, optional
        A threshold from 0 to 1 on the saved score, instead of the saved threshold.
    describe_threshold : bool
        Also say (through ``notify``) which threshold is in use and what happens below it.
    rechoosing : bool
        The caller chooses the threshold anew (``calibrate``): the saved one is kept as it is, for comparison,
        without the warning on whether it holds.
    notify : callable
        Told which model was loaded, and why a saved threshold may not hold.

    Raises
    ------
    ParameterError
        When ``min_confidence`` is outside 0 to 1.
    ModelFileError
        When the model or its JSON is missing or unreadable, or no run has a saved model.
    """
    check_min_confidence(min_confidence)
    path = Path(model) if model else find_latest_model(config.REPORTS_DIR)
    keras_model, description = load_model_bundle(path)
    notify(f"model {path} ({describe_model_origin(description)})")
    abstention = (read_abstention(description) if rechoosing
                  else choose_abstention(description, min_confidence, notify=notify))
    if describe_threshold:
        notify(f"threshold: {describe_threshold_in_use(abstention, from_option=min_confidence is not None)}")
    return ModelInUse(path, keras_model, description, abstention)


def check_min_confidence(min_confidence: float | None) -> None:
    """Raise ParameterError unless ``--min-confidence`` is absent or a score from 0 to 1."""
    if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:
        raise ParameterError(f"--min-confidence {min_confidence}: give a score from 0 to 1 (0 answers every image).")


def check_target_option(target: float) -> None:
    """Raise ParameterError unless ``--target``, the accuracy the answered digits must reach, lies between 0.5 and 1."""
    if not 0.5 < target < 1.0:
        raise ParameterError(f"--target {target}: give the accuracy the answered digits must reach, strictly between "
                             "0.5 and 1 (e.g. 0.995).")


def choose_abstention(description: dict, min_confidence: float | None = None, *,
                      notify: Callable[[str], None] = ignore) -> dict | None:
    """The saved model's newest threshold, or ``min_confidence`` on the saved score; warns when it may not hold."""
    abstention = read_abstention(description) or {}
    if min_confidence is not None:
        return {"score": abstention.get("score", "top_probability"), "threshold": min_confidence}
    warning = check_calibration(description)
    if warning:
        notify(f"warning: {warning}")
    return abstention or None
