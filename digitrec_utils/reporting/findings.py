"""Sentences on 05_deployment's saved findings, which its own page and 06's comparison both show."""

from __future__ import annotations

from digitrec_utils.evaluation.evaluation import format_percent_interval


def describe_field_drop(findings: dict, *, lead: str = "On other writers' digits:") -> str:
    """One sentence on the sets of other writers' digits, after ``lead``: accuracy, its drop from the clean test
    digits, and what the threshold answers there, saying where the answered fall short of its target (empty when
    no set was measured). A set that chose the threshold meets the target by construction, so only a set that was
    reported only can fall short."""
    parts = []
    target = (findings.get("abstention") or {}).get("target")
    for row in findings.get("field") or []:
        drop = 100 * (findings["clean_accuracy"] - row["accuracy"])
        answered = (f"{row['answered']:.1%} answered at {row['answered_accuracy']:.2%}" if row["answered"] > 0
                    else "none answered")
        if row["answered"] > 0 and target is not None and row["answered_accuracy"] < target:
            answered += f", short of the {target:.1%} target"
        parts.append(f"{row['set']} ({row['digits']:,} digits, {row['role']}) **{row['accuracy']:.2%}** right (95% CI "
                     f"{format_percent_interval(row['accuracy_low'], row['accuracy_high'], decimals=2)}), "
                     f"{drop:.1f} points below the clean test "
                     f"digits, {answered}")
    return f" {lead} {'; '.join(parts)}." if parts else ""


def describe_nondigit_shares(findings: dict) -> str:
    """``0.5% of generated shapes (a kind it trained on), 1.4% of Fashion-MNIST``, from 05's findings."""
    return ", ".join(f"{row['answered']:.1%} of {row['source']}"
                     + (" (a kind it trained on)" if row.get("kind_seen_in_training") else "")
                     for row in findings.get("nondigits", []))
