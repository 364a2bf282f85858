"""The ``digitrec`` command. It only parses arguments and calls the package.

Exit status: 0 on success, 1 when a notebook failed (``run``), an image could not be read (``predict``,
``read``, ``evaluate``, ``calibrate``: the others still go through) or ``calibrate --write`` found no threshold
to write, 2 when the input was rejected before running (bad parameters, a missing dataset or model) or an
export failed, 130 when SIGINT (Ctrl-C) and 143 when SIGTERM stopped a run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from digitrec_utils import config
from digitrec_utils.exceptions import DigitrecError, ImageError, ParameterError

EXIT_OK, EXIT_FAILED, EXIT_REJECTED = 0, 1, 2


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="digitrec", description="Handwritten-digit recognition reports.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="Execute the notebooks and render HTML reports.",
                              description="Execute the suite with papermill and render self-contained HTML.")
    run.add_argument("profile", nargs="?", default=None,
                     help="YAML parameter profile (default: params/sample.yaml, the embedded sample).")
    run.add_argument("--only", nargs="+", metavar="NAME", help="Run only these notebooks (eda or 01_eda, ...).")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="Override a parameter: key=value for every notebook, or section.key=value.")
    run.add_argument("--out", default=None, metavar="DIR", help="Reports folder (default: reports/).")
    run.add_argument("--jobs", type=int, default=1, metavar="N", help="Notebooks run in parallel (default 1).")
    run.add_argument("--show-code", action="store_true", help="Show code cells in the HTML reports.")
    run.add_argument("--timeout", type=float, default=None, metavar="S",
                     help="Seconds a cell may go without printing anything before it is stopped as hung "
                          "(default 1800); a cell that prints its progress runs as long as it works.")
    run.add_argument("--name", default=None, help="Run folder name (default: profile name and timestamp).")
    run.add_argument("--quiet", action="store_true", help="Print only the final summary.")
    run.add_argument("--seeds", default=None, metavar="LIST",
                     help="Run once per seed (1,2,3 or 1-5) into <name>-seeds/seed<k>/, then the stability report "
                          "over the seeds.")
    run.add_argument("--fixed-split", action="store_true",
                     help="With --seeds: keep the profile's data split in every seed and vary the training only.")
    run.add_argument("--cluster", default=None, metavar="ADDRESS",
                     help="Run each notebook as a Dask task: local:N (N local worker processes) or a scheduler's "
                          "address, tcp://HOST:8786.")

    list_params = commands.add_parser("list-params", help="List each notebook's parameters, types and defaults.")
    list_params.add_argument("notebooks", nargs="*", metavar="NAME", help="Notebooks (default: all).")

    predict = commands.add_parser(
        "predict", help="Classify image files with a saved model.",
        description="Classify PNG, JPEG, BMP or GIF images (any size and colour; folders are expanded) after "
                    "preparing each the way MNIST was made: grayscale, dark background, the ink of a photo found "
                    "with the light corrected and ruled or grid lines removed, cropped to the ink, "
                    "longer side 20 px, centred by mass in 28x28.")
    _add_image_arguments(predict)
    predict.add_argument("--top", type=int, default=3, metavar="K", help="Labels listed per image (default 3).")
    predict.add_argument("--min-confidence", type=float, default=None, metavar="X",
                         help="Answer only images whose confidence score reaches X (0 to 1; 0 answers every "
                              "image); the rest are marked unsure. Default: the threshold saved with the model, "
                              "if any.")

    read = commands.add_parser(
        "read", help="Read the digit string (a postcode, a house number) in photos and scans.",
        description="Read the digits written in each photo or scan, left to right: lighting corrected, ruled "
                    "and grid lines removed, digits segmented (touching ones split), each prepared like MNIST "
                    "and classified. A digit below the confidence threshold is shown as ?.")
    _add_image_arguments(read)
    read.add_argument("--expect-digits", type=int, default=None, metavar="N",
                      help="Each image holds N digits; a reading of another length is not accepted.")
    read.add_argument("--min-confidence", type=float, default=None, metavar="X",
                      help="Accept only digits whose confidence score reaches X (0 to 1); the rest read as ?. "
                           "Default: the threshold saved with the model, if any (else every digit is accepted).")
    read.add_argument("--debug-dir", default=None, metavar="DIR",
                      help="Write, per image, the cleaned ink, the boxes on the photo and each prepared digit "
                           "as PNG files into DIR.")

    evaluate = commands.add_parser(
        "evaluate", help="Measure a saved model on labelled digits (a folder tree, an IDX pair or a CSV pair).",
        description="Run a saved model over labelled digits, prepared as predict prepares them: accuracy with its "
                    "95% interval, per-class precision and recall, the confusion matrix, the most confused pairs, "
                    "and at the model's saved threshold the share answered and the accuracy of the answered. "
                    "Given --model more than once, it measures each model on the same digits and says which reads "
                    "them best and whether the digits can tell the models apart (McNemar's exact test); --html "
                    "then writes one page comparing them.")
    _add_labelled_arguments(evaluate)
    evaluate.add_argument("--model", action="append", default=None, metavar="PATH",
                          help="A .keras model saved by the suite (default: the newest good run's saved CNN); give it "
                               "again to compare models on the same digits.")
    evaluate.add_argument("--html", default=None, metavar="FILE", help="Also write a self-contained HTML page.")

    calibrate = commands.add_parser(
        "calibrate", help="Choose a saved model's confidence threshold again on your own labelled digits.",
        description="Keep the saved score and choose only the threshold again: on one stratified, seeded half of "
                    "the labelled digits, as 05_deployment chooses on validation; coverage and the accuracy of the "
                    "answered are reported on the other half. --write stores it in the model's JSON, keeping the "
                    "earlier thresholds as its history; predict and read then use it.")
    _add_labelled_arguments(calibrate)
    calibrate.add_argument("--model", required=True, metavar="PATH", help="The .keras model saved by the suite.")
    calibrate.add_argument("--target", type=float, default=0.995, metavar="X",
                           help="The accuracy the answered digits must reach (default 0.995).")
    calibrate.add_argument("--seed", type=int, default=0, help="Seeds the split into two halves (default 0).")
    calibrate.add_argument("--write", action="store_true",
                           help="Store the new threshold in the model's JSON (the earlier ones stay in its history).")

    export = commands.add_parser(
        "export", help="Export a saved model to ONNX, LiteRT or a TensorFlow SavedModel, with its JSON beside it.",
        description="Write the model that predicts in a format that runtimes without Keras read (ONNX Runtime, "
                    "the LiteRT interpreter, TensorFlow Serving), and beside it FILE.json: class names, input shape "
                    "and scaling, image preparation version, what runs inside the model, and the confidence "
                    "threshold saved with the model.")
    export.add_argument("model", nargs="?", default=None, metavar="MODEL",
                        help="A .keras model saved by the suite (default: the newest good run's saved CNN).")
    export.add_argument("--format", dest="format_name", required=True, choices=["onnx", "litert", "savedmodel"],
                        help="onnx (needs tf2onnx and onnx: pip install 'digitrec[export]'), litert (.tflite) or "
                             "savedmodel (a folder).")
    export.add_argument("--out", default=None, metavar="FILE",
                        help="Where to write it (default: beside the model, cnn_selected.onnx, cnn_selected.tflite "
                             "or the folder cnn_selected_savedmodel).")

    data = commands.add_parser("data", help="Load a dataset and print its summary.")
    data.add_argument("name", nargs="?", default="mnist-sample", help="Dataset name (default mnist-sample).")
    data.add_argument("--data-dir", default=None, help="Folder to search first for dataset files (for folder: the "
                                                       "tree's root).")
    return parser


def _add_labelled_arguments(command) -> None:
    """The arguments that evaluate and calibrate share: the labelled digits and --json."""
    command.add_argument("data", nargs="+", metavar="DATA",
                         help="A folder tree <root>/<label>/*.png, or two files, images then labels (IDX or CSV).")
    command.add_argument("--json", action="store_true", help="Print the figures as one JSON object.")


def _command_run(arguments) -> int:
    from digitrec_utils.running.runner import DEFAULT_CELL_TIMEOUT_SECONDS, run_suite

    options = {"only": arguments.only, "overrides": arguments.overrides, "out_dir": arguments.out,
               "jobs": arguments.jobs, "show_code": arguments.show_code,
               "timeout": arguments.timeout or DEFAULT_CELL_TIMEOUT_SECONDS, "run_name": arguments.name,
               "progress": not arguments.quiet, "cluster": arguments.cluster}
    if arguments.seeds is not None:
        from digitrec_utils.running.sweep import parse_seeds, run_sweep

        outcome = run_sweep(arguments.profile, seeds=parse_seeds(arguments.seeds), fixed_split=arguments.fixed_split,
                            **options)
        folder = outcome.sweep_dir
    elif arguments.fixed_split:
        raise ParameterError("--fixed-split keeps the split while the seeds of a sweep vary; use it with --seeds.")
    else:
        outcome = run_suite(arguments.profile, **options)
        folder = outcome.run_dir
    print(f"Reports: {folder / 'index.html'}")
    for run in outcome.notebooks:
        if run.status != "ok":
            where = Path(run.parameters.get("output_dir", "")).name
            print(f"digitrec: error: {where + ': ' if arguments.seeds else ''}{run.describe()}", file=sys.stderr)
    if outcome.interrupted_by:
        print(f"digitrec: run interrupted by {outcome.interrupted_by}; what finished is kept in {folder}.",
              file=sys.stderr)
    return outcome.exit_status


def _command_list_params(arguments) -> int:
    from digitrec_utils.declarations import PARAMETERS
    from digitrec_utils.params import get_notebook_parameters, list_notebooks, resolve_notebook_name

    stems = [resolve_notebook_name(name) for name in arguments.notebooks] or list_notebooks()
    for stem in stems:
        print(f"{stem}:")
        for name in get_notebook_parameters(stem):
            declaration = PARAMETERS[name]
            rule = "" if declaration.describe() == "any value" else f" [{declaration.describe()}]"
            default = _format_default(declaration.default_for(stem))
            print(f"  {name}: {declaration.type} = {default}{rule}  # {declaration.help_for(stem)}")
    return EXIT_OK


def _format_default(value) -> str:
    """Write a default as a parameters cell writes it: strings in double quotes, lists in brackets."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_format_default(item) for item in value) + "]"
    return json.dumps(value) if isinstance(value, str) else repr(value)


