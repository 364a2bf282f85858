"""Metrics with their intervals, paired tests, confidence scores, abstention and speed."""
