"""08's simulated stream: the model's own digits turning into digits it reads badly, with every label known."""

from __future__ import annotations

import numpy as np

from digitrec_utils.data.labelled import LabelledSource
from digitrec_utils.engines import monitoring
from digitrec_utils.models.model_files import load_model_bundle


def test_the_alarm_rings_once_the_stream_turns_and_the_estimate_follows_the_fall(saved_model, splits):
    model, _ = load_model_bundle(saved_model)
    # The office writes its digits turned a quarter, which the model reads badly: the truth is built in.
    turned = np.rot90(splits.x_test[:600], axes=(1, 2))
    office = LabelledSource("turned", "test digits turned a quarter", 600, None, (turned, splits.y_test[:600]),
                            "0" * 64)
    reference = monitoring.find_reference(model, None, splits)
    assert reference.source == "the model's validation digits (built here)"
    stream = monitoring.simulate_stream(model, reference, splits, office, score_name="top_probability",
                                        threshold=0.5, target=0.99, window=100, n_windows=6, seed=0)
    windows = stream.windows
    assert windows["office share"].tolist()[:3] == [0.0, 0.0, 0.0] and windows["office share"].iloc[-1] == 1.0
    assert (windows["verdict"].iloc[:3] == "no change").all() and windows["verdict"].iloc[-1] == "worse"
    assert stream.first_alarm["office share"] > 0 and stream.false_alarms <= 2
    # The true accuracy falls as the turned digits come in, and the estimate falls with it.
    assert windows["true accuracy"].iloc[-1] < windows["true accuracy"].iloc[0] - 0.3
    assert windows["estimated accuracy"].iloc[-1] < windows["estimated accuracy"].iloc[0] - 0.2
    summary = monitoring.summarize_stream(stream)
    assert summary["first_alarm_window"] == int(stream.first_alarm["window"]) and summary["clean_windows"] == 20
    described = stream.describe("turned")
    assert f"the alarm first rang at window {summary['first_alarm_window']}" in described
    assert f"On 20 windows of the model's own test digits it rang {stream.false_alarms} time" in described
