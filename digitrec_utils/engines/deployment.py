"""How a saved model behaves on real mail: robustness, abstention, images of no digit, speed (``05_deployment``).

The notebook analyses a model saved with its JSON description
(:func:`digitrec_utils.models.model_files.save_model_bundle`). The JSON says how the model's split was made, and
:func:`rebuild_split` makes exactly that split again, so that no training image is ever scored as
validation or test. Every image reaches the model through :func:`digitrec_utils.data.preparation.prepare_image`,
the preparation that ``digitrec predict`` applies, so that the threshold chosen here means the same there.

What each part of the data is for:

- validation digits, and non-digit images kept for the choice: the choice of the confidence score and of
  its threshold;
- test digits, their corrupted copies and other non-digit images: reporting only, once.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from digitrec_utils.data.loading import load_dataset
from digitrec_utils.data.nondigits import make_nondigits
from digitrec_utils.evaluation import abstention, scores
from digitrec_utils.evaluation.evaluation import compute_accuracy_interval, format_percent_interval
from digitrec_utils.evaluation.robustness import Robustness, Scored, score_images
from digitrec_utils.evaluation.speed import SpeedMeasurement, measure_onnx_speed, measure_speed
from digitrec_utils.exceptions import DatasetError, ExportError
from digitrec_utils.imaging.envelopes import make_envelope
from digitrec_utils.imaging.reading import read_pixel_images
from digitrec_utils.models.acquisition import DIGIT_DATASETS
from digitrec_utils.models.export import export_keras_model
from digitrec_utils.models.model_files import record_abstention
from digitrec_utils.reporting.findings import describe_field_drop, describe_nondigit_shares
from digitrec_utils.reporting.tables import format_interval, style_table
from digitrec_utils.utils.paths import is_inside


def choose_score(validation: Scored, nondigits: Scored) -> tuple[str, pd.DataFrame]:
    """Pick the confidence score that best separates validation digits from the non-digit images kept for choice.

    The top probability stays unless another score has a higher AUROC on these validation images.

    Returns
    -------
    name : str
    ranking : DataFrame with columns score and auroc (see :func:`digitrec_utils.evaluation.scores.rank_scores`)
    """
    ranking = scores.rank_scores(validation.probabilities[validation.usable], nondigits.probabilities)
    best = ranking.iloc[0]
    top = float(ranking.loc[ranking["score"] == "top_probability", "auroc"].iloc[0])
    return (str(best["score"]) if best["auroc"] > top else "top_probability"), ranking


@dataclass
class ValidationChoice:
    """What was chosen on validation data: the confidence score and its threshold.

    Attributes
    ----------
    score : str
    ranking : DataFrame
        Each score's AUROC, validation digits against the non-digit images kept for the choice.
    threshold : ThresholdChoice
    validation : Scored
        The model's answers for the validation digits.
    """

    score: str
    ranking: pd.DataFrame
    threshold: abstention.ThresholdChoice
    validation: Scored


def choose_on_validation(model, images: np.ndarray, labels: np.ndarray, sources: Sequence[NonDigitSource], *,
                         target: float) -> ValidationChoice:
    """Choose the confidence score and its threshold from validation digits and the non-digits kept for choice.

    The only images scored here are ``images`` (the validation part) and each source's ``for_choice``
    images; the test part and the non-digit images of the report never reach a choice.
    """
    abstention.check_target(target)
    validation = score_images(model, images)
    nondigit = score_images(model, np.concatenate([source.for_choice for source in sources]))
    name, ranking = choose_score(validation, nondigit)
    threshold = abstention.choose_threshold(validation.score(name), validation.correct(labels), target)
    return ValidationChoice(name, ranking, threshold, validation)


def describe_score_choice(name: str, ranking: pd.DataFrame, source: str) -> str:
    """One sentence on which score was chosen and why."""
    aurocs = dict(zip(ranking["score"], ranking["auroc"], strict=True))
    others = ", ".join(f"{score.replace('_', ' ')} {auroc:.3f}" for score, auroc in aurocs.items() if score != name)
    verdict = ("it separates them best" if name != "top_probability"
               else "no other score separates them better")
    return (f"The confidence score is the **{name.replace('_', ' ')}**: on validation digits against {source} "
            f"kept for this choice, its AUROC is {aurocs[name]:.3f} ({others}); {verdict}.")


def style_robustness(robustness: Robustness):
    """Return the per-corruption table at the headline severity, worst first, for reading."""
    table = robustness.at_headline().sort_values("accuracy")
    shown = pd.DataFrame({
        "corruption": table["corruption"].str.replace("_", " "),
        "seen in training": table["seen"],
        "accuracy": table["accuracy"],
        "95% interval": [format_interval(low, high) for low, high in zip(table["accuracy_low"],
                                                                          table["accuracy_high"], strict=True)],
        "answered": table["answered"],
        "accuracy of answered": table["answered_accuracy"],
        "95% interval of answered": [format_interval(low, high) for low, high in
                                     zip(table["answered_low"], table["answered_high"], strict=True)],
    })
    return style_table(shown.reset_index(drop=True), percent_columns=("answered",))


@dataclass
class NonDigitSource:
    """Images of none of the model's classes from one source, split into a part for choices and one for the report."""

    name: str
    description: str
    for_choice: np.ndarray
    for_report: np.ndarray
    kinds: list[str] = field(default_factory=list)
    in_training: bool = False


