"""Exceptions raised by digitrec.

Every exception shares the :class:`DigitrecError` root, and every message says how to fix the problem.
"""


class DigitrecError(Exception):
    """Root of every error that digitrec raises on purpose."""


class DatasetError(DigitrecError):
    """A dataset is missing, corrupt or malformed; the message names the file and the fix."""


class ParameterError(DigitrecError, ValueError):
    """A parameter is unknown, of the wrong type, or out of range; the message names the key."""


class ResultsError(DigitrecError):
    """A results record is missing or malformed; the message names the file."""


class ModelFileError(DigitrecError):
    """A saved model or its JSON description is missing or unreadable; the message names the file."""


class ImageError(DigitrecError):
    """An image to classify is unreadable, not an image, or empty; the message names the file."""


class ClusterError(DigitrecError):
    """A Dask cluster could not be started or reached, or a worker refused a task; the message says why and what
    to change."""


class SearchFailedError(DigitrecError):
    """No network of 03's smallest-network search reached the target on validation; the message names the best
    candidate and how to widen the search."""


class ExportError(DigitrecError):
    """A model could not be exported: its format is unknown, or its converter is missing or failed; the message
    says which and what to install or change."""
