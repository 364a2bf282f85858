"""The monitoring reference saved beside a model: what ``digitrec monitor`` compares an incoming stream with.

When 04 saves its model, and when ``adapt`` or ``calibrate --write`` changes it, the digits the model (or its
threshold) was chosen on are described once (:func:`build_reference`) and saved as ``<model>.reference.npz``
(:func:`save_reference`): the model's probabilities and whether each was right, an embedding (the layer before
the output, reduced to :data:`EMBEDDING_DIMENSIONS` principal components), the image properties of
:mod:`digitrec_utils.data.properties`, a few prepared digits, and the checksum of the model file, so that a
reference is never read against another model (:func:`load_reference`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA

from digitrec_utils.data.labelled import LabelledSource
from digitrec_utils.data.preparation import prepare_image_batch, prepare_image_files
from digitrec_utils.data.properties import RAW_PROPERTIES, measure_field_properties, measure_raw_properties
from digitrec_utils.data.readers import compute_sha256
from digitrec_utils.evaluation.monitoring import MonitoringReference
from digitrec_utils.exceptions import ModelFileError
from digitrec_utils.models.backend import keras

REFERENCE_SUFFIX = ".reference.npz"
# Embeddings are reduced to this many principal components (of the reference's), enough for the maximum mean
# discrepancy and small on disk.
EMBEDDING_DIMENSIONS = 32
# At most this many reference digits are kept (drawn, seeded): the tests' power comes from the incoming
# window, and the file stays under a few megabytes.
REFERENCE_LIMIT = 6000
EXAMPLES = 16
PREDICT_BATCH = 1024


def find_reference_path(model_path: str | Path) -> Path:
    """The reference file of a saved model: ``cnn_selected.keras`` has ``cnn_selected.reference.npz``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + REFERENCE_SUFFIX)


def build_embedding_model(model):
    """A model that gives the layer before ``model``'s output: of its first member, for an ensemble.

    The network that ends in the probability layer (a ``Dense`` layer) is found by descending into the first
    inner model at each level; for an ensemble or a mirror average that is its first member, whose embedding
    stands for all (the members learned the same digits).
    """
    network = model
    while not isinstance(network.layers[-1], keras.layers.Dense):
        inner = [layer for layer in network.layers if isinstance(layer, keras.Model)]
        if not inner:
            raise ModelFileError(f"{model.name}: no Dense output layer found to take an embedding from.")
        network = inner[0]
    inputs = keras.Input(shape=tuple(model.input_shape[1:]))
    outputs = inputs
    for layer in network.layers[:-1]:
        outputs = layer(outputs)
    return keras.Model(inputs, outputs, name=f"{network.name}_embedding")


def build_observing_model(model):
    """A model that gives ``model``'s probabilities and its embedding (:func:`build_embedding_model`) in one call.

    One ``predict`` per batch rather than two: Keras's overhead per call was as long as the network itself on a
    batch of 512 digits.
    """
    inputs = keras.Input(shape=tuple(model.input_shape[1:]))
    return keras.Model(inputs, [model(inputs), build_embedding_model(model)(inputs)], name="observing")


