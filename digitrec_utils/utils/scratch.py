"""Temporary folders that a killed process cannot leave behind for good.

A process that is killed (SIGKILL, the out-of-memory killer, a Dask nanny replacing its worker) runs no
clean-up of its own, so its temporary folders stay. Each folder made by :func:`make_owned_folder` holds a
locked file open for as long as its process lives, and the operating system releases the lock when the
process ends, however it ends. :func:`remove_abandoned_folders` removes every such folder whose lock it
can take: its owner has gone.

The standard library's ``tempfile`` has no notion of an owner, and a process id in the folder's name would
not do: a process id from another container sharing ``/tmp`` cannot be checked, and ids are reused. A lock
held by the owner can be checked by anyone who can open the folder. Where ``fcntl`` is missing (Windows),
folders are made without a lock and nothing is removed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows.
    fcntl = None

# The locked file inside each owned folder. It is locked under a pending name and renamed into place, so
# a folder without it is either still being made or was made by an older digitrec; neither is removed.
OWNER_FILE = ".owner"
_PENDING_OWNER_FILE = ".owner-pending"

# Owned folder -> the descriptor that holds its lock, for this process.
_owned: dict[str, int] = {}


def make_owned_folder(prefix: str) -> Path:
    """Make a temporary folder that this process owns until :func:`remove_owned_folder` or its end.

    Parameters
    ----------
    prefix : str
        The start of the folder's name, as for :func:`tempfile.mkdtemp`; the same prefix given to
        :func:`remove_abandoned_folders` finds it once its owner has gone.

    Returns
    -------
    folder : Path
        A new folder in the temporary folder (``TMPDIR``), holding :data:`OWNER_FILE`, locked.
    """
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    if fcntl is not None:
        pending = folder / _PENDING_OWNER_FILE
        descriptor = os.open(pending, os.O_WRONLY | os.O_CREAT, 0o600)
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        os.rename(pending, folder / OWNER_FILE)
        _owned[str(folder)] = descriptor
    return folder


def remove_owned_folder(folder: str | os.PathLike) -> None:
    """Remove a folder made by :func:`make_owned_folder`, with everything in it, and release its lock."""
    shutil.rmtree(folder, ignore_errors=True)
    descriptor = _owned.pop(str(folder), None)
    if descriptor is not None:
        os.close(descriptor)


def remove_abandoned_folders(prefix: str) -> list[Path]:
    """Remove the owned folders named ``prefix...`` in the temporary folder whose owner has gone.

    A folder is removed only when its :data:`OWNER_FILE` can be opened and locked: the process that made
    it has ended. Folders of living processes, of other users, and without an owner file are left alone.

    Parameters
    ----------
    prefix : str
        The prefix given to :func:`make_owned_folder`.

    Returns
    -------
    removed : list of Path
        The folders removed.
    """
    if fcntl is None:
        return []
    removed = []
    for folder in sorted(Path(tempfile.gettempdir()).glob(f"{prefix}*")):
        try:
            descriptor = os.open(folder / OWNER_FILE, os.O_RDONLY)
        except OSError:  # No owner file, another user's folder, or removed meanwhile by another process.
            continue
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # Its owner is alive (this process included: flock's locks belong to each open file).
            os.close(descriptor)
            continue
        try:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        finally:
            os.close(descriptor)
    return removed
