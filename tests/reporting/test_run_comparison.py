"""``digitrec compare``: two runs' recommended models on the same test digits, or why they cannot be paired."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest, norm

from digitrec_utils.cli import EXIT_OK, EXIT_REJECTED, main
from digitrec_utils.evaluation.evaluation import evaluate_model
from digitrec_utils.reporting.results import build_model_record, build_results, save_results

N_DIGITS = 400


def _write_run(folder: Path, *, wrong: list[int], sha256: str = "a" * 64, seed: int = 1, commit: str = "1" * 40,
               name: str = "svm") -> Path:
    """A run folder whose one model is wrong on the test digits ``wrong``, with its run.json and record."""
    truth = np.arange(N_DIGITS) % 10
    predicted = truth.copy()
    predicted[wrong] = (truth[wrong] + 1) % 10
    model = build_model_record(name, "classical", name, evaluate_model(truth, predicted), val_accuracy=0.95,
                               predict_ms_per_1k=1.0, train_seconds=1.0)
    record = build_results("02_classical_baselines", {"name": "mnist-sample", "sha256": sha256, "n_test": N_DIGITS,
                                                      "source": {"split": f"split seed {seed}"}},
                           {"seed": seed}, seed=seed, models=[model], selected_model=name, test_labels=truth,
                           headline=f"{name}: test accuracy {1 - len(wrong) / N_DIGITS:.4f}")
    folder.mkdir(parents=True)
    save_results(record, folder)
    manifest = {"run": folder.name, "status": "ok", "notebooks": [
        {"notebook": "02_classical_baselines", "parameters": {"seed": seed, "output_dir": str(folder)},
         "status": "ok"}], "dataset_sha256": {"02_classical_baselines": sha256},
        "environment": {"git": {"commit": commit, "dirty": False}, "packages": {"numpy": "2.0"}}}
    (folder / "run.json").write_text(json.dumps(manifest))
    return folder


def test_a_clear_difference_names_the_run_to_deploy_with_mcnemars_p(tmp_path, capsys):
    # A is wrong on digits 0-13, B on 12 and 13 only, and on 100: B alone reads 12 right, A alone 1.
    _write_run(tmp_path / "a", wrong=list(range(14)), seed=1)
    _write_run(tmp_path / "b", wrong=[12, 13, 100], seed=2, commit="2" * 40)
    expected = binomtest(1, 13, 0.5).pvalue
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json"]) == EXIT_OK
    result = json.loads(capsys.readouterr().out)
    assert result["sentence"].startswith("Deploy run B (b): its svm reads these test digits better than run A's svm")
    assert f"McNemar's exact p = {expected:.2g}" in result["sentence"]
    assert result["paired"]["p_value"] == pytest.approx(expected)
    assert result["paired"]["only_a_right"] == [100] and result["paired"]["only_b_right"] == list(range(12))
    assert {"notebook": "02_classical_baselines", "parameter": "seed", "a": 1, "b": 2} in result["parameters"]
    assert {"what": "git commit", "a": "1111111111", "b": "2222222222"} in result["versions"]


def test_a_small_difference_is_said_to_be_within_the_noise_with_the_digits_needed(tmp_path, capsys):
    _write_run(tmp_path / "a", wrong=[0, 1, 2, 3])
    _write_run(tmp_path / "b", wrong=[0, 1, 4])  # B alone reads 2 and 3 right, A alone 4.
    page = tmp_path / "page.html"
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--html", str(page)]) == EXIT_OK
    printed = capsys.readouterr().out
    first_line = printed.splitlines()[0]
    assert first_line.startswith("The test digits cannot tell run A's svm (99.00%) and run B's svm (99.25%) apart")
    assert f"McNemar's exact p = {binomtest(1, 3, 0.5).pvalue:.2g}" in first_line
    # Connor's (1987) sample size for McNemar's test at 80% power, from the discordant shares seen here.
    psi, delta = 3 / N_DIGITS, 1 / N_DIGITS
    needed = math.ceil((norm.ppf(0.975) * math.sqrt(psi) + norm.ppf(0.8) * math.sqrt(psi - delta ** 2)) ** 2
                       / delta ** 2)
    assert f"would take about {needed:,} test digits ({needed - N_DIGITS:,} more)" in first_line
    html = page.read_text()
    assert "cannot tell run A" in html and str(tmp_path) not in html


def test_runs_on_other_digits_are_compared_by_their_figures_only_and_say_why(tmp_path, capsys):
    _write_run(tmp_path / "a", wrong=[0, 1], sha256="a" * 64, seed=1)
    _write_run(tmp_path / "b", wrong=[0], sha256="b" * 64, seed=7)
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json"]) == EXIT_OK
    result = json.loads(capsys.readouterr().out)
    assert result["paired"] is None
    assert result["sentence"].startswith("No paired test: the two models were tested on different digits")
    assert "split seed 1" in result["sentence"] and "split seed 7" in result["sentence"]


def test_what_is_no_run_is_rejected_with_the_fix(tmp_path, capsys):
    _write_run(tmp_path / "a", wrong=[0])
    (tmp_path / "sweep-seeds").mkdir()
    (tmp_path / "sweep-seeds" / "sweep.json").write_text("{}")
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "missing")]) == EXIT_REJECTED
    assert "run B: " in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "sweep-seeds"), str(tmp_path / "a")]) == EXIT_REJECTED
    assert "is a seed sweep; compare two of its seeds' folders" in capsys.readouterr().err
