"""The network that predicts: a trained model rebuilt without what only training needs, in float32.

A trained ``cnn_modern`` holds augmentation layers (Keras's random flips, digitrec's own ``RandomGeometry``
and ``RandomMailChanges``) that pass images through unchanged at inference, and dropout. Saved as they are,
the file loads only where digitrec is imported, since Keras must find digitrec's classes.
:func:`build_inference_model` gives the model that is saved and exported instead: every such layer
becomes Keras's ``Identity``, the mirror of older mirror-averaged models becomes Keras's own layers
(:func:`digitrec_utils.models.layers.build_mirror_layer`), every layer computes in float32, and the
weights are the trained ones. Its predictions are the trained model's, and plain Keras loads it.
"""

from __future__ import annotations

from digitrec_utils.models.backend import keras
from digitrec_utils.models.layers import (
    MirrorImages,
    RandomElasticDistortion,
    RandomGeometry,
    RandomMailChanges,
    build_mirror_layer,
)
from digitrec_utils.models.precision import build_float32_inputs, copy_layer_as_float32, policy_scope

# The name of the mirror block in mirror-averaged models (convnets.build_mirror_average).
MIRROR_LAYER_NAME = "mirror"


def _list_training_only_classes() -> tuple[type, ...]:
    """The layer classes whose output at inference is their input: augmentation, dropout and noise."""

    layers = keras.layers
    return (layers.RandomFlip, layers.RandomRotation, layers.RandomZoom, layers.RandomTranslation,
            layers.RandomContrast, layers.RandomBrightness, layers.RandomErasing, layers.Dropout,
            layers.GaussianNoise, layers.GaussianDropout, layers.AlphaDropout,
            RandomMailChanges, RandomElasticDistortion, RandomGeometry)


def build_inference_model(model):
    """Return ``model`` rebuilt for inference: the same predictions, from Keras's own layers only, in float32.

    Parameters
    ----------
    model : keras.Model
        A trained network, an ensemble or mirror average built around trained networks, or a model loaded
        from a file that an older digitrec saved (with ``RandomMailChanges`` or ``MirrorImages`` inside).

    Returns
    -------
    inference_model : keras.Model
        Not compiled. Training-only layers are ``Identity`` layers of the same names, ``MirrorImages`` is
        :func:`~digitrec_utils.models.layers.build_mirror_layer`'s block, every other layer is a float32
        copy holding the trained weights, and every model inside it takes float32 inputs.
    """
    copies = []
    # Keras builds the cloned containers (an ensemble's members, the mirror average) under the global dtype
    # policy; under a mixed one they would compute in 16 bits.
    with policy_scope("float32"):
        inference_model = _rebuild_model(model, copies)
    for layer, copy in copies:
        if layer.weights:
            copy.set_weights(layer.get_weights())
    return inference_model


def _rebuild_model(model, copies: list):
    """Clone one model level by level, its inputs float32, collecting (trained layer, copy) pairs in ``copies``.

    Keras's own recursive cloning keeps each inner model's input dtype: a network trained under
    ``mixed_bfloat16`` took its inputs in bfloat16 and would go on rounding them to 8 bits of precision
    before the first (float32) convolution, in Keras and LiteRT but not in ONNX Runtime, whose results then
    differed by up to 1e-3. Here every level gets new float32 inputs.
    """

    training_only = _list_training_only_classes()
    mirror_class = MirrorImages

    def rebuild(layer):
        if isinstance(layer, keras.Model):
            return _rebuild_model(layer, copies)
        if isinstance(layer, training_only):
            return keras.layers.Identity(name=layer.name)
        if isinstance(layer, mirror_class):
            return build_mirror_layer(layer.input.shape[1:], name=layer.name)
        copy = copy_layer_as_float32(layer)  # A model trained in bfloat16 or float16 predicts in float32 anywhere.
        copies.append((layer, copy))
        return copy

    return keras.models.clone_model(model, input_tensors=build_float32_inputs(model), clone_function=rebuild)


def describe_inference(model) -> dict:
    """Say what runs at inference, for the model's JSON: whether the model averages each image with its mirror.

    The mirror average is inside the model, so a runtime applies nothing more: ``mirror_average`` says that
    it is there, and ``applied_by`` says who runs it.
    """
    mirrored = any(layer.name == MIRROR_LAYER_NAME for layer in model.layers)
    return {"mirror_average": mirrored, "applied_by": "the model" if mirrored else None,
            "layers": "Keras's own (no custom classes)"}
