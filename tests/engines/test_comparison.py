"""The comparison: one table of every model, a recommendation made on validation, McNemar's test, the model card."""

from __future__ import annotations

import numpy as np
import pytest

from digitrec_utils.engines import comparison
from digitrec_utils.evaluation import evaluation
from digitrec_utils.evaluation.evaluation import evaluate_model
from digitrec_utils.reporting import ranking
from digitrec_utils.reporting.results import build_model_record, build_results, save_results

DATASET = {"name": "mnist-sample", "sha256": "ab" * 32, "class_names": [str(digit) for digit in range(10)]}
N_TEST = 400


def _truth(seed=0):
    return np.random.default_rng(seed).integers(0, 10, N_TEST)


def _predictions(truth, wrong):
    """Predictions that are wrong exactly at the positions ``wrong``."""
    predicted = truth.copy()
    predicted[wrong] = (truth[wrong] + 1) % 10
    return predicted


def _model(name, family, truth, wrong, val_accuracy, predict_ms=1.0, train_seconds=1.0):
    return build_model_record(name, family, f"{name} of the tests", evaluate_model(truth, _predictions(truth, wrong)),
                              val_accuracy=val_accuracy, predict_ms_per_1k=predict_ms, train_seconds=train_seconds,
                              params_count=1000)


def _records(truth=None):
    truth = _truth() if truth is None else truth
    classical = [_model("svm", "classical", truth, np.arange(0, 40), 0.93, predict_ms=50.0),
                 _model("knn", "classical", truth, np.arange(0, 60), 0.90)]
    # The CNN trails the SVM on validation but leads it on test: the recommendation must ignore test.
    cnn = [_model("cnn_modern", "cnn", truth, np.arange(0, 20), 0.925, predict_ms=5.0)]
    return {
        "02_classical_baselines": build_results("02_classical_baselines", DATASET, {"val_fraction": 0.1}, seed=42,
                                                models=classical, selected_model="svm", test_labels=truth),
        "04_cnn": build_results("04_cnn", DATASET, {"val_fraction": 0.1}, seed=42, models=cnn,
                                selected_model="cnn_modern", test_labels=truth),
    }


def test_every_model_in_one_table_best_validation_first_with_the_best_of_each_family():
    table = ranking.gather_models(_records())
    assert table["key"].tolist() == ["02_classical_baselines/svm", "04_cnn/cnn_modern", "02_classical_baselines/knn"]
    assert table["best of family"].tolist() == [True, True, False]
    assert table.loc[0, "test accuracy"] == pytest.approx(1 - 40 / N_TEST)
    assert table["chosen in notebook"].tolist() == [True, True, False]
    html = comparison.style_models(table).to_html()
    highlighted = html[html.index("<style"):html.index("background-color: #d8ecd2")]
    assert "_row0_col0" in highlighted and "_row1_col10" in highlighted and "_row2_" not in highlighted
    # Formatted for reading: 4-decimal accuracies, one interval column, thousands separators, yes / no.
    low, high = table.loc[0, ["95% CI low", "95% CI high"]]
    assert f">{low:.4f}–{high:.4f}<" in html and ">0.9300<" in html and ">1,000<" in html and ">yes<" in html
    assert "0.930000" not in html and "02_classical_baselines" not in html


def test_the_recommendation_uses_validation_not_test_and_breaks_ties_on_cost():
    table = ranking.gather_models(_records())
    assert ranking.recommend_model(table).row["name"] == "svm"
    tied = ranking.recommend_model(table, tolerance=0.01)
    assert tied.row["name"] == "cnn_modern" and "cheapest to run" in tied.reason
    assert set(tied.candidates["name"]) == {"svm", "cnn_modern"}


def test_mcnemar_reads_an_uneven_split_as_real_and_an_even_one_as_chance():
    from mlxtend.evaluate import mcnemar, mcnemar_table

    records = _records()
    table = ranking.gather_models(records)
    tests = comparison.compare_with_runner_ups(records, table, "04_cnn/cnn_modern").set_index("runner-up")
    against_svm = tests.loc["02_classical_baselines/svm"]
    # The CNN is wrong on images 0-19, the SVM on 0-39: only the CNN is right on 20 images, only the SVM on none.
    assert (against_svm["only recommended right"], against_svm["only runner-up right"]) == (20, 0)
    truth = _truth()
    expected = mcnemar(mcnemar_table(y_target=truth, y_model1=_predictions(truth, np.arange(20)),
                                     y_model2=_predictions(truth, np.arange(40))), exact=True)[1]
    assert against_svm["p-value"] == pytest.approx(expected) and against_svm["p-value"] < 0.05
    assert "the difference is real at the 5% level" in against_svm["reading"]

    truth = _truth()
    even = {"02_classical_baselines": build_results(
        "02_classical_baselines", DATASET, {}, seed=1, test_labels=truth, selected_model="a",
        models=[_model("a", "classical", truth, np.arange(0, 10), 0.9),
                _model("b", "classical", truth, np.arange(5, 15), 0.8)])}
    reading = comparison.compare_with_runner_ups(even, ranking.gather_models(even),
                                                 "02_classical_baselines/a").iloc[0]
    assert (reading["only recommended right"], reading["only runner-up right"]) == (5, 5)
    assert reading["p-value"] == pytest.approx(1.0) and "consistent with equal accuracy" in reading["reading"]


