"""A run's models gathered from its results records, and the one recommended on validation accuracy.

06_model_comparison shows them; 07_stability counts, over seeds, how often each model is recommended.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from digitrec_utils.reporting.results import decode_labels


@dataclass
class Recommendation:
    """The recommended model and the reasons, computed from the records.

    Attributes
    ----------
    row : Series
        The recommended model's row of :func:`gather_models`.
    reason : str
    candidates : DataFrame
        The models within ``tolerance`` of the best validation accuracy, of which the cheapest won.
    """

    row: pd.Series
    reason: str
    candidates: pd.DataFrame

    @property
    def key(self) -> str:
        return self.row["key"]


def gather_models(records: dict[str, dict]) -> pd.DataFrame:
    """Return one row per model of every record, best validation accuracy first.

    Columns: key (``notebook/name``), notebook, family, name, reproduces, parameters, train s,
    predict ms / 1k, val accuracy, test accuracy, 95% CI low, 95% CI high, macro F1, chosen in notebook,
    best of family (by validation accuracy).
    """
    rows = []
    for notebook, record in records.items():
        for model in record.get("models", []):
            low, high = model["test_accuracy_ci95"]
            rows.append({
                "key": f"{notebook}/{model['name']}", "notebook": notebook, "family": model["family"],
                "name": model["name"], "reproduces": model.get("description", ""),
                "parameters": model.get("params_count"), "train s": model.get("train_seconds"),
                "predict ms / 1k": model.get("predict_ms_per_1k"), "val accuracy": model.get("val_accuracy"),
                "test accuracy": model["test_accuracy"], "95% CI low": low, "95% CI high": high,
                "macro F1": model["macro_f1"], "chosen in notebook": model["name"] == record.get("selected_model"),
            })
    columns = ["key", "notebook", "family", "name", "reproduces", "parameters", "train s", "predict ms / 1k",
               "val accuracy", "test accuracy", "95% CI low", "95% CI high", "macro F1", "chosen in notebook"]
    table = pd.DataFrame(rows, columns=columns)
    if table.empty:
        return table.assign(**{"best of family": pd.Series(dtype=bool)})
    table = table.sort_values(["val accuracy", "test accuracy"], ascending=False, na_position="last",
                              kind="stable").reset_index(drop=True)
    best = table.dropna(subset=["val accuracy"]).groupby("family")["val accuracy"].idxmax()
    table["best of family"] = table.index.isin(best.to_numpy())
    return table


def recommend_model(table: pd.DataFrame, *, tolerance: float = 0.0) -> Recommendation:
    """Recommend the model with the best validation accuracy; among those within ``tolerance`` of it, the cheapest.

    Cost is the prediction time per 1,000 images, then the training time. Test accuracy plays no part.

    Parameters
    ----------
    table : DataFrame
        From :func:`gather_models`.
    tolerance : float, default=0.0
        Validation accuracy a model may trail the best by and still count as tied.
    """
    scored = table.dropna(subset=["val accuracy"])
    if scored.empty:
        raise ValueError("no model has a validation accuracy, so none can be recommended honestly.")
    best = float(scored["val accuracy"].max())
    candidates = scored[scored["val accuracy"] >= best - tolerance]
    cheapest = candidates.sort_values(["predict ms / 1k", "train s"], na_position="last", kind="stable")
    row = cheapest.iloc[0]
    reason = (f"{row['name']} ({row['family']}, {row['notebook']}) has the best validation accuracy, "
              f"{row['val accuracy']:.4f}")
    if len(candidates) > 1:
        others = ", ".join(f"{name} ({accuracy:.4f})" for name, accuracy
                           in zip(candidates["name"], candidates["val accuracy"], strict=True) if name != row["name"])
        reason = (f"{row['name']} ({row['family']}, {row['notebook']}) is the cheapest to run "
                  f"({row['predict ms / 1k']:.1f} ms per 1,000 images) of the models within {tolerance:.4f} of the "
                  f"best validation accuracy ({best:.4f}): the others were {others}")
    return Recommendation(row=row, reason=reason + ".", candidates=candidates)


def describe_model(row: pd.Series) -> dict:
    """Return one row of :func:`gather_models` as results records and index pages name a model.

    Keys: name, notebook, family, val_accuracy (None where the model has none), test_accuracy and
    test_accuracy_ci95 (low, high).
    """
    return {"name": row["name"], "notebook": row["notebook"], "family": row["family"],
            "val_accuracy": None if pd.isna(row["val accuracy"]) else float(row["val accuracy"]),
            "test_accuracy": float(row["test accuracy"]),
            "test_accuracy_ci95": [float(row["95% CI low"]), float(row["95% CI high"])]}


def recommend_from_records(records: dict[str, dict], *, tolerance: float = 0.0) -> dict | None:
    """Return the model the comparison notebook would recommend from these records, or None if it could not.

    A run without 06_model_comparison (``digitrec run --only cnn``) still has a model to name: the one
    :func:`recommend_model` picks on validation accuracy, described by :func:`describe_model`. None where
    no model has a validation accuracy.

    Parameters
    ----------
    records : dict of str to dict
        Notebook stem -> results record, as ``load_run_results`` reads them; only the models are read.
    tolerance : float, default=0.0
        As for :func:`recommend_model`.
    """
    table = gather_models(records)
    if table.dropna(subset=["val accuracy"]).empty:
        return None
    return describe_model(recommend_model(table, tolerance=tolerance).row)


def read_predictions(records: dict[str, dict], key: str, split: str = "test"):
    """Return (labels, predictions) of one model on ``split`` ("test" or "val"), or (None, None) if absent."""
    notebook, name = key.split("/", 1)
    record = records[notebook]
    model = next(model for model in record["models"] if model["name"] == name)
    if record.get(f"{split}_labels") is None or model.get(f"{split}_predictions") is None:
        return None, None
    return decode_labels(record[f"{split}_labels"]), decode_labels(model[f"{split}_predictions"])


def read_paired_predictions(records: dict[str, dict], key: str, split: str = "test"):
    """Return one model's (labels, predictions) on ``split`` and every other model's predictions on the same images.

    Only models whose records hold the same labels with per-image predictions can be paired with it (same
    dataset, split and seed); the others are left out.

    Returns
    -------
    labels, predictions : ndarray or None
        As :func:`read_predictions` returns them for ``key``.
    others : dict of str to ndarray
        Keyed ``notebook/name`` like ``key``; empty where ``key`` has no predictions on ``split``.
    """
    labels, predictions = read_predictions(records, key, split)
    others = {}
    if labels is None:
        return labels, predictions, others
    for notebook, record in records.items():
        for model in record.get("models", []):
            other = f"{notebook}/{model['name']}"
            if other == key:
                continue
            other_labels, other_predictions = read_predictions(records, other, split)
            if other_labels is not None and np.array_equal(other_labels, labels):
                others[other] = other_predictions
    return labels, predictions, others
