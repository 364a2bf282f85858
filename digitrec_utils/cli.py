"""The ``digitrec`` command. It only parses arguments and calls the package.

Exit status: 0 on success, 1 when a notebook failed (``run``) or an image could not be read (``predict``,
``read``),
2 when the input was rejected before running (bad parameters, a missing dataset or model), 130 when SIGINT
(Ctrl-C) and 143 when SIGTERM stopped a run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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
                     help="Seconds allowed per cell (default 1800).")
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

    data = commands.add_parser("data", help="Load a dataset and print its summary.")
    data.add_argument("name", nargs="?", default="mnist-sample", help="Dataset name (default mnist-sample).")
    data.add_argument("--data-dir", default=None, help="Folder to search first for dataset files.")
    return parser


def _command_run(arguments) -> int:
    from digitrec_utils.runner import DEFAULT_CELL_TIMEOUT_SECONDS, run_suite

    options = {"only": arguments.only, "overrides": arguments.overrides, "out_dir": arguments.out,
               "jobs": arguments.jobs, "show_code": arguments.show_code,
               "timeout": arguments.timeout or DEFAULT_CELL_TIMEOUT_SECONDS, "run_name": arguments.name,
               "progress": not arguments.quiet, "cluster": arguments.cluster}
    if arguments.seeds is not None:
        from digitrec_utils.sweep import parse_seeds, run_sweep

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
    from digitrec_utils.params import RULES, get_notebook_parameters, list_notebooks, resolve_notebook_name

    stems = [resolve_notebook_name(name) for name in arguments.notebooks] or list_notebooks()
    for stem in stems:
        print(f"{stem}:")
        for name, details in get_notebook_parameters(stem).items():
            rule = f" [{RULES[name].describe()}]" if name in RULES else ""
            print(f"  {name}: {details['inferred_type_name']} = {details['default']}{rule}  # {details['help']}")
    return EXIT_OK


def _add_image_arguments(command) -> None:
    """The arguments that predict and read share: the images, --model and --json."""
    command.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR", help="Image files or folders of them.")
    command.add_argument("--model", default=None, metavar="PATH",
                         help="A .keras model saved by the suite, with its JSON beside it (default: the saved "
                              "CNN of the newest run under reports/ whose 04_cnn notebook succeeded).")
    command.add_argument("--json", action="store_true", help="Print a JSON list, one object per image.")


def _load_for_images(arguments, what: str):
    """The image paths, the model, its description and its abstention settings, for predict and read."""
    from digitrec_utils.config import REPORTS_DIR
    from digitrec_utils.model_files import check_calibration, find_latest_model, load_model_bundle
    from digitrec_utils.predict import collect_image_paths
    from digitrec_utils.training import configure_keras

    if arguments.min_confidence is not None and not 0.0 <= arguments.min_confidence <= 1.0:
        raise ParameterError(f"--min-confidence {arguments.min_confidence}: give a score from 0 to 1 (0 answers "
                             "every image).")
    paths = collect_image_paths(arguments.images)
    if not paths:
        raise ImageError(f"{', '.join(arguments.images)}: no files to {what} (the folders are empty).")
    configure_keras()
    model_path = Path(arguments.model) if arguments.model else find_latest_model(REPORTS_DIR)
    model, description = load_model_bundle(model_path)
    print(f"digitrec: model {model_path} ({description.get('model', 'unnamed')})", file=sys.stderr)
    abstention = dict(description.get("abstention") or {})
    if arguments.min_confidence is not None:
        abstention = {"score": abstention.get("score", "top_probability"), "threshold": arguments.min_confidence}
    else:
        warning = check_calibration(description)
        if warning:
            print(f"digitrec: warning: {warning}", file=sys.stderr)
    return paths, model, description, abstention or None


def _command_predict(arguments) -> int:

    from digitrec_utils.predict import format_prediction, predict_images

    if arguments.top < 1:
        raise ParameterError(f"--top {arguments.top}: list at least one label per image.")
    paths, model, description, abstention = _load_for_images(arguments, "classify")
    entries = predict_images(paths, model, class_names=description.get("class_names"), top=arguments.top,
                             abstention=abstention)
    return _report(entries, format_prediction, as_json=arguments.json)


def _command_read(arguments) -> int:
    from digitrec_utils.reading import format_reading, read_images

    if arguments.expect_digits is not None and arguments.expect_digits < 1:
        raise ParameterError(f"--expect-digits {arguments.expect_digits}: give the number of digits each image "
                             "holds (at least 1).")
    paths, model, description, abstention = _load_for_images(arguments, "read")
    entries = read_images(paths, model, class_names=description.get("class_names"), abstention=abstention,
                          expect_digits=arguments.expect_digits, debug_dir=arguments.debug_dir)
    return _report(entries, format_reading, as_json=arguments.json)


def _report(entries: list[dict], format_entry, *, as_json: bool) -> int:
    """Print the entries (JSON on standard output, or a line each), errors on standard error; the exit status."""
    import json

    if as_json:
        print(json.dumps(entries, indent=2))
    for entry in entries:
        if "error" in entry:
            print(f"digitrec: {format_entry(entry)}", file=sys.stderr)
        elif not as_json:
            print(format_entry(entry))
    return EXIT_FAILED if any("error" in entry for entry in entries) else EXIT_OK


def _command_data(arguments) -> int:
    from digitrec_utils.data import load_dataset

    print(load_dataset(arguments.name, data_dir=arguments.data_dir))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run the ``digitrec`` command line and return its exit status."""
    arguments = _build_parser().parse_args(argv)
    commands = {"run": _command_run, "list-params": _command_list_params, "predict": _command_predict,
                "read": _command_read, "data": _command_data}
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