def test_one_sentence_counts_the_paired_tests_without_repeating_them():
    records = _records()
    table = ranking.gather_models(records)
    tests = comparison.compare_with_runner_ups(records, table, "04_cnn/cnn_modern")
    sentence = comparison.summarize_paired_tests("cnn_modern", tests)
    # Against the SVM (20 to 0) the lead is real; against kNN (40 to 0) too.
    assert sentence.startswith("Of 2 runner-up(s) tested on the same test images, 2 differ from cnn_modern")
    assert "02_classical_baselines/svm" in sentence
    assert not any(reading in sentence for reading in tests["reading"])


def test_the_ranking_for_the_index_page_lists_the_recommended_model_and_its_runner_ups():
    table = ranking.gather_models(_records())
    summary = comparison.summarize_ranking(table, ranking.recommend_model(table), n_runner_ups=1)
    assert summary["recommended"]["name"] == "svm" and [model["name"] for model in summary["runner_ups"]] == [
        "cnn_modern"]
    assert summary["runner_ups"][0]["test_accuracy_ci95"] == pytest.approx(list(table.loc[1, ["95% CI low",
                                                                                            "95% CI high"]]))
    assert comparison.summarize_ranking(table, None) == {"recommended": None, "runner_ups": []}


def test_models_of_different_test_sets_are_not_paired():
    records = _records()
    other_truth = _truth(seed=1)
    records["03_dense_nets"] = build_results("03_dense_nets", DATASET, {}, seed=7, test_labels=other_truth,
                                             models=[_model("mlp", "dense", other_truth, np.arange(5), 0.99)],
                                             selected_model="mlp")
    table = ranking.gather_models(records)
    tests = comparison.compare_with_runner_ups(records, table, "03_dense_nets/mlp")
    assert tests["reading"].str.startswith("not tested").all()
    assert "different datasets or seeds" in comparison.describe_protocol(records)


def test_missing_notebooks_are_named(tmp_path):
    records = _records()
    assert comparison.find_missing_notebooks(records) == ["03_dense_nets"]
    text = comparison.describe_missing(records, tmp_path / "run" / "results", run_dir=tmp_path / "run")
    assert "Absent: 03_dense_nets" in text and "02_classical_baselines, 04_cnn" in text
    assert "`results/`" in text and str(tmp_path) not in text  # Relative to the run folder, no machine path.


def test_model_card_is_computed_from_the_records(tmp_path):
    records = _records()
    table = ranking.gather_models(records)
    recommendation = ranking.recommend_model(table)
    card = comparison.describe_model_card(records, recommendation, None)
    row = table.iloc[0]
    assert f"{row['95% CI low']:.4f} to {row['95% CI high']:.4f}" in card
    assert f"over {N_TEST:,} test images" in card and "saved no CNN" in card
    assert "Weakest classes (test recall):" in card and "read as" in card


def test_the_notebook_renders_with_what_exists_and_names_what_is_absent(tmp_path):
    from digitrec_utils.cli import EXIT_OK, main
    from digitrec_utils.reporting.results import load_results

    for record in _records().values():
        save_results(record, tmp_path / "earlier")
    status = main(["run", "--only", "comparison", "--set", f"comparison.results_dir={tmp_path / 'earlier' / 'results'}",
                   "--out", str(tmp_path / "reports"), "--name", "compare", "--quiet"])
    assert status == EXIT_OK
    text = (tmp_path / "reports" / "compare" / "06_model_comparison.ipynb").read_text()
    assert "Absent: 03_dense_nets" in text
    assert "Recommended: svm" in text and "04_cnn/cnn_modern" in text and "runner-up(s) tested" in text
    record = load_results(tmp_path / "reports" / "compare" / "results" / "06_model_comparison.json")
    assert record["headline"] == "3 models of 2 notebooks compared; recommended svm"
    assert record["recommendation"]["recommended"]["test_accuracy"] == pytest.approx(0.9)
    index = (tmp_path / "reports" / "compare" / "index.html").read_text()
    assert "Recommended model" in index and "0.9000" in index and "cnn_modern" in index


