"""digitrec export: ONNX, LiteRT and SavedModel files that agree with Keras, each with the JSON a runtime needs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from digitrec_utils import config
from digitrec_utils.cli import EXIT_OK, EXIT_REJECTED, main


def _agree(probabilities: np.ndarray, expected: np.ndarray) -> None:
    """The issue's bar: the same top class on at least 99.9% of images, probabilities within 1e-4."""
    assert probabilities.shape == expected.shape
    assert (probabilities.argmax(axis=1) == expected.argmax(axis=1)).mean() >= 0.999
    assert np.abs(probabilities - expected).max() < 1e-4


def _run_onnx(path, images) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: images})[0]


def _run_litert(path, images) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    entrance = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(entrance["index"], images.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(entrance["index"], images)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def test_onnx_and_litert_exports_agree_with_keras_and_carry_the_runtime_json(mirrored_model, test_images, splits,
                                                                            tmp_path):
    from digitrec_utils.data.preparation import PREPARATION_VERSION
    from digitrec_utils.models.model_files import record_abstention

    trained, saved = mirrored_model
    images, _ = test_images
    model_path = tmp_path / saved.name
    model_path.write_bytes(saved.read_bytes())
    model_path.with_suffix(".json").write_bytes(saved.with_suffix(".json").read_bytes())
    record_abstention(model_path, score="margin", threshold=0.42, target=0.995, chosen_on="validation")
    expected = trained.predict(images, verbose=0)

    assert main(["export", str(model_path), "--format", "onnx", "--out", str(tmp_path / "digits.onnx")]) == EXIT_OK
    _agree(_run_onnx(tmp_path / "digits.onnx", images), expected)
    # Without --out the file goes beside the model, named after it.
    assert main(["export", str(model_path), "--format", "litert"]) == EXIT_OK
    _agree(_run_litert(tmp_path / "cnn_selected.tflite", images), expected)

    import onnxruntime

    described = json.loads((tmp_path / "digits.onnx.json").read_text())
    session = onnxruntime.InferenceSession(str(tmp_path / "digits.onnx"), providers=["CPUExecutionProvider"])
    assert described["input"]["name"] == session.get_inputs()[0].name
    assert described["output"]["name"] == session.get_outputs()[0].name
    assert described["input"]["shape"] == [None, 28, 28, 1]
    assert described["class_names"] == list(splits.class_names)
    assert described["preparation_version"] == PREPARATION_VERSION
    assert described["inference"]["mirror_average"] is True
    assert described["abstention"]["score"] == "margin" and described["abstention"]["threshold"] == 0.42
    assert described["exported_from"]["format_version"] == 3
    litert_described = json.loads((tmp_path / "cnn_selected.tflite.json").read_text())
    assert litert_described["format"] == "litert" and litert_described["file"] == "cnn_selected.tflite"


def test_a_savedmodel_export_serves_the_same_probabilities(mirrored_model, test_images, tmp_path):
    import tensorflow as tf

    from digitrec_utils.models.export import export_model

    trained, saved = mirrored_model
    images, _ = test_images
    out = export_model(saved, format_name="savedmodel", out=tmp_path / "served")
    assert out.is_dir() and (tmp_path / "served.json").is_file()
    loaded = tf.saved_model.load(str(out))  # Kept in a name: its variables live only as long as it does.
    served = loaded.serve(tf.constant(images))
    _agree(np.asarray(served), trained.predict(images, verbose=0))


def test_a_model_saved_by_an_older_digitrec_exports_too(legacy_model_file, test_images, tmp_path):
    from digitrec_utils.models.export import export_model
    from digitrec_utils.models.model_files import load_model_bundle

    _, path = legacy_model_file
    images, _ = test_images
    out = export_model(path, format_name="onnx", out=tmp_path / "legacy.onnx")
    # The same probabilities as digitrec's own predictions with the file (before the float32 inputs of
    # build_inference_model, ONNX Runtime differed from them by up to 1e-3 on a model trained in bfloat16).
    _agree(_run_onnx(out, images), load_model_bundle(path)[0].predict(images, verbose=0))
    described = json.loads((tmp_path / "legacy.onnx.json").read_text())
    assert described["exported_from"]["format_version"] == 2 and described["abstention"] is None
    assert described["inference"]["mirror_average"] is True


def test_a_failed_or_impossible_export_names_the_fix_and_keeps_the_earlier_file(saved_model, tmp_path, monkeypatch,
                                                                                capsys):
    import importlib.util

    import keras

    earlier = tmp_path / "digits.onnx"
    earlier.write_bytes(b"an earlier export")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "tf2onnx" else real_find_spec(name, *rest))
    assert main(["export", str(saved_model), "--format", "onnx", "--out", str(earlier)]) == EXIT_REJECTED
    assert "pip install 'digitrec[export]'" in capsys.readouterr().err
    monkeypatch.setattr(importlib.util, "find_spec", real_find_spec)

    def refuse(*arguments, **keywords):
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(keras.Model, "export", refuse)
    assert main(["export", str(saved_model), "--format", "onnx", "--out", str(earlier)]) == EXIT_REJECTED
    assert "converter crashed" in capsys.readouterr().err
    assert earlier.read_bytes() == b"an earlier export"
    assert sorted(item.name for item in tmp_path.iterdir()) == ["digits.onnx"]
    assert main(["export", str(tmp_path / "missing.keras"), "--format", "litert"]) == EXIT_REJECTED
    assert "no such model file" in capsys.readouterr().err