def collect_nondigit_sources(dataset: str, *, n_images: int, seed: int, data_dir: str | None = None,
                             trained_on: str | None = None) -> tuple[list[NonDigitSource], list[str]]:
    """Gather images that are not of the model's classes: generated shapes always, and another dataset where present.

    For a digits model the other dataset is Fashion-MNIST (its training images for the choice, its test
    images for the report); for a clothes model, the embedded MNIST sample (its first half for the choice,
    its second half for the report). The generated images (:func:`digitrec_utils.data.nondigits.make_nondigits`)
    use one seed for the choice and another for the report.

    ``trained_on`` names the source of the images of no digit the model trained on (outlier exposure, from
    its JSON); a source of that name is marked ``in_training``: its images are new, but its kind is not,
    so it is no independent measure of rejection.

    Returns
    -------
    sources : list of NonDigitSource
    notes : list of str
        Sources that could not be used, and why.
    """
    choice_images, kinds = make_nondigits(n_images, seed=seed)
    report_images, _ = make_nondigits(n_images, seed=seed + 1)
    sources = [NonDigitSource("generated shapes", "blank squares, noise, rectangles, ellipses, polygons, scribbles, "
                              "lines and blots, drawn here with scikit-image", choice_images, report_images,
                              sorted(set(kinds)), in_training=trained_on == "generated shapes")]
    notes = []
    try:
        if dataset in DIGIT_DATASETS:
            other = load_dataset("fashion-mnist", data_dir=data_dir or None, download=False)
            sources.append(NonDigitSource("Fashion-MNIST", "clothes (Fashion-MNIST: training images for the "
                                          "choice, test images for the report)", other.x_train[:n_images],
                                          other.x_test[:n_images]))
        else:
            other = load_dataset("mnist-sample")
            half = len(other.y_train) // 2
            sources.append(NonDigitSource("MNIST digits", "handwritten digits (the embedded MNIST sample: first "
                                          "half for the choice, second half for the report)",
                                          other.x_train[:min(n_images, half)],
                                          other.x_train[half:half + n_images]))
    except DatasetError:
        # The error's list of places tried names this machine's folders, which a report does not show.
        notes.append("Fashion-MNIST was not found on this machine, so only generated shapes are used. To add real "
                     "images of no digit, install Debian's dataset-fashion-mnist, or put its four IDX files in "
                     "$DIGITREC_DATA/fashion-mnist/.")
    return sources, notes


