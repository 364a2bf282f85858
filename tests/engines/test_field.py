"""Other writers' digits: scans and photos, labelled folder trees, evaluate, calibrate and the threshold history."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image
from reference import find_lowest_threshold
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from digitrec_utils import cli, config
from digitrec_utils.data.preparation import STRETCHED_WIDTH
from digitrec_utils.exceptions import DatasetError, ParameterError
from digitrec_utils.models import added_images

SHARED_FIELD = config.PROJECT_ROOT.parent / "shared" / "data" / "field"
needs_field = pytest.mark.skipif(not (SHARED_FIELD / "semeion").is_dir(),
                                 reason=f"{SHARED_FIELD} is absent (the shared semeion and optdigits folders)")


def _write_scan(digit: np.ndarray, path, *, side: int = 40) -> None:
    """A clean scan of an MNIST digit: dark ink on white, its box's longer side filling a small frame."""
    rows, columns = np.nonzero(digit > 0)
    crop = digit[rows.min():rows.max() + 1, columns.min():columns.max() + 1]
    scale = (side - 4) / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    ink = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BILINEAR))
    frame = np.full((side, side), 255, dtype=np.uint8)
    top, left = (side - size[1]) // 2, (side - size[0]) // 2
    frame[top:top + size[1], left:left + size[0]] = 255 - ink
    Image.fromarray(frame).save(path)


@pytest.fixture
def scan_tree(splits, tmp_path):
    """A labelled folder tree of 60 clean scans of test digits (6 per class), with a README and a broken image."""
    root = tmp_path / "scans"
    written = []
    for label in range(10):
        (root / str(label)).mkdir(parents=True)
        for number, index in enumerate(np.flatnonzero(splits.y_test == label)[:6]):
            path = root / str(label) / f"scan_{number}.png"
            _write_scan(splits.x_test[index], path, side=(24, 32, 36, 40, 48, 64)[number])
            written.append((path, label))
    (root / "README.txt").write_text("Scans of the office's postcodes.")
    (root / "3" / "broken.png").write_bytes(b"not a png")
    return root, written


# Telling scans from photos, and preparing each.


def test_clean_scans_and_photos_are_told_apart_by_what_is_measured(splits):
    from digitrec_utils.data.ink import survey_image
    from digitrec_utils.imaging.envelopes import make_photo_digit

    digit = splits.x_test[0]
    small = np.where(np.asarray(Image.fromarray(digit).resize((16, 16))) > 100, 0, 255).astype(np.uint8)
    enlarged = 255 - np.asarray(Image.fromarray(digit).resize((56, 56), Image.Resampling.BICUBIC))
    for image in (small, enlarged, 255 - enlarged):  # Black and white 16x16; grey levels; light ink on dark.
        assert survey_image(image).kind == "scan"
    assert survey_image(small).dark_ink and not survey_image(255 - enlarged).dark_ink
    photo = survey_image(make_photo_digit(digit, seed=3))  # Lined paper, uneven light, JPEG.
    assert photo.kind == "photo" and "photo" in photo.describe()


def test_a_small_frame_filling_scan_keeps_its_strokes(splits):
    from digitrec_utils.data.preparation import prepare_image_with_kind

    digit = splits.x_test[1]
    rows, columns = np.nonzero(digit)
    crop = digit[rows.min():rows.max() + 1, columns.min():columns.max() + 1]
    scan = np.where(np.asarray(Image.fromarray(crop).resize((16, 16))) > 80, 0, 255).astype(np.uint8)
    scan = np.pad(scan, 1, constant_values=255)  # A pixel of paper round it: not stretched to its frame.
    prepared, kind = prepare_image_with_kind(scan)
    assert kind == "scan"
    # Its ink, scaled from 16 to 20 pixels, is all there: nothing taken for a ruled line or for paper.
    expected = (scan < 128).sum() * (20 / 16) ** 2
    assert 0.75 * expected <= (prepared > 0.5).sum() <= 1.35 * expected
    rows, columns = np.nonzero(prepared > 0.3)
    assert max(np.ptp(rows), np.ptp(columns)) + 1 >= 19  # Scaled so that its longer side is about 20 pixels.


