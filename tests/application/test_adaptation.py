"""digitrec adapt: the split, the replay, a real fine-tuning that must help, the provenance, each bad input, 08's
learning curve and the digits to label first (--suggest)."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from digitrec_utils import cli
from digitrec_utils.application.adaptation import adapt_model
from digitrec_utils.application.models import load_model_in_use
from digitrec_utils.data.labelled import open_labelled_source, read_labelled_digits
from digitrec_utils.data.splits import draw_per_class, split_labelled_digits
from digitrec_utils.engines.adaptation import (
    STRATEGY_RANDOM,
    STRATEGY_SUGGESTED,
    describe_learning_curve,
    describe_suggested_first,
    load_original_digits,
    mark_usable,
    measure_learning_curve,
    predict_labels,
    predict_probabilities,
    split_drawn_digits,
)
from digitrec_utils.evaluation.labelling import POOL_FACTOR, measure_margins
from digitrec_utils.exceptions import ParameterError
from digitrec_utils.models.adaptation import AdaptationRecipe, fine_tune
from digitrec_utils.models.model_files import load_model_bundle, record_abstention
from digitrec_utils.models.reference import load_reference

# A recipe that learns quickly from few digits: what the tests need is a copy that moves, in seconds.
QUICK = AdaptationRecipe(learning_rate=1e-3, epochs=12, monitor="none", batch_size=32)
PER_CLASS = 30


def _write_tree(root, images, labels):
    for number, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{number}.png")
    return root


@pytest.fixture(scope="module")
def turned_digits(splits, tmp_path_factory):
    """Test digits turned a quarter: another 'hand' the small model reads badly, 30 of each class."""
    chosen = np.concatenate([np.flatnonzero(splits.y_test == label)[:PER_CLASS] for label in range(10)])
    root = tmp_path_factory.mktemp("turned") / "office"
    return _write_tree(root, np.rot90(splits.x_test[chosen], axes=(1, 2)), splits.y_test[chosen])


@pytest.fixture(scope="module")
def replayable_model(saved_model, tmp_path_factory):
    """The session's small model, with a JSON that records its split, so that its training digits can be
    replayed and its test digits read again."""
    folder = tmp_path_factory.mktemp("replayable")
    for path in (saved_model, saved_model.with_suffix(".json")):
        shutil.copy(path, folder / path.name)
    model_path = folder / saved_model.name
    description = json.loads(model_path.with_suffix(".json").read_text())
    description["split"] = {"seed": 42, "test_fraction": 0.2, "val_fraction": 0.1, "train_size": 0}
    model_path.with_suffix(".json").write_text(json.dumps(description))
    return model_path


def test_the_split_is_stratified_seeded_and_disjoint_and_names_the_classes_too_small():
    labels = np.repeat(np.arange(10), 8)
    labels[3] = -1  # An image that could not be used takes no part.
    first, second = split_labelled_digits(labels, share=0.5, seed=1, needed_per_class=4, what="office")
    assert set(first).isdisjoint(second) and 3 not in set(first) | set(second)
    assert len(first) + len(second) == 79
    assert np.bincount(labels[second], minlength=10).min() >= 3  # Every class on both sides.
    again, _ = split_labelled_digits(labels, share=0.5, seed=1, needed_per_class=4, what="office")
    assert (again == first).all()
    drawn = draw_per_class(first, labels, 20, seed=0)
    assert len(drawn) == 20 and set(drawn) <= set(first) and np.bincount(labels[drawn], minlength=10).min() == 2
    short = labels.copy()
    short[short == 7] = np.array([7, 7, -1, -1, -1, -1, -1, -1])
    with pytest.raises(ParameterError, match=r"class 7: 2\); each class needs at least 4"):
        split_labelled_digits(short, share=0.5, seed=1, needed_per_class=4, what="office")


def test_fine_tuning_replays_the_original_digits_and_leaves_the_parent_alone(saved_model, splits):
    model, _ = load_model_bundle(saved_model)
    weights = [array.copy() for array in model.get_weights()]
    images = splits.x_test[:40] / np.float32(255)
    replay = (splits.x_train[:500] / np.float32(255), splits.y_train[:500])
    tuned = fine_tune(model, images[:30], splits.y_test[:30], images[30:], splits.y_test[30:40],
                      recipe=AdaptationRecipe(epochs=1, replay_share=2.0), replay=replay, seed=0)
    assert tuned.n_office == 30 and tuned.n_replayed == 60
    assert all(np.array_equal(before, after) for before, after in zip(weights, model.get_weights(), strict=True))
    assert any(not np.array_equal(before, after)
               for before, after in zip(weights, tuned.model.get_weights(), strict=True))


def test_adapting_on_turned_digits_reads_the_check_half_better_and_saves_its_provenance(
        turned_digits, replayable_model, tmp_path):
    parent_bytes = replayable_model.read_bytes()
    parent_json = replayable_model.with_suffix(".json").read_text()
    out = tmp_path / "adapted" / "office.keras"
    messages = []
    page = tmp_path / "adapt.html"
    outcome = adapt_model([turned_digits], out=out, model=replayable_model, recipe=QUICK, seed=3, page=page,
                          notify=messages.append)
    table = outcome.paired.table.set_index("setting")
    assert outcome.paired.best == "adapted" and bool(table.loc["parent", "distinguishable"])
    assert table.loc["adapted", "accuracy"] >= table.loc["parent", "accuracy"] + 0.15
    assert outcome.counts == {"train": 120, "validation": 30, "check": 150}
    assert outcome.fine_tuned.n_replayed == 120 and outcome.forgetting is not None
    # The parent is untouched; the adapted bundle says where it came from and loads like any saved model.
    assert replayable_model.read_bytes() == parent_bytes
    assert replayable_model.with_suffix(".json").read_text() == parent_json
    adapted, description = load_model_bundle(out)
    provenance = description["adapted"]
    assert provenance["parent_sha256"] == hashlib.sha256(parent_bytes).hexdigest()
    assert provenance["counts"] == outcome.counts and provenance["seed"] == 3
    assert provenance["data_name"] == "office" and len(provenance["data_sha256"]) == 64
    assert description["split"] == json.loads(parent_json)["split"]
    assert adapted.count_params() == outcome.parent.model.count_params()
    # Its monitoring reference is the office's digits it did not train on (validation and check), read by it.
    reference = load_reference(out)
    assert len(reference.correct) == outcome.counts["validation"] + outcome.counts["check"]
    assert description["monitoring_reference"]["source"] == "the validation and check digits of office (adapt)"
    assert any(message.startswith("adapted model") for message in messages)
    said = []
    load_model_in_use(out, notify=said.append)  # What predict, read and evaluate say of the model they use.
    assert f"adapted from {replayable_model.name} on 120 digits of office" in said[0]
    html = page.read_text()
    for heading in ("Summary", "Before and after", "Per class", "Confusions", "Provenance and notes"):
        assert heading in html
    assert str(tmp_path) not in html  # No machine path.
    assert html.count("data:image/png") >= len(outcome.examples) > 0  # Examples of the confusions fixed.


def test_a_model_without_its_original_digits_adapts_and_says_forgetting_is_not_checked(
        turned_digits, saved_model, tmp_path):
    outcome = adapt_model([turned_digits], out=tmp_path / "a.keras", model=saved_model,
                          recipe=AdaptationRecipe(epochs=1), seed=0)
    assert outcome.forgetting is None and outcome.fine_tuned.n_replayed == 0
    assert any("forgetting is not checked" in note for note in outcome.notes)


def test_bad_inputs_are_named_before_anything_trains(turned_digits, saved_model, tmp_path, capsys):
    model = str(saved_model)
    cases = [
        (["adapt", str(turned_digits), "--model", model, "--out", str(tmp_path / "a.h5")], "give a .keras file"),
        (["adapt", str(turned_digits), "--model", model, "--out", model], "is the model being adapted"),
        (["adapt", str(turned_digits), "--model", model, "--out", str(tmp_path / "b.keras"), "--check",
          str(turned_digits)], "are also among the digits to adapt on"),
        (["adapt", str(turned_digits), "--model", model, "--out", str(tmp_path / "c.keras"), "--target", "1.2"],
         "--target 1.2"),
    ]
    few = _write_tree(tmp_path / "few", np.zeros((5, 28, 28), np.uint8) + np.eye(28, dtype=np.uint8) * 255,
                      [0, 0, 0, 1, 1])
    cases.append((["adapt", str(few), "--model", model, "--out", str(tmp_path / "d.keras")],
                  "too few digits of some classes"))
    clothes = tmp_path / "clothes.keras"
    shutil.copy(saved_model, clothes)
    description = json.loads(saved_model.with_suffix(".json").read_text())
    clothes.with_suffix(".json").write_text(json.dumps({**description, "class_names": [f"c{n}" for n in range(10)]}))
    cases.append((["adapt", str(turned_digits), "--model", str(clothes), "--out", str(tmp_path / "e.keras")],
                  "are not the digits 0-9"))
    for arguments, expected in cases:
        assert cli.main(arguments) == cli.EXIT_REJECTED, arguments
        assert expected in capsys.readouterr().err, arguments
    assert not any(path.suffix == ".keras" and path.name != "clothes.keras" for path in tmp_path.iterdir())


def test_the_command_prints_its_figures_and_saves_the_model(turned_digits, replayable_model, tmp_path, capsys):
    out = tmp_path / "office.keras"
    status = cli.main(["adapt", str(turned_digits), "--model", str(replayable_model), "--out", str(out), "--json",
                       "--seed", "1"])
    captured = capsys.readouterr()
    assert status == cli.EXIT_OK, captured.err
    figures = json.loads(captured.out)
    assert figures["counts"] == {"train": 120, "validation": 30, "check": 150}
    assert set(figures["check"]) == {"parent", "adapted"} and figures["original_test"] is not None
    assert 0.0 <= figures["mcnemar_p"] <= 1.0 and figures["replayed"] == 120
    assert "adapted model" in captured.err and out.is_file() and out.with_suffix(".json").is_file()


def test_the_learning_curve_rises_with_the_digits_labelled_and_measures_forgetting(turned_digits, replayable_model):
    parent = load_model_in_use(replayable_model)
    digits = read_labelled_digits(open_labelled_source([turned_digits]), progress=False)
    labels = mark_usable(digits)
    adapt_part, check_part = split_labelled_digits(labels, share=0.5, seed=0, needed_per_class=4, what="office")
    replay, test, problem = load_original_digits(parent.description)
    assert problem == ""
    curve = measure_learning_curve(parent.model, digits, labels, adapt_part=adapt_part, check_part=check_part,
                                   label_counts=[-1, 0, 40], repeats=1, recipe=QUICK, replay=replay, test=test,
                                   score_name="top_probability", parent_threshold=None, target=0.995, seed=0,
                                   augmentation="digits")
    rows = curve.rows.set_index(["strategy", "labelled"])
    assert list(rows.index) == [(STRATEGY_RANDOM, 0), (STRATEGY_RANDOM, 40), (STRATEGY_RANDOM, len(adapt_part)),
                                (STRATEGY_SUGGESTED, 40)]
    parent_accuracy = float(np.mean(predict_labels(parent.model, digits.images[check_part]) == labels[check_part]))
    assert rows.loc[(STRATEGY_RANDOM, 0), "check_accuracy"] == pytest.approx(parent_accuracy)
    assert rows.loc[(STRATEGY_RANDOM, len(adapt_part)), "check_accuracy"] >= parent_accuracy + 0.15
    assert rows.loc[(STRATEGY_RANDOM, 0), "answered"] == 1.0  # No threshold: the parent answers every digit.
    assert rows["original_test"].between(0.5, 1.0).all() and (rows["seconds"].iloc[1:] > 0).all()
    assert curve.after is not None and len(curve.after.predictions) == len(check_part)
    summary = curve.summarize()
    assert set(summary["draws"]) == {1}
    sentence = describe_learning_curve(summary, n_check=len(check_part), office_name="office", target=0.995)
    assert f"Adapted on {len(adapt_part):,} labelled digits" in sentence and "as it came reads" in sentence


def test_a_drawn_set_missing_classes_is_split_at_random_and_a_full_one_stratified():
    labels = np.repeat(np.arange(10), 5)
    lopsided = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20])  # Classes 0-4 twice or three times.
    train, validation = split_drawn_digits(lopsided, labels, seed=0)
    assert set(train).isdisjoint(validation) and set(train) | set(validation) == set(lopsided)
    assert len(validation) == 3
    train, validation = split_drawn_digits(np.arange(50), labels, seed=0)
    assert np.bincount(labels[validation], minlength=10).tolist() == [1] * 10


def test_the_suggest_command_lists_the_digits_to_label_first_and_names_a_bad_file(turned_digits, replayable_model,
                                                                                    tmp_path, capsys):
    unlabelled = tmp_path / "incoming"
    unlabelled.mkdir()
    for number, path in enumerate(sorted(turned_digits.rglob("*.png"))[:60]):
        shutil.copy(path, unlabelled / f"scan{number:03d}.png")
    (unlabelled / "torn.png").write_bytes(b"not an image")
    page = tmp_path / "suggest.html"
    status = cli.main(["adapt", "--suggest", "5", str(unlabelled), "--model", str(replayable_model), "--html",
                       str(page)])
    captured = capsys.readouterr()
    assert status == cli.EXIT_FAILED  # One file could not be read; the others still went through.
    assert "torn.png" in captured.err
    listed = [line for line in captured.out.splitlines() if ".png  read as" in line]
    assert len(listed) == 5 and len({line.split()[1] for line in listed}) == 5
    margins = [float(line.rsplit("margin ", 1)[1].rstrip(")")) for line in listed]
    model = load_model_in_use(replayable_model).model
    digits = read_labelled_digits(open_labelled_source([turned_digits]), progress=False)
    every_margin = measure_margins(predict_probabilities(model, digits.images[:60]))
    assert min(margins) == pytest.approx(every_margin.min(), abs=1e-3)  # The least certain comes first...
    assert max(margins) <= np.sort(every_margin)[5 * POOL_FACTOR - 1] + 1e-3  # ...and all are among the least.
    html = page.read_text()
    assert "digits to label first" in html and html.count("data:image/png") >= 1 and str(tmp_path) not in html
    assert cli.main(["adapt", "--suggest", "0", str(unlabelled), "--model", str(replayable_model)]) == \
        cli.EXIT_REJECTED
    assert cli.main(["adapt", str(turned_digits), "--model", str(replayable_model)]) == cli.EXIT_REJECTED
    assert "--out FILE" in capsys.readouterr().err


def test_unlabelled_digits_the_parent_answers_join_the_training_digits_and_check_digits_are_refused(
        turned_digits, replayable_model, splits, tmp_path, capsys):
    parent = tmp_path / "parent" / replayable_model.name
    parent.parent.mkdir()
    for path in (replayable_model, replayable_model.with_suffix(".json")):
        shutil.copy(path, parent.parent / path.name)
    record_abstention(parent, score="top_probability", threshold=0.6, target=0.995, chosen_on="a test")
    # Other turned test digits than the office's labelled ones, unlabelled.
    others = np.concatenate([np.flatnonzero(splits.y_test == label)[PER_CLASS:PER_CLASS + 10] for label in range(10)])
    unlabelled = tmp_path / "incoming"
    unlabelled.mkdir()
    for number, image in enumerate(np.rot90(splits.x_test[others], axes=(1, 2))):
        Image.fromarray(image).save(unlabelled / f"{number}.png")
    images = read_labelled_digits(open_labelled_source([_write_tree(tmp_path / "as_tree", np.rot90(
        splits.x_test[others], axes=(1, 2)), splits.y_test[others])]), progress=False).images
    expected = int((predict_probabilities(load_model_in_use(parent).model, images).max(axis=1) >= 0.6).sum())
    assert 0 < expected < len(others)
    outcome = adapt_model([turned_digits], out=tmp_path / "with.keras", model=parent, unlabelled=[unlabelled],
                          recipe=AdaptationRecipe(epochs=1), seed=0)
    assert outcome.fine_tuned.n_pseudo == expected and outcome.fine_tuned.n_office == 120
    assert outcome.fine_tuned.n_replayed == 120 + expected  # The replay keeps its share of every training digit.
    assert load_model_bundle(tmp_path / "with.keras")[1]["adapted"]["pseudo_labelled"] == expected
    with pytest.raises(ParameterError, match="also check digits"):
        adapt_model([turned_digits], out=tmp_path / "refused.keras", model=parent, unlabelled=[turned_digits],
                    recipe=AdaptationRecipe(epochs=1), seed=0)
    without = adapt_model([turned_digits], out=tmp_path / "without.keras", model=replayable_model,
                          unlabelled=[unlabelled], recipe=AdaptationRecipe(epochs=1), seed=0)
    assert without.fine_tuned.n_pseudo == 0 and any("no saved threshold" in note for note in without.notes)


def test_the_comparison_of_suggested_and_random_draws_says_which_did_better_only_beyond_the_spread():
    def row(strategy, labelled, accuracy, spread, draws=5):
        return {"strategy": strategy, "labelled": labelled, "check_accuracy": accuracy,
                "check_accuracy_std": spread, "draws": draws}

    summary = pd.DataFrame([row(STRATEGY_RANDOM, 0, 0.85, 0.0, 1), row(STRATEGY_RANDOM, 50, 0.954, 0.009),
                            row(STRATEGY_RANDOM, 100, 0.964, 0.007), row(STRATEGY_SUGGESTED, 50, 0.921, 0.016),
                            row(STRATEGY_SUGGESTED, 100, 0.979, 0.004)])
    text = describe_suggested_first(summary)
    assert "-3.3 points at 50 (spread 1.6), +1.5 points at 100 (spread 0.7)" in text
    assert "labelling at random did better at 50" in text and "the suggested digits did better at 100" in text
    assert "raise repeats" not in text
    close = summary.assign(check_accuracy_std=0.05, draws=2)
    assert "No difference is beyond twice the spread" in describe_suggested_first(close)
    assert "2 draws make a spread uncertain" not in describe_suggested_first(close)  # Said only when one stands out.