def measure_nondigits(model, sources: Sequence[NonDigitSource], *, score: str, threshold: float | None,
                      test_digits: Scored) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Share of each source's report images that would be answered at ``threshold``, and the AUROC of ``score``.

    Returns
    -------
    table : DataFrame with columns source, in_training, images, answered, answered_low, answered_high, auroc
        The AUROC separates the test digits (positive) from the source's report images.
    values : dict of str to ndarray
        Each source's report images' scores, for the figure.
    """

    rows, scores_by_source = [], {}
    digit_scores = test_digits.score(score)
    for source in sources:
        values = score_images(model, source.for_report).score(score)
        scores_by_source[source.name] = values
        answered = int((values >= (threshold if threshold is not None else 0.0)).sum())
        low, high = compute_accuracy_interval(answered, len(values))
        truth = np.concatenate([np.ones(len(digit_scores)), np.zeros(len(values))])
        rows.append({"source": source.name, "in_training": source.in_training, "images": len(values),
                     "answered": answered / len(values),
                     "answered_low": low, "answered_high": high,
                     "auroc": float(roc_auc_score(truth, np.concatenate([digit_scores, values])))})
    return pd.DataFrame(rows), scores_by_source


def save_abstention(model_path: Path, *, score: str, threshold: float | None, target: float,
                    chosen_on: str = "validation", **details) -> Path:
    """Add the chosen score, threshold and target to the saved model's JSON, keeping the earlier ones.

    ``digitrec predict`` then reports ``accepted`` for each image; a threshold of None (no threshold reached
    the target) is saved as 0, which accepts every image, as the report says. The entry goes into the
    model's threshold history (:func:`digitrec_utils.models.model_files.record_abstention`), so that a later run of
    this notebook, or ``digitrec calibrate --write``, adds to it instead of replacing it. The preparation
    version, digitrec version and git commit it was chosen with are saved too: ``predict`` and ``read``
    warn when they prepare images differently (:func:`digitrec_utils.models.model_files.check_calibration`).
    """
    record_abstention(model_path, score=score, threshold=threshold, target=target, chosen_on=chosen_on, **details)
    return Path(model_path).with_suffix(".json")


def keep_threshold(saved_path: Path | None, output_dir: str, *, score: str, threshold: float | None, target: float,
                   chosen_on: str, **details) -> str:
    """Save the chosen threshold into the model's JSON when the model belongs to this run; say what was done.

    Only a model inside this run's folder (``output_dir``) gets it (:func:`save_abstention`): a model from
    elsewhere keeps its JSON as it is, and the sentence says how to use the threshold with it.
    """
    if saved_path is None:
        return "No saved model (the small CNN trained here is not saved); nothing to update."
    if not output_dir or not is_inside(saved_path, output_dir):
        return ("The model lies outside this run's folder, so its JSON is left as it is; use "
                f"`digitrec predict --model ... --min-confidence {threshold or 0:.4f}`.")
    json_path = save_abstention(saved_path, score=score, threshold=threshold, target=target, chosen_on=chosen_on,
                                **details)
    return (f"Saved the {score.replace('_', ' ')} threshold {threshold or 0:.4f} into {json_path.name} beside the "
            "run's model.")


def measure_runtime_speeds(model, images: np.ndarray, *, batch_size: int = 1000) -> tuple[list, str]:
    """Time the model in Keras and, when onnxruntime is installed, exported to ONNX and run by ONNX Runtime.

    Both are timed on the same images, one after the other in this process, so that their ratio holds on a
    shared machine better than either figure alone.

    Parameters
    ----------
    model : keras.Model
    images : ndarray of shape (n_images, 28, 28, 1)
        Prepared model inputs.
    batch_size : int, default=1000
        Of the throughput measurement.

    Returns
    -------
    speeds : list of SpeedMeasurement
        Keras's first.
    note : str
        What was timed and, for ONNX Runtime, the largest difference between its probabilities and Keras's
        on ``images``, or why ONNX Runtime was not timed.
    """
    speeds = [measure_speed(model, images, batch_size=batch_size)]
    if importlib.util.find_spec("onnxruntime") is None:
        return speeds, ("Only Keras was timed: ONNX Runtime is not installed (`pip install 'digitrec[export]'` adds "
                        "it, and `digitrec export` then writes the model for it).")
    import onnxruntime  # Optional: the export extra.

    with tempfile.TemporaryDirectory() as folder:
        try:
            path = export_keras_model(model, format_name="onnx", out=Path(folder) / "model.onnx")
        except ExportError as error:
            return speeds, f"Only Keras was timed: {error}"
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    images = np.asarray(images, dtype=np.float32)
    difference = float(np.max(np.abs(session.run(None, {session.get_inputs()[0].name: images})[0]
                                     - model.predict(images, verbose=0))))
    speeds.append(measure_onnx_speed(session, images, batch_size=batch_size))
    return speeds, (f"ONNX Runtime ran the model as `digitrec export --format onnx` writes it; on these "
                    f"{len(images):,} images its probabilities differ from Keras's by at most {difference:.0e}.")


def _format_milliseconds(value: float) -> str:
    """A time in milliseconds with one decimal, or two below 1 ms: 29.0 ms, 0.59 ms."""
    return f"{value:.1f} ms" if value >= 1 else f"{value:.2f} ms"


def tabulate_speeds(speeds: Sequence[SpeedMeasurement]) -> pd.DataFrame:
    """One row per runtime: images per second in batches, and the median and 95th percentile of one image's time."""
    return pd.DataFrame([{"runtime": speed.runtime, "images per second": f"{speed.images_per_second:,.0f}",
                          "batch": f"{speed.batch_size:,}",
                          "one image, median": _format_milliseconds(speed.latency_median_ms),
                          "one image, 95th percentile": _format_milliseconds(speed.latency_p95_ms)}
                         for speed in speeds])