def predict_with_embeddings(observing_model, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The probabilities and embeddings of prepared 28x28 images (:func:`build_observing_model`'s two outputs)."""
    images = np.asarray(images, dtype=np.float32).reshape(-1, 28, 28, 1)
    if not len(images):
        return tuple(np.zeros((0, int(np.prod(shape[1:]))), np.float32) for shape in observing_model.output_shape)
    probabilities, embeddings = observing_model.predict(images, batch_size=PREDICT_BATCH, verbose=0)
    return np.asarray(probabilities, np.float32), np.asarray(embeddings, np.float32).reshape(len(images), -1)


def observe_digits(observing_model, reference: MonitoringReference, prepared: np.ndarray,
                   file_properties: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """What monitoring keeps of each incoming digit: the model's probabilities, the reduced embedding, the properties.

    Parameters
    ----------
    observing_model : keras.Model
        :func:`build_observing_model`'s, of the saved model.
    reference : MonitoringReference
        Reduces the embeddings on its principal components.
    prepared : ndarray of shape (n, 28, 28)
        The digits, prepared as ``predict`` prepares files.
    file_properties : ndarray of shape (n, 4)
        Their files' properties before preparation (:data:`~digitrec_utils.data.properties.RAW_PROPERTIES`).

    Returns
    -------
    probabilities : ndarray of shape (n, n_classes)
    embeddings : ndarray of shape (n, d)
    properties : dict of str to ndarray of shape (n,)
    """
    probabilities, raw_embeddings = predict_with_embeddings(observing_model, prepared)
    return (probabilities, reference.reduce_embeddings(raw_embeddings).astype(np.float32),
            _measure_properties(prepared, file_properties))


def _measure_properties(prepared: np.ndarray, file_properties: np.ndarray) -> dict[str, np.ndarray]:
    """The prepared digits' properties and their files', by name."""
    properties = measure_field_properties(prepared)
    file_properties = np.asarray(file_properties, dtype=np.float64).reshape(len(prepared), len(RAW_PROPERTIES))
    properties.update({name: file_properties[:, column] for column, name in enumerate(RAW_PROPERTIES)})
    return properties


def measure_file_properties(images: np.ndarray) -> np.ndarray:
    """The properties before preparation of images held as arrays, as if each were a file (shape (n, 4))."""
    return np.array([measure_raw_properties(image) for image in images], dtype=np.float64).reshape(
        len(images), len(RAW_PROPERTIES))


def build_reference(model, prepared: np.ndarray, labels: np.ndarray, raw_properties: np.ndarray, *, source: str,
                    model_sha256: str, seed: int = 0) -> MonitoringReference:
    """Describe the digits a model was chosen on, for :func:`digitrec_utils.evaluation.monitoring.check_window`.

    Parameters
    ----------
    model : keras.Model
        The saved model (as loaded), whose outputs are probabilities.
    prepared : ndarray of shape (n, 28, 28)
        The reference digits, prepared as ``predict`` prepares files, values in [0, 1].
    labels : ndarray of shape (n,)
        Their classes.
    raw_properties : ndarray of shape (n, 4)
        Their files' properties before preparation (:func:`digitrec_utils.data.properties.measure_raw_properties`).
    source : str
        What they are, for the page.
    model_sha256 : str
        The model file's checksum (:func:`digitrec_utils.data.readers.compute_sha256`).
    seed : int
        Draws the digits kept when there are more than :data:`REFERENCE_LIMIT`, and the examples.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    if len(labels) > REFERENCE_LIMIT:
        kept = np.sort(rng.choice(len(labels), REFERENCE_LIMIT, replace=False))
        prepared, labels, raw_properties = prepared[kept], labels[kept], np.asarray(raw_properties)[kept]
    if len(labels) < 2:
        raise ModelFileError("a monitoring reference needs at least two digits.")
    probabilities, raw_embeddings = predict_with_embeddings(build_observing_model(model), prepared)
    dimensions = min(EMBEDDING_DIMENSIONS, raw_embeddings.shape[1], len(labels))
    pca = PCA(n_components=dimensions, random_state=seed).fit(raw_embeddings)
    properties = _measure_properties(prepared, raw_properties)
    examples = prepared[rng.choice(len(prepared), min(EXAMPLES, len(prepared)), replace=False)]
    return MonitoringReference(
        probabilities=probabilities, correct=probabilities.argmax(axis=1) == labels,
        embeddings=pca.transform(raw_embeddings).astype(np.float32), properties=properties,
        embedding_mean=pca.mean_.astype(np.float32), embedding_components=pca.components_.astype(np.float32),
        source=source, model_sha256=model_sha256, examples=np.round(np.asarray(examples) * 255).astype(np.uint8))


def build_reference_from_arrays(model, model_path: str | Path | None, images: np.ndarray, labels: np.ndarray, *,
                                source: str, seed: int = 0) -> MonitoringReference:
    """Build a reference from an array of digits (a dataset's validation split), prepared as files would be.

    Parameters
    ----------
    model_path : path-like or None
        The saved model file, whose checksum the reference records; None for a model held only in memory
        (08_adaptation's small one), whose reference is never saved.
    images : ndarray of shape (n, height, width)
        Grey levels 0-255 (uint8), or floats in [0, 1], which are scaled to 0-255.
    """
    images = _as_grey_levels(images)
    prepared, usable = prepare_image_batch(images)
    return build_reference(model, prepared[usable], np.asarray(labels)[usable],
                           measure_file_properties(images[usable]), source=source,
                           model_sha256=compute_sha256(Path(model_path)) if model_path else "", seed=seed)


def observe_arrays(observing_model, reference: MonitoringReference, images: np.ndarray
                   ) -> tuple[tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]], np.ndarray]:
    """:func:`observe_digits` for digits held as arrays, prepared as files of them would be.

    Returns
    -------
    observed : tuple
        What :func:`observe_digits` returns, for the usable digits.
    usable : ndarray of shape (n,), bool
        Which digits held ink.
    """
    images = _as_grey_levels(images)
    prepared, usable = prepare_image_batch(images)
    return observe_digits(observing_model, reference, prepared[usable],
                          measure_file_properties(images[usable])), usable


def observe_source(observing_model, reference: MonitoringReference, source: LabelledSource
                   ) -> tuple[tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]], np.ndarray]:
    """:func:`observe_digits` for a labelled source: a folder tree's files read as ``monitor`` reads them.

    Returns
    -------
    observed : tuple
        What :func:`observe_digits` returns, for the usable digits.
    labels : ndarray
        The usable digits' labels.
    """
    if source.files is None:
        images, labels = source.arrays
        observed, usable = observe_arrays(observing_model, reference, images)
        return observed, np.asarray(labels)[usable]
    prepared, file_properties, positions = _read_files(source.files.paths)
    observed = observe_digits(observing_model, reference, prepared, file_properties)
    return observed, np.asarray(source.files.labels)[positions]


def _read_files(paths) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image files prepared as ``predict`` prepares them, with their properties before preparation.

    Returns
    -------
    prepared : ndarray of shape (n, 28, 28)
        The files that could be used.
    file_properties : ndarray of shape (n, 4)
    positions : ndarray of int
        Each prepared image's position in ``paths``.
    """
    prepared, file_properties, positions, offset = [], [], [], 0
    for batch in prepare_image_files(paths, measure_files=True, progress=False):
        prepared.append(batch.images)
        file_properties.append(batch.file_properties)
        positions.append(offset + np.asarray(batch.positions, dtype=int))
        offset += len(batch.paths)
    return np.concatenate(prepared), np.concatenate(file_properties), np.concatenate(positions)


def _as_grey_levels(images: np.ndarray) -> np.ndarray:
    """Images as uint8 grey levels 0-255 of shape (n, height, width); floats in [0, 1] are scaled."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        images = np.clip(np.round(images.astype(np.float64) * (255.0 if images.max() <= 1.0 else 1.0)), 0, 255)
        images = images.astype(np.uint8)
    return images.reshape(len(images), images.shape[1], images.shape[2])


def build_reference_from_source(model, model_path: str | Path, source: LabelledSource, positions: np.ndarray, *,
                                description: str, seed: int = 0) -> MonitoringReference:
    """Build a reference from some digits of a labelled source (``calibrate``'s, or those ``adapt`` did not train on).

    A folder tree's files are read again, so that their properties before preparation are measured as
    ``monitor`` measures incoming files; an IDX or CSV pair's arrays are prepared as files of them would be.

    Parameters
    ----------
    source : LabelledSource
    positions : ndarray of int
        The digits to describe, by their position in the source.
    description : str
        What they are, for the page.
    """
    positions = np.asarray(positions, dtype=int)
    if source.files is None:
        images, labels = source.arrays
        return build_reference_from_arrays(model, model_path, images[positions], labels[positions],
                                           source=description, seed=seed)
    prepared, file_properties, read = _read_files([source.files.paths[position] for position in positions])
    return build_reference(model, prepared, np.asarray(source.files.labels)[positions[read]], file_properties,
                           source=description, model_sha256=compute_sha256(Path(model_path)), seed=seed)


def save_reference(reference: MonitoringReference, model_path: str | Path) -> Path:
    """Write ``reference`` beside the model file, atomically (a temporary file, then a rename)."""
    path = find_reference_path(model_path)
    names = list(reference.properties)
    about = {"source": reference.source, "model_sha256": reference.model_sha256, "properties": names,
             "n_digits": len(reference.correct)}
    temporary = path.with_name(f".{path.stem}-{os.getpid()}.npz")
    with open(temporary, "wb") as handle:
        np.savez_compressed(handle, probabilities=reference.probabilities, correct=reference.correct,
                            embeddings=reference.embeddings,
                            properties=np.stack([reference.properties[name] for name in names], axis=1),
                            embedding_mean=reference.embedding_mean,
                            embedding_components=reference.embedding_components, examples=reference.examples,
                            about=np.array(json.dumps(about)))
    os.replace(temporary, path)
    return path


def load_reference(model_path: str | Path) -> MonitoringReference | None:
    """Read the reference saved beside a model, or None when it has none.

    Raises
    ------
    ModelFileError
        When the reference cannot be read, or was made for another model file (its checksum differs).
    """
    path = find_reference_path(model_path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as saved:
            about = json.loads(str(saved["about"]))
            table = saved["properties"]
            reference = MonitoringReference(
                probabilities=saved["probabilities"], correct=saved["correct"].astype(bool),
                embeddings=saved["embeddings"],
                properties={name: table[:, column] for column, name in enumerate(about["properties"])},
                embedding_mean=saved["embedding_mean"], embedding_components=saved["embedding_components"],
                source=about["source"], model_sha256=about["model_sha256"], examples=saved["examples"])
    except (OSError, ValueError, KeyError) as error:
        raise ModelFileError(f"{path}: the monitoring reference cannot be read ({error}); write it again with "
                             "`digitrec calibrate LABELLED --write` on labelled digits of the stream.") from error
    if reference.model_sha256 != compute_sha256(Path(model_path)):
        raise ModelFileError(f"{path} was made for another model file than {Path(model_path).name} (their checksums "
                             "differ): the model was replaced after its reference was saved. Write a new one with "
                             "`digitrec calibrate LABELLED --write` on labelled digits of the stream, or delete it.")
    return reference
