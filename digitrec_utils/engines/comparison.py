"""The comparison notebook's work: one table of every model of a run, paired tests, the recommendation.

Everything here reads results records (``reports/<run>/results/*.json``); nothing is retrained. The
recommendation is made on validation accuracy, as every notebook made its own choice, and the test
accuracy of the recommended model is reported as the expected accuracy on unseen images, never used to
choose. McNemar's exact test (mlxtend's, through ``evaluation.compare_paired``, the rule of every page)
compares the recommended model with each runner-up on the same test images, and tells on the validation
images which runner-ups are within noise of it, using the per-image predictions the records carry.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from digitrec_utils.declarations import MODEL_NOTEBOOKS
from digitrec_utils.evaluation.evaluation import (
    SIGNIFICANCE,
    compare_paired,
    count_shared_errors,
    format_percent_interval,
)
from digitrec_utils.reporting.findings import describe_field_drop, describe_nondigit_shares
from digitrec_utils.reporting.ranking import Recommendation, describe_model, read_paired_predictions
from digitrec_utils.reporting.tables import format_interval, style_table
from digitrec_utils.utils.paths import describe_path, is_inside

# Analyses the saved CNN on real mail; the model card reads its findings.
DEPLOYMENT_NOTEBOOK = "05_deployment"
ADAPTATION_NOTEBOOK = "08_adaptation"


def find_missing_notebooks(records: dict[str, dict], expected: Sequence[str] = MODEL_NOTEBOOKS) -> list[str]:
    """Return the model notebooks whose results record is absent (not run, or failed)."""
    return [notebook for notebook in expected if notebook not in records]


def describe_missing(records: dict[str, dict], results_dir: str | Path, *, run_dir: str | Path | None = None) -> str:
    """Say which model notebooks have results in ``results_dir`` and which do not.

    The folder is named relative to ``run_dir`` (this run's folder) or the project, never by its full path.
    """
    present = [notebook for notebook in MODEL_NOTEBOOKS if notebook in records]
    missing = find_missing_notebooks(records)
    text = (f"Results found in `{describe_path(results_dir, run_dir)}/`: "
            f"{', '.join(present) or 'none of the model notebooks'}.")
    if missing:
        text += (f" Absent: {', '.join(missing)} (not run, or failed before saving its results); the comparison "
                 "covers the others.")
    return text


def style_models(table: pd.DataFrame):
    """Return a pandas Styler, formatted for reading, that highlights the best model of each family.

    The notebook is implied by the family, the two interval bounds share one column, and the highlight
    says which model is the best of its family, so the table fits a page's width.
    """
    shown = table.rename(columns={"name": "model", "chosen in notebook": "chosen",
                                  "vs recommended (validation)": "on validation"})
    shown.insert(shown.columns.get_loc("95% CI low"), "95% interval",
                 [format_interval(low, high) for low, high in zip(table["95% CI low"], table["95% CI high"],
                                                                  strict=True)])
    shown = shown.drop(columns=["key", "notebook", "95% CI low", "95% CI high", "best of family"])
    return style_table(shown, highlight_rows=list(table["best of family"]))


def gather_recalls(records: dict[str, dict]) -> pd.DataFrame:
    """Return a models x classes table of per-class recall on test (rows keyed ``notebook/name``)."""
    rows = {}
    for notebook, record in records.items():
        names = record.get("dataset", {}).get("class_names")
        for model in record.get("models", []):
            per_class = model["per_class"]
            columns = [names[row["label"]] if names else str(row["label"]) for row in per_class]
            rows[f"{notebook}/{model['name']}"] = pd.Series([row["recall"] for row in per_class], index=columns)
    return pd.DataFrame(rows).T


def compare_with_runner_ups(records: dict[str, dict], table: pd.DataFrame, recommended: str, *,
                            n_runner_ups: int = 5) -> pd.DataFrame:
    """McNemar's exact test between the recommended model and each runner-up, on the same test images.

    Runner-ups are the next models by validation accuracy. The test is the exact one whatever the number of
    disagreeing images (:func:`digitrec_utils.evaluation.evaluation.compare_paired`), the rule of every page. A pair is
    only tested when both records hold the same test labels (same dataset, split and seed); otherwise the
    row says why not.

    Returns
    -------
    table : DataFrame
        One row per runner-up: runner-up, test accuracies, only recommended right, only runner-up right,
        p-value, reading.
    """
    keyed = table.set_index("key")
    first = keyed.loc[recommended]
    truth, predicted, paired = read_paired_predictions(records, recommended)
    rows = []
    for key in [key for key in table["key"] if key != recommended][:n_runner_ups]:
        other = keyed.loc[key]
        row = {"runner-up": key, "recommended test accuracy": first["test accuracy"],
               "runner-up test accuracy": other["test accuracy"]}
        if key not in paired:
            rows.append({**row, "reading": "not tested: the two records do not hold the same test images with "
                                           "per-image predictions (different dataset, split or seed)."})
            continue
        pair = compare_paired(truth, {recommended: predicted, key: paired[key]}, best=recommended).table.iloc[1]
        only_first, only_other = int(pair["only best right"]), int(pair["only this right"])
        p_value = float(pair["p-value"])
        rows.append({**row, "only recommended right": only_first, "only runner-up right": only_other,
                     "p-value": p_value,
                     "reading": _read_mcnemar(first["name"], other["name"], only_first, only_other, p_value)})
    return pd.DataFrame(rows)


def judge_on_validation(records: dict[str, dict], table: pd.DataFrame, recommended: str) -> pd.DataFrame:
    """Add ``vs recommended (validation)``: is each model within noise of the recommended one on validation?

    McNemar's exact test on the validation images (:func:`digitrec_utils.evaluation.evaluation.compare_paired`), for
    models whose records hold the same validation labels with per-image predictions; the others read
    ``not tested``. The recommendation itself is unchanged: this says which runner-ups the validation
    images cannot tell from it.
    """
    truth, predictions, paired = read_paired_predictions(records, recommended, "val")
    verdicts = {recommended: "recommended"}
    for key in table["key"]:
        if key == recommended:
            continue
        if key not in paired:
            verdicts[key] = "not tested"
            continue
        pair = compare_paired(truth, {recommended: predictions, key: paired[key]}, best=recommended).table.iloc[1]
        verdicts[key] = ("within noise" if not pair["distinguishable"]
                         else "better" if pair["only this right"] > pair["only best right"] else "worse")
    judged = table.copy()
    judged["vs recommended (validation)"] = [verdicts[key] for key in table["key"]]
    return judged


def _describe_within_noise(table: pd.DataFrame, recommendation: Recommendation) -> str:
    """Name the models that validation cannot tell from the recommended one, and those that are cheaper."""
    column = "vs recommended (validation)"
    if column not in table:
        return ""
    tied = table[table[column] == "within noise"]
    if tied.empty:
        tested = int((table[column] != "not tested").sum()) - 1
        return (f"McNemar's exact test on the validation images finds every other model tested ({tested}) worse "
                "than it." if tested > 0 else "No other model could be compared on the same validation images.")
    row = recommendation.row
    names = ", ".join(f"{name} ({accuracy:.4f})" for name, accuracy in zip(tied["name"], tied["val accuracy"],
                                                                         strict=True))
    text = (f"{names}: McNemar's exact test on the validation images cannot tell "
            f"{'it' if len(tied) == 1 else 'them'} from {row['name']} at the 5% level.")
    cheaper = []
    for _, other in tied.iterrows():
        reasons = []
        if pd.notna(other["predict ms / 1k"]) and other["predict ms / 1k"] < row["predict ms / 1k"]:
            reasons.append(f"predicts in {other['predict ms / 1k']:,.1f} ms per 1,000 images against "
                           f"{row['predict ms / 1k']:,.1f}")
        if pd.notna(other["train s"]) and other["train s"] < row["train s"]:
            reasons.append(f"trains in {other['train s']:,.1f} s against {row['train s']:,.1f}")
        if reasons:
            cheaper.append(f"{other['name']} {' and '.join(reasons)}")
    if cheaper:
        text += (" Cheaper among them: " + "; ".join(cheaper) + ". Setting `tolerance` makes the recommendation "
                 "the cheapest model within it.")
    return text


def summarize_paired_tests(recommended: str, tests: pd.DataFrame) -> str:
    """Return one sentence over every McNemar test: against which runner-ups the lead is real.

    The table's ``reading`` column says it for each pair; this sentence counts them, and says nothing twice.
    """
    if tests.empty:
        return f"There is no runner-up to compare {recommended} with."
    tested = tests.dropna(subset=["p-value"]) if "p-value" in tests else tests.iloc[0:0]
    untested = len(tests) - len(tested)
    real = tested[tested["p-value"] < SIGNIFICANCE] if len(tested) else tested
    ahead = real[real["only recommended right"] >= real["only runner-up right"]] if len(real) else real
    text = (f"Of {len(tested)} runner-up(s) tested on the same test images, {len(real)} differ from {recommended} by "
            f"more than chance at the 5% level")
    text += f" ({', '.join(ahead['runner-up'])} behind it)" if len(ahead) else ""
    text += ("; the others are within chance of it on this test set, so their order is not established."
             if len(real) < len(tested) else ".")
    if untested:
        text += f" {untested} could not be tested (different test images); the table says why."
    return text


def summarize_ranking(table: pd.DataFrame, recommendation: Recommendation | None, *, n_runner_ups: int = 5) -> dict:
    """Return the recommended model and its runner-ups (by validation accuracy) for the results record.

    The run's index page shows them as its headline: each with its test accuracy and 95% interval.
    """
    if recommendation is None:
        return {"recommended": None, "runner_ups": []}
    others = table[table["key"] != recommendation.key].head(n_runner_ups)
    return {"recommended": describe_model(recommendation.row),
            "runner_ups": [describe_model(row) for _, row in others.iterrows()]}


def _read_mcnemar(first: str, other: str, only_first: int, only_other: int, p_value: float) -> str:
    """A plain-language reading of one McNemar test."""
    if only_first + only_other == 0:
        return f"{first} and {other} are right on exactly the same images; there is no difference to test."
    leader = first if only_first >= only_other else other
    if p_value < SIGNIFICANCE:
        return (f"{leader} is right on more of the images where the two disagree ({max(only_first, only_other)} "
                f"against {min(only_first, only_other)}); a split this uneven would arise by chance with "
                f"probability {p_value:.2g} if both were equally accurate, so the difference is real at the 5% level.")
    return (f"They disagree on {only_first + only_other} images, {only_first} to {only_other}; with p = {p_value:.2g} "
            "this split is consistent with equal accuracy, so the test set does not show that either is better.")


def _describe_weaknesses(records: dict[str, dict], key: str, *, n_classes: int = 3, n_pairs: int = 3) -> str:
    """Name the recommended model's weakest classes (recall) and most-confused pairs on test."""
    notebook, name = key.split("/", 1)
    record = records[notebook]
    model = next(model for model in record["models"] if model["name"] == name)
    names = record.get("dataset", {}).get("class_names") or [str(label) for label in range(len(model["per_class"]))]
    weakest = sorted(model["per_class"], key=lambda row: row["recall"])[:n_classes]
    matrix = np.asarray(model["confusion_matrix"])
    off_diagonal = matrix - np.diag(np.diag(matrix))
    order = np.argsort(-off_diagonal, axis=None, kind="stable")[:n_pairs]
    pairs = [np.unravel_index(position, matrix.shape) for position in order]
    pair_text = "; ".join(f"{names[true]} read as {names[predicted]} ({matrix[true, predicted]} of "
                          f"{matrix[true].sum()})" for true, predicted in pairs if matrix[true, predicted] > 0)
    weakest_text = ", ".join(f"{names[row['label']]} {row['recall']:.3f}" for row in weakest)
    return f"Weakest classes (test recall): {weakest_text}. Most-confused pairs: {pair_text or 'none'}."


def _describe_shared_errors(records: dict[str, dict], key: str) -> str:
    """Say how many of the recommended model's test errors the other models of the run make too, or ""."""
    labels, predicted, others = read_paired_predictions(records, key)
    if not others:
        return ""  # Nothing to count against.
    missed, others_wrong = count_shared_errors(labels, predicted, others)
    if not missed.size:
        return ""  # No error to count.
    count = len(others)
    most, own = int(np.sum(2 * others_wrong >= count)), int(np.sum(others_wrong == 0))
    if count == 1:
        return (f" Of its {missed.size:,} test errors, the other model makes {most:,} too; the other {own:,} are "
                "its own.")
    return (f" Of its {missed.size:,} test errors, {most:,} are misread by at least half of the other {count} models "
            f"too (images hard for most of them), and {own:,} by none of them (its own).")


def describe_protocol(records: dict[str, dict]) -> str:
    """Say what was tuned on what, from the records' own parameters."""
    first = next(iter(records.values()))
    dataset = first.get("dataset", {})
    params = first.get("params", {})
    datasets = {record.get("dataset", {}).get("sha256") for record in records.values()}
    seeds = {record.get("seed") for record in records.values()}
    text = (f"Data: {dataset.get('name')} (SHA-256 {str(dataset.get('sha256'))[:12]}...), seed "
            f"{', '.join(map(str, sorted(seeds)))}. Each notebook carved a validation part "
            f"({params.get('val_fraction', '?')} of the training part) out of the training data. Every fit, "
            "early stop, grid search, cross-validation fold and choice of model used the training and validation "
            "parts only; the test part was read once per final model, after the choices were made. This "
            "comparison recommends on validation accuracy too, so the test figures below are unbiased estimates "
            "for the recommended model.")
    if len(datasets) > 1 or len(seeds) > 1:
        text += (" Warning: the records come from different datasets or seeds, so their test sets differ and the "
                 "accuracies are not directly comparable.")
    return text


def find_saved_model(results_dir: str | Path) -> Path | None:
    """Return ``<run>/models/cnn_selected.keras`` beside ``results_dir`` when the CNN notebook saved one."""
    path = Path(results_dir).parent / "models" / "cnn_selected.keras"
    return path if path.is_file() else None


def read_deployment(records: dict[str, dict]) -> dict | None:
    """Return the deployment findings of ``records`` (05_deployment's record), or None when it did not run."""
    record = records.get(DEPLOYMENT_NOTEBOOK)
    return record.get("deployment") if record else None


def read_adaptation(records: dict[str, dict]) -> dict | None:
    """Return 08_adaptation's learning curve from ``records``, or None when it did not run."""
    record = records.get(ADAPTATION_NOTEBOOK)
    return record.get("adaptation") if record else None


def _describe_adaptation_line(adaptation: dict) -> str:
    """The model card's line on the office's own digits: the saved CNN as it came and adapted on the most."""
    curve = [point for point in adaptation["curve"] if point["strategy"] == "at random"]
    parent = next((point for point in curve if point["labelled"] == 0), None)
    adapted = max((point for point in curve if point["labelled"] > 0), key=lambda point: point["labelled"],
                  default=None)
    if parent is None or adapted is None:
        return ""
    spread = (f"± {adapted['check_accuracy_std']:.2%} over {int(adapted['draws'])} draws" if adapted["draws"] > 1
              else "one draw")
    return (f"**On the office's own digits** (the saved CNN, {ADAPTATION_NOTEBOOK}, on "
            f"{adaptation['check_digits']:,} check digits of {adaptation['office_data']}): "
            f"{parent['check_accuracy']:.2%} as it came, {adapted['check_accuracy']:.2%} "
            f"({spread}) once adapted on "
            f"{int(adapted['labelled']):,} of them; `digitrec adapt` makes such a model, and its JSON says what it "
            "was adapted from and on.")


def _describe_deployment_lines(findings: dict) -> list[str]:
    """The model card's lines on real mail: accuracy under corruption, abstention and images of no digit."""
    low, high = findings["clean_accuracy_ci95"]
    worst = findings["worst_corruption"]
    unseen = findings.get("mean_unseen_corrupted_accuracy")
    unseen_text = (f", {unseen:.4f} over the kinds it never saw in training"
                   if unseen is not None and not np.isnan(unseen) and unseen != findings["mean_corrupted_accuracy"]
                   else "")
    lines = [f"**On real mail** ({findings['model']}, the saved CNN that `digitrec predict` uses; "
             f"{DEPLOYMENT_NOTEBOOK}): {findings['clean_accuracy']:.4f} on clean test digits (95% CI {low:.4f}-"
             f"{high:.4f}) as `predict` prepares them; {findings['mean_corrupted_accuracy']:.4f} on average over "
             f"corrupted copies at severity {findings['severity']}{unseen_text}; worst under "
             f"{worst['name'].replace('_', ' ')}, {worst['accuracy']:.4f}."]
    chosen = findings["abstention"]
    if chosen["threshold"] is None:
        lines.append(f"**When to hand a digit to a person**: no threshold reached {chosen['target']:.1%} on "
                     "validation, so the model answers every digit.")
    else:
        nondigits = describe_nondigit_shares(findings)
        score = chosen["score"].replace("_", " ")
        lines.append(f"**When to hand a digit to a person**: at the saved threshold ({score} >= "
                     f"{chosen['threshold']:.3f}, chosen on {chosen.get('chosen_on', 'validation')} for "
                     f"{chosen['target']:.1%}) it answers "
                     f"{chosen['coverage']:.1%} of clean test digits (95% CI "
                     f"{format_percent_interval(*chosen['coverage_ci95'])}) at {chosen['answered_accuracy']:.2%} "
                     f"accuracy (95% CI {format_percent_interval(*chosen['answered_accuracy_ci95'], decimals=2)}) "
                     "and routes the rest to a person"
                     + (f"; images of no digit answered anyway: {nondigits}." if nondigits else "."))
    if findings.get("field"):
        lines.append(describe_field_drop(findings, lead="**Other writers and scanners**:").strip())
    return lines


def describe_model_card(records: dict[str, dict], recommendation: Recommendation, saved_model: Path | None, *,
                        run_dir: str | Path | None = None, table: pd.DataFrame | None = None,
                        deployment: dict | None = None, adaptation: dict | None = None) -> str:
    """Return the model card as Markdown: the model, why, what is within noise of it, expected accuracy,
    weaknesses, behaviour on real mail (with ``deployment``, from :func:`read_deployment`), on the office's own
    digits (with ``adaptation``, from :func:`read_adaptation`), protocol, limits, use.

    The saved model is named relative to ``run_dir`` (this run's folder), never by its full path. With
    ``table`` from :func:`judge_on_validation`, the card names the runner-ups within noise on validation
    and which of them are cheaper.
    """
    row = recommendation.row
    record = records[row["notebook"]]
    n_test = int(np.asarray(next(model for model in record["models"] if model["name"] == row["name"])
                            ["confusion_matrix"]).sum())
    lines = [
        f"**Model**: {row['name']} ({row['family']}, from {row['notebook']}; its design is in the table of every "
        "model below).",
        f"**Why**: {recommendation.reason}",
        *([f"**Within noise of it**: {_describe_within_noise(table, recommendation)}"]
          if table is not None and "vs recommended (validation)" in table else []),
        f"**Expected accuracy on unseen images of the same distribution**: {row['test accuracy']:.4f}, with a 95% "
        f"interval of {row['95% CI low']:.4f} to {row['95% CI high']:.4f} (Wilson interval over {n_test:,} test "
        "images evaluated once).",
        f"**Where it fails**: {_describe_weaknesses(records, recommendation.key)}"
        f"{_describe_shared_errors(records, recommendation.key)}",
        *(_describe_deployment_lines(deployment) if deployment else []),
        *([line for line in [_describe_adaptation_line(adaptation)] if line] if adaptation else []),
        f"**Protocol**: {describe_protocol(records)}",
        "**Known limits**: the estimate holds for images like the training data: centred, size-normalized "
        f"28x28 {record['dataset'].get('name')} images. Photographs, other styles, several objects in one image, "
        "or images of none of the classes get a confident-looking answer that may be wrong; the model has no "
        "'none of these' class" + (", so only its confidence threshold keeps such images from an automatic answer."
                                   if deployment else "."),
    ]
    if saved_model is not None:
        description_path = saved_model.with_suffix(".json")
        saved_name = json.loads(description_path.read_text(encoding="utf-8")).get("model", "?") \
            if description_path.is_file() else "?"
        base = Path(run_dir) if run_dir is not None else saved_model.parent.parent
        shown = describe_path(saved_model, base)
        where = "this run's folder" if is_inside(saved_model, base) else "the project folder"
        usage = (f"`digitrec predict IMAGE_OR_DIR` classifies images with the saved CNN of the newest run whose CNN "
                 f"notebook succeeded; `digitrec predict IMAGE_OR_DIR --model {shown}`, from {where}, "
                 "always uses the compared run's: ")
        usage += (f"{saved_name}, the recommended model." if saved_name == row["name"] and row["notebook"] == "04_cnn"
                  else f"{saved_name}, the CNN notebook's choice (the recommended {row['name']} is not saved as a "
                       "Keras model).")
        lines.append(f"**How to use it**: {usage}")
    else:
        lines.append("**How to use it**: this run saved no CNN (04_cnn absent), so `digitrec predict` needs a model "
                     "from another run (`--model PATH`).")
    return "\n\n".join(lines)