def describe_speeds(speeds: Sequence[SpeedMeasurement], note: str = "") -> str:
    """Computed sentences: Keras's speed and, when it was timed, ONNX Runtime's as a ratio of it; then ``note``."""
    keras_speed = speeds[0]
    text = (f"Keras reads {keras_speed.images_per_second:,.0f} images per second in batches of "
            f"{keras_speed.batch_size:,}, and one image in {_format_milliseconds(keras_speed.latency_median_ms)} "
            "(median).")
    for other in speeds[1:]:
        text += (f" {other.runtime} reads {other.images_per_second:,.0f} per second "
                 f"({other.images_per_second / keras_speed.images_per_second:.1f} times as many) and one image in "
                 f"{_format_milliseconds(other.latency_median_ms)} "
                 f"({keras_speed.latency_median_ms / other.latency_median_ms:.0f} times faster), measured one after "
                 "the other in this run.")
    return f"{text} {note}".strip()


def _summarize_speed(speed: SpeedMeasurement) -> dict:
    return {"runtime": speed.runtime, "images_per_second": speed.images_per_second,
            "latency_median_ms": speed.latency_median_ms, "latency_p95_ms": speed.latency_p95_ms}


def summarize(model_name: str, dataset: str, clean: abstention.SelectiveOutcome,
              clean_accuracy: tuple[float, float, float], robustness: Robustness,
              choice: abstention.ThresholdChoice, nondigits: pd.DataFrame, score: str,
              speeds: Sequence[SpeedMeasurement] = ()) -> dict:
    """Return the deployment findings as a JSON-ready dict for the results record and the model card.

    ``items`` says what the model reads: digits, or images for a model of another dataset (clothes).
    ``speed`` is Keras's speed (the first of ``speeds``), ``onnx_speed`` ONNX Runtime's when it was timed.
    """
    by_runtime = {speed.runtime: _summarize_speed(speed) for speed in speeds}
    worst = robustness.worst(1).iloc[0]
    return {
        "model": model_name, "items": "digits" if dataset in DIGIT_DATASETS else "images",
        "clean_accuracy": clean_accuracy[0], "clean_accuracy_ci95": list(clean_accuracy[1:]),
        "severity": robustness.severity,
        "mean_corrupted_accuracy": robustness.mean_accuracy,
        "mean_unseen_corrupted_accuracy": robustness.mean_unseen_accuracy,
        "worst_corruption": {"name": str(worst["corruption"]), "accuracy": float(worst["accuracy"]),
                             "accuracy_ci95": [float(worst["accuracy_low"]), float(worst["accuracy_high"])]},
        "abstention": {"score": score, "threshold": choice.threshold, "target": choice.target,
                       "coverage": clean.coverage, "coverage_ci95": list(clean.coverage_ci95),
                       "answered_accuracy": clean.accuracy, "answered_accuracy_ci95": list(clean.accuracy_ci95)},
        "nondigits": [{"source": row["source"], "answered": float(row["answered"]), "auroc": float(row["auroc"]),
                       "kind_seen_in_training": bool(row["in_training"])} for _, row in nondigits.iterrows()],
        **({"speed": by_runtime["Keras"]} if "Keras" in by_runtime else {}),
        **({"onnx_speed": by_runtime["ONNX Runtime"]} if "ONNX Runtime" in by_runtime else {}),
    }


