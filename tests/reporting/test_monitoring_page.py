"""The monitor page's choices that its command's tests (tests/application/test_monitor_command.py) do not reach."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from digitrec_utils.reporting.monitoring_page import _find_moved_properties


def test_a_property_whose_spread_moved_gets_its_histogram_once():
    tests = pd.DataFrame({"test": ["slant spread", "slant", "height spread", "probability of class 3", "width"],
                          "kind": ["image", "image", "image", "probabilities", "image"],
                          "changed": [True, True, True, True, False]})
    outcome = SimpleNamespace(stream=SimpleNamespace(check=SimpleNamespace(tests=tests)),
                              reference_properties={"slant": [0.1], "height": [20.0], "width": [12.0]})
    # The spread's histogram is the property's own: slant once, then height; the class and the unchanged width not.
    assert _find_moved_properties(outcome) == ["slant", "height"]
