"""Tables formatted for reading, with pandas' Styler: one formatter per column, chosen from its name and values.

The rules, so that every page agrees:

- accuracies, intervals, F1, precision, recall and other scores: 4 decimals;
- seconds and milliseconds (columns named ``... s``, ``seconds``, ``ms``): 1 decimal, thousands separated;
- counts (integers, or floats that are all whole numbers, such as parameter counts): thousands separated;
- p-values: 4 decimals, in scientific notation below 0.001;
- shares listed in ``percent_columns``: percentages with 1 decimal;
- booleans: yes / no; missing values: a dash;
- text: left-aligned, and wrapped at a readable width when it is long;
- result columns that code names with underscores get the headers the other tables of the pages use
  (``val_accuracy`` reads "val accuracy", ``fit_seconds`` "fit s"; :data:`HEADERS`), while the table keeps
  its names for the code that reads it. scikit-learn's parameter names (``max_depth``, ``n_neighbors``) stay
  as typed, the names its documentation and the pages' settings text (``max_depth=16``) use.

A table whose ``label`` and ``name`` (or ``class``) columns say the same thing, as they do for digits,
keeps only the label.

Why the Styler and not an interactive table library: the pages must read the same with JavaScript off
and fetch nothing, and a static, formatted table does both (see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

MISSING = "–"
# Headers of result columns, by the names the code gives them.
HEADERS = {"val_accuracy": "val accuracy", "val_loss": "val loss", "train_seconds": "train s", "fit_seconds": "fit s",
           "predict_ms_per_1k": "predict ms / 1k", "batch_size": "batch size", "share_of_true": "share of true class"}
# Text longer than this many characters wraps inside a column of readable width.
WRAP_AFTER_CHARACTERS = 30
_HEADER_STYLE = [("text-align", "left"), ("white-space", "normal")]
_TEXT_STYLE = [("text-align", "left"), ("white-space", "nowrap")]
_WRAPPED_TEXT_STYLE = [("text-align", "left"), ("white-space", "normal"), ("min-width", "12em"), ("max-width", "34em")]

_P_VALUE = re.compile(r"\bp[-_ ]?value\b", re.IGNORECASE)
_SECONDS = re.compile(r"(^|[\s_])(s|seconds|ms)($|[\s_/])|seconds|ms per|ms / ", re.IGNORECASE)


def _format_p_value(value: float) -> str:
    """Return a p-value as text: ``0.0421``, or ``3.2e-05`` below 0.001."""
    if value is None or pd.isna(value):
        return MISSING
    return f"{value:.1e}" if value < 0.001 else f"{value:.4f}"


def format_interval(low: float, high: float) -> str:
    """Return a 95% interval as ``0.9645–0.9838`` (4 decimals), or a dash when either bound is missing."""
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return MISSING
    return f"{low:.4f}–{high:.4f}"


def _drop_redundant_names(table: pd.DataFrame) -> pd.DataFrame:
    """Drop a ``name`` or ``class`` column that only repeats the ``label`` column (digits named "0" to "9")."""
    if "label" not in table.columns:
        return table
    labels = table["label"].astype(str)
    redundant = [column for column in ("name", "class") if column in table.columns
                 and table[column].astype(str).reset_index(drop=True).equals(labels.reset_index(drop=True))]
    return table.drop(columns=redundant)


def _choose_formatter(name: str, values: pd.Series, *, percent: bool = False) -> Callable[[object], str] | None:
    """Return the formatter of one column by the rules above, or None to leave it as it is (text)."""
    def _guard(function):
        return lambda value: MISSING if value is None or (not isinstance(value, str) and pd.isna(value)) \
            else function(value)

    if pd.api.types.is_bool_dtype(values):
        return _guard(lambda value: "yes" if value else "no")
    if not pd.api.types.is_numeric_dtype(values):
        return _guard(str) if values.isna().any() else None
    if percent:
        return _guard(lambda value: f"{value:.1%}")
    if _P_VALUE.search(name):
        return _format_p_value
    if _SECONDS.search(name):
        return _guard(lambda value: f"{value:,.1f}")
    present = values.dropna().to_numpy(dtype=float)
    if pd.api.types.is_integer_dtype(values) or (present.size and np.all(present == np.round(present))
                                                 and not _is_score(name)):
        return _guard(lambda value: f"{int(round(value)):,}")
    return _guard(lambda value: f"{value:,.4f}")


def style_table(table: pd.DataFrame, *, percent_columns: Sequence[str] = (),
                highlight_rows: Sequence[bool] | None = None, highlight_style: str = "background-color: #d8ecd2; "
                "font-weight: bold"):
    """Return a Styler that shows ``table`` for reading, without its index.

    Parameters
    ----------
    table : DataFrame
    percent_columns : sequence of str
        Columns of shares (0-1) to show as percentages.
    highlight_rows : sequence of bool, optional
        One flag per row; flagged rows get ``highlight_style``.
    highlight_style : str
        CSS for highlighted rows.

    Returns
    -------
    styler : pandas.io.formats.style.Styler
    """
    table = _drop_redundant_names(table).reset_index(drop=True)
    formatters, text_styles = {}, []
    for position, column in enumerate(table.columns):
        values = table[column]
        formatter = _choose_formatter(str(column), values, percent=column in percent_columns)
        if formatter is not None:
            formatters[column] = formatter
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            longest = values.dropna().astype(str).str.len().max() if values.notna().any() else 0
            style = _WRAPPED_TEXT_STYLE if longest and longest > WRAP_AFTER_CHARACTERS else _TEXT_STYLE
            text_styles.append({"selector": f"td.col{position}", "props": style})
            text_styles.append({"selector": f"th.col{position}", "props": _HEADER_STYLE})
    styler = table.style.hide(axis="index").format(formatters, na_rep=MISSING)
    styler = styler.format_index(_read_header, axis="columns")
    styler = styler.set_table_styles(text_styles, overwrite=False)
    if highlight_rows is not None:
        flags = list(highlight_rows)
        styler = styler.apply(lambda row: [highlight_style if flags[row.name] else ""] * len(row), axis=1)
    return styler


def _read_header(name: object) -> str:
    """Return a column's header: the words of :data:`HEADERS` for a result column, else its name."""
    return HEADERS.get(str(name), str(name))


def _is_score(name: str) -> bool:
    """Whether a column holds a score between 0 and 1 (shown with 4 decimals even at 1.0 or 0.0)."""
    lowered = name.lower()
    return any(word in lowered for word in ("accuracy", "ci", "f1", "precision", "recall", "specificity", "share",
                                            "confidence", "loss", "rate", "dropout", "value", "distance"))
