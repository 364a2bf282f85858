"""The ``digitrec`` command. It only parses arguments, calls one service of :mod:`digitrec_utils.application`
and prints what it returns.

Exit status: 0 on success, 1 when a notebook failed (``run``), an image could not be read (``predict``, ``read``,
``evaluate``, ``calibrate``, ``adapt``, ``monitor``: the others still go through), ``calibrate --write`` found no
threshold to write or ``monitor --fail-on-drift`` found a change, 2 when the input was rejected before running
(bad parameters, a missing dataset, model or monitoring reference, no usable image) or an export failed, 130
when SIGINT (Ctrl-C) and 143 when SIGTERM stopped a run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from digitrec_utils import application, config
from digitrec_utils.exceptions import DigitrecError, ParameterError

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
                          "address: tls://HOST:8786 (with the certificates below), or tcp://HOST:8786 on a trusted "
                          "network only.")
    run.add_argument("--tls-ca-file", default=None, metavar="FILE",
                     help="With --cluster tls://: the certificate authority that signed the scheduler's and this "
                          "client's certificates (default: Dask's distributed.comm.tls.ca-file).")
    run.add_argument("--tls-cert", default=None, metavar="FILE",
                     help="With --cluster tls://: this client's certificate (default: Dask's configuration).")
    run.add_argument("--tls-key", default=None, metavar="FILE",
                     help="With --cluster tls://: this client's private key (default: Dask's configuration).")
    run.add_argument("--track", nargs="?", const="", default=None, metavar="URI",
                     help="Log the run to MLflow once it is written: one run per notebook, nested under the suite's, "
                          "and the saved model registered as 'digitrec' with the alias 'candidate'. URI: a tracking "
                          "server or store (default: reports/mlflow.db). Needs the mlflow extra.")
    reuse = run.add_mutually_exclusive_group()
    reuse.add_argument("--reuse", default=None, metavar="RUN",
                       help="Copy the results of notebooks whose notebook, parameters, code, data and inputs are "
                            "unchanged from this earlier run folder (default: any finished run in the reports "
                            "folder, latest first).")
    reuse.add_argument("--fresh", action="store_true", help="Execute every notebook; reuse nothing.")

    compare = commands.add_parser(
        "compare", help="Compare two run folders: which one's model to deploy, and what differs.",
        description="Set two runs side by side: their recommended models on the same test digits (McNemar's exact "
                    "test) and one sentence on which to deploy, each notebook's headline, and the parameters, code, "
                    "libraries and data that differ.")
    compare.add_argument("runs", nargs=2, metavar="RUN",
                         help="A run folder: a path, or a name under the reports folder (latest included).")
    compare.add_argument("--html", default=None, metavar="FILE", help="Also write the comparison as an HTML page.")
    compare.add_argument("--json", action="store_true", help="Print the comparison as JSON.")

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

    adapt = commands.add_parser(
        "adapt", help="Fine-tune a saved model on your own labelled digits, and check it on others.",
        description="Fine-tune a copy of a saved model on labelled digits (a folder tree <root>/<label>/*.png, or "
                    "images and labels files), with a replay of its original training digits so that they are not "
                    "forgotten. Half of the digits (stratified, seeded) are kept to check on, unless --check names "
                    "others; the threshold is chosen on a fifth of the rest. Prints before and after, with "
                    "McNemar's exact test, and saves the adapted model with its provenance.")
    adapt.add_argument("data", nargs="+", metavar="DATA",
                       help="A folder tree <root>/<label>/*.png, or two files, images then labels (IDX or CSV); "
                            "with --suggest, unlabelled image files or folders.")
    adapt.add_argument("--suggest", type=int, default=None, metavar="N",
                       help="Adapt nothing: list the N unlabelled digits of DATA to label first (the model's least "
                            "certain, spread over what it confuses), with --html a page of their thumbnails.")
    adapt.add_argument("--model", default=None, metavar="PATH",
                       help="The saved model to adapt (default: the newest good run's saved CNN).")
    adapt.add_argument("--check", nargs="+", default=None, metavar="DATA",
                       help="Labelled digits to check on, never adapted on (default: a held-out half of DATA).")
    adapt.add_argument("--unlabelled", nargs="+", default=None, metavar="IMAGES",
                       help="The office's unlabelled image files or folders: those the model answers at its saved "
                            "threshold join the training digits, labelled with its answers.")
    adapt.add_argument("--out", default=None, metavar="FILE",
                       help="The adapted model's .keras file (needed unless --suggest); its JSON goes beside it. The "
                            "parent is not changed.")
    adapt.add_argument("--seed", type=int, default=0, help="Seeds the splits and the fine-tuning (default 0).")
    adapt.add_argument("--target", type=float, default=0.995, metavar="X",
                       help="Accuracy the answered digits must reach; the threshold is chosen for it (default 0.995).")
    adapt.add_argument("--html", default=None, metavar="PAGE",
                       help="Also write the before-and-after as a self-contained HTML page.")
    adapt.add_argument("--json", action="store_true", help="Print the figures as one JSON object.")

    monitor = commands.add_parser(
        "monitor", help="Tell whether incoming digits changed since the model was chosen, and estimate its accuracy.",
        description="Prepare unlabelled images as predict does, cut them into windows (in the order of their names, "
                    "or times), and test each window against the reference saved beside the model: the image "
                    "properties, the model's probabilities and embeddings, the predicted classes and the share "
                    "answered, with the p-values corrected for their number. The accuracy is estimated without "
                    "labels (Average Thresholded Confidence). The first line says whether to worry: no change, "
                    "changed (the digits look different, the estimated accuracy holds) or worse (below what the "
                    "threshold promised), with what to do.")
    monitor.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR",
                         help="The incoming image files, or folders of them (walked with their sub-folders).")
    monitor.add_argument("--model", default=None, metavar="PATH",
                         help="A .keras model saved by the suite, with its JSON and reference beside it (default: "
                              "the newest good run's saved CNN).")
    monitor.add_argument("--window", type=int, default=None, metavar="N",
                         help="Digits per window (default 500); a last window of fewer than half joins the one "
                              "before it.")
    monitor.add_argument("--order", default="name", metavar="BY",
                         help="The stream's order: name (default) or time (the files' modification times).")
    monitor.add_argument("--seed", type=int, default=0, help="Seeds the embedding test's draws (default 0).")
    monitor.add_argument("--html", default=None, metavar="PAGE", help="Also write the findings as an HTML page.")
    monitor.add_argument("--json", action="store_true", help="Print the findings as one JSON object.")
    monitor.add_argument("--fail-on-drift", action="store_true",
                         help="Exit 1 when the verdict is not 'no change' (for a scheduled job).")

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


def _add_labelled_arguments(command) -> None:
    """The arguments that evaluate and calibrate share: the labelled digits and --json."""
    command.add_argument("data", nargs="+", metavar="DATA",
                         help="A folder tree <root>/<label>/*.png, or two files, images then labels (IDX or CSV).")
    command.add_argument("--json", action="store_true", help="Print the figures as one JSON object.")


def _notify(message: str) -> None:
    """Say what a service is doing, on standard error, so that standard output holds only the answers."""
    print(f"digitrec: {message}", file=sys.stderr, flush=True)


def _command_run(arguments) -> int:
    outcome = application.run_reports(
        arguments.profile, seeds=arguments.seeds, fixed_split=arguments.fixed_split, timeout=arguments.timeout,
        only=arguments.only, overrides=arguments.overrides, out_dir=arguments.out, jobs=arguments.jobs,
        show_code=arguments.show_code, run_name=arguments.name, progress=not arguments.quiet,
        cluster=arguments.cluster, reuse=arguments.reuse, fresh=arguments.fresh,
        tls={"ca_file": arguments.tls_ca_file, "cert": arguments.tls_cert, "key": arguments.tls_key},
        track=arguments.track)
    print(f"Reports: {outcome.folder / 'index.html'}")
    for run in outcome.notebooks:
        if run.status != "ok":
            where = Path(run.parameters.get("output_dir", "")).name
            print(f"digitrec: error: {where + ': ' if arguments.seeds else ''}{run.describe()}", file=sys.stderr)
    if outcome.interrupted_by:
        print(f"digitrec: run interrupted by {outcome.interrupted_by}; what finished is kept in {outcome.folder}.",
              file=sys.stderr)
    return outcome.exit_status


def _command_list_params(arguments) -> int:
    for stem, lines in application.list_parameters(arguments.notebooks).items():
        print(f"{stem}:")
        for line in lines:
            print(f"  {line.describe()}")
    return EXIT_OK


def _command_predict(arguments) -> int:
    output = _output_format(arguments)
    answers = application.classify_images(arguments.images, model=arguments.model, top=arguments.top,
                                          min_confidence=arguments.min_confidence, notify=_notify)
    return _report(answers.entries, answers.format_entry, output=output)


def _command_read(arguments) -> int:
    output = _output_format(arguments)
    answers = application.read_images(arguments.images, model=arguments.model, expect_digits=arguments.expect_digits,
                                      debug_dir=arguments.debug_dir, min_confidence=arguments.min_confidence,
                                      notify=_notify)
    return _report(answers.entries, answers.format_entry, output=output)


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


def _command_evaluate(arguments) -> int:
    outcome = application.evaluate_digits(arguments.data, arguments.model or [None], page=arguments.html,
                                          notify=_notify)
    if arguments.json:
        print(json.dumps(outcome.to_dict(), indent=2))
    elif outcome.comparison is not None:
        for name, report in outcome.reports.items():
            print(f"{name}: {report.describe()}")
        print(outcome.comparison.describe())
    else:
        report = next(iter(outcome.reports.values()))
        print(report.describe())
        print(report.evaluation.per_class[["name", "precision", "recall", "f1", "support"]]
              .rename(columns={"name": "class"}).to_string(index=False, float_format=lambda value: f"{value:.4f}"))
        pairs = report.evaluation.confused_pairs.head(5)
        if len(pairs):
            print("Most confused: " + ", ".join(f"{row.true} read as {row.predicted} ({row.count})"
                                                for row in pairs.itertuples()))
    return EXIT_FAILED if outcome.failed else EXIT_OK


def _command_calibrate(arguments) -> int:
    outcome = application.calibrate_digits(arguments.data, arguments.model, target=arguments.target,
                                           seed=arguments.seed, write=arguments.write, notify=_notify)
    if arguments.json:
        print(json.dumps(outcome.to_dict(), indent=2))
    else:
        print(outcome.calibration.describe())
        print(outcome.calibration.describe_recommendation())
        print(f"Written to {outcome.model_path.with_suffix('.json')}; predict and read use it from now on."
              if outcome.written else "Not written: add --write to store it in the model's JSON."
              if not arguments.write else "Not written.")
    return EXIT_FAILED if outcome.failed else EXIT_OK


def _command_adapt(arguments) -> int:
    if arguments.suggest is not None:
        return _command_suggest(arguments)
    outcome = application.adapt_model(arguments.data, out=arguments.out, model=arguments.model, check=arguments.check,
                                      unlabelled=arguments.unlabelled, seed=arguments.seed, target=arguments.target,
                                      page=arguments.html,
                                      notify=_notify)
    if arguments.json:
        print(json.dumps(outcome.to_dict(), indent=2))
        return EXIT_FAILED if outcome.n_unusable else EXIT_OK
    print(outcome.describe())
    changed = outcome.confusions[(outcome.confusions["fixed"] > 0) | (outcome.confusions["new"] > 0)].head(8)
    if len(changed):
        print("Confusions (check digits read as another digit, before and after):")
        print(changed.to_string(index=False))
    for note in outcome.notes:
        print(note)
    print(f"Saved {outcome.path} (and {outcome.path.with_suffix('.json').name}); predict, read and evaluate take it "
          "with --model.")
    return EXIT_FAILED if outcome.n_unusable else EXIT_OK


def _command_suggest(arguments) -> int:
    suggestion = application.suggest_digits(arguments.data, arguments.suggest, model=arguments.model,
                                            seed=arguments.seed, page=arguments.html, notify=_notify)
    if arguments.json:
        print(json.dumps(suggestion.to_dict(), indent=2))
    else:
        print(suggestion.describe())
        for number, entry in enumerate(suggestion.entries, start=1):
            print(f"{number:>4}  {entry['path']}  read as {entry['read_as']}, between {' and '.join(entry['between'])}"
                  f" (margin {entry['margin']:.3f})")
    return EXIT_FAILED if suggestion.errors else EXIT_OK


def _command_monitor(arguments) -> int:
    window = {} if arguments.window is None else {"window": arguments.window}
    outcome = application.monitor_images(arguments.images, model=arguments.model, order=arguments.order,
                                         page=arguments.html, seed=arguments.seed, notify=_notify, **window)
    if arguments.json:
        print(json.dumps(outcome.to_dict(), indent=2))
    else:
        print("\n".join(outcome.describe()))
    return EXIT_FAILED if outcome.errors or (arguments.fail_on_drift and outcome.changed) else EXIT_OK


def _command_compare(arguments) -> int:
    comparison = application.compare_run_folders(*arguments.runs, page=arguments.html)
    print(json.dumps(comparison.to_dict(), indent=2) if arguments.json else "\n".join(comparison.describe_lines()))
    return EXIT_OK


def _command_export(arguments) -> int:
    outcome = application.export_saved_model(arguments.model, format_name=arguments.format_name, out=arguments.out,
                                             notify=_notify)
    print(f"{outcome.path}\n{outcome.description_path}")
    return EXIT_OK


def _command_data(arguments) -> int:
    for line in application.describe_dataset(arguments.name, data_dir=arguments.data_dir):
        print(line)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run the ``digitrec`` command line and return its exit status."""
    arguments = _build_parser().parse_args(argv)
    config.resolve_data_root()  # A relative $DIGITREC_DATA means the same folder in every kernel and worker.
    commands = {"run": _command_run, "list-params": _command_list_params, "predict": _command_predict,
                "read": _command_read, "evaluate": _command_evaluate, "calibrate": _command_calibrate,
                "export": _command_export, "adapt": _command_adapt, "monitor": _command_monitor, "data": _command_data,
                "compare": _command_compare}
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
