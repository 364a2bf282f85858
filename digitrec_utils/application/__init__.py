"""The application layer: one service per ``digitrec`` command, taking plain arguments and returning a result.

``cli.py`` parses the arguments, calls one of these and prints what it returns; the services choose the model and
its threshold (:mod:`digitrec_utils.application.models`), open the data and call the layers below. They tell the
caller what they are doing through a ``notify`` callback (the command line prints it on standard error).

The submodules load when first used (scikit-image's ``lazy_loader``), so that ``digitrec --help``,
``list-params`` and ``run`` do not load Keras and TensorFlow, which ``predict``, ``evaluate`` and the others need.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "adaptation": ["AdaptationOutcome", "Suggestion", "adapt_model", "suggest_digits"],
    "monitoring": ["MonitorOutcome", "monitor_images"],
    "models": ["ModelInUse", "choose_abstention", "load_model_in_use"],
    "images": ["ImageAnswers", "classify_images", "predict_files", "read_images"],
    "labelled": ["CalibrationOutcome", "EvaluationOutcome", "calibrate_digits", "evaluate_digits"],
    "exporting": ["ExportOutcome", "export_saved_model"],
    "datasets": ["describe_dataset"],
    "parameters": ["ParameterLine", "list_parameters"],
    "suite": ["run_reports"],
    "comparing": ["compare_run_folders"],
})