def test_runner_ups_within_noise_on_validation_are_named_with_what_makes_them_cheaper():
    truth = _truth()
    val_truth = np.arange(400) % 10

    def model(name, family, wrong_val, val_accuracy, predict_ms, train_seconds):
        return build_model_record(name, family, name, evaluate_model(truth, _predictions(truth, np.arange(10))),
                                  val_accuracy=val_accuracy, predict_ms_per_1k=predict_ms, train_seconds=train_seconds,
                                  val_predictions=_predictions(val_truth, wrong_val))

    records = {
        "02_classical_baselines": build_results(
            "02_classical_baselines", DATASET, {}, seed=42, test_labels=truth, val_labels=val_truth,
            selected_model="svm", models=[model("svm", "classical", np.arange(40), 0.90, 1.0, 2.0),
                                          model("knn", "classical", np.arange(80), 0.80, 50.0, 0.1)]),
        "04_cnn": build_results(
            "04_cnn", DATASET, {}, seed=42, test_labels=truth, val_labels=val_truth, selected_model="cnn",
            models=[model("cnn", "cnn", np.arange(36), 0.91, 30.0, 60.0)]),
    }
    table = ranking.gather_models(records)
    recommendation = ranking.recommend_model(table)
    assert recommendation.row["name"] == "cnn"  # Unchanged: the best validation accuracy.
    judged = comparison.judge_on_validation(records, table, recommendation.key).set_index("name")
    # The SVM is wrong on 4 more validation images than the CNN (p = 0.125); kNN on 44 more.
    assert judged.loc["svm", "vs recommended (validation)"] == "within noise"
    assert judged.loc["knn", "vs recommended (validation)"] == "worse"
    assert judged.loc["cnn", "vs recommended (validation)"] == "recommended"
    card = comparison.describe_model_card(records, recommendation, None,
                                          table=comparison.judge_on_validation(records, table, recommendation.key))
    assert "**Within noise of it**: svm (0.9000): McNemar's exact test on the validation images cannot tell it" in card
    assert "svm predicts in 1.0 ms per 1,000 images against 30.0 and trains in 2.0 s against 60.0" in card


def test_the_card_counts_the_test_errors_that_the_other_models_make_too():
    truth = _truth()
    # The SVM (recommended on validation) misreads 0-39; kNN 0-29 and 100-109; a tree 0-9 and 35-37.
    classical = [_model("svm", "classical", truth, np.arange(0, 40), 0.93),
                 _model("knn", "classical", truth, np.r_[0:30, 100:110], 0.90),
                 _model("tree", "classical", truth, np.r_[0:10, 35:38], 0.80)]
    records = {"02_classical_baselines": build_results("02_classical_baselines", DATASET, {"val_fraction": 0.1},
                                                       seed=42, models=classical, selected_model="svm",
                                                       test_labels=truth)}
    recommendation = ranking.recommend_model(ranking.gather_models(records))
    card = comparison.describe_model_card(records, recommendation, None)
    # At least one of the two others misreads 0-29 and 35-37 (33 images); neither misreads 30-34 and 38-39 (7).
    assert ("Of its 40 test errors, 33 are misread by at least half of the other 2 models too (images hard for "
            "most of them), and 7 by none of them (its own).") in card
    missed, others_wrong = evaluation.count_shared_errors(truth, _predictions(truth, np.arange(0, 40)), {
        "knn": _predictions(truth, np.r_[0:30, 100:110]), "tree": _predictions(truth, np.r_[0:10, 35:38])})
    assert missed.tolist() == list(range(40))
    assert others_wrong.tolist() == [2] * 10 + [1] * 20 + [0] * 5 + [1] * 3 + [0] * 2
    del records["02_classical_baselines"]["models"][2]  # With one other model, the sentence names it alone.
    card = comparison.describe_model_card(records, ranking.recommend_model(ranking.gather_models(records)), None)
    assert "Of its 40 test errors, the other model makes 30 too; the other 10 are its own." in card


def test_the_card_says_what_adapting_the_saved_cnn_to_the_office_digits_bought_when_08_ran():
    truth = _truth()
    records = {"02_classical_baselines": build_results(
        "02_classical_baselines", DATASET, {"val_fraction": 0.1}, seed=42, selected_model="svm", test_labels=truth,
        models=[_model("svm", "classical", truth, np.arange(0, 40), 0.93)])}
    recommendation = ranking.recommend_model(ranking.gather_models(records))
    curve = [{"strategy": "at random", "labelled": 0, "check_accuracy": 0.9385, "check_accuracy_std": 0.0,
              "draws": 1},
             {"strategy": "at random", "labelled": 100, "check_accuracy": 0.9636, "check_accuracy_std": 0.0073,
              "draws": 5},
             {"strategy": "at random", "labelled": 796, "check_accuracy": 0.9907, "check_accuracy_std": 0.0019,
              "draws": 5},
             {"strategy": "suggested first", "labelled": 100, "check_accuracy": 0.9774, "check_accuracy_std": 0.004,
              "draws": 5}]
    adaptation = {"curve": curve, "check_digits": 797, "office_data": "semeion", "office_sha256": "0" * 64}
    records["08_adaptation"] = build_results("08_adaptation", DATASET, {}, seed=42, adaptation=adaptation)
    assert comparison.read_adaptation(records) == adaptation
    card = comparison.describe_model_card(records, recommendation, None,
                                          adaptation=comparison.read_adaptation(records))
    assert ("**On the office's own digits** (the saved CNN, 08_adaptation, on 797 check digits of semeion): "
            "93.85% as it came, 99.07% (± 0.19% over 5 draws) once adapted on 796 of them") in card
    assert "office's own digits" not in comparison.describe_model_card(records, recommendation, None)
