"""Keras and TensorFlow, imported once for the whole layer, with TensorFlow's start-up chatter kept out of reports.

Every module here that builds, trains or runs a network writes ``from digitrec_utils.models.backend import
keras`` at its top. TensorFlow's C++ start-up messages (CUDA probing on a machine without a GPU, absl's notice)
go to the process's standard error, which Jupyter shows in the report and a terminal shows under a command's
answer; they are sent to /dev/null while TensorFlow loads and looks for GPUs (:data:`GPUS`). Python warnings and
later errors still show.

The layers above import this layer only where they need a network, so ``digitrec run``, ``digitrec
list-params`` and the notebooks that train no network (01, 02, 06, 07) never load TensorFlow.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def silence_native_stderr() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the duration, then restore it."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
with silence_native_stderr():
    import keras
    import tensorflow as tf

    # TensorFlow probes CUDA the first time anything asks for a device, and on a machine without a GPU that
    # probe prints to the native standard error. It happens once per process, so it happens here, silenced.
    GPUS = tf.config.list_physical_devices("GPU")
tf.get_logger().setLevel(logging.ERROR)

__all__ = ["GPUS", "keras", "silence_native_stderr", "tf"]