def _add_image_arguments(command) -> None:
    """The arguments that predict and read share: the images, --model and --json."""
    command.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR",
                         help="Image files, or folders of them (walked with their sub-folders).")
    command.add_argument("--model", default=None, metavar="PATH",
                         help="A .keras model saved by the suite, with its JSON beside it (default: the saved "
                              "CNN of the newest run under reports/ whose 04_cnn notebook succeeded).")
    command.add_argument("--json", action="store_true", help="Print a JSON list, one object per image, at the end.")
    command.add_argument("--jsonl", action="store_true",
                         help="Print one JSON object per line, each as soon as its image is done.")


def _load_for_images(arguments, what: str):
    """The image paths, the model, its description and its abstention settings, for predict and read.

    Files in the folders that are not images are listed once on standard error and left out.
    """
    from digitrec_utils.data.preparation import collect_image_files, describe_skipped
    from digitrec_utils.models.model_files import describe_threshold_in_use

    if arguments.min_confidence is not None and not 0.0 <= arguments.min_confidence <= 1.0:
        raise ParameterError(f"--min-confidence {arguments.min_confidence}: give a score from 0 to 1 (0 answers "
                             "every image).")
    paths, skipped = collect_image_files(arguments.images)
    if skipped:
        print(f"digitrec: {describe_skipped(skipped)}", file=sys.stderr)
    if not paths:
        raise ImageError(f"{', '.join(arguments.images)}: no image files to {what} (the folders hold no PNG, JPEG, "
                         "BMP or GIF files).")
    _, model, description = _load_model(arguments.model)
    abstention = _choose_abstention(description, arguments.min_confidence)
    in_use = describe_threshold_in_use(abstention, from_option=arguments.min_confidence is not None)
    print(f"digitrec: threshold: {in_use}", file=sys.stderr)
    return paths, model, description, abstention


