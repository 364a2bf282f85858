"""Tables formatted for reading (``reporting.tables.style_table``): each column's numbers by its name and values,
and result columns headed in words."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from digitrec_utils.reporting.tables import MISSING, style_table


def _headers_and_cells(table: pd.DataFrame) -> tuple[list[str], list[str]]:
    html = style_table(table).to_html()
    headers = [re.sub(r"<[^>]+>", "", header).strip() for header in re.findall(r"<th[^>]*>(.*?)</th>", html, re.S)]
    cells = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", html, re.S)]
    return headers, cells


def test_result_columns_read_as_words_while_parameters_and_the_table_keep_their_names():
    table = pd.DataFrame({"max_depth": [3, 12], "val_accuracy": [0.91234567, 1.0],
                          "fit_seconds": [1234.56, 0.04], "p-value vs best": [1.0, 0.00002]})
    headers, cells = _headers_and_cells(table)
    assert headers == ["max_depth", "val accuracy", "fit s", "p-value vs best"]
    assert cells == ["3", "0.9123", "1,234.6", "1.0000", "12", "1.0000", "0.0", "2.0e-05"]
    assert list(table.columns) == ["max_depth", "val_accuracy", "fit_seconds", "p-value vs best"]


def test_missing_values_are_a_dash_and_booleans_yes_or_no():
    table = pd.DataFrame({"converged": [True, False], "test accuracy": [0.5, np.nan]})
    headers, cells = _headers_and_cells(table)
    assert headers == ["converged", "test accuracy"]
    assert cells == ["yes", "0.5000", "no", MISSING]
