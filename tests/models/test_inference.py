"""The saved model is the network that predicts: plain Keras, without digitrec, loads it and predicts the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import numpy as np

# Loads each model given on the command line with Keras alone and saves its probabilities for the images;
# fails if anything of digitrec was imported on the way.
PLAIN_KERAS_SCRIPT = """
import sys

import keras
import numpy as np

images = np.load(sys.argv[1])
for number, path in enumerate(sys.argv[2:]):
    model = keras.saving.load_model(path)
    np.save(f"probabilities_{number}.npy", model.predict(images, batch_size=250, verbose=0))
imported = sorted(name for name in sys.modules if name.startswith("digitrec"))
assert not imported, f"digitrec was imported: {imported}"
"""


def _predict_in_plain_keras(tmp_path, images, model_paths) -> list[np.ndarray]:
    """Run :data:`PLAIN_KERAS_SCRIPT` in a fresh Python, in a folder outside the checkout."""
    np.save(tmp_path / "images.npy", images)
    (tmp_path / "plain_keras.py").write_text(PLAIN_KERAS_SCRIPT)
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    environment["TF_CPP_MIN_LOG_LEVEL"] = "3"
    completed = subprocess.run([sys.executable, "plain_keras.py", "images.npy", *map(str, model_paths)], cwd=tmp_path,
                               env=environment, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return [np.load(tmp_path / f"probabilities_{number}.npy") for number in range(len(model_paths))]


def _registered_names(path) -> list[str]:
    """The registered names of every layer class in a .keras file's configuration, nested models included."""
    with zipfile.ZipFile(path) as archive:
        configuration = json.loads(archive.read("config.json"))
    names = []

    def walk(node):
        if isinstance(node, dict):
            if "class_name" in node:
                names.append(node.get("registered_name") or node["class_name"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(configuration)
    return names


def test_a_saved_mirrored_ensemble_loads_in_plain_keras_and_predicts_as_trained(mirrored_model, test_images,
                                                                               rendered_run, tmp_path):
    from digitrec_utils import config
    from digitrec_utils.models.model_files import load_model_bundle

    trained, path = mirrored_model
    images, _ = test_images
    run_model = rendered_run / config.SAVED_MODEL_NAME
    plain, plain_run = _predict_in_plain_keras(tmp_path, images, [path, run_model])
    # The Fashion-MNIST kind of model: every augmentation, two members and the mirror average inside.
    expected = trained.predict(images, verbose=0)
    assert np.abs(plain - expected).max() < 1e-6
    assert (plain.argmax(axis=1) == expected.argmax(axis=1)).all()
    loaded, description = load_model_bundle(path)
    assert np.abs(loaded.predict(images, verbose=0) - plain).max() < 1e-6
    assert description["format_version"] == 3
    assert description["inference"]["mirror_average"] is True
    names = _registered_names(path)
    assert not [name for name in names if "digitrec" in name or name.startswith("Random")], names
    assert "Identity" in names and "Dense" in names
    # The model of the quick profile's run (the sample's networks), saved by 04_cnn.
    run_loaded, run_description = load_model_bundle(run_model)
    assert np.abs(run_loaded.predict(images, verbose=0) - plain_run).max() < 1e-6
    assert run_description["inference"]["mirror_average"] is False


def test_an_older_model_file_with_custom_layers_still_loads_rebuilt_from_keras_layers_in_float32(legacy_model_file,
                                                                                                  test_images):
    import keras

    from digitrec_utils.models.inference import build_inference_model
    from digitrec_utils.models.model_files import load_model_bundle

    trained, path = legacy_model_file
    images, _ = test_images
    assert any("digitrec" in name for name in _registered_names(path))
    assert "bfloat16" in _input_dtypes(keras.saving.load_model(path))
    loaded, description = load_model_bundle(path)
    assert description["format_version"] == 2
    classes = {type(layer).__module__.split(".")[0] for layer in _walk_layers(loaded)}
    assert classes == {"keras"}, classes
    inputs = _input_dtypes(loaded)
    computes = {layer.compute_dtype for layer in _walk_layers(loaded)}
    assert inputs == {"float32"} and computes == {"float32"}, (inputs, computes)
    # The trained model rounds its inputs to bfloat16; the float32 network differs from it by about that.
    expected = build_inference_model(trained).predict(images, verbose=0)
    assert np.abs(loaded.predict(images, verbose=0) - expected).max() < 1e-6
    assert np.abs(trained.predict(images, verbose=0) - expected).max() < 0.02


def _walk_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _walk_layers(layer)


def _input_dtypes(model) -> set[str]:
    """The dtypes of the inputs of ``model`` and of every model inside it."""
    import keras

    models = [model, *(layer for layer in _walk_layers(model) if isinstance(layer, keras.Model))]
    return {str(tensor.dtype) for inner in models for tensor in inner.inputs}