def _read_running_snippet() -> str:
    """The code block of docs/RUNNING.md that reads digits with ONNX Runtime, without TensorFlow."""
    text = (config.PROJECT_ROOT / "docs" / "RUNNING.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- onnx-snippet -->\s*```python\n(.*?)```", text, re.DOTALL)
    assert match, "docs/RUNNING.md lost its ONNX Runtime example (the block after <!-- onnx-snippet -->)"
    return match.group(1)


def test_the_documented_onnx_example_reads_digits_without_tensorflow(mirrored_model, splits, tmp_path):
    from digitrec_utils.application.models import load_model_in_use
    from digitrec_utils.imaging.predict import predict_images, render_digit_photo
    from digitrec_utils.models.export import export_model

    _, saved = mirrored_model
    export_model(saved, format_name="onnx", out=tmp_path / "cnn_selected.onnx")
    paths = [render_digit_photo(splits.x_test[index], tmp_path / f"digit{index}.png") for index in range(6)]
    (tmp_path / "broken.png").write_bytes(b"not an image")
    (tmp_path / "read_digits.py").write_text(_read_running_snippet())
    check = ("import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path('read_digits.py', run_name='__main__'); "
             "heavy = [name for name in ('tensorflow', 'keras') if name in sys.modules]; "
             "assert not heavy, f'imported {heavy}'")
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    completed = subprocess.run([sys.executable, "-c", check, "read_digits.py", *[path.name for path in paths],
                                "broken.png"], cwd=tmp_path, env=environment, capture_output=True, text=True,
                               timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in completed.stdout.strip().splitlines())
    expected = predict_images(paths, load_model_in_use(saved).model,
                              abstention={"score": "top_probability", "threshold": 0.0})
    assert [lines[path.name] for path in paths] == [entry["label"] for entry in expected]
    assert lines["broken.png"].startswith("error:")


def test_export_rejects_an_unknown_format_before_loading_anything(capsys):
    from digitrec_utils.exceptions import ExportError
    from digitrec_utils.models.export import export_keras_model

    with pytest.raises(SystemExit) as stopped:
        main(["export", "model.keras", "--format", "pdf"])
    assert stopped.value.code == 2 and "invalid choice: 'pdf'" in capsys.readouterr().err
    with pytest.raises(ExportError, match="choose one of onnx, litert, savedmodel"):
        export_keras_model(None, format_name="pdf", out="model.pdf")
