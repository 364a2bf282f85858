"""digitrec predict: MNIST-style preparation of any image, the predict_files function and the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from synthetic import write_run_folder

from digitrec_utils import cli
from digitrec_utils.application.images import predict_files
from digitrec_utils.data.preparation import collect_image_files, prepare_image, read_image
from digitrec_utils.exceptions import ImageError
from digitrec_utils.imaging.predict import render_digit_photo
from digitrec_utils.models.model_files import describe_threshold_in_use

# A small CNN trained for two epochs on mnist-sample classifies about 95% of its own test digits; the
# rendered copies lose a little to resampling, so at least 80% of them must come back right.
RENDERED_ACCURACY_THRESHOLD = 0.80
N_RENDERED = 40


def test_rendered_digits_come_back_with_their_labels(splits, saved_model, tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for position in range(N_RENDERED):
        offset = tuple(int(value) for value in rng.integers(-25, 26, size=2))
        paths.append(render_digit_photo(splits.x_test[position], tmp_path / f"digit_{position:02d}.png", offset=offset,
                             colour=position % 2 == 0))
    entries = predict_files(paths, saved_model, top=3)
    predicted = [entry["label"] for entry in entries]
    expected = [splits.class_names[label] for label in splits.y_test[:N_RENDERED]]
    accuracy = np.mean(np.array(predicted) == np.array(expected))
    assert accuracy >= RENDERED_ACCURACY_THRESHOLD, f"{accuracy:.2f} of the rendered digits were right"
    for entry in entries:
        assert len(entry["top"]) == 3 and entry["top"][0]["label"] == entry["label"]
        probabilities = [item["probability"] for item in entry["top"]]
        assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1 + 1e-6


def test_an_mnist_shaped_image_is_left_essentially_unchanged(splits):
    correlations = []
    for digit in splits.x_test[:50]:
        prepared = prepare_image(digit)
        original = digit.astype(np.float32) / 255
        # A digit whose centre of mass sits more than half a pixel off MNIST's (14, 14) moves by one pixel.
        best = max(np.corrcoef(np.roll(prepared, (down, right), axis=(0, 1)).ravel(), original.ravel())[0, 1]
                   for down in (-1, 0, 1) for right in (-1, 0, 1))
        assert best > 0.95
        correlations.append(np.corrcoef(prepared.ravel(), original.ravel())[0, 1])
    assert np.median(correlations) > 0.99


def test_preparation_inverts_light_backgrounds_crops_scales_and_centres():
    canvas = np.full((120, 90), 250, dtype=np.uint8)
    canvas[10:70, 5:25] = 0  # A dark bar, 60 x 20 pixels, near the top-left corner of a light image.
    prepared = prepare_image(canvas)
    rows, columns = np.nonzero(prepared > 0.5)
    assert rows.max() - rows.min() + 1 == 20  # The longer side becomes 20 pixels.
    assert 6 <= columns.max() - columns.min() + 1 <= 8  # Aspect ratio kept: 20 / 3.
    from scipy import ndimage

    centre = ndimage.center_of_mass(prepared)
    assert abs(centre[0] - 14) <= 0.5 and abs(centre[1] - 14) <= 0.5
    assert prepared.max() == pytest.approx(1.0) and prepared[0, 0] == 0.0


def test_bad_files_get_one_clear_error_each_and_the_good_ones_are_classified(splits, saved_model, tmp_path):
    render_digit_photo(splits.x_test[0], tmp_path / "good.png")
    (tmp_path / "notes.txt").write_text("not an image")
    Image.new("L", (64, 64), 255).save(tmp_path / "blank.png")
    (tmp_path / "truncated.png").write_bytes((tmp_path / "good.png").read_bytes()[:60])
    (tmp_path / "more").mkdir()
    render_digit_photo(splits.x_test[1], tmp_path / "more" / "deeper.PNG")
    paths, skipped = collect_image_files([tmp_path])
    assert skipped == [tmp_path / "notes.txt"]  # In a folder, a file that is not an image is skipped, not read.
    entries = {entry["path"].rsplit("/", 1)[-1]: entry for entry in predict_files(paths, saved_model)}
    assert set(entries) == {"good.png", "blank.png", "truncated.png", "deeper.PNG"}  # Sub-folders are walked.
    assert "label" in entries["good.png"] and "label" in entries["deeper.PNG"]
    assert "blank.png: no ink found" in entries["blank.png"]["error"]
    assert "truncated.png: not a readable image" in entries["truncated.png"]["error"]
    named = predict_files([tmp_path / "notes.txt"], saved_model)[0]  # Named on its own, it is read, and fails.
    assert "notes.txt: not a readable image" in named["error"]
    with pytest.raises(ImageError, match="missing.png: no such file"):
        read_image(tmp_path / "missing.png")


def test_transparent_and_gif_images_are_read(splits, tmp_path):
    digit = splits.x_test[1]
    rgba = Image.new("RGBA", (100, 100), (0, 0, 0, 0))  # Transparent background, black ink.
    ink = Image.fromarray(digit).resize((84, 84))
    rgba.paste(Image.new("RGBA", (84, 84), (0, 0, 0, 255)), (8, 8), mask=ink)
    rgba.save(tmp_path / "transparent.png")
    Image.fromarray(255 - digit).save(tmp_path / "digit.gif")
    Image.fromarray(255 - digit).convert("RGB").save(tmp_path / "digit.jpg", quality=95)
    Image.fromarray(255 - digit).save(tmp_path / "digit.bmp")
    prepared = [prepare_image(read_image(tmp_path / name)) for name in
                ("transparent.png", "digit.gif", "digit.jpg", "digit.bmp")]
    reference = prepare_image(digit)
    for image in prepared:
        assert np.corrcoef(image.ravel(), reference.ravel())[0, 1] > 0.8


def test_the_command_prints_lines_json_and_exit_codes(splits, saved_model, tmp_path, capsys):
    good = render_digit_photo(splits.x_test[2], tmp_path / "good.png")
    assert cli.main(["predict", str(good), "--model", str(saved_model), "--top", "2"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{good}: ") and line.count("(") == 2

    assert cli.main(["predict", str(good), "--model", str(saved_model), "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert entries[0]["path"] == str(good)
    assert set(entries[0]) == {"path", "label", "probability", "top", "prepared_as"}

    (tmp_path / "broken.png").write_bytes(b"PNG? no")
    assert cli.main(["predict", str(tmp_path), "--model", str(saved_model), "--json"]) == 1
    captured = capsys.readouterr()
    assert [sorted(entry) for entry in json.loads(captured.out)] == [["error", "path"], sorted(entries[0])]
    assert "broken.png: not a readable image" in captured.err

    assert cli.main(["predict", str(good), "--model", str(tmp_path / "none.keras")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("digitrec: error:") and "none.keras: no such model file" in error and "\n" not in error


@pytest.mark.parametrize("damage, message", [
    ("empty model", "not a Keras model file (it is empty)"),
    ("truncated model", "bytes are not a zip archive"),
    ("JSON with a syntax error", "not readable JSON"),
])
def test_a_damaged_model_file_is_named_with_exit_2(splits, saved_model, tmp_path, capsys, damage, message):
    good = render_digit_photo(splits.x_test[2], tmp_path / "good.png")
    model, description = tmp_path / "model.keras", tmp_path / "model.json"
    model.write_bytes(saved_model.read_bytes())
    description.write_bytes(saved_model.with_suffix(".json").read_bytes())
    if damage == "empty model":
        model.write_bytes(b"")
    elif damage == "truncated model":
        model.write_bytes(saved_model.read_bytes()[:2000])
    else:
        description.write_text(description.read_text()[:-20])
    assert cli.main(["predict", str(good), "--model", str(model)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err and "copy or save the model again" in captured.err.lower()


def test_the_default_model_is_the_newest_good_cnn_whatever_latest_says(splits, saved_model, tmp_path, capsys,
                                                                       monkeypatch):
    from digitrec_utils import config

    reports = tmp_path / "reports"
    good = write_run_folder(reports, "good", "2026-01-01T10:00:00+00:00", {"04_cnn": "ok"}, model=saved_model)
    write_run_folder(reports, "older", "2025-12-01T10:00:00+00:00", {"04_cnn": "ok"}, model=saved_model)
    write_run_folder(reports, "cnn-failed", "2026-02-01T10:00:00+00:00", {"04_cnn": "failed"}, model=saved_model)
    eda_only = write_run_folder(reports, "eda-only", "2026-03-01T10:00:00+00:00", {"01_eda": "ok"})
    (reports / "latest").symlink_to(eda_only.name, target_is_directory=True)
    monkeypatch.setattr(config, "REPORTS_DIR", reports)
    image = render_digit_photo(splits.x_test[2], tmp_path / "digit.png")
    assert cli.main(["predict", str(image)]) == 0
    captured = capsys.readouterr()
    assert f"model {good / 'models' / 'cnn_selected.keras'} (cnn_small)" in captured.err
    assert captured.out.startswith(f"{image}: ")


def test_the_default_model_may_come_from_a_seed_of_a_sweep(saved_model, tmp_path):
    from digitrec_utils.models.model_files import find_latest_model

    reports = tmp_path / "reports"
    write_run_folder(reports, "single", "2026-01-01T10:00:00+00:00", {"04_cnn": "ok"}, model=saved_model)
    sweep = reports / "quick-seeds"
    for seed in (10, 2, 1):
        write_run_folder(sweep, f"seed{seed}", "2026-02-01T10:00:00+00:00", {"04_cnn": "ok"}, model=saved_model)
    (reports / "latest").symlink_to(sweep.name, target_is_directory=True)
    assert find_latest_model(reports) == sweep / "seed1" / "models" / "cnn_selected.keras"  # Lowest seed.
    newer = write_run_folder(reports, "newer", "2026-03-01T10:00:00+00:00", {"04_cnn": "ok"}, model=saved_model)
    assert find_latest_model(reports) == newer / "models" / "cnn_selected.keras"


def test_without_a_good_run_predict_says_how_to_get_a_model(tmp_path, capsys, monkeypatch):
    from digitrec_utils import config

    reports = tmp_path / "reports"
    write_run_folder(reports, "eda-only", "2026-03-01T10:00:00+00:00", {"01_eda": "ok", "04_cnn": "interrupted"})
    monkeypatch.setattr(config, "REPORTS_DIR", reports)
    (tmp_path / "digit.png").write_bytes(b"")
    assert cli.main(["predict", str(tmp_path / "digit.png")]) == 2
    error = capsys.readouterr().err
    assert "no saved model under" in error and "digitrec run" in error and "--model PATH" in error


def test_a_noisy_28x28_digit_is_not_shrunk(splits):
    from digitrec_utils.data.corruptions import corrupt

    digit = splits.x_test[:1]
    noisy = corrupt(digit, "gaussian_noise", 3, seed=0)[0]  # Sigma 60 of 255: noise everywhere.
    prepared = prepare_image(noisy)
    np.testing.assert_allclose(prepared, noisy / 255.0, atol=1e-6)  # Taken as it is, only scaled.
    rows = np.nonzero(digit[0] > 128)[0]
    prepared_rows = np.nonzero(prepared > 0.5)[0]
    assert prepared_rows.min() <= rows.min() + 1 and prepared_rows.max() >= rows.max() - 1  # Not shrunk.


def test_in_a_larger_noisy_photo_the_ink_is_found_after_denoising(splits):
    rng = np.random.default_rng(0)
    digit = splits.x_test[3]
    clean = np.zeros((112, 112), dtype=np.float64)
    clean[30:86, 20:76] = np.kron(digit, np.ones((2, 2)))  # The digit, twice its size, off centre.
    noisy = np.clip(clean + rng.normal(0, 40, clean.shape), 0, 255).astype(np.uint8)
    with_noise, without = prepare_image(noisy), prepare_image(clean.astype(np.uint8))
    rows, columns = np.nonzero(with_noise > 0.3)
    assert rows.max() - rows.min() + 1 >= 17 or columns.max() - columns.min() + 1 >= 17  # About 20 pixels long.
    assert np.corrcoef(with_noise.ravel(), without.ravel())[0, 1] > 0.8


def test_a_threshold_marks_unsure_answers_and_min_confidence_overrides_the_saved_one(splits, saved_model, tmp_path,
                                                                                     capsys):
    good = render_digit_photo(splits.x_test[2], tmp_path / "good.png")
    scribble = np.zeros((28, 28), dtype=np.uint8)
    scribble[4:24, 13:15] = 255
    scribble[13:15, 4:24] = 255  # A cross: not a digit.
    Image.fromarray(scribble).save(tmp_path / "cross.png")
    assert cli.main(["predict", str(tmp_path), "--model", str(saved_model), "--json", "--min-confidence", "1"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert all(set(entry) == {"path", "label", "probability", "top", "score", "accepted", "prepared_as"}
               for entry in entries)
    assert not any(entry["accepted"] for entry in entries if entry["score"] < 1.0)
    good_score = next(entry["score"] for entry in entries if entry["path"] == str(good))
    assert cli.main(["predict", str(good), "--model", str(saved_model), "--min-confidence", "1"]) == 0
    captured = capsys.readouterr()
    assert ("unsure (score" in captured.out) == (good_score < 1.0)
    assert ("digitrec: threshold: top probability score 1.0000 (--min-confidence); answers below it are marked "
            "unsure, for a person.") in captured.err
    # A threshold saved in the model's JSON is the default; --min-confidence 0 answers everything.
    description_path = saved_model.with_suffix(".json")
    description = json.loads(description_path.read_text())
    description["abstention"] = {"score": "margin", "threshold": 0.999999, "target": 0.995}
    copy = tmp_path / "with-threshold"
    copy.mkdir()
    (copy / saved_model.name).write_bytes(saved_model.read_bytes())
    (copy / description_path.name).write_text(json.dumps(description))
    assert cli.main(["predict", str(tmp_path / "cross.png"), "--model", str(copy / saved_model.name), "--json"]) == 0
    captured = capsys.readouterr()
    entry = json.loads(captured.out)[0]
    assert entry["accepted"] is False and 0.0 <= entry["score"] < 0.999999
    # Where the threshold came from is said before the first answer.
    assert ("digitrec: threshold: margin score 1.0000, chosen on validation for 99.5% of answers right; answers "
            "below it are marked unsure, for a person. It was chosen on validation digits alone") in captured.err
    assert cli.main(["predict", str(tmp_path / "cross.png"), "--model", str(copy / saved_model.name), "--json",
                     "--min-confidence", "0"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)[0]["accepted"] is True
    assert "digitrec: threshold: 0 (--min-confidence), so every image is answered." in captured.err
    # A model saved without a threshold says so, and how to get one.
    del description["abstention"]
    (copy / description_path.name).write_text(json.dumps(description))
    assert cli.main(["predict", str(good), "--model", str(copy / saved_model.name)]) == 0
    assert ("threshold: none is saved with the model, so every image is answered; give --min-confidence X, or "
            "choose one on your own labelled digits with `digitrec calibrate DIGITS --write`."
            ) in capsys.readouterr().err
    assert cli.main(["predict", str(good), "--model", str(saved_model), "--min-confidence", "1.5"]) == 2
    assert "--min-confidence 1.5: give a score from 0 to 1" in capsys.readouterr().err


@pytest.mark.parametrize("chosen_on, warned", [("validation", True), ("validation and semeion", False),
                                                ("scans/ (half A, 797 digits)", False)])
def test_only_a_threshold_chosen_on_validation_alone_is_said_to_need_the_office_s_digits(chosen_on, warned):
    text = describe_threshold_in_use({"score": "certainty", "threshold": 0.4653, "target": 0.995,
                                      "chosen_on": chosen_on})
    assert text.startswith(f"certainty score 0.4653, chosen on {chosen_on} for 99.5% of answers right;")
    assert ("digitrec calibrate DIGITS --write" in text) == warned


def test_a_28x28_image_is_prepared_the_same_alone_as_within_a_stack(splits):
    from digitrec_utils.data import corruptions
    from digitrec_utils.data.preparation import prepare_image_batch

    digits = splits.x_val[:40]
    rng = np.random.default_rng(5)
    stack = np.concatenate([
        digits, 255 - digits,  # Light ink on dark, and dark ink on light.
        corruptions.corrupt(digits, "contrast", 3, seed=1), corruptions.corrupt(digits, "brightness", 3, seed=1),
        corruptions.corrupt(digits, "gaussian_noise", 3, seed=1),
        rng.integers(0, 256, size=(5, 28, 28)).astype(np.uint8),
        np.full((3, 28, 28), 128, dtype=np.uint8), np.zeros((2, 28, 28), dtype=np.uint8),  # Blank: no ink.
    ])
    prepared, usable = prepare_image_batch(stack)
    for image, batch_image, batch_usable in zip(stack, prepared, usable, strict=True):
        try:
            one = prepare_image(image)
        except ImageError:
            assert not batch_usable and not batch_image.any()
        else:
            assert batch_usable
            np.testing.assert_array_equal(batch_image, one)
    assert usable.sum() >= len(stack) - 5 and not usable[-5:].any()
