"""CNNs: documented sizes, folds of the training part only, augmentation in training only, saving and reloading."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from spies import Forbidden, row_keys, spy_on_training_datasets

from digitrec_utils.data.loading import load_dataset
from digitrec_utils.data.splits import make_splits
from digitrec_utils.engines import cnn
from digitrec_utils.evaluation import reliability
from digitrec_utils.exceptions import ModelFileError, ParameterError
from digitrec_utils.models import added_images, convnets, training
from digitrec_utils.models.layers import build_affine_transforms
from digitrec_utils.models.model_files import load_model_bundle
from digitrec_utils.models.reference import load_reference
from digitrec_utils.params import resolve_parameters

# Worked out by hand: a 3x3 convolution has (9 x inputs + 1) x filters weights, a dense layer (inputs + 1) x units.
EXPECTED_PARAMETERS = {
    # 28 -> 26 (conv) -> 13 (pool): 13 x 13 x 32 = 5,408 inputs to Dense100.
    "cnn_small": (9 + 1) * 32 + (5408 + 1) * 100 + (100 + 1) * 10,
    # 26 -> 13 -> 11 -> 9 -> 4: 4 x 4 x 64 = 1,024 inputs to Dense100.
    "cnn_deeper": (9 + 1) * 32 + (9 * 32 + 1) * 64 + (9 * 64 + 1) * 64 + (1024 + 1) * 100 + (100 + 1) * 10,
    # 26 -> 13 -> 11 -> 5 -> 3: 3 x 3 x 64 = 576 inputs to Dense512; the second report's 356,298.
    "cnn_rmsprop": 356_298,
}
EXPECTED_OUTPUT_SHAPES = {
    "cnn_small": [(26, 26, 32), (13, 13, 32)],
    "cnn_deeper": [(26, 26, 32), (13, 13, 32), (11, 11, 64), (9, 9, 64), (4, 4, 64)],
    "cnn_rmsprop": [(26, 26, 32), (13, 13, 32), (11, 11, 64), (5, 5, 64), (3, 3, 64)],
}


@pytest.fixture(scope="module")
def small_splits():
    return make_splits(load_dataset("mnist-sample", seed=42), val_fraction=0.2, seed=42, train_size=500)


def _quick_settings(**changes):
    # cnn_modern without the notebook's mail changes, images of no digit and scanned-looking copies, unless a
    # test asks for them: its training images are then the training rows themselves.
    base = dict(networks=["cnn_small"], epochs=1, modern_epochs=1, modern_filters=[8], modern_convs_per_block=1,
                modern_dense_units=16, modern_robustness=(), modern_outlier_exposure=0.0, modern_scan_copies=0.0,
                cv_model="cnn_small", cv_folds=2, cv_epochs=1)
    return cnn.CnnSettings(**{**base, **changes})


@pytest.mark.parametrize("name", list(EXPECTED_PARAMETERS))
def test_reproduced_cnns_have_the_documented_shapes_and_parameters(name):
    import keras

    model = convnets.build_cnn(name)
    assert model.count_params() == EXPECTED_PARAMETERS[name]
    shapes = [tuple(layer.output.shape[1:]) for layer in model.layers
              if isinstance(layer, (keras.layers.Conv2D, keras.layers.MaxPooling2D))]
    assert shapes == EXPECTED_OUTPUT_SHAPES[name]
    assert model.output_shape == (None, 10)
    assert model.steps_per_execution == training.STEPS_PER_EXECUTION
    spec = convnets.CNN_ZOO[name]
    assert type(model.optimizer).__name__ == {"sgd_momentum": "SGD", "rmsprop": "RMSprop"}[spec.optimizer]
    if spec.optimizer == "sgd_momentum":
        assert float(model.optimizer.momentum) == pytest.approx(0.9)
        assert float(model.optimizer.learning_rate) == pytest.approx(0.01)


@pytest.mark.parametrize("filters, convs, widths, side", [((16, 32, 48), 1, [16, 32, 48], 1),
                                                        ((32, 64), 2, [32, 32, 64, 64], 4)])
def test_the_modern_cnn_has_the_blocks_it_was_asked_for(filters, convs, widths, side):
    import keras

    model = convnets.build_modern_cnn(filters=filters, convs_per_block=convs, dense_units=64, augmentation="none",
                                      total_steps=10)
    assert [layer.filters for layer in model.layers if isinstance(layer, keras.layers.Conv2D)] == widths
    # Batch normalization after every convolution from the second block on, and in the head.
    normalized = sum(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    assert normalized == convs * (len(filters) - 1) + 1
    # Unpadded convolutions trim 2 pixels each, poolings halve: e.g. 28 -> 26 -> 13 -> 11 -> 5 -> 3 -> 1.
    assert convnets.check_modern_shape(filters, convs) == side
    assert model.get_layer("dense").kernel.shape == (side * side * filters[-1], 64)
    assert model.output_shape == (None, 10)
    assert model.loss.label_smoothing == pytest.approx(0.1)


def test_batch_norm_momentum_follows_the_epoch_length():
    assert convnets.choose_batch_norm_momentum(422) == 0.99  # Full Fashion-MNIST: Keras's default.
    assert convnets.choose_batch_norm_momentum(29) == 0.9  # mnist-sample: the moving statistics keep up.
    assert convnets.choose_batch_norm_momentum(100) == pytest.approx(0.96)  # In between: 1 - 4 / 100.
    model = cnn.build_network("cnn_modern", cnn.CnnSettings(), n_train=3600)
    assert {layer.momentum for layer in model.layers if "batch_norm" in layer.name} == {0.9}


def test_unknown_networks_and_settings_are_rejected_with_the_allowed_values():
    with pytest.raises(ParameterError, match="cnn_small, cnn_deeper, cnn_rmsprop"):
        convnets.build_cnn("cnn_huge")
    with pytest.raises(ParameterError, match="auto, digits, fashion, none"):
        convnets.choose_augmentation("mirror", "mnist")
    with pytest.raises(ParameterError, match="networks = 'resnet' is not allowed: expected one of"):
        cnn.CnnSettings(networks=["cnn_small", "resnet"]).check()
    with pytest.raises(ParameterError, match="cv_folds = 1"):
        cnn.CnnSettings(cv_folds=1).check()
    with pytest.raises(ParameterError, match="shrinks to nothing"):
        cnn.CnnSettings(modern_filters=[8, 8, 8], modern_convs_per_block=2).check()


@pytest.mark.parametrize("section, expected", [
    ({"networks": ["cnn_small", "vgg"]}, r"networks = 'vgg' is not allowed: expected one of 'cnn_small'"),
    ({"augmentation": "mirror"}, r"augmentation = 'mirror' is not allowed: expected one of 'auto'"),
    ({"cv_folds": 1}, r"cv_folds = 1 is not allowed; use 0 to skip"),
    ({"label_smoothing": 0.9}, r"label_smoothing = 0.9 is not allowed"),
    ({"cv_model": "mlp_tiny"}, r"cv_model = 'mlp_tiny' is not allowed"),
    ({"modern_filters": [16, 32, 64], "modern_convs_per_block": 2}, r"04_cnn: modern_filters \[16, 32, 64\] with"),
    ({"modern_ema_momentum": 1.0}, r"modern_ema_momentum = 1.0 is not allowed"),
])
def test_cnn_parameters_are_checked_before_the_run(section, expected):
    with pytest.raises(ParameterError, match=expected):
        resolve_parameters({"cnn": section}, ["04_cnn"])


@pytest.mark.parametrize("dataset, mirrors", [("fashion-mnist", True), ("mnist", False), ("mnist-sample", False),
                                              ("digits", False)])
def test_augmentation_mirrors_clothes_but_not_digits(dataset, mirrors):
    chosen = convnets.choose_augmentation("auto", dataset)
    names = [layer.name for layer in convnets.build_augmentation(chosen)]
    assert ("random_mirror" in names) == mirrors
    assert "random_geometry" in names
    assert ("mirroring (valid for clothes)" in convnets.describe_augmentation(chosen)) == mirrors


def test_augmentation_is_active_in_training_and_inactive_at_inference(small_splits):
    model = convnets.build_modern_cnn(filters=(8,), convs_per_block=1, dense_units=16, augmentation="digits",
                                      total_steps=10, seed=3)
    images = cnn.prepare_images(small_splits.x_val[:16])
    np.testing.assert_array_equal(model.predict(images, verbose=0), model.predict(images, verbose=0))
    augmenter = model.layers[0]
    assert augmenter.name == "random_geometry"
    passed = np.asarray(augmenter(images, training=False))
    np.testing.assert_array_equal(passed, images)
    augmented = np.asarray(augmenter(images, training=True))
    assert np.abs(augmented - images).mean() > 0.01


def _apply_geometry(images, angle=0.0, zoom=1.0, shift=(0.0, 0.0)):
    """Apply one rotation, zoom and shift to every image with ``build_affine_transforms``, as the layer does."""
    import keras

    count, side = len(images), images.shape[1]
    transforms = build_affine_transforms(np.full(count, angle, "float32"), np.full(count, zoom, "float32"),
                                         np.tile(np.asarray(shift, "float32"), (count, 1)), side)
    return np.asarray(keras.ops.image.affine_transform(images, transforms, interpolation="bilinear",
                                                       fill_mode="constant", fill_value=0.0))


def test_one_affine_transform_turns_zooms_and_shifts_as_worked_out_by_hand():
    rng = np.random.default_rng(0)
    images = rng.random((3, 27, 27, 1)).astype("float32")
    # A quarter turn about the centre moves pixels to pixels: NumPy's rot90 in one of its two directions.
    turned = _apply_geometry(images, angle=np.pi / 2)
    quarter = np.rot90(images, k=1, axes=(1, 2))
    other = np.rot90(images, k=-1, axes=(1, 2))
    assert min(np.abs(turned - quarter).max(), np.abs(turned - other).max()) < 1e-5
    # Whole-pixel shifts: 3 right and 2 up, black where nothing was.
    moved = _apply_geometry(images, shift=(3.0, -2.0))
    expected = np.zeros_like(images)
    expected[:, :-2, 3:] = images[:, 2:, :-3]
    np.testing.assert_allclose(moved, expected, atol=1e-5)
    # Zoom 0.5 doubles the digit about the centre pixel (13, 13): output (13 + 2i, 13 + 2j) reads input
    # (13 + i, 13 + j).
    doubled = _apply_geometry(images, zoom=0.5)
    offsets = np.arange(-6, 7)
    np.testing.assert_allclose(doubled[:, 13 + 2 * offsets][:, :, 13 + 2 * offsets],
                               images[:, 13 + offsets][:, :, 13 + offsets], atol=1e-5)


def test_geometry_layer_moves_each_image_within_its_limits_in_training_only():
    # A single bright pixel at the centre of each image: where it lands shows each image's own shift.
    images = np.zeros((64, 28, 28, 1), "float32")
    images[:, 13:15, 13:15] = 1.0
    layer = convnets.build_augmentation("digits", strength=0.1, seed=4)[0]
    np.testing.assert_array_equal(np.asarray(layer(images, training=False)), images)
    moved = np.asarray(layer(images, training=True))[..., 0]
    rows, columns = np.meshgrid(np.arange(28.0), np.arange(28.0), indexing="ij")
    mass = moved.sum(axis=(1, 2))
    centre_rows = (moved * rows).sum(axis=(1, 2)) / mass - 13.5
    centre_columns = (moved * columns).sum(axis=(1, 2)) / mass - 13.5
    # Shifts of up to 0.1 of 28 pixels each way; the zoom and turn about the centre barely move a central spot.
    assert np.abs(centre_rows).max() <= 2.8 + 0.1 and np.abs(centre_columns).max() <= 2.8 + 0.1
    assert centre_rows.std() > 0.8 and centre_columns.std() > 0.8
    assert abs(np.corrcoef(centre_rows, centre_columns)[0, 1]) < 0.4  # Drawn apart, not along a diagonal.


def test_mirror_averaging_means_each_image_and_its_mirror_and_survives_saving(small_splits, tmp_path):
    from digitrec_utils.models.model_files import save_model_bundle

    model = convnets.build_modern_cnn(filters=(8,), convs_per_block=1, dense_units=16, augmentation="none",
                                      total_steps=10)
    averaged = convnets.build_mirror_average(model)
    images = cnn.prepare_images(small_splits.x_val[:8])
    expected = (model.predict(images, verbose=0) + model.predict(images[:, :, ::-1], verbose=0)) / 2
    np.testing.assert_allclose(averaged.predict(images, verbose=0), expected, rtol=1e-5, atol=1e-6)
    path = save_model_bundle(averaged, tmp_path, name="cnn_modern", class_names=small_splits.class_names,
                             dataset={"name": "fashion-mnist"})
    reloaded, _ = load_model_bundle(path)
    np.testing.assert_array_equal(reloaded.predict(images, verbose=0), averaged.predict(images, verbose=0))


def test_mail_changes_apply_in_training_only_to_about_half_the_images_and_are_left_out_when_saved(small_splits,
                                                                                                 tmp_path):
    from digitrec_utils.models.model_files import save_model_bundle

    images = cnn.prepare_images(small_splits.x_train[:200])
    layer = convnets.build_robustness_augmentation(["pen", "noise", "occlusion"], seed=3)[0]
    np.testing.assert_array_equal(np.asarray(layer(images, training=False)), images)
    changed = np.asarray(layer(images, training=True))
    assert changed.shape == images.shape and changed.min() >= 0.0 and changed.max() <= 1.0
    share = np.mean(np.abs(changed - images).max(axis=(1, 2, 3)) > 1e-6)
    assert 0.3 < share < 0.7  # ROBUSTNESS_RATE = 0.5 of 200 images, give or take chance.
    for kind in convnets.ROBUSTNESS_CORRUPTIONS:  # Each kind alone changes images too.
        alone = convnets.build_robustness_augmentation([kind], rate=1.0, seed=3)[0]
        assert np.mean(np.abs(np.asarray(alone(images, training=True)) - images)) > 0.005, kind
    model = convnets.build_modern_cnn(filters=(8,), convs_per_block=1, dense_units=16, augmentation="digits",
                                      robustness=["pen", "occlusion"], total_steps=10)
    path = save_model_bundle(model, tmp_path, name="cnn_modern", class_names=small_splits.class_names,
                             dataset={"name": "mnist-sample"})
    reloaded, _ = load_model_bundle(path)
    # The saved file holds the network that predicts: the training-only layer is Keras's Identity there.
    assert type(model.get_layer("random_mail_changes")).__name__ == "RandomMailChanges"
    assert type(reloaded.get_layer("random_mail_changes")).__name__ == "Identity"
    np.testing.assert_allclose(reloaded.predict(images[:8], verbose=0), model.predict(images[:8], verbose=0),
                               rtol=1e-5, atol=1e-6)
    assert convnets.list_seen_corruptions("digits", ["pen"]) == ["rotation", "scale", "translation", "dilation",
                                                                  "erosion"]
    with pytest.raises(ParameterError, match="allowed values are pen, noise, occlusion"):
        convnets.build_robustness_augmentation(["smudge"])


def test_elastic_distortion_moves_pixels_by_smooth_independent_fields_in_training_only(small_splits, tmp_path):
    from digitrec_utils.models.model_files import save_model_bundle

    images = cnn.prepare_images(small_splits.x_train[:64])
    layer = convnets.build_elastic_augmentation(34.0, seed=5)[0]
    np.testing.assert_array_equal(np.asarray(layer(images, training=False)), images)
    bent = np.asarray(layer(images, training=True))
    assert bent.shape == images.shape and bent.min() >= 0.0 and bent.max() <= 1.0 + 1e-6
    assert np.all(np.abs(bent - images).max(axis=(1, 2, 3)) > 0.05)  # Every image is bent.
    # Bilinear reading is exact on a ramp, so a ramp across the columns (down the rows) shows each pixel's
    # movement across (down). Two layers of one seed draw the same noise, hence the same field.
    columns, rows = np.meshgrid(np.arange(28.0), np.arange(28.0))
    ramps = {"across": columns, "down": rows}
    moves = {}
    for axis, ramp in ramps.items():
        same_seed = convnets.build_elastic_augmentation(34.0, seed=11)[0]
        batch = np.repeat(ramp[None, :, :, None], 16, axis=0).astype("float32")
        moves[axis] = (np.asarray(same_seed(batch, training=True)) - batch)[:, 8:20, 8:20, 0]
    for axis, move in moves.items():
        # Simard et al.'s alpha 34 and sigma 4: a standard deviation of about 1.3 pixels, smooth between pixels.
        assert 0.7 < move.std() < 2.2, axis
        neighbours = np.corrcoef(move[:, :, :-1].ravel(), move[:, :, 1:].ravel())[0, 1]
        assert neighbours > 0.8, axis
        assert abs(np.corrcoef(move[0].ravel(), move[1].ravel())[0, 1]) < 0.9  # Each image has its own field.
    assert abs(np.corrcoef(moves["across"].ravel(), moves["down"].ravel())[0, 1]) < 0.5  # Not along a diagonal.
    model = convnets.build_modern_cnn(filters=(8,), convs_per_block=1, dense_units=16, augmentation="digits",
                                      elastic=34.0, total_steps=10)
    path = save_model_bundle(model, tmp_path, name="cnn_modern", class_names=small_splits.class_names,
                             dataset={"name": "mnist-sample"})
    reloaded, _ = load_model_bundle(path)
    assert type(model.get_layer("random_elastic")).__name__ == "RandomElasticDistortion"
    assert type(reloaded.get_layer("random_elastic")).__name__ == "Identity"
    assert convnets.list_seen_corruptions("digits", [], elastic=34.0)[-1] == "elastic"
    assert "elastic distortion" in convnets.describe_augmentation("digits", 0.08, (), 34.0)
    assert convnets.build_elastic_augmentation(0.0) == []
    with pytest.raises(ParameterError, match="modern_elastic = 80.0 is not allowed: expected 0.0 <= value <= 60.0"):
        convnets.build_elastic_augmentation(80.0)
    with pytest.raises(ParameterError, match="modern_elastic"):
        _quick_settings(modern_elastic=-1.0).check()


def test_mirror_averaging_is_kept_only_when_it_raises_validation_accuracy(small_splits):
    settings = _quick_settings(networks=["cnn_modern"], dataset="fashion-mnist")
    result = cnn.train_cnn_zoo(small_splits, settings, log=False)["cnn_modern"]
    images = cnn.prepare_images(small_splits.x_val)
    plain = float(np.mean(result.training.model.predict(images, verbose=0).argmax(axis=1) == small_splits.y_val))
    averaged = convnets.build_mirror_average(result.training.model).predict(images, verbose=0)
    mirrored = float(np.mean(averaged.argmax(axis=1) == small_splits.y_val))
    assert (result.final_model is not None) == (mirrored > plain)
    assert result.val_accuracy == pytest.approx(max(plain, mirrored))
    assert "mirror image" in result.training.notes[-1] and "McNemar's exact test" in result.training.notes[-1]
    assert np.mean(result.val_predictions == small_splits.y_val) == pytest.approx(result.val_accuracy)
    digits = cnn.train_cnn_zoo(small_splits, _quick_settings(networks=["cnn_modern"]), log=False)["cnn_modern"]
    assert digits.final_model is None  # No mirroring for digits.


def test_folds_partition_the_training_part_only():
    labels = np.repeat(np.arange(10), 12)
    folds = cnn.make_folds(labels, 4, seed=0)
    held_out = np.concatenate([positions for _, positions in folds])
    assert sorted(held_out.tolist()) == list(range(len(labels)))
    for train_positions, positions in folds:
        assert not set(train_positions) & set(positions)
        assert len(train_positions) + len(positions) == len(labels)
        assert np.bincount(labels[positions]).tolist() == [3] * 10  # Stratified.
    with pytest.raises(ParameterError, match="rarest class has only 2"):
        cnn.make_folds(np.array([0, 0, 1, 1, 1]), 3, seed=0)


def test_no_fit_sees_the_test_split_and_the_folds_never_see_validation(small_splits, monkeypatch):
    forbidden = dataclasses.replace(small_splits, x_test=Forbidden(), y_test=Forbidden())
    seen = spy_on_training_datasets(monkeypatch)
    settings = _quick_settings(networks=["cnn_small", "cnn_modern"])
    cnn.train_cnn_zoo(forbidden, settings, log=False)
    zoo_calls = len(seen)
    validation = cnn.cross_validate(forbidden, settings, log=False)
    train_rows = row_keys(cnn.prepare_images(small_splits.x_train))
    val_rows = row_keys(cnn.prepare_images(small_splits.x_val))
    test_rows = row_keys(cnn.prepare_images(small_splits.x_test))
    assert zoo_calls == 4 and len(seen) == zoo_calls + 2 * settings.cv_folds
    for shuffle, rows in seen[:zoo_calls]:
        assert rows <= (train_rows if shuffle else val_rows)
    for _, rows in seen[zoo_calls:]:
        assert rows <= train_rows and not rows & test_rows
    assert sum(len(positions) for _, positions in validation.fold_indices) == len(small_splits.y_train)


def test_learning_rate_cuts_reach_the_reproduced_networks_but_not_cnn_modern(small_splits):
    settings = _quick_settings(networks=["cnn_small", "cnn_modern"], epochs=3, reduce_lr_patience=1,
                               networks_watching_accuracy=["cnn_small"])
    results = cnn.train_cnn_zoo(small_splits, settings, log=False)
    small_notes = " ".join(results["cnn_small"].training.notes)
    assert "The learning rate was" in small_notes and "validation accuracy" in small_notes
    assert not any("The learning rate was" in note for note in results["cnn_modern"].training.notes)
    # Patience 3 never stops 3 epochs (cnn_small) or 1 (cnn_modern); the notes count them in words that fit.
    assert "Ran all 3 epochs" in small_notes
    assert "Ran its only epoch" in " ".join(results["cnn_modern"].training.notes)


def test_a_moving_average_of_the_weights_is_kept_in_place_of_the_best_epochs(small_splits):
    images, val_images = cnn.prepare_images(small_splits.x_train), cnn.prepare_images(small_splits.x_val)
    moved, results = {}, {}
    for momentum in (0.0, 0.9999):
        training.seed_everything(0)
        model = convnets.build_modern_cnn(filters=(8,), convs_per_block=1, dense_units=16, augmentation="none",
                                          learning_rate=0.01, total_steps=48, ema_momentum=momentum, seed=0)
        start = [weight.numpy().copy() for weight in model.trainable_weights]
        results[momentum] = training.train_model(model, images, small_splits.y_train, val_images,
                                                 small_splits.y_val, epochs=3, batch_size=32, seed=0,
                                                 early_stopping=True, patience=3, one_hot_classes=10, log=False)
        moved[momentum] = sum(float(np.abs(weight.numpy() - first).sum())
                              for weight, first in zip(results[momentum].model.trainable_weights, start, strict=True))
    # Momentum 0.9999 over 48 steps barely leaves the first step's weights; early stopping must not put the
    # best epoch's raw weights back over the average.
    assert moved[0.9999] < 0.2 * moved[0.0]
    averaged = results[0.9999]
    assert not averaged.restored_best and results[0.0].restored_best
    assert "moving average of the weights (momentum 0.9999) was kept" in averaged.notes[0]
    assert "statistics recomputed over one pass of the training images" in averaged.notes[0]
    predicted = averaged.model.predict(val_images, verbose=0).argmax(axis=1)
    assert averaged.val_accuracy == pytest.approx(float(np.mean(predicted == small_splits.y_val)))
    with pytest.raises(ParameterError, match="modern_ema_momentum = 1.0 is not allowed: expected 0.0 <= value <= 0.99"):
        _quick_settings(modern_ema_momentum=1.0).check()


def test_fold_ensemble_averages_the_fold_models(small_splits):
    settings = _quick_settings()
    validation = cnn.cross_validate(small_splits, settings, log=False)
    assert len(validation.table) == 2 and validation.describe().startswith("2-fold cross-validation of cnn_small")
    combined = cnn.add_fold_ensemble({}, validation, small_splits)
    ensemble = combined[cnn.FOLD_ENSEMBLE]
    images = cnn.prepare_images(small_splits.x_val)
    expected = np.mean([fold.model.predict(images, verbose=0) for fold in validation.folds], axis=0)
    np.testing.assert_allclose(ensemble.model.predict(images, verbose=0), expected, rtol=1e-5, atol=1e-6)
    assert ensemble.val_accuracy == pytest.approx(np.mean(expected.argmax(axis=1) == small_splits.y_val))


def test_the_saved_model_reloads_with_identical_predictions(small_splits, tmp_path):
    settings = _quick_settings(networks=["cnn_modern"])
    results = cnn.train_cnn_zoo(small_splits, settings, log=False)
    evaluations = cnn.evaluate_cnns_on_test(results, small_splits)
    split = {"seed": 42, "test_fraction": 0.2, "val_fraction": 0.2, "train_size": 600}
    path = cnn.save_selected_model(results, "cnn_modern", evaluations["cnn_modern"], small_splits,
                                   {"name": "mnist-sample", "sha256": "abc"}, settings, tmp_path, split=split)
    assert path == tmp_path / "models" / "cnn_selected.keras"
    model, description = load_model_bundle(path)
    images = cnn.prepare_images(small_splits.x_test[:64])
    original = results["cnn_modern"].model.predict(images, verbose=0)
    np.testing.assert_array_equal(model.predict(images, verbose=0), original)
    assert description["class_names"] == list(small_splits.class_names)
    assert description["test_accuracy"] == evaluations["cnn_modern"].accuracy
    assert description["dataset"]["name"] == "mnist-sample" and "divided by 255" in description["preprocessing"]
    assert json.loads(path.with_suffix(".json").read_text())["model"] == "cnn_modern"
    assert description["format_version"] == 3 and description["split"] == split
    assert sorted(item.name for item in path.parent.iterdir()) == ["cnn_selected.json", "cnn_selected.keras",
                                                                   "cnn_selected.reference.npz"]
    # The validation digits are the monitoring reference: the saved model's own answers on them, as files would be.
    reference = load_reference(path)
    assert description["monitoring_reference"] == {"file": "cnn_selected.reference.npz",
                                                   "digits": len(small_splits.y_val),
                                                   "source": "the validation digits of mnist-sample"}
    validation = model.predict(cnn.prepare_images(small_splits.x_val), verbose=0)
    assert np.mean(reference.correct) == pytest.approx(np.mean(validation.argmax(1) == small_splits.y_val), abs=0.02)
    # A file saved before format_version existed still loads, as version 1; a newer one is refused.
    older = json.loads(path.with_suffix(".json").read_text())
    del older["format_version"], older["split"]
    path.with_suffix(".json").write_text(json.dumps(older))
    assert load_model_bundle(path)[1]["format_version"] == 1
    path.with_suffix(".json").write_text(json.dumps({**older, "format_version": 99}))
    with pytest.raises(ModelFileError, match="format_version 99 is newer than this digitrec reads"):
        load_model_bundle(path)


def test_cnn_modern_trained_in_bfloat16_for_a_few_steps_is_saved_and_reloaded_in_float32(small_splits, tmp_path):
    # The mixed-precision path of 04_cnn end to end, on a small network: emulated bfloat16 is slow on CPUs
    # without it, so the quick profile's pages train in float32 and this test covers the rest.
    from digitrec_utils.models.precision import computes_below_float32, policy_scope

    settings = _quick_settings(networks=["cnn_modern"], modern_scan_copies=0.0, modern_outlier_exposure=0.0)
    few = dataclasses.replace(small_splits, x_train=small_splits.x_train[:128], y_train=small_splits.y_train[:128])
    with policy_scope("mixed_bfloat16"):
        results = cnn.train_cnn_zoo(few, settings, log=False)
    trained = results["cnn_modern"]
    assert trained.training.precision == "mixed_bfloat16" and not computes_below_float32(trained.model)
    evaluations = cnn.evaluate_cnns_on_test(results, few)
    path = cnn.save_selected_model(results, "cnn_modern", evaluations["cnn_modern"], few,
                                   {"name": "mnist-sample", "sha256": "abc"}, settings, tmp_path)
    model, description = load_model_bundle(path)
    assert description["trained_in"] == "mixed_bfloat16" and description["computes_in"] == "float32"
    assert not computes_below_float32(model)
    images = cnn.prepare_images(few.x_test[:32])
    np.testing.assert_array_equal(model.predict(images, verbose=0), trained.model.predict(images, verbose=0))


def test_cnn_modern_members_are_averaged_into_one_model_that_saves_and_reloads(small_splits, tmp_path):
    settings = _quick_settings(networks=["cnn_modern"], modern_members=2, modern_scan_copies=0.2)
    result = cnn.train_cnn_zoo(small_splits, settings, log=False)["cnn_modern"]
    images = cnn.prepare_images(small_splits.x_val)
    members = [result.model.get_layer(f"member_{position}") for position in (1, 2)]
    first, second = (member.predict(images, verbose=0) for member in members)
    assert not np.allclose(first, second)  # Each member has a seed of its own.
    np.testing.assert_array_equal(members[0].layers[0].get_weights()[0], result.training.model.get_weights()[0])
    averaged = result.model.predict(images, verbose=0)
    np.testing.assert_allclose(averaged, (first + second) / 2, rtol=1e-5, atol=1e-6)
    assert result.val_accuracy == pytest.approx(np.mean(averaged.argmax(axis=1) == small_splits.y_val))
    assert (f"mean of the probabilities of 2 members trained alike with seeds {settings.seed} and {settings.seed + 1}:"
            in " ".join(result.training.notes))
    evaluations = cnn.evaluate_cnns_on_test({"cnn_modern": result}, small_splits)
    path = cnn.save_selected_model({"cnn_modern": result}, "cnn_modern", evaluations["cnn_modern"], small_splits,
                                   {"name": "mnist-sample", "sha256": "abc"}, settings, tmp_path)
    model, description = load_model_bundle(path)
    np.testing.assert_array_equal(model.predict(images[:64], verbose=0), averaged[:64])
    assert description["members"] == 2
    with pytest.raises(ParameterError, match="modern_members = 6 is not allowed: expected 1 <= value <= 5"):
        _quick_settings(modern_members=6).check()


def test_missing_or_damaged_model_files_name_the_file(tmp_path):
    with pytest.raises(ModelFileError, match="nothing.keras: no such model file"):
        load_model_bundle(tmp_path / "nothing.keras")
    damaged = tmp_path / "damaged.keras"
    damaged.write_bytes(b"not a zip archive")
    with pytest.raises(ModelFileError, match="damaged.keras: not a Keras model file .its 17 bytes are not a zip"):
        load_model_bundle(damaged)
    import zipfile

    with zipfile.ZipFile(damaged, "w") as archive:  # A zip archive, but not one Keras wrote.
        archive.writestr("notes.txt", "not a model")
    with pytest.raises(ModelFileError, match="damaged.json: the JSON description"):
        load_model_bundle(damaged)
    damaged.with_suffix(".json").write_text("{}")
    with pytest.raises(ModelFileError, match="damaged.keras: not a readable Keras model"):
        load_model_bundle(damaged)


def test_reliability_compares_confidence_with_accuracy():
    probabilities = np.full((4, 2), 0.05)
    probabilities[:, 0] = 0.95
    table, error = reliability.compute_reliability(np.array([0, 0, 1, 1]), probabilities, n_bins=10)
    assert table["images"].tolist() == [4]
    assert table["bin low"].tolist() == pytest.approx([0.9]) and table["accuracy"].tolist() == [0.5]
    assert error == pytest.approx(0.45)
    described = reliability.describe_reliability(table, error)
    assert "over-confident: its confidence exceeds its accuracy by 0.450" in described
    perfect = np.eye(3)[[0, 1, 2]]
    table, error = reliability.compute_reliability(np.array([0, 1, 2]), perfect)
    assert error == pytest.approx(0.0) and "well calibrated" in reliability.describe_reliability(table, error)
    shy = np.array([[0.6, 0.4], [0.4, 0.6]])
    shy_table, shy_error = reliability.compute_reliability(np.array([0, 1]), shy)
    assert "under-confident" in reliability.describe_reliability(shy_table, shy_error)


def test_low_confidence_correct_predictions_come_lowest_first():
    probabilities = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.45, 0.55], [0.7, 0.3]])
    truth = np.array([0, 0, 1, 0, 0])  # The fourth is wrong.
    assert reliability.find_low_confidence_correct(truth, probabilities, 3).tolist() == [1, 4, 2]


def test_the_augmentation_finding_counts_scan_copies_and_members_as_a_reader_would():
    describe = added_images.describe_scan_copies
    assert describe(0) == "" and cnn.describe_members(1, seed=42) == ""
    assert describe(0.5).startswith("Before training, 50% of the training digits get a scanned-looking copy, which "
                                    "joins them (")
    assert describe(1).startswith("Before training, every training digit gets a scanned-looking copy")
    assert describe(2).startswith("Before training, 2 times as many scanned-looking copies as training digits join "
                                  "them")
    assert "with seeds 42 and 43," in cnn.describe_members(2, seed=42)
    assert "3 networks trained alike with seeds 7 to 9," in cnn.describe_members(3, seed=7)


def test_batch_normalization_statistics_become_the_mean_of_one_pass_of_batches():
    import keras

    rng = np.random.default_rng(0)
    batches = [(rng.normal(loc=index, scale=1 + index, size=(16, 3)).astype("float32"), None) for index in range(4)]
    normalization = keras.layers.BatchNormalization(momentum=0.99)
    model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(3, use_bias=False), normalization])
    model.layers[0].set_weights([np.eye(3, dtype="float32")])  # The normalization sees the images themselves.
    assert training.recompute_batch_norm_statistics(model, batches) == 4
    # Each moving statistic is the mean of the four batches' own (population) statistics, not a decayed one.
    np.testing.assert_allclose(normalization.moving_mean.numpy(),
                               np.mean([images.mean(axis=0) for images, _ in batches], axis=0), rtol=1e-5)
    np.testing.assert_allclose(normalization.moving_variance.numpy(),
                               np.mean([images.var(axis=0) for images, _ in batches], axis=0), rtol=1e-5)
    assert normalization.momentum == 0.99
    assert training.recompute_batch_norm_statistics(keras.Sequential([keras.Input(shape=(3,)),
                                                                      keras.layers.Dense(2)]), batches) == 0


def test_the_training_plan_counts_each_networks_epochs_and_images_as_a_reader_would():
    settings = cnn.CnnSettings(networks=["cnn_small", "cnn_modern"], epochs=5, modern_epochs=15,
                               modern_outlier_exposure=0.25, modern_scan_copies=2.0, modern_members=3,
                               cv_model="cnn_rmsprop", cv_folds=3, cv_epochs=2)
    # 3,600 digits, plus a quarter as many non-digits and two scanned-looking copies each: 3,600 x 3.25.
    assert cnn.describe_training_plan(settings, 3600) == (
        "This notebook trains cnn_small up to 5 epochs of 3,600 images, cnn_modern 3 members of up to 15 epochs of "
        "11,700 images; then 3 fold models of cnn_rmsprop, up to 2 epochs of 2,400 images each. Each network's "
        "epochs say how long the rest of its epochs should take on this machine.")
    alone = dataclasses.replace(settings, networks=["cnn_modern"], modern_members=1, modern_scan_copies=0.0,
                                cv_folds=0)
    assert cnn.describe_training_plan(alone, 1000) == (
        "This notebook trains cnn_modern up to 15 epochs of 1,250 images. Each network's epochs say how long the "
        "rest of its epochs should take on this machine.")