def _ring(height: int, width: int) -> np.ndarray:
    """A black ring on white that touches all four sides of its height x width image."""
    rows, columns = np.mgrid[0:height, 0:width]
    distance = ((rows - (height - 1) / 2) / (height / 2)) ** 2 + ((columns - (width - 1) / 2) / (width / 2)) ** 2
    return np.where((distance <= 1.0) & (distance >= 0.55), 0, 255).astype(np.uint8)


def test_only_a_digit_stretched_to_its_square_frame_is_narrowed():
    from digitrec_utils.data.preparation import is_stretched_to_frame, prepare_image_with_kind

    stretched, tall = _ring(24, 24), _ring(24, 16)
    with_margin = np.pad(stretched, 3, constant_values=255)
    assert is_stretched_to_frame(255.0 - stretched)
    assert not is_stretched_to_frame(255.0 - with_margin) and not is_stretched_to_frame(255.0 - tall)

    def width(image):
        prepared, kind = prepare_image_with_kind(image)
        assert kind == "scan"
        return np.ptp(np.nonzero(prepared > 0.3)[1]) + 1

    # The same square ring is 20 pixels wide with paper round it, and narrowed where it fills its frame;
    # a tightly cropped tall one keeps its own width (16 of 24, about 13 of 20 pixels).
    assert width(with_margin) >= 19
    assert abs(width(stretched) - 20 * STRETCHED_WIDTH) <= 2
    assert abs(width(tall) - 20 * 16 / 24) <= 2


def test_a_shifted_28x28_digit_is_centred_again_and_a_centred_one_passes_unchanged(splits, monkeypatch):
    from scipy import ndimage

    from digitrec_utils.data import preparation

    digits = splits.x_test[:200]
    prepared, _ = preparation.prepare_image_batch(digits)
    monkeypatch.setattr(preparation, "RECENTRE_TOLERANCE", 100)  # Levels only, never moved.
    levels_only, _ = preparation.prepare_image_batch(digits)
    monkeypatch.undo()
    np.testing.assert_array_equal(prepared, levels_only)  # Centred MNIST digits are not moved.
    directions = [(-4, -4), (-4, 4), (4, -4), (4, 4)]
    shifted = np.stack([ndimage.shift(digit, directions[index % 4], order=0) for index, digit in enumerate(digits)])
    moved, usable = preparation.prepare_image_batch(shifted)
    assert usable.all()
    centres = np.array([ndimage.center_of_mass(image) for image in moved])
    # Back to MNIST's centre of mass, to within a pixel (the digits that the shift cut at the edge aside).
    assert np.mean(np.abs(centres - preparation.MASS_CENTRE).max(axis=1) <= 1.0) >= 0.95
    noisy = np.clip(shifted.astype(int) + np.random.default_rng(0).normal(0, 40, shifted.shape), 0, 255)
    noisy_moved, _ = preparation.prepare_image_batch(noisy.astype(np.uint8))
    assert np.mean([abs(np.subtract(ndimage.center_of_mass(image > 0.5), 14)).max() <= 1.5
                    for image in noisy_moved]) > 0.9  # Noise does not pull the centre.


# Labelled folder trees.


def test_a_folder_tree_lists_its_images_by_label_and_skips_what_is_not_an_image(scan_tree):
    from digitrec_utils.data.labelled import find_labelled_files

    root, written = scan_tree
    files = find_labelled_files(root)
    assert len(files.paths) == len(written) + 1  # The broken PNG is an image by its name.
    assert sorted(path.name for path in files.skipped) == ["README.txt"]
    assert files.counts()["3"] == 7 and files.counts()["0"] == 6
    assert files.compute_sha256() == find_labelled_files(root).compute_sha256()


@pytest.mark.parametrize("breakage, message", [
    ("misnamed", "a label folder must be named after its class"),
    ("nested", "a folder inside the label folder 4/"),
    ("empty", "no images in the tree"),
    ("missing", "no such folder"),
])
def test_a_broken_folder_tree_gets_one_clear_error(scan_tree, tmp_path, breakage, message):
    from digitrec_utils.data.labelled import find_labelled_files

    root, _ = scan_tree
    if breakage == "misnamed":
        (root / "seven").mkdir()
    elif breakage == "nested":
        (root / "4" / "more").mkdir()
    elif breakage == "empty":
        root = tmp_path / "empty"
        (root / "1").mkdir(parents=True)
    else:
        root = tmp_path / "nowhere"
    with pytest.raises(DatasetError, match=message):
        find_labelled_files(root)