def describe_deployment(findings: dict) -> str:
    """The summary sentences a postal office needs, from :func:`summarize`'s findings."""
    model_name, items = findings["model"], findings.get("items", "digits")
    worst = findings["worst_corruption"]
    text = (f"{model_name}: {findings['clean_accuracy']:.2%} right on clean test {items} (95% CI "
            f"{format_percent_interval(*findings['clean_accuracy_ci95'], decimals=2)}); "
            f"{findings['mean_corrupted_accuracy']:.2%} on average over the corrupted copies at severity "
            f"{findings['severity']}")
    unseen = findings.get("mean_unseen_corrupted_accuracy")
    if unseen is not None and not np.isnan(unseen) and unseen != findings["mean_corrupted_accuracy"]:
        text += f" ({unseen:.2%} over the kinds it never saw in training)"
    text += f"; worst under {worst['name'].replace('_', ' ')} ({worst['accuracy']:.2%})."
    chosen = findings["abstention"]
    if chosen["threshold"] is None:
        text += (f" No confidence threshold reached {chosen['target']:.1%} on validation, so the model answers every "
                 f"{items[:-1]}.")
    else:
        text += (f" At the threshold chosen on {chosen.get('chosen_on', 'validation')} "
                 f"({chosen['score'].replace('_', ' ')} >= "
                 f"{chosen['threshold']:.3f}), answer **{chosen['coverage']:.1%}** of {items} automatically "
                 f"(95% CI {format_percent_interval(*chosen['coverage_ci95'])}) at "
                 f"**{chosen['answered_accuracy']:.2%}** accuracy (95% CI "
                 f"{format_percent_interval(*chosen['answered_accuracy_ci95'], decimals=2)}); route the other "
                 f"{1 - chosen['coverage']:.1%} to a person.")
    text += describe_field_drop(findings)
    if findings["nondigits"]:
        nothing = "no digit" if items == "digits" else "none of its classes"
        text += f" Images of {nothing} answered anyway: {describe_nondigit_shares(findings)}."
    strings = findings.get("envelopes")
    if strings:
        text += (f" Photos of whole strings of 3 to 6 digits: {strings['string_accuracy']:.1%} read exactly right "
                 f"(95% CI {format_percent_interval(*strings['string_accuracy_ci95'])}).")
    speed = findings.get("speed")
    if speed:
        text += (f" On this machine it reads {speed['images_per_second']:,.0f} {items} per second in batches, and "
                 f"one in {speed['latency_median_ms']:.0f} ms")
        onnx_speed = findings.get("onnx_speed")
        text += (f" (exported to ONNX, {onnx_speed['images_per_second']:,.0f} per second and one in "
                 f"{_format_milliseconds(onnx_speed['latency_median_ms'])})." if onnx_speed else ".")
    return text


def describe_robustness(robustness: Robustness, clean_accuracy: float) -> str:
    """Computed sentences on the mean and the worst corruptions, and on what abstaining does under them."""
    headline = robustness.at_headline()
    worst = robustness.worst(3)
    text = (f"At severity {robustness.severity}, accuracy averages {robustness.mean_accuracy:.2%} over "
            f"{len(headline)} corruptions (clean: {clean_accuracy:.2%})")
    unseen = headline[~headline["seen"]]
    if len(unseen) and len(unseen) < len(headline):
        text += f", and {robustness.mean_unseen_accuracy:.2%} over the {len(unseen)} kinds never seen in training"
    text += ". Worst: " + ", ".join(f"{row['corruption'].replace('_', ' ')} {row['accuracy']:.2%}"
                                   for _, row in worst.iterrows()) + "."
    answered = headline.dropna(subset=["answered_accuracy"])
    if len(answered) and (headline["answered"] < 1).any():
        weakest = answered.loc[answered["answered_accuracy"].idxmin()]
        fewest = headline.loc[headline["answered"].idxmin()]
        text += (f" At the threshold chosen on validation, the answered digits keep at least "
                 f"{weakest['answered_accuracy']:.2%} accuracy under every corruption (lowest under "
                 f"{weakest['corruption'].replace('_', ' ')}; answering everything, the worst is "
                 f"{worst.iloc[0]['accuracy']:.2%}), and the share answered falls as low as {fewest['answered']:.1%} "
                 f"(under {fewest['corruption'].replace('_', ' ')}): the rest goes to a person.")
    return text


def style_nondigits(table: pd.DataFrame, sources: Sequence[NonDigitSource]):
    """Return the non-digit table for reading: source, what it holds, images, share answered with interval, AUROC."""
    described = {source.name: source.description for source in sources}
    shown = pd.DataFrame({
        "source": table["source"], "what": [described.get(name, "") for name in table["source"]],
        "kind seen in training": table["in_training"],
        "images": table["images"], "answered": table["answered"],
        "95% interval": [format_percent_interval(low, high, separator="–")
                         for low, high in zip(table["answered_low"], table["answered_high"], strict=True)],
        "AUROC": table["auroc"]})
    return style_table(shown, percent_columns=("answered",))