def _load_model(model_argument: str | None):
    """The model's path, the model and its description: --model, or the newest good run's saved CNN."""
    from digitrec_utils.config import REPORTS_DIR
    from digitrec_utils.models.model_files import find_latest_model, load_model_bundle
    from digitrec_utils.models.training import configure_keras

    configure_keras()
    model_path = Path(model_argument) if model_argument else find_latest_model(REPORTS_DIR)
    model, description = load_model_bundle(model_path)
    print(f"digitrec: model {model_path} ({description.get('model', 'unnamed')})", file=sys.stderr)
    return model_path, model, description


def _choose_abstention(description: dict, min_confidence: float | None) -> dict | None:
    """The saved model's newest threshold, or --min-confidence on the saved score; warns when it may not hold."""
    from digitrec_utils.models.model_files import check_calibration, read_abstention

    abstention = read_abstention(description) or {}
    if min_confidence is not None:
        return {"score": abstention.get("score", "top_probability"), "threshold": min_confidence}
    warning = check_calibration(description)
    if warning:
        print(f"digitrec: warning: {warning}", file=sys.stderr)
    return abstention or None


def _command_predict(arguments) -> int:
    from digitrec_utils.imaging.predict import format_prediction, iterate_predictions

    if arguments.top < 1:
        raise ParameterError(f"--top {arguments.top}: list at least one label per image.")
    paths, model, description, abstention = _load_for_images(arguments, "classify")
    entries = iterate_predictions(paths, model, class_names=description.get("class_names"), top=arguments.top,
                                  abstention=abstention)
    return _report(entries, format_prediction, output=_output_format(arguments))


