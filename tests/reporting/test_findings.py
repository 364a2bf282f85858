"""Sentences on 05's saved findings that its page and 06's model card share (``reporting.findings``)."""

from __future__ import annotations

from digitrec_utils.reporting.findings import describe_field_drop


def _field_row(name: str, role: str, answered_accuracy: float, answered: float = 0.9) -> dict:
    return {"set": name, "role": role, "digits": 1_000, "accuracy": 0.96, "accuracy_low": 0.95, "accuracy_high": 0.97,
            "answered": answered, "answered_accuracy": answered_accuracy}


def test_a_set_whose_answered_digits_miss_the_target_is_said_to_fall_short_and_no_other():
    findings = {"clean_accuracy": 0.99, "abstention": {"target": 0.995},
                "field": [_field_row("semeion", "chose the threshold", 0.9953),
                          _field_row("optdigits", "reported only", 0.9943),
                          _field_row("other", "reported only", float("nan"), answered=0.0)]}
    text = describe_field_drop(findings)
    assert "optdigits (1,000 digits, reported only) **96.00%** right" in text
    assert "90.0% answered at 99.43%, short of the 99.5% target" in text
    assert text.count("short of") == 1 and "none answered" in text


def test_without_a_threshold_target_nothing_is_said_to_fall_short():
    findings = {"clean_accuracy": 0.99, "field": [_field_row("optdigits", "reported only", 0.90)]}
    assert "short of" not in describe_field_drop(findings)
    assert describe_field_drop({"clean_accuracy": 0.99, "field": []}) == ""
