"""Dense networks: the zoo's documented sizes, training honesty, early stopping, the smallest-network search."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from spies import Forbidden, row_keys, spy_on_training_datasets

from digitrec_utils.data.loading import load_dataset
from digitrec_utils.data.splits import make_splits
from digitrec_utils.engines import dense
from digitrec_utils.exceptions import ParameterError, SearchFailedError
from digitrec_utils.models import nets, training

EXPECTED_PARAMETERS = {  # Worked out by hand: (inputs + 1) x outputs per layer, + 4 per unit for BN.
    "slp": 785 * 10,
    "mlp_64x2_sgd": 785 * 64 + 65 * 64 + 65 * 10,
    "mlp_128x2_dropout": 785 * 128 + 129 * 128 + 129 * 10,
    "mlp_512x2_dropout_adam": 785 * 512 + 513 * 512 + 513 * 10,
    "mlp_512_rmsprop": 785 * 512 + 513 * 10,
    "mlp_512_dropout_rmsprop": 785 * 512 + 513 * 10,
    "mlp_128_sgd": 785 * 128 + 129 * 10,
    "mlp_tiny": 13_287,
    "mlp_bn": 785 * 256 + 257 * 128 + 129 * 64 + 65 * 10 + 4 * (256 + 128 + 64),
}


@pytest.fixture(scope="module")
def small_splits():
    return make_splits(load_dataset("mnist-sample", seed=42), val_fraction=0.2, seed=42, train_size=600)


def _scaled(splits):
    scaler = dense.InputScaler()
    return scaler.transform(splits.x_train), scaler.transform(splits.x_val)


@pytest.mark.parametrize("name", list(nets.DENSE_ZOO))
def test_zoo_networks_have_the_documented_layers_and_parameters(name):
    import keras

    spec = nets.DENSE_ZOO[name]
    model = nets.build_zoo_model(name)
    assert model.count_params() == EXPECTED_PARAMETERS[name]
    assert model.count_params() == nets.count_dense_parameters(spec.hidden_units, batch_norm=spec.batch_norm)
    dense_layers = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense_layers] == [*spec.hidden_units, 10]
    dropouts = [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert dropouts == ([spec.dropout] * len(spec.hidden_units) if spec.dropout else [])
    normalizations = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(normalizations) == (len(spec.hidden_units) if spec.batch_norm else 0)
    optimizer_class = {"sgd": "SGD", "adam": "Adam", "rmsprop": "RMSprop"}[spec.optimizer]
    assert type(model.optimizer).__name__ == optimizer_class
    if spec.learning_rate is not None:
        assert float(model.optimizer.learning_rate) == pytest.approx(spec.learning_rate)


def test_the_third_reports_tiny_network_has_13287_parameters():
    assert nets.build_zoo_model("mlp_tiny").count_params() == dense.THIRD_REPORT_TINY_PARAMETERS == 13_287


def test_unknown_names_are_rejected_with_the_allowed_values():
    with pytest.raises(ParameterError, match="mlp_tiny"):
        nets.build_zoo_model("mlp_huge")
    with pytest.raises(ParameterError, match="sgd, sgd_momentum, rmsprop, adam, nadam"):
        nets.build_optimizer("adagrad")
    with pytest.raises(ParameterError, match="experiments = 'colour' is not allowed: expected one of 'width'"):
        dense.DenseSettings(experiments=["width", "colour"]).check()


def test_training_logs_one_line_per_epoch_and_keeps_the_best_weights(small_splits, capsys, tmp_path, monkeypatch):
    progress = tmp_path / "progress.txt"
    monkeypatch.setenv("DIGITREC_PROGRESS_FILE", str(progress))
    x_train, x_val = _scaled(small_splits)
    model = nets.build_dense_network((32,), optimizer="adam", learning_rate=0.05)  # Large steps: a bumpy curve.
    result = training.train_model(model, x_train, small_splits.y_train, x_val, small_splits.y_val, epochs=6,
                                  batch_size=32, seed=0, early_stopping=True, patience=6, name="probe")
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("probe epoch")]
    assert len(lines) == 6 and lines[0].startswith("probe epoch 1/6: loss ")
    # Each line but the last says how long the epochs left should take: their number times the mean epoch so
    # far, the first epoch (which builds the training function) left out once there are others.
    seconds = [float(re.search(r"\(([0-9.]+) s", line).group(1)) for line in lines]
    estimates = [float(re.search(r"about ([0-9.]+) s left at most\)$", line).group(1)) for line in lines[:-1]]
    assert estimates[0] == pytest.approx(5 * seconds[0], abs=0.31)  # Each figure rounded to 0.1 s.
    assert estimates[2] == pytest.approx(3 * (seconds[1] + seconds[2]) / 2, abs=0.31)
    assert all("left at most" in line for line in lines[:-1]) and "left" not in lines[-1]
    assert progress.read_text().strip() == lines[-1]  # The latest line, for digitrec run's progress.
    assert result.best_epoch == int(np.argmin(result.history["val_loss"])) + 1
    _, accuracy = model.evaluate(x_val, small_splits.y_val, verbose=0)
    assert accuracy == pytest.approx(result.history["val_accuracy"][result.best_epoch - 1], abs=1e-6)
    assert result.val_accuracy == result.history["val_accuracy"][result.best_epoch - 1]


def test_watching_validation_accuracy_keeps_the_epoch_with_the_most_digits_right(small_splits):
    x_train, x_val = _scaled(small_splits)
    model = nets.build_dense_network((32,), optimizer="adam", learning_rate=0.05)
    result = training.train_model(model, x_train, small_splits.y_train, x_val, small_splits.y_val, epochs=6,
                                  batch_size=32, seed=0, early_stopping=True, patience=6, monitor="val_accuracy")
    assert result.best_epoch == int(np.argmax(result.history["val_accuracy"])) + 1
    _, accuracy = model.evaluate(x_val, small_splits.y_val, verbose=0)
    assert accuracy == pytest.approx(max(result.history["val_accuracy"]), abs=1e-6)
    assert "highest validation accuracy" in result.notes[0]
    with pytest.raises(ParameterError, match="monitor = 'accuracy' is not allowed"):
        training.train_model(model, x_train, small_splits.y_train, x_val, small_splits.y_val, epochs=1,
                             batch_size=32, seed=0, monitor="accuracy")
    with pytest.raises(ParameterError, match="zoo_watching_accuracy"):
        dense.DenseSettings(zoo_watching_accuracy=["mlp_huge"]).check()


def test_a_stalled_validation_loss_lowers_the_learning_rate(small_splits):
    x_train, x_val = _scaled(small_splits)
    shuffled = np.random.default_rng(0).permutation(small_splits.y_train)  # Nothing to learn: the loss stalls.
    model = nets.build_dense_network((32,), optimizer="adam", learning_rate=0.01)
    result = training.train_model(model, x_train, shuffled, x_val, small_splits.y_val, epochs=6, batch_size=64,
                                  seed=0, reduce_lr_patience=1, log=False)
    rates = result.history["learning_rate"]
    assert rates[0] == pytest.approx(0.01)
    assert rates[-1] < 0.01 and bool(np.all(np.diff(rates) <= 0))
    cuts = [epoch + 1 for epoch in range(1, len(rates)) if rates[epoch] < rates[epoch - 1]]
    assert f"from epoch{'s' if len(cuts) > 1 else ''} {', '.join(map(str, cuts))} on" in result.notes[-1]


def test_same_seed_gives_the_same_training(small_splits):
    x_train, x_val = _scaled(small_splits)
    histories = []
    for _ in range(2):
        training.seed_everything(7)
        model = nets.build_dense_network((16,), dropout=0.3, optimizer="adam")
        histories.append(training.train_model(model, x_train, small_splits.y_train, x_val, small_splits.y_val,
                                              epochs=2, batch_size=64, seed=7, log=False).history)
    np.testing.assert_allclose(histories[0]["val_loss"], histories[1]["val_loss"], rtol=1e-4)


def test_several_batches_per_call_train_exactly_like_one_batch_per_call(small_splits):
    x_train, x_val = _scaled(small_splits)
    runs = []
    for batches_per_call in (training.STEPS_PER_EXECUTION, 1):
        training.seed_everything(3)
        model = nets.build_dense_network((16,), optimizer="sgd_momentum")
        if batches_per_call == 1:
            model.compile(optimizer=nets.build_optimizer("sgd_momentum"), loss="sparse_categorical_crossentropy",
                          metrics=["accuracy"])
        assert model.steps_per_execution == batches_per_call
        # 480 images in batches of 8: 60 steps, one full call of 32 and one that stops at the epoch's end.
        result = training.train_model(model, x_train, small_splits.y_train, x_val, small_splits.y_val, epochs=3,
                                      batch_size=8, seed=3, log=False)
        runs.append((result.history, model.get_weights()))
    assert training.STEPS_PER_EXECUTION > 1
    np.testing.assert_allclose(runs[0][0]["val_loss"], runs[1][0]["val_loss"], rtol=1e-4)
    np.testing.assert_allclose(runs[0][0]["loss"], runs[1][0]["loss"], rtol=1e-4)
    for many, one in zip(runs[0][1], runs[1][1], strict=True):
        np.testing.assert_allclose(many, one, rtol=1e-3, atol=1e-5)


def test_no_fit_sees_the_test_split(small_splits, monkeypatch):
    forbidden = dataclasses.replace(small_splits, x_test=Forbidden(), y_test=Forbidden())
    seen = spy_on_training_datasets(monkeypatch)
    settings = dense.DenseSettings(zoo=["slp", "mlp_tiny"], zoo_epochs=1, experiment_epochs=1, widths=[8],
                                   depths=[1], optimizers=["adam"], dropouts=[0.0], batch_sizes=[64],
                                   epoch_options=[1], scalings=["divide"], search_widths=[8], target_accuracy=0.1)
    results, scaler = dense.train_zoo(forbidden, settings, log=False)
    dense.run_experiments(forbidden, settings, log=False)
    dense.find_smallest_network(forbidden, settings, log=False)
    train_rows, val_rows = row_keys(small_splits.x_train / 255), row_keys(small_splits.x_val / 255)
    fits = [rows for shuffle, rows in seen if shuffle]
    watched = [rows for shuffle, rows in seen if not shuffle]
    assert len(fits) >= 7 and all(rows <= train_rows for rows in fits)
    assert watched and all(rows == val_rows for rows in watched)
    with pytest.raises(AssertionError, match="test split"):
        dense.evaluate_zoo_on_test(results, scaler, forbidden)  # The stand-in does catch a read.


def test_a_standardized_zoo_network_is_trained_and_tested_on_standardized_pixels(small_splits):
    settings = dense.DenseSettings(zoo=["slp", "mlp_tiny"], zoo_epochs=1, standardized_zoo=["slp"])
    results, scalers = dense.train_zoo(small_splits, settings, log=False)
    assert scalers["slp"].method == "standardize" and scalers["mlp_tiny"].method == "divide"
    assert "standardized_zoo" in " ".join(results["slp"].training.notes)
    evaluations = dense.evaluate_zoo_on_test(results, scalers, small_splits)
    assert list(evaluations) == ["slp", "mlp_tiny"]
    for name, result in results.items():
        images = scalers[name].transform(small_splits.x_test)
        expected = result.model.predict(images, verbose=0).argmax(axis=1)
        np.testing.assert_array_equal(evaluations[name].y_pred, expected)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_smallest_network_search_returns_the_fewest_parameters_reaching_the_target(small_splits, early_stopping):
    settings = dense.DenseSettings(experiment_epochs=1, search_epochs=3 + 3 * early_stopping, experiment_batch_size=16,
                                   search_widths=[2, 16, 48], search_depths=[1], target_accuracy=0.6,
                                   early_stopping=early_stopping, patience=1)
    result = dense.find_smallest_network(small_splits, settings, log=False)
    table = result.table
    if early_stopping:  # Scored with the best validation-loss epoch's weights, and the finding says which.
        assert bool((table["best_epoch"] <= table["epochs_run"]).all()) and table["epochs_run"].max() <= 6
        winner = table[table["winner"]].iloc[0]
        assert f"epoch {winner['best_epoch']} of {winner['epochs_run']}" in result.finding
    else:
        assert "best_epoch" not in table and "after 3 epochs" in result.finding
    assert list(table["parameters"]) == sorted(table["parameters"])
    winner = table[table["winner"]].iloc[0]
    reaching = table[table["val_accuracy"] >= 0.6]
    assert len(reaching) < len(table), "the two-unit network should miss the target, or the test checks less"
    assert winner["parameters"] == reaching["parameters"].min()
    front = table[table["pareto"]]
    assert front["val_accuracy"].is_monotonic_increasing
    assert f"{winner['parameters']:,} parameters" in result.finding and "13,287" in result.finding


def test_smallest_network_search_fails_clearly_when_nothing_reaches_the_target(small_splits):
    settings = dense.DenseSettings(search_epochs=1, search_widths=[2, 4], search_depths=[1],
                                   target_accuracy=0.999)
    with pytest.raises(SearchFailedError, match=r"no network of the search reached target_accuracy 0\.9990.*"
                                                      r"search_epochs"):
        dense.find_smallest_network(small_splits, settings, log=False)


def test_standardization_is_fitted_on_the_training_part_only(small_splits):
    scaler = dense.InputScaler("standardize").fit(small_splits.x_train)
    standardized = scaler.transform(small_splits.x_train).reshape(len(small_splits.x_train), -1)
    varying = standardized.std(axis=0) > 0
    np.testing.assert_allclose(standardized.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(standardized.std(axis=0)[varying], 1.0, atol=1e-3)
    assert np.isfinite(scaler.transform(small_splits.x_val)).all()


def test_configure_keras_says_what_tensorflow_runs_on():
    line = training.configure_keras()
    assert line.startswith("TensorFlow ") and "Keras" in line and ("CPU" in line or "GPU" in line)


def test_experiment_findings_come_from_paired_tests_on_the_predictions_they_report(small_splits):
    settings = dense.DenseSettings(experiments=["width", "batch_epochs"], experiment_epochs=2, experiment_batch_size=32,
                                   widths=[2, 64], batch_sizes=[32], epoch_options=[1, 2])
    results = dense.run_experiments(small_splits, settings, log=False)
    for result in results.values():
        table = result.table
        key = "setting" if result.name == "batch_epochs" else result.x
        for _, row in table.iterrows():  # The predictions are those of the weights the table scores.
            assert np.mean(result.predictions[row[key]] == small_splits.y_val) == pytest.approx(row["val_accuracy"])
        assert (table["95% CI low"] <= table["val_accuracy"]).all() and (table["val_accuracy"] <=
                                                                        table["95% CI high"]).all()
        assert list(table["vs best"]).count("best") == 1
        verdicts = result.comparison.table.set_index("setting")
        for _, row in table[table["vs best"] != "best"].iterrows():
            assert (row["vs best"] == "worse") == bool(verdicts.loc[row[key], "distinguishable"])
            if row["vs best"] == "within noise":
                assert str(row[key]) in result.finding
        assert result.finding.startswith(f"Best {key}: {result.comparison.best} at ")