def _command_read(arguments) -> int:
    from digitrec_utils.imaging.reading import format_reading, iterate_readings

    if arguments.expect_digits is not None and arguments.expect_digits < 1:
        raise ParameterError(f"--expect-digits {arguments.expect_digits}: give the number of digits each image "
                             "holds (at least 1).")
    paths, model, description, abstention = _load_for_images(arguments, "read")
    entries = iterate_readings(paths, model, class_names=description.get("class_names"), abstention=abstention,
                               expect_digits=arguments.expect_digits, debug_dir=arguments.debug_dir)
    return _report(entries, format_reading, output=_output_format(arguments))


def _output_format(arguments) -> str:
    if arguments.json and arguments.jsonl:
        raise ParameterError("--json and --jsonl: choose one (--jsonl writes a line per image as it is done).")
    return "json" if arguments.json else "jsonl" if arguments.jsonl else "lines"


def _report(entries, format_entry, *, output: str) -> int:
    """Print the entries as they come (a line each, or a JSON line each) or all at the end as one JSON list.

    Errors also go to standard error, one line each, and where there was more than one image a last line there
    counts them: accepted, unsure (for a person) and unusable. Returns the exit status: 1 when any entry failed.
    """
    collected, failed = [], False
    tally = Counter()
    for entry in entries:
        failed = failed or "error" in entry
        tally["unusable" if "error" in entry else "accepted" if entry.get("accepted", True) else "unsure"] += 1
        if output == "json":
            collected.append(entry)
        elif output == "jsonl":
            print(json.dumps(entry), flush=True)
        elif "error" not in entry:
            print(format_entry(entry), flush=True)
        if "error" in entry:
            print(f"digitrec: {format_entry(entry)}", file=sys.stderr, flush=True)
    if output == "json":
        print(json.dumps(collected, indent=2))
    total = sum(tally.values())
    if total > 1:
        print(f"digitrec: {total:,} images: {tally['accepted']:,} accepted, {tally['unsure']:,} unsure (for a "
              f"person), {tally['unusable']:,} could not be used.", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def _load_labelled(arguments, model_arguments: list[str | None]):
    """Open the labelled digits of DATA, then each model: bad data is rejected before a model takes its seconds.

    Returns, for each of ``model_arguments`` (a path, or None for the newest run's model), the model's path, its
    description and the digits it scored; skipped files are listed once, and each image's error is named once.
    """
    from digitrec_utils.data.labelled import open_labelled_source
    from digitrec_utils.data.preparation import describe_skipped
    from digitrec_utils.engines.field import score_labelled_digits

    source = open_labelled_source(arguments.data)
    if source.skipped:
        print(f"digitrec: {describe_skipped(source.skipped)}", file=sys.stderr)
    loaded = []
    for model_argument in model_arguments:
        model_path, model, description = _load_model(model_argument)
        scored = score_labelled_digits(source, model, class_names=description.get("class_names"))
        if not loaded:
            for error in scored.errors:
                print(f"digitrec: error: {error}", file=sys.stderr)
        loaded.append((model_path, description, scored))
    return loaded


def _command_evaluate(arguments) -> int:
    from digitrec_utils.engines.field import (
        compare_scored,
        evaluate_scored,
        name_models,
        write_comparison_page,
        write_evaluation_page,
    )

    models = arguments.model or [None]
    if len(models) > 1:
        from digitrec_utils.models.model_files import check_model_files

        repeated = [path for path, count in Counter(Path(model).resolve() for model in models).items() if count > 1]
        if repeated:
            raise ParameterError(f"--model {repeated[0].name} is given twice; give each model once.")
        for model in models:
            check_model_files(model)  # Every model is there before the first one's digits are scored.
        reports = {}
        loaded = _load_labelled(arguments, models)
        for name, (model_path, description, scored) in zip(name_models(models), loaded, strict=True):
            reports[name] = evaluate_scored(scored, abstention=_choose_abstention(description, None),
                                            model_name=description.get("model", model_path.stem))
        comparison = compare_scored(reports)
        if arguments.html:
            write_comparison_page(comparison, arguments.html)
            print(f"digitrec: page {arguments.html}", file=sys.stderr)
        if arguments.json:
            print(json.dumps(comparison.to_dict(), indent=2))
        else:
            for name, report in reports.items():
                print(f"{name}: {report.describe()}")
            print(comparison.describe())
        return EXIT_FAILED if next(iter(reports.values())).scored.errors else EXIT_OK
    model_path, description, scored = _load_labelled(arguments, models[:1])[0]
    abstention = _choose_abstention(description, None)
    report = evaluate_scored(scored, abstention=abstention, model_name=description.get("model", model_path.stem))
    if arguments.html:
        write_evaluation_page(report, arguments.html, model_path=model_path)
        print(f"digitrec: page {arguments.html}", file=sys.stderr)
    if arguments.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.describe())
        print(report.evaluation.per_class[["name", "precision", "recall", "f1", "support"]]
              .rename(columns={"name": "class"}).to_string(index=False, float_format=lambda value: f"{value:.4f}"))
        pairs = report.evaluation.confused_pairs.head(5)
        if len(pairs):
            print("Most confused: " + ", ".join(f"{row.true} read as {row.predicted} ({row.count})"
                                                for row in pairs.itertuples()))
    return EXIT_FAILED if scored.errors else EXIT_OK