def test_the_folder_dataset_holds_prepared_arrays_and_names_the_unusable_image(scan_tree, capsys):
    from digitrec_utils.data.loading import check_dataset, load_dataset

    root, written = scan_tree
    assert "labelled folder tree scans/" in check_dataset("folder", data_dir=root)
    dataset = load_dataset("folder", data_dir=root, test_fraction=0.25, seed=1)
    assert dataset.x_train.dtype == np.uint8 and dataset.x_train.shape[1:] == (28, 28)
    assert len(dataset.y_train) + len(dataset.y_test) == len(written)  # The broken image is left out.
    err = capsys.readouterr().err
    assert "broken.png" in err and "README.txt" in err
    with pytest.raises(ParameterError, match="data_dir: the 'folder' dataset needs"):
        load_dataset("folder")


# evaluate and calibrate.


def test_evaluate_matches_scikit_learn_on_the_same_predictions(scan_tree, saved_model, tmp_path, capsys):
    from digitrec_utils.application.images import predict_files

    root, written = scan_tree
    page = tmp_path / "page.html"
    status = cli.main(["evaluate", str(root), "--model", str(saved_model), "--json", "--html", str(page)])
    captured = capsys.readouterr()
    assert status == 1 and "broken.png" in captured.err  # One unusable image: named, the others measured.
    report = json.loads(captured.out)
    entries = predict_files([path for path, _ in written], saved_model)
    y_true = [label for _, label in written] + [3]  # The broken scan counts as wrong.
    y_pred = [int(entry["label"]) for entry in entries] + [-1]
    assert report["n_images"] == len(written) + 1 and report["n_unusable"] == 1
    assert report["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    precision, recall, _, support = precision_recall_fscore_support(y_true, y_pred, labels=range(10), zero_division=0)
    assert [row["precision"] for row in report["per_class"]] == pytest.approx(precision.tolist())
    assert [row["recall"] for row in report["per_class"]] == pytest.approx(recall.tolist())
    assert report["confusion_matrix"] == confusion_matrix(y_true, y_pred, labels=range(10)).tolist()
    html = page.read_text()
    assert "Summary" in html and "Per class" in html and str(tmp_path) not in html and "<script src=" not in html


def test_calibrate_chooses_on_one_half_reports_on_the_other_and_keeps_a_history(scan_tree, saved_model, tmp_path,
                                                                                 capsys):
    import shutil

    from digitrec_utils.application.labelled import calibrate_scored, evaluate_scored, split_halves
    from digitrec_utils.data.labelled import open_labelled_source
    from digitrec_utils.engines import deployment
    from digitrec_utils.evaluation.labelled import score_labelled_digits
    from digitrec_utils.models.model_files import load_model_bundle, read_abstention

    root, _ = scan_tree
    model_path = tmp_path / "model" / saved_model.name
    model_path.parent.mkdir()
    for source in (saved_model, saved_model.with_suffix(".json")):
        shutil.copy(source, model_path.parent / source.name)
    deployment.save_abstention(model_path, score="margin", threshold=0.9, target=0.99)  # As 05 saves it.

    model, description = load_model_bundle(model_path)
    scored = score_labelled_digits(open_labelled_source([root]), model)
    calibration = calibrate_scored(scored, abstention=read_abstention(description), target=0.9, seed=3)
    choosing, reporting = split_halves(scored.labels, seed=3)
    assert not set(choosing) & set(reporting) and len(choosing) + len(reporting) == len(scored.labels)
    usable = choosing[scored.usable[choosing]]
    expected = find_lowest_threshold(scored.compute_scores("margin")[usable], scored.correct[usable], 0.9)
    assert calibration.choice.threshold == expected and calibration.score == "margin"
    assert calibration.held_out.n_images == len(reporting)
    # One sentence runs on after each colon, so no clause starts with a capital there.
    assert not re.search(r": [A-Z]", calibration.describe()), calibration.describe()
    # A held-out half of 31 digits cannot confirm 90% (that takes 35 answered, all right), and the office is told.
    too_few = f"The {calibration.held_out.n_answered} answered digits are too few to confirm 90.0%"
    assert too_few in calibration.describe()
    # evaluate says the same of all the digits at the saved target (0.99 takes 381 answered, all right).
    report = evaluate_scored(scored, abstention=read_abstention(description), model_name="cnn_small")
    assert f"The {report.selective.n_answered} answered digits are too few to confirm 99.0%" in report.describe()
    assert report.to_dict()["abstention"]["answered_needed_to_confirm_target"] == 381

    assert cli.main(["calibrate", str(root), "--model", str(model_path), "--target", "0.9", "--seed", "3",
                     "--write", "--json"]) == 1  # The broken image is named; the rest is calibrated.
    written = json.loads(capsys.readouterr().out)
    assert written["threshold"] == calibration.choice.threshold and written["written"] is True
    assert written["answered_needed_to_confirm_target"] == 35
    saved = json.loads(model_path.with_suffix(".json").read_text())
    assert [entry["chosen_on"] for entry in saved["abstention_history"]] == ["validation", calibration.chosen_on]
    assert saved["abstention"]["threshold"] == (calibration.choice.threshold or 0.0)
    # evaluate on the same digits now says the threshold was chosen on half of them, and gives the other half's figure.
    cli.main(["evaluate", str(root), "--model", str(model_path)])
    assert "chosen by `digitrec calibrate` on one half of these same digits" in capsys.readouterr().out
    # Calibrating again: with the same seed the saved threshold's held-out figure is fair; with another it is not.
    for seed, flattered in (("3", False), ("4", True)):
        cli.main(["calibrate", str(root), "--model", str(model_path), "--target", "0.9", "--seed", seed, "--json"])
        reason = json.loads(capsys.readouterr().out)["recommendation_reason"]
        assert ("drawn with another --seed, so its figure here flatters it" in reason) is flattered, reason
    deployment.save_abstention(model_path, score="margin", threshold=0.5, target=0.995,
                               chosen_on="validation and semeion")  # A later 05 run adds to the history.
    saved = json.loads(model_path.with_suffix(".json").read_text())
    assert len(saved["abstention_history"]) == 3 and saved["abstention"]["threshold"] == 0.5
    assert cli.main(["calibrate", str(root), "--model", str(model_path), "--target", "1.5"]) == 2
    assert "--target 1.5" in capsys.readouterr().err


def _calibration(new: tuple[int, int, int], saved: tuple[int, int, int] | None, *, reached: bool = True):
    """A calibration at target 0.99 whose held-out half gives (images, answered, answered right) per threshold."""
    from digitrec_utils.application.labelled import Calibration
    from digitrec_utils.evaluation.abstention import SelectiveOutcome, ThresholdChoice

    choice = ThresholdChoice(0.6 if reached else None, 0.99, 0.8, 0.995, 100)
    return Calibration("top_probability", choice, SelectiveOutcome(0.6, *new),
                       SelectiveOutcome(0.4, *saved) if saved else None, 0.4 if saved else None,
                       np.arange(100), np.arange(100, 200), 0, "scans")


@pytest.mark.parametrize(("new", "saved", "expected", "reason"), [
    ((100, 80, 80), (100, 90, 89), "write", "only the new one reaches 99.00%"),
    ((100, 80, 78), (100, 70, 70), "keep", "only the saved one reaches 99.00%"),
    ((100, 90, 90), (100, 80, 80), "write", "both reach 99.00%, and the new one answers more"),
    ((100, 80, 80), (100, 90, 90), "keep", "both reach 99.00%, and the saved one answers more"),
    ((100, 80, 78), (100, 90, 87), "write", "neither reaches 99.00%, and the new one comes closer"),
    ((100, 80, 75), (100, 0, 0), "write", "saved one answers none of its digits"),
    ((100, 80, 78), None, "write", "the model has no saved threshold"),
])
def test_calibrate_recommends_the_threshold_that_holds_on_the_held_out_half(new, saved, expected, reason):
    calibration = _calibration(new, saved)
    assert calibration.recommendation == expected
    assert reason in calibration.describe_recommendation()
    assert calibration.describe_recommendation().startswith("Write it" if expected == "write" else "Keep the saved")
    assert calibration.to_dict()["recommendation"] == expected


def test_calibrate_writes_no_threshold_where_none_reached_the_target(scan_tree, saved_model, tmp_path, monkeypatch,
                                                                     capsys):
    import shutil

    from digitrec_utils.application import labelled
    from digitrec_utils.evaluation.abstention import ThresholdChoice

    model_path = tmp_path / saved_model.name
    for source in (saved_model, saved_model.with_suffix(".json")):
        shutil.copy(source, tmp_path / source.name)
    before = model_path.with_suffix(".json").read_text()
    # What choose_threshold returns when no threshold reaches the target: the model would answer everything.
    monkeypatch.setattr(labelled, "choose_threshold", lambda scores, correct, target: ThresholdChoice(
        None, target, 1.0, float(np.mean(correct)), len(scores)))
    assert _calibration((100, 100, 90), None, reached=False).recommendation == "keep"
    assert cli.main(["calibrate", str(scan_tree[0]), "--model", str(model_path), "--write", "--json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["written"] is False and "not written" in captured.err
    assert model_path.with_suffix(".json").read_text() == before


def test_evaluate_compares_models_on_the_same_digits_with_mcnemars_test():
    from mlxtend.evaluate import mcnemar, mcnemar_table

    from digitrec_utils.application.labelled import compare_scored, evaluate_scored

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, 400)

    def reading(wrong_share: float) -> np.ndarray:
        """One-hot probabilities, a given share of the digits read as the next digit."""
        answers = np.where(rng.uniform(size=labels.size) < wrong_share, (labels + 1) % 10, labels)
        return np.eye(10)[answers]

    readings = {"old.keras": reading(0.2), "new.keras": reading(0.05), "twin.keras": None}
    readings["twin.keras"] = readings["new.keras"].copy()
    comparison = compare_scored({name: evaluate_scored(_scored(labels, rows), abstention=None, model_name="m")
                                 for name, rows in readings.items()})
    result = comparison.to_dict()
    assert result["best"] == "new.keras" and [row["model"] for row in result["paired"]] == ["new.keras", "old.keras",
                                                                                              "twin.keras"]
    table = mcnemar_table(labels, readings["new.keras"].argmax(axis=1), readings["old.keras"].argmax(axis=1))
    old = result["paired"][1]
    assert (old["only_best_right"], old["only_this_right"]) == (table[0, 1], table[1, 0])
    assert old["p_value"] == pytest.approx(mcnemar(table, exact=True)[1]) and old["distinguishable"]
    text = comparison.describe()
    assert "new.keras and twin.keras read the most right, as many each" in text
    assert "so new.keras reads these digits better" in text
    assert "Against twin.keras" in text and "cannot tell the two apart" in text


def test_evaluate_compares_several_models_on_one_page_and_refuses_a_model_twice(scan_tree, saved_model, tmp_path,
                                                                                 capsys):
    import shutil

    from digitrec_utils.application.labelled import name_models

    twin = tmp_path / "twin" / saved_model.name
    twin.parent.mkdir()
    for source in (saved_model, saved_model.with_suffix(".json")):
        shutil.copy(source, twin.parent / source.name)
    root, page = str(scan_tree[0]), tmp_path / "page.html"
    assert cli.main(["evaluate", root, "--model", str(saved_model), "--model", str(twin), "--json",
                     "--html", str(page)]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("broken.png") == 1  # The unusable image is named once, not once per model.
    result = json.loads(captured.out)
    names = name_models([saved_model, twin])
    assert set(result["models"]) == set(names) and result["paired"][1]["p_value"] == 1.0
    html = page.read_text()
    assert "Every model" in html and "Per class" in html and names[1] in html and str(tmp_path) not in html
    assert cli.main(["evaluate", root, "--model", str(saved_model), "--model", str(saved_model)]) == 2
    assert "is given twice" in capsys.readouterr().err
    # A missing second model is named before the first one reads any digit.
    assert cli.main(["evaluate", root, "--model", str(saved_model), "--model", str(tmp_path / "gone.keras")]) == 2
    error = capsys.readouterr().err
    assert "gone.keras: no such model file" in error and "digitrec: model" not in error


@pytest.mark.parametrize(("paths", "expected"), [
    (["reports/a/models/cnn_selected.keras", "reports/b/models/cnn_selected.keras"], ["a", "b"]),
    (["old.keras", "/home/office/new.keras"], ["old.keras", "new.keras"]),
    (["/srv/x/m.keras", "m.keras"], ["x", "m.keras"]),
])
def test_models_are_named_by_what_tells_them_apart_without_machine_folders(paths, expected):
    from digitrec_utils.application.labelled import name_models

    assert name_models(paths) == expected


def test_evaluate_reads_an_idx_pair_and_a_csv_pair(splits, saved_model, tmp_path, write_idx, capsys):
    images, labels = splits.x_test[:30], splits.y_test[:30]
    write_idx(tmp_path / "images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "labels-idx1-ubyte.gz", labels)
    np.savetxt(tmp_path / "images.csv", images.reshape(30, -1), fmt="%d", delimiter=",")
    np.savetxt(tmp_path / "labels.csv", labels, fmt="%d")
    reports = []
    for pair in (("images-idx3-ubyte.gz", "labels-idx1-ubyte.gz"), ("images.csv", "labels.csv")):
        assert cli.main(["evaluate", *(str(tmp_path / name) for name in pair), "--model", str(saved_model),
                         "--json"]) == 0
        reports.append(json.loads(capsys.readouterr().out))
    assert reports[0]["accuracy"] == reports[1]["accuracy"] and reports[0]["n_images"] == 30
    assert cli.main(["evaluate", str(tmp_path / "images.csv"), "--model", str(saved_model)]) == 2
    assert "images.csv: give one folder tree" in capsys.readouterr().err


def test_a_model_given_as_data_is_refused_with_the_way_to_pass_it_before_any_model_loads(scan_tree, saved_model,
                                                                                        monkeypatch, capsys):
    root, _ = scan_tree
    loaded = []
    from digitrec_utils.application import labelled

    monkeypatch.setattr(labelled, "load_model_in_use", lambda *arguments, **options: loaded.append(arguments))
    for command in ("evaluate", "calibrate"):
        assert cli.main([command, str(saved_model), str(root), "--model", str(saved_model)]) == 2
        error = capsys.readouterr().err
        assert f"{saved_model}: this is a saved model, not labelled digits; give it as --model" in error
    assert loaded == []


# Batches.


def test_predict_works_in_batches_and_writes_a_json_line_per_image(scan_tree, saved_model, capsys):
    from digitrec_utils.application.images import predict_files
    from digitrec_utils.application.models import load_model_in_use
    from digitrec_utils.imaging.predict import iterate_predictions

    root, written = scan_tree
    paths = [path for path, _ in written][:13]
    whole = predict_files(paths, saved_model)
    batched = list(iterate_predictions(paths, load_model_in_use(saved_model).model, batch_size=4, progress=False))
    assert [entry["label"] for entry in batched] == [entry["label"] for entry in whole]
    assert cli.main(["predict", str(root), "--model", str(saved_model), "--jsonl"]) == 1
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert len(lines) == len(written) + 1 and "README.txt" in captured.err and "broken.png" in captured.err
    assert {entry.get("prepared_as") for entry in lines if "error" not in entry} == {"scan"}
    # The last line of standard error counts what went where, from the same entries (without a saved threshold
    # every answer is accepted).
    accepted = sum(1 for entry in lines if "error" not in entry and entry.get("accepted", True))
    unsure = sum(1 for entry in lines if entry.get("accepted") is False)
    assert captured.err.splitlines()[-1] == (f"digitrec: {len(lines)} images: {accepted} accepted, {unsure} unsure "
                                             "(for a person), 1 could not be used.")


# cnn_modern's scanned-looking copies.


def test_scanned_copies_are_prepared_scans_with_their_own_labels(splits):
    from digitrec_utils.engines import cnn

    originals, labels = splits.x_train[:50], splits.y_train[:50]
    x_train = cnn.prepare_images(originals)
    images, extended = added_images.add_scan_copies(originals, labels, x_train, labels, 1.5, seed=4)
    assert len(images) == len(extended) and 50 + 68 <= len(extended) <= 50 + 75  # 75 copies, a few unusable.
    np.testing.assert_array_equal(images[:50], x_train)
    again, again_labels = added_images.add_scan_copies(originals, labels, x_train, labels, 1.5, seed=4)
    np.testing.assert_array_equal(images, again)  # Seeded.
    originals_per_class = np.bincount(labels, minlength=10)
    copies_per_class = np.bincount(extended[50:], minlength=10)
    assert (copies_per_class >= originals_per_class - 2).all()  # Each digit copied at least once, with its label.
    assert (copies_per_class <= 2 * originals_per_class).all()
    assert images[50:].max() == pytest.approx(1.0) and images.shape[1:] == (28, 28, 1)


# The shared field sets, where present.


@needs_field
@pytest.mark.parametrize("name", ["semeion", "optdigits"])
def test_field_scans_keep_their_ink_as_the_crop_scale_centre_reference_does(name):
    """Each clean scan is prepared close to the plain reference: crop to the ink, scale to 20 pixels, centre."""
    from scipy import ndimage

    from digitrec_utils.data.labelled import find_labelled_files
    from digitrec_utils.data.preparation import prepare_image_with_kind, read_image

    files = find_labelled_files(SHARED_FIELD / name)
    chosen = files.paths[::25]
    shares, kinds = [], set()
    for path in chosen:
        pixels = read_image(path)
        prepared, kind = prepare_image_with_kind(pixels, source=str(path))
        kinds.add(kind)
        ink = 255 - pixels.astype(np.float32)
        rows, columns = np.nonzero(ink > 127)
        crop = ink[rows.min():rows.max() + 1, columns.min():columns.max() + 1]
        # A digit stretched to fill its square frame is narrowed, as docs/ARCHITECTURE.md says.
        width = crop.shape[1] * (STRETCHED_WIDTH if crop.shape == ink.shape and ink.shape[0] == ink.shape[1] else 1)
        scale = 20 / max(crop.shape[0], width)
        size = (max(1, round(width * scale)), max(1, round(crop.shape[0] * scale)))
        resized = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.LANCZOS))
        field = np.zeros((28, 28), dtype=np.float32)
        top, left = (28 - size[1]) // 2, (28 - size[0]) // 2
        field[top:top + size[1], left:left + size[0]] = resized
        reference = ndimage.shift(field, np.round(14 - np.array(ndimage.center_of_mass(field))), order=0) > 127
        # The share of the reference's ink that the prepared image has too, allowing a pixel of shift.
        shares.append(max(((np.roll(prepared, (down, right), axis=(0, 1)) > 0.5) & reference).sum()
                          for down in (-1, 0, 1) for right in (-1, 0, 1)) / reference.sum())
    assert kinds == {"scan"}
    assert np.mean(np.array(shares) >= 0.9) >= 0.95, f"median share of the reference's ink kept {np.median(shares)}"


# 05_deployment's other writers' sets.


def _scored(labels, probabilities, sha256: str = ""):
    from digitrec_utils.data.labelled import LabelledSource
    from digitrec_utils.evaluation.labelled import ScoredDigits

    labels = np.asarray(labels)
    source = LabelledSource("set", "a set", len(labels), None, (np.zeros((len(labels), 28, 28)), labels), sha256)
    return ScoredDigits(source, [str(index) for index in range(len(labels))], labels, np.asarray(probabilities),
                        np.ones(len(labels), dtype=bool), [], {"scan": len(labels)}, {}, [str(d) for d in range(10)])


def test_the_threshold_rises_until_it_holds_on_every_set_that_chooses_it():
    from digitrec_utils.application.labelled import evaluate_scored
    from digitrec_utils.engines.field import (
        FieldSet,
        describe_raised_threshold,
        measure_field_sets,
        raise_threshold_for_field,
        summarize_field_sets,
    )
    from digitrec_utils.evaluation.abstention import choose_threshold
    from digitrec_utils.evaluation.labelled import ROLE_CHOOSES, ROLE_REPORTS

    rng = np.random.default_rng(0)

    def probabilities(n, wrong_below):
        """Rows whose top probability is uniform in (0.2, 1), the rest spread evenly; below ``wrong_below``, wrong."""
        top = rng.uniform(0.2, 1.0, n)
        rows = np.repeat(((1.0 - top) / 9)[:, None], 10, axis=1)
        labels = rng.integers(0, 10, n)
        answers = np.where(top < wrong_below, (labels + 1) % 10, labels)
        rows[np.arange(n), answers] = top
        return labels, rows

    validation_labels, validation_rows = probabilities(400, 0.3)
    field_labels, field_rows = probabilities(300, 0.6)  # Other writers: wrong far higher up the scores.
    validation = _scored(validation_labels, validation_rows)
    field = _scored(field_labels, field_rows, sha256="f" * 64)
    scores = validation.compute_scores("top_probability")
    on_validation = choose_threshold(scores, validation.correct, 0.99)
    choosing = FieldSet("semeion", ROLE_CHOOSES, field)
    raised = raise_threshold_for_field(on_validation, scores, validation.correct, [choosing], "top_probability")
    own = choose_threshold(field.compute_scores("top_probability"), field.correct, 0.99)
    assert raised.threshold == max(on_validation.threshold, own.threshold) > on_validation.threshold
    assert raised.chosen_on == "validation and semeion" and "each of validation and semeion" in raised.describe()
    # The finding gives both thresholds, each sentence running on after its colon in lower case.
    finding = describe_raised_threshold(on_validation, raised)
    assert finding.startswith(f"On validation alone: threshold {on_validation.threshold:.4f}, the lowest")
    assert f"holds on validation and semeion too: threshold {raised.threshold:.4f}, the lowest" in finding
    reporting = FieldSet("optdigits", ROLE_REPORTS, field)
    kept = raise_threshold_for_field(on_validation, scores, validation.correct, [reporting], "top_probability")
    assert kept is on_validation  # A reported set chooses nothing.
    assert describe_raised_threshold(on_validation, kept) == on_validation.describe()
    table = measure_field_sets([choosing, reporting], score="top_probability", threshold=raised.threshold)
    assert table["accuracy"].iloc[0] == pytest.approx(field.correct.mean())
    assert (table["answered_accuracy"] >= 0.99).all() and list(table["role"]) == [ROLE_CHOOSES, ROLE_REPORTS]
    # evaluate on the digits that chose the threshold says that its answered figure is no estimate; on others, not.
    abstention = {"score": "top_probability", "threshold": raised.threshold, "target": 0.99,
                  "field": summarize_field_sets(table.iloc[:1])}
    report = evaluate_scored(field, abstention=abstention, model_name="m")
    assert "chosen by 05_deployment on these same digits" in report.describe()
    assert report.to_dict()["abstention"]["chosen_on_these_digits"] == "all"
    others = evaluate_scored(_scored(field_labels, field_rows, sha256="e" * 64), abstention=abstention, model_name="m")
    assert "these same digits" not in others.describe()
    assert others.to_dict()["abstention"]["chosen_on_these_digits"] is None


def test_a_missing_field_folder_is_rejected_before_any_notebook_starts(saved_model, tmp_path, capsys):
    status = cli.main(["run", "--only", "deployment", "--out", str(tmp_path / "reports"),
                       "--set", f"deployment.model_path={saved_model}",
                       "--set", 'deployment.field_data=["field/nowhere"]'])
    assert status == 2
    error = capsys.readouterr().err
    assert "field_data of 05_deployment" in error and "field/nowhere: no such labelled folder tree" in error
    assert "To run without these digits: --set deployment.field_data=[]" in error  # How to do without it.
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir())


def test_field_sets_resolve_relative_folders_and_fall_back_to_scikit_learns_digits(scan_tree, saved_model, tmp_path,
                                                                                  monkeypatch):
    from digitrec_utils.engines.field import load_field_sets
    from digitrec_utils.evaluation.labelled import ROLE_CHOOSES, ROLE_REPORTS
    from digitrec_utils.models.model_files import load_model_bundle

    root, written = scan_tree
    model, _ = load_model_bundle(saved_model)
    monkeypatch.setenv("DIGITREC_DATA", str(tmp_path))  # "scans" is found under $DIGITREC_DATA.
    sets, notes = load_field_sets(model, field_data=["scans"], threshold_field_data=["scans"], data_dir=None,
                                  dataset="mnist-sample", class_names=None)
    assert [(field_set.name, field_set.role) for field_set in sets] == [("scans", ROLE_CHOOSES)]  # Once, choosing.
    assert len(sets[0].scored.labels) == len(written) + 1 and len(sets[0].scored.errors) == 1 and not notes
    sets, notes = load_field_sets(model, field_data=[], threshold_field_data=[], data_dir=None,
                                  dataset="mnist-sample", class_names=None)
    assert [(field_set.name, field_set.role) for field_set in sets] == [("sklearn digits", ROLE_REPORTS)]
    assert len(sets[0].scored.labels) == 1797 and "scikit-learn's 1,797 8x8 digits" in notes[0]
