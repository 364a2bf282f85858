"""digitrec run --track: a run logged to a real MLflow store in tmp_path, a child per notebook with its figures, and
the saved model registered as ``digitrec@candidate``, which predicts what ``digitrec predict`` answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fake_notebooks import write_notebook
from PIL import Image

from digitrec_utils import config
from digitrec_utils.cli import EXIT_OK, EXIT_REJECTED, main
from digitrec_utils.running import tracking

mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed (pip install -e '.[mlflow]')")

# 02 records one model, right on 9 of 10 test digits; 04 puts a saved model where 04_cnn saves its own.
CLASSICAL = ("import numpy as np\nfrom digitrec_utils.evaluation.evaluation import evaluate_model\n"
             "from digitrec_utils.reporting.results import build_model_record, build_results, save_results\n"
             "truth = np.arange(10)\npredicted = truth.copy()\npredicted[0] = 1\n"
             "model = build_model_record('svm', 'classical', 'svm', evaluate_model(truth, predicted), "
             "val_accuracy=0.95, predict_ms_per_1k=1.0, train_seconds=2.0)\n"
             "save_results(build_results('02_classical_baselines', {'name': dataset, 'sha256': '0' * 64}, {}, "
             "seed=seed, models=[model], selected_model='svm', test_labels=truth, headline='svm 0.9'), output_dir)")
SAVED = ("import pathlib, shutil\nfrom digitrec_utils.reporting.results import build_results, save_results\n"
         "models = pathlib.Path(output_dir) / 'models'\nmodels.mkdir()\n"
         "for suffix in ('.keras', '.json'):\n"
         "    shutil.copy(pathlib.Path({source!r}).with_suffix(suffix), models / ('cnn_selected' + suffix))\n"
         "save_results(build_results('04_cnn', {{'name': dataset, 'sha256': '0' * 64}}, {{}}, seed=seed, "
         "headline='saved'), output_dir)")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A small Keras network (untrained: its answers need only be the same wherever it runs), saved as 04 saves."""
    import keras

    from digitrec_utils.models.model_files import save_model_bundle

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    return save_model_bundle(model, tmp_path_factory.mktemp("model"), name="tiny", dataset={"name": "mnist-sample"},
                             class_names=[str(digit) for digit in range(10)])


def test_a_tracked_run_leaves_its_notebooks_figures_and_a_registered_model(tmp_path, monkeypatch, tiny_model,
                                                                           capsys):
    notebooks = tmp_path / "notebooks"
    write_notebook(notebooks, "02_classical_baselines", CLASSICAL)
    write_notebook(notebooks, "04_cnn", SAVED.format(source=str(tiny_model)))
    monkeypatch.setattr(config, "NOTEBOOKS_DIR", notebooks)
    profile = tmp_path / "profile.yaml"
    profile.write_text("seed: 7\n")
    out = tmp_path / "out"
    assert main(["run", str(profile), "--out", str(out), "--name", "tracked", "--track"]) == EXIT_OK
    assert "MLflow: logged as run" in capsys.readouterr().out

    mlflow.set_tracking_uri(f"sqlite:///{out / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["digitrec"])
    suite = runs[runs["tags.mlflow.runName"] == "tracked"]
    assert len(suite) == 1 and suite["tags.digitrec.status"].item() == "ok"
    children = runs[runs["tags.mlflow.parentRunId"] == suite["run_id"].item()]
    assert sorted(children["tags.mlflow.runName"]) == ["02_classical_baselines", "04_cnn"]
    classical = children[children["tags.mlflow.runName"] == "02_classical_baselines"].iloc[0]
    assert classical["metrics.svm.test_accuracy"] == pytest.approx(0.9)
    assert classical["metrics.svm.val_accuracy"] == pytest.approx(0.95)
    assert classical["params.seed"] == "7" and classical["metrics.seconds"] > 0
    artifacts = {item.path for item in mlflow.MlflowClient().list_artifacts(classical["run_id"])}
    assert {"02_classical_baselines.html", "02_classical_baselines.ipynb"} <= artifacts

    # The registered model, loaded by MLflow alone, gives digitrec predict's top class on the same images.
    registered = mlflow.keras.load_model("models:/digitrec@candidate")
    rng = np.random.default_rng(1)
    images = []
    for number in range(6):
        digit = np.zeros((28, 28), dtype=np.uint8)
        digit[6:22, 8 + number:14 + number] = rng.integers(150, 256, size=(16, 6))
        images.append(tmp_path / f"digit{number}.png")
        Image.fromarray(digit).save(images[-1])
    assert main(["predict", *map(str, images), "--model", str(out / "tracked" / config.SAVED_MODEL_NAME),
                 "--json", "--min-confidence", "0"]) == EXIT_OK
    answers = json.loads(capsys.readouterr().out)
    from digitrec_utils.data.preparation import prepare_image_files

    prepared = np.concatenate([batch.images for batch in prepare_image_files(images)])
    top = np.argmax(registered.predict(prepared[..., None].astype("float32"), verbose=0), axis=1)
    assert [str(label) for label in top] == [answer["label"] for answer in answers]


def test_track_without_mlflow_is_refused_before_anything_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tracking.importlib.util, "find_spec", lambda name: None)
    assert main(["run", "--only", "eda", "--out", str(tmp_path), "--track"]) == EXIT_REJECTED
    assert "pip install -e '.[mlflow]'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
