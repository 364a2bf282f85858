"""Metrics with their intervals, paired tests, confidence scores, abstention, robustness and speed.

The names the notebooks and the CLI use are re-exported here; everything else is imported from its module.
"""

from digitrec_utils.evaluation.evaluation import (
    Evaluation,
    compare_paired,
    compute_accuracy_interval,
    describe_against_reports,
    describe_choice,
    describe_selection,
    evaluate_model,
    summarize_evaluations,
)
from digitrec_utils.evaluation.robustness import check_corruption_parameters, measure_robustness, score_images
from digitrec_utils.evaluation.speed import measure_speed

__all__ = [
    "Evaluation",
    "check_corruption_parameters",
    "compare_paired",
    "compute_accuracy_interval",
    "describe_against_reports",
    "describe_choice",
    "describe_selection",
    "evaluate_model",
    "measure_robustness",
    "measure_speed",
    "score_images",
    "summarize_evaluations",
]
