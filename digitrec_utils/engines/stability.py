"""The stability notebook's work: how much the suite's numbers and choices move from one seed to another.

A seed sweep (``digitrec run --seeds 1-5``) leaves one run folder per seed, ``seed<k>/``, each with the
results records of its notebooks. Everything here reads those records; nothing is retrained (with no
sweep folder, the notebook asks the classical engine for two seeds' records of quick models,
:func:`digitrec_utils.engines.classical.build_quick_sweep`). Each seed's recommendation is made the way
the comparison notebook makes it (:func:`digitrec_utils.reporting.ranking.recommend_model`, on validation
accuracy), and the lead of the sweep's recommended model over its runner-up is tested seed by seed with
the suite's paired test
(:func:`digitrec_utils.evaluation.evaluation.compare_paired`, McNemar's exact test).

The spread across seeds answers a question the Wilson interval of one run does not: that interval is the
uncertainty of the test sample alone, for one trained model; retraining with another seed (and, unless the
split is fixed, another validation split) moves the accuracy as well (Bouthillier et al., "Accounting for
Variance in Machine Learning Benchmarks", 2021).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from digitrec_utils.evaluation.evaluation import SIGNIFICANCE, compare_paired
from digitrec_utils.reporting.ranking import gather_models, read_predictions, recommend_model
from digitrec_utils.reporting.results import load_model_records
from digitrec_utils.reporting.tables import style_table

_SEED_FOLDER = re.compile(r"^seed(\d+)$")


def load_sweep_records(sweep_dir: str | Path) -> dict[int, dict[str, dict]]:
    """Read the model notebooks' records of every ``seed<k>/results/`` folder of a sweep.

    Parameters
    ----------
    sweep_dir : path-like
        The sweep folder, ``<reports>/<run>-seeds/``.

    Returns
    -------
    sweep : dict of int to dict
        Seed -> {notebook stem -> record}, seeds in increasing order; a seed whose model notebooks all
        failed has an empty dict.
    """
    sweep = {}
    for folder in Path(sweep_dir).iterdir():
        match = _SEED_FOLDER.match(folder.name)
        if match and folder.is_dir():
            sweep[int(match.group(1))] = load_model_records(folder)
    return dict(sorted(sweep.items()))


def gather_seed_table(sweep: dict[int, dict[str, dict]], *, tolerance: float = 0.0) -> pd.DataFrame:
    """Return one row per model and seed, with whether the model was chosen and recommended in that seed.

    Columns: seed, key (``notebook/name``), notebook, family, name, val accuracy, test accuracy, 95% CI low,
    95% CI high, chosen in notebook, recommended. The recommendation of each seed is the comparison
    notebook's (best validation accuracy; the cheapest within ``tolerance``).
    """
    tables = []
    for seed, records in sweep.items():
        table = gather_models(records)
        if table.empty:
            continue
        table.insert(0, "seed", seed)
        scored = table.dropna(subset=["val accuracy"])
        recommended = recommend_model(table, tolerance=tolerance).key if not scored.empty else None
        table["recommended"] = table["key"] == recommended
        tables.append(table)
    columns = ["seed", "key", "notebook", "family", "name", "val accuracy", "test accuracy", "95% CI low",
               "95% CI high", "chosen in notebook", "recommended"]
    if not tables:
        return pd.DataFrame(columns=columns)
    return pd.concat(tables, ignore_index=True)[columns]


def summarize_stability(seed_table: pd.DataFrame) -> pd.DataFrame:
    """Return one row per model: its test accuracy across seeds next to one run's 95% interval.

    Columns: key, model, family, seeds, mean, std (the sample standard deviation, ddof=1; empty with one
    seed), min, max, spread (max - min), single-run ±, the mean half-width of the per-seed Wilson
    intervals, mean val accuracy, chosen (seeds in which its notebook chose it), recommended (seeds in
    which the comparison recommended it). Most often recommended first, then by mean validation accuracy.
    """
    if seed_table.empty:
        return pd.DataFrame(columns=["key", "model", "family", "seeds", "mean", "std", "min", "max", "spread",
                                     "single-run ±", "mean val accuracy", "chosen", "recommended"])
    grouped = seed_table.groupby("key", sort=False)
    accuracy = grouped["test accuracy"]
    summary = pd.DataFrame({
        "model": grouped["name"].first(), "family": grouped["family"].first(), "seeds": accuracy.size(),
        "mean": accuracy.mean(), "std": accuracy.std(ddof=1), "min": accuracy.min(), "max": accuracy.max(),
        "single-run ±": grouped.apply(lambda rows: float(((rows["95% CI high"] - rows["95% CI low"]) / 2).mean()),
                                      include_groups=False),
        "mean val accuracy": grouped["val accuracy"].mean(),
        "chosen": grouped["chosen in notebook"].sum().astype(int),
        "recommended": grouped["recommended"].sum().astype(int),
    })
    summary.insert(summary.columns.get_loc("single-run ±"), "spread", summary["max"] - summary["min"])
    summary = summary.sort_values(["recommended", "mean val accuracy"], ascending=False, kind="stable")
    return summary.reset_index()


def style_summary(summary: pd.DataFrame):
    """Return the summary as the page shows it: accuracies with 4 decimals, choices as "k of n" seeds."""
    shown = pd.DataFrame({
        "model": summary["model"], "family": summary["family"],
        "mean test accuracy": summary["mean"], "accuracy std across seeds": summary["std"],
        "lowest accuracy": summary["min"], "highest accuracy": summary["max"],
        "accuracy spread (highest - lowest)": summary["spread"],
        "one run's 95% interval, ± accuracy": summary["single-run ±"],
        "mean val accuracy": summary["mean val accuracy"],
        "chosen in its notebook": [f"{chosen} of {seeds}" for chosen, seeds in zip(summary["chosen"], summary["seeds"],
                                                                                  strict=True)],
        "recommended": [f"{count} of {seeds}" for count, seeds in zip(summary["recommended"], summary["seeds"],
                                                                     strict=True)],
    })
    return style_table(shown, highlight_rows=list(summary["recommended"] > 0))


def read_split_mode(sweep: dict[int, dict[str, dict]]) -> bool:
    """Return whether the sweep kept one split (every record's ``split_seed`` the same and set) or not."""
    split_seeds = {record.get("params", {}).get("split_seed", -1) for records in sweep.values()
                   for record in records.values()}
    return len(split_seeds) == 1 and next(iter(split_seeds)) is not None and next(iter(split_seeds)) >= 0


def compare_lead_by_seed(sweep: dict[int, dict[str, dict]],
                         summary: pd.DataFrame) -> tuple[str | None, str | None, pd.DataFrame]:
    """Test, seed by seed, the lead of the sweep's recommended model over its runner-up.

    The sweep's recommended model is the one recommended in most seeds (ties go to the higher mean
    validation accuracy); its runner-up is the other model with the best mean validation accuracy. Both
    are chosen without the test images. In each seed where both have per-image test predictions on the
    same images, McNemar's exact test compares them.

    Returns
    -------
    recommended, runner_up : str or None
        Model keys (``notebook/name``); None when the sweep has fewer than two models.
    table : DataFrame
        One row per seed: seed, recommended test accuracy, runner-up test accuracy, difference, only
        recommended right, only runner-up right, p-value, reading.
    """
    if len(summary) < 2:
        return (summary["key"].iloc[0] if len(summary) else None), None, pd.DataFrame()
    recommended = summary["key"].iloc[0]
    others = summary[summary["key"] != recommended].sort_values("mean val accuracy", ascending=False, kind="stable")
    runner_up = others["key"].iloc[0]
    rows = []
    for seed, records in sweep.items():
        if not _has_model(records, recommended) or not _has_model(records, runner_up):
            rows.append({"seed": seed, "reading": "not run: a record of this seed lacks one of the two models."})
            continue
        truth, first = read_predictions(records, recommended)
        other_truth, second = read_predictions(records, runner_up)
        if truth is None or other_truth is None or not np.array_equal(truth, other_truth):
            rows.append({"seed": seed, "reading": "not tested: the two records do not hold the same test images."})
            continue
        pair = compare_paired(truth, {recommended: first, runner_up: second}, best=recommended).table
        only_first, only_second = int(pair["only best right"].iloc[1]), int(pair["only this right"].iloc[1])
        p_value = float(pair["p-value"].iloc[1])
        difference = float(pair["accuracy"].iloc[0] - pair["accuracy"].iloc[1])
        reading = ("leads, and the test tells them apart" if difference > 0 and p_value < SIGNIFICANCE
                   else "leads, within noise" if difference > 0
                   else "tied" if difference == 0
                   else "trails, and the test tells them apart" if p_value < SIGNIFICANCE else "trails, within noise")
        rows.append({"seed": seed, "recommended test accuracy": float(pair["accuracy"].iloc[0]),
                     "runner-up test accuracy": float(pair["accuracy"].iloc[1]), "difference": difference,
                     "only recommended right": only_first, "only runner-up right": only_second,
                     "p-value": p_value, "reading": reading})
    return recommended, runner_up, pd.DataFrame(rows)


def describe_stability(summary: pd.DataFrame, recommended: str | None, runner_up: str | None, lead: pd.DataFrame,
                       *, fixed_split: bool | None) -> str:
    """Say in words how stable the sweep's numbers and its recommendation are."""
    if summary.empty:
        return "No seed of the sweep has model results, so there is nothing to compare."
    seeds = int(summary["seeds"].max())
    what = {True: "the split was fixed, so only the training changed",
            False: "each seed drew its own split and training",
            None: "each seed drew its own split and training"}[fixed_split]
    first = summary.iloc[0]
    spread = (f"{first['model']}'s test accuracy ranged from {first['min']:.4f} to {first['max']:.4f} "
              f"(mean {first['mean']:.4f}" + (f", standard deviation {first['std']:.4f}" if seeds > 1 else "")
              + f"), against ±{first['single-run ±']:.4f} for the test sample of one run")
    text = (f"Over {seeds} seeds ({what}), the comparison recommended {first['model']} in {first['recommended']} "
            f"of {seeds}; {spread}.")
    if seeds > 1 and first["std"] * 2 > first["single-run ±"]:
        text += (f" Two standard deviations across seeds ({2 * first['std']:.4f}) exceed that half-width: retraining "
                 "moves the accuracy as much as the choice of test images does, so one run's interval understates "
                 "the uncertainty of a retrained model.")
    elif seeds > 1:
        text += (f" Two standard deviations across seeds ({2 * first['std']:.4f}) stay within that half-width: the "
                 "test sample, more than the seed, limits what one run can say.")
    if runner_up is not None and not lead.empty and "difference" in lead:
        tested = lead.dropna(subset=["difference"])
        ahead = int((tested["difference"] > 0).sum())
        significant = int(((tested["difference"] > 0) & (tested["p-value"] < SIGNIFICANCE)).sum())
        runner_name = runner_up.split("/", 1)[1]
        text += (f" Against the runner-up, {runner_name}, it was ahead on test in {ahead} of {len(tested)} seeds, "
                 f"and McNemar's test told them apart in {significant}.")
        if ahead == len(tested) and significant == len(tested):
            text += " The lead holds in every seed."
        elif ahead == len(tested):
            text += " The sign of the lead holds in every seed, but not every seed's test images can tell them apart."
        else:
            text += (" The lead does not hold in every seed: treat the two as equals until more seeds or data say "
                     "otherwise.")
    return text


def write_headline(summary: pd.DataFrame, recommended: str | None, *, n_seeds: int) -> str:
    """Return the sweep's one-line headline: the model recommended most often, and its accuracy across seeds."""
    if recommended is None:
        return "No model results in the sweep."
    first = summary.iloc[0]
    spread = f" ± {first['std']:.4f} (std across seeds)" if n_seeds > 1 else ""
    return (f"{n_seeds} seeds; {first['model']} recommended in {int(first['recommended'])} of them, test accuracy "
            f"{first['mean']:.4f}{spread}")


def summarize_for_record(summary: pd.DataFrame, recommended: str | None, runner_up: str | None, lead: pd.DataFrame,
                         *, seeds, fixed_split: bool | None) -> dict:
    """Return the ``stability`` section of the results record (``stability.json``).

    Values stay as pandas gives them; :func:`digitrec_utils.reporting.results.build_results` makes them plain JSON
    (NaN becomes null), as it does for every record.
    """

    def _entries(table: pd.DataFrame) -> list[dict]:
        """The table's rows with names fit for JSON keys ("single-run ±" becomes single_run_half_width)."""
        return [{re.sub(r"\W+", "_", str(key).replace("±", "half width")).strip("_"): value
                 for key, value in row.items()} for row in table.to_dict("records")]

    differences = lead["difference"].dropna() if "difference" in lead else pd.Series(dtype=float)
    return {"seeds": [int(seed) for seed in seeds], "split": "fixed" if fixed_split else "varied",
            "models": _entries(summary), "recommended": recommended, "runner_up": runner_up, "lead": _entries(lead),
            "lead_holds": bool(len(differences)) and bool((differences > 0).all())}


def _has_model(records: dict[str, dict], key: str) -> bool:
    notebook, name = key.split("/", 1)
    return any(model["name"] == name for model in records.get(notebook, {}).get("models", []))
