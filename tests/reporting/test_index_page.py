"""The index pages' times, written as a reader writes them (``reporting.index_page``)."""

from __future__ import annotations

import pytest

from digitrec_utils.reporting.index_page import format_moment
from digitrec_utils.utils.progress import format_duration


@pytest.mark.parametrize("text, expected", [
    ("2026-11-26T21:27:09+00:00", "26 Nov 2026, 21:27 UTC"),
    ("2026-11-06T01:07:09+02:00", "5 Nov 2026, 23:07 UTC"),  # Another zone is shown in UTC, the day too.
    ("2026-11-06T09:05:00", "6 Nov 2026, 09:05"),  # No zone: none is claimed.
    ("not a time", "not a time"),  # Whatever the manifest holds is still shown.
])
def test_a_start_time_reads_as_a_date_and_a_time_in_utc(text, expected):
    assert format_moment(text) == expected


@pytest.mark.parametrize("seconds, expected", [
    (8.04, "8.0 s"),
    (59.94, "59.9 s"),
    (59.96, "1 min 0 s"),  # Never "60.0 s".
    (91.4, "1 min 31 s"),
    (1313.3, "21 min 53 s"),
    (3725.0, "1 h 2 min"),
])
def test_a_duration_reads_in_the_units_a_person_counts_in(seconds, expected):
    assert format_duration(seconds) == expected
