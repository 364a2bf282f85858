"""How fast a saved model answers on this machine: throughput on a batch and single-image latency.

Throughput is images per second when the model classifies ``batch_size`` images in one call (a scanner's
batch); latency is the time of one call on one image (a counter clerk's single envelope), as the median
and the 95th percentile of repeated calls. Both are measured after warm-up calls, so that building
Keras's predict function (tracing) is not counted: a deployed model pays it once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SpeedMeasurement:
    """Throughput and latency of one model in one runtime on this machine.

    Attributes
    ----------
    images_per_second : float
        The best of ``repeats`` timed calls on a batch of ``batch_size`` images.
    batch_size : int
    latency_median_ms, latency_p95_ms : float
        Of ``n_single`` timed single-image calls.
    n_single : int
    runtime : str
        What ran the model: ``Keras`` or ``ONNX Runtime``.
    """

    images_per_second: float
    batch_size: int
    latency_median_ms: float
    latency_p95_ms: float
    n_single: int
    runtime: str = "Keras"

    def describe(self) -> str:
        """Return one sentence with the numbers, rounded for reading."""
        return (f"{self.runtime}: {self.images_per_second:,.0f} images per second in batches of {self.batch_size:,}; "
                f"one image takes {self.latency_median_ms:.1f} ms (median of {self.n_single} calls; 95th percentile "
                f"{self.latency_p95_ms:.1f} ms).")


def _time_calls(predict_batch: Callable[[np.ndarray], object], predict_one: Callable[[np.ndarray], object],
                images: np.ndarray, *, batch_size: int, repeats: int, n_single: int, warmup: int,
                runtime: str) -> SpeedMeasurement:
    """Time ``predict_batch`` on a batch of ``batch_size`` images and ``predict_one`` on single images."""
    images = np.asarray(images)
    if not len(images):
        raise ValueError("measuring speed needs at least one image.")
    batch = images[np.arange(batch_size) % len(images)]
    for _ in range(max(1, warmup // 2)):
        predict_batch(batch)
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        predict_batch(batch)
        timings.append(time.perf_counter() - started)
    for _ in range(warmup):
        predict_one(images[:1])
    latencies = []
    for index in range(n_single):
        one = images[index % len(images)][None]
        started = time.perf_counter()
        predict_one(one)
        latencies.append((time.perf_counter() - started) * 1000.0)
    return SpeedMeasurement(images_per_second=batch_size / min(timings), batch_size=batch_size,
                            latency_median_ms=float(np.median(latencies)),
                            latency_p95_ms=float(np.percentile(latencies, 95)), n_single=n_single, runtime=runtime)


def measure_speed(model, images: np.ndarray, *, batch_size: int = 1000, repeats: int = 3, n_single: int = 100,
                  warmup: int = 5) -> SpeedMeasurement:
    """Measure a Keras model's throughput and single-image latency on ``images`` (prepared model inputs).

    Parameters
    ----------
    model : keras.Model
    images : ndarray of shape (n_images, ...)
        Inputs as the model takes them; the batch repeats them when there are fewer than ``batch_size``.
    batch_size : int, default=1000
    repeats : int, default=3
        Timed batch calls; the fastest counts (the machine's noise only ever slows a call down).
    n_single : int, default=100
        Timed single-image calls.
    warmup : int, default=5
        Untimed calls of each kind first.
    """
    return _time_calls(lambda batch: model.predict(batch, batch_size=batch_size, verbose=0),
                       lambda one: np.asarray(model(one, training=False)), images, batch_size=batch_size,
                       repeats=repeats, n_single=n_single, warmup=warmup, runtime="Keras")


def measure_onnx_speed(session, images: np.ndarray, *, batch_size: int = 1000, repeats: int = 3, n_single: int = 100,
                       warmup: int = 5) -> SpeedMeasurement:
    """Measure an ONNX Runtime session's throughput and single-image latency, as :func:`measure_speed` does.

    Parameters
    ----------
    session : onnxruntime.InferenceSession
        Of a model exported by :func:`digitrec_utils.models.export.export_keras_model`; its first input
        takes ``images``.
    images, batch_size, repeats, n_single, warmup
        As :func:`measure_speed`.
    """
    name = session.get_inputs()[0].name

    def predict(inputs):
        return session.run(None, {name: np.asarray(inputs, dtype=np.float32)})[0]

    return _time_calls(predict, predict, images, batch_size=batch_size, repeats=repeats, n_single=n_single,
                       warmup=warmup, runtime="ONNX Runtime")