def _command_calibrate(arguments) -> int:
    from digitrec_utils.engines.field import calibrate_scored
    from digitrec_utils.models.model_files import read_abstention, record_abstention

    if not 0.5 < arguments.target < 1.0:
        raise ParameterError(f"--target {arguments.target}: give the accuracy the answered digits must reach, "
                             "strictly between 0.5 and 1 (e.g. 0.995).")
    model_path, description, scored = _load_labelled(arguments, [arguments.model])[0]
    calibration = calibrate_scored(scored, abstention=read_abstention(description), target=arguments.target,
                                   seed=arguments.seed)
    result = calibration.to_dict()
    # A threshold that was not found is not written: it would be saved as 0 and answer every digit.
    written = arguments.write and calibration.choice.reached
    if written:
        record_abstention(model_path, score=calibration.score, threshold=calibration.choice.threshold,
                          target=calibration.choice.target, chosen_on=calibration.chosen_on, seed=calibration.seed,
                          data_sha256=scored.source.sha256, held_out_half=result["held_out_half"])
        if calibration.recommendation == "keep":
            print("digitrec: warning: written as --write asked, although the saved threshold did better on the "
                  "held-out half (below); the earlier threshold stays in the JSON's abstention_history.",
                  file=sys.stderr)
    elif arguments.write:
        print("digitrec: error: not written: no threshold reached --target on the choosing half, and saving none "
              "would answer every digit. Lower --target or label more digits.", file=sys.stderr)
    if arguments.json:
        print(json.dumps({**result, "written": written}, indent=2))
    else:
        print(calibration.describe())
        print(calibration.describe_recommendation())
        print(f"Written to {model_path.with_suffix('.json')}; predict and read use it from now on." if written
              else "Not written: add --write to store it in the model's JSON." if not arguments.write
              else "Not written.")
    return EXIT_FAILED if scored.errors or (arguments.write and not written) else EXIT_OK


def _command_export(arguments) -> int:
    from digitrec_utils.config import REPORTS_DIR
    from digitrec_utils.models.export import choose_export_path, describe_export_path, export_model
    from digitrec_utils.models.model_files import find_latest_model

    model_path = Path(arguments.model) if arguments.model else find_latest_model(REPORTS_DIR)
    out = Path(arguments.out) if arguments.out else choose_export_path(model_path, arguments.format_name)
    print(f"digitrec: exporting {model_path} to {arguments.format_name}", file=sys.stderr)
    export_model(model_path, format_name=arguments.format_name, out=out)
    print(f"{out}\n{describe_export_path(out)}")
    return EXIT_OK


def _command_data(arguments) -> int:
    from digitrec_utils.data.loading import check_dataset, load_dataset
    from digitrec_utils.data.official import OFFICIAL_IDX_SHA256

    if arguments.name in OFFICIAL_IDX_SHA256:
        print(f"Files: {check_dataset(arguments.name, data_dir=arguments.data_dir)}.")
    print(load_dataset(arguments.name, data_dir=arguments.data_dir))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run the ``digitrec`` command line and return its exit status."""
    arguments = _build_parser().parse_args(argv)
    config.resolve_data_root()  # A relative $DIGITREC_DATA means the same folder in every kernel and worker.
    commands = {"run": _command_run, "list-params": _command_list_params, "predict": _command_predict,
                "read": _command_read, "evaluate": _command_evaluate, "calibrate": _command_calibrate,
                "export": _command_export, "data": _command_data}
    try:
        return commands[arguments.command](arguments)
    except DigitrecError as error:
        print(f"digitrec: error: {error}", file=sys.stderr)
        return EXIT_REJECTED
    except KeyboardInterrupt:
        print("digitrec: interrupted; finished reports are kept, nothing half-written replaced them.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