def describe_nondigits(table: pd.DataFrame, sources: Sequence[NonDigitSource]) -> str:
    """Say which source measures rejection independently, and what share of it is answered anyway."""
    trained = {source.name for source in sources if source.in_training}
    independent = table[~table["source"].isin(trained)]
    parts = [f"{row['source']}, a kind of image the model never trained on, is the independent measure: "
             f"{row['answered']:.1%} of its images would be answered anyway, and its confidence tells them from "
             f"digits with AUROC {row['auroc']:.3f}." for _, row in independent.iterrows()]
    if trained:
        parts.append(f"The model trained on other {', '.join(sorted(trained))} (outlier exposure), so their row "
                     "shows how well it learned that kind, not how it meets a new one.")
    if independent.empty:
        parts.append("No source here is independent of training: install Debian's dataset-fashion-mnist for one.")
    return " ".join(parts)


def describe_headline(findings: dict) -> str:
    """One line for the run's index page."""
    text = (f"{findings['model']}: {findings['mean_corrupted_accuracy']:.2%} mean accuracy under corruption "
            f"(clean {findings['clean_accuracy']:.2%})")
    chosen = findings["abstention"]
    if chosen["threshold"] is not None:
        text += (f"; answers {chosen['coverage']:.1%} of clean {findings.get('items', 'digits')} at "
                 f"{chosen['answered_accuracy']:.2%}")
    return text


@dataclass
class EnvelopeReading:
    """Photo-like digit strings made from test digits, as ``digitrec read`` reads them.

    Attributes
    ----------
    table : DataFrame
        One row per envelope: text, read (the labels, without abstention), digits, digits_right,
        string_right, answered (every digit accepted at the threshold).
    images : list of ndarray
    entries : list of dict
        :func:`digitrec_utils.imaging.reading.read_pixel_images`'s entries, with the boxes.
    """

    table: pd.DataFrame
    images: list
    entries: list

    def summarize(self) -> dict:
        """String accuracy with its interval, for the results record and the summary."""
        right, strings = int(self.table["string_right"].sum()), len(self.table)
        return {"strings": strings, "string_accuracy": right / strings,
                "string_accuracy_ci95": list(compute_accuracy_interval(right, strings)),
                "answered": float(self.table["answered"].mean())}

    def describe(self) -> str:
        """Computed sentences: string and digit accuracy with intervals, and the same with abstention."""
        table, summary = self.table, self.summarize()
        strings = summary["strings"]
        digits, digits_right = int(table["digits"].sum()), int(table["digits_right"].sum())
        text = (f"Of {strings} envelopes of 3 to 6 digits, {summary['string_accuracy']:.1%} were read exactly right "
                f"(95% CI {format_percent_interval(*summary['string_accuracy_ci95'])}), and "
                f"{digits_right / digits:.1%} of their {digits:,} digits (95% CI "
                f"{format_percent_interval(*compute_accuracy_interval(digits_right, digits))}; a string split into "
                "the wrong number of digits counts all its digits as wrong).")
        answered = table[table["answered"]]
        if len(answered) < strings:
            text += f" With the threshold, {len(answered) / strings:.1%} of the strings are answered automatically"
            if len(answered):
                answered_right = int(answered["string_right"].sum())
                interval = compute_accuracy_interval(answered_right, len(answered))
                text += (f", {answered_right / len(answered):.1%} of them right (95% CI "
                         f"{format_percent_interval(*interval)})")
            text += "; the others go to a person."
        return text


def read_envelopes(model, images: np.ndarray, labels: np.ndarray, *, n_envelopes: int, seed: int,
                   abstention: dict | None) -> EnvelopeReading:
    """Make ``n_envelopes`` photo-like strings of 3 to 6 of the given (test) digits and read them.

    For reporting only: the digits are used in order, each once while they last.
    """
    rng = np.random.default_rng([seed, 16])
    envelopes, start = [], 0
    for number in range(n_envelopes):
        length = int(rng.integers(3, 7))
        positions = (np.arange(length) + start) % len(labels)
        start += length
        envelopes.append(make_envelope(images[positions], labels[positions], seed=seed + number))
    entries = read_pixel_images([(f"envelope {number + 1}", envelope.image)
                                 for number, envelope in enumerate(envelopes)], model, abstention=abstention)
    rows = []
    for envelope, entry in zip(envelopes, entries, strict=True):
        read = "".join(digit["label"] for digit in entry.get("digits", []))
        same_length = len(read) == len(envelope.text)
        rows.append({"text": envelope.text, "read": read, "digits": len(envelope.text),
                     "digits_right": sum(a == b for a, b in zip(read, envelope.text, strict=False)) if same_length
                     else 0,
                     "string_right": read == envelope.text,
                     "answered": bool(entry.get("digits")) and all(digit["accepted"] for digit in entry["digits"])})
    return EnvelopeReading(pd.DataFrame(rows), [envelope.image for envelope in envelopes], entries)
