"""The suite's vocabulary and every notebook parameter, each declared once.

This module is the single source of what a parameter may be: its type, its default, its range or allowed
values and its help. The pre-flight check of a profile (:mod:`digitrec_utils.params`), every engine's settings
(:mod:`digitrec_utils.settings`) and ``digitrec list-params`` read it; ``tests/test_declarations.py`` fails when a
notebook's parameters cell says anything else. It imports nothing heavy (no Keras, TensorFlow or scikit-learn),
so the runner and the command line can read it without loading a model library, and the modules that build
models import those libraries at their top.

The names of the networks, augmentations, optimizers and the rest live here too; ``tests/test_declarations.py``
checks that the tables of the modules that build them hold exactly these names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The datasets a run can train on (digitrec_utils.data.loading).
DATASET_NAMES = ("mnist-sample", "mnist", "fashion-mnist", "digits", "csv", "folder")
# 02_classical_baselines's models and choices (digitrec_utils.models.classical_sweeps).
CLASSICAL_MODELS = ("knn", "tree", "logreg", "forest", "svm", "boosting")
KNN_WEIGHTS = ("uniform", "distance")
TREE_CRITERIA = ("gini", "entropy", "log_loss")
FOREST_MAX_FEATURES = ("sqrt", "log2")
SVM_METHODS = ("exact", "nystroem")
# 03_dense_nets's zoo (digitrec_utils.models.nets.DENSE_ZOO), experiments, optimizers and scalings.
DENSE_NETWORKS = ("slp", "mlp_64x2_sgd", "mlp_128x2_dropout", "mlp_512x2_dropout_adam", "mlp_512_rmsprop",
                  "mlp_512_dropout_rmsprop", "mlp_128_sgd", "mlp_tiny", "mlp_bn")
DENSE_EXPERIMENTS = ("width", "depth", "optimizer", "dropout", "batch_epochs", "scaling", "smallest")
OPTIMIZERS = ("sgd", "sgd_momentum", "rmsprop", "adam", "nadam")
SCALINGS = ("divide", "standardize")
# 04_cnn's zoo (digitrec_utils.models.convnets.CNN_ZOO), augmentations and robustness kinds.
CNN_NETWORKS = ("cnn_small", "cnn_deeper", "cnn_rmsprop", "cnn_modern")
AUGMENTATIONS = ("auto", "digits", "fashion", "none")
ROBUSTNESS_KINDS = ("pen", "noise", "occlusion")
# Training precisions (digitrec_utils.models.precision).
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
# 05_deployment's corruptions and their severity levels (digitrec_utils.data.corruptions).
CORRUPTION_NAMES = ("rotation", "shear", "scale", "translation", "dilation", "erosion", "gaussian_noise",
                    "shot_noise", "impulse_noise", "gaussian_blur", "motion_blur", "contrast", "brightness",
                    "stripes", "blots", "elastic")
SEVERITY_LEVELS = (1, 2, 3)

# The fewest digits a monitoring window may hold: fewer test too little to tell a change from chance.
MINIMUM_MONITOR_WINDOW = 50
# Notebooks that train and evaluate models, each writing one results record of them.
MODEL_NOTEBOOKS = ("02_classical_baselines", "03_dense_nets", "04_cnn")
# The notebooks that read the run's saved CNN (model_path, else 04's) and train a small one when they run alone.
SAVED_MODEL_NOTEBOOKS = ("05_deployment", "08_adaptation")

# Limits of cnn_modern's settings, named because the code that builds it reads them too.
MAX_MODERN_MEMBERS = 5
MAX_SCAN_COPIES = 3.0
# Simard et al. used alpha 34 on MNIST; beyond 60 the strokes tear.
MAX_ELASTIC_ALPHA = 60.0
# 0.9999 averages over about 10,000 steps.
MAX_EMA_MOMENTUM = 0.9999


@dataclass(frozen=True)
class Parameter:
    """One notebook parameter: its type, default, help and allowed values.

    Attributes
    ----------
    type : str
        As the parameters cell annotates it: ``int``, ``float``, ``str``, ``bool``, ``list[int]``, ...
    default : object
        The value of the parameters cell.
    help : str
        The comment of the parameters cell.
    choices : tuple, optional
        The allowed values (of each item, for a list).
    minimum, maximum : float, optional
        Bounds (of each item, for a list), inclusive unless ``exclusive``.
    exclusive : bool
    empty_allowed : bool
        For a list: an empty list means "none" rather than a mistake.
    notebook_defaults, notebook_help : mapping of notebook stem to value
        Where one notebook's cell differs from the others' for the same key.
    """

    type: str
    default: Any
    help: str
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive: bool = False
    empty_allowed: bool = False
    notebook_defaults: Mapping[str, Any] = field(default_factory=dict)
    notebook_help: Mapping[str, str] = field(default_factory=dict)

    def default_for(self, notebook: str | None = None) -> Any:
        """Return the default in ``notebook``'s cell, lists as tuples so that a settings dataclass can hold them."""
        value = self.notebook_defaults.get(notebook, self.default)
        return tuple(value) if isinstance(value, list) else value

    def help_for(self, notebook: str | None = None) -> str:
        """Return the help in ``notebook``'s cell."""
        return self.notebook_help.get(notebook, self.help)

    def describe(self) -> str:
        """Return the allowed values in words, e.g. ``1 <= value <= 5`` or ``one of 'a', 'b'``."""
        if self.choices is not None:
            return "one of " + ", ".join(repr(choice) for choice in self.choices)
        if self.minimum is None and self.maximum is None:
            return "any value"
        low = "" if self.minimum is None else f"{self.minimum} {'<' if self.exclusive else '<='} "
        high = "" if self.maximum is None else f" {'<' if self.exclusive else '<='} {self.maximum}"
        return f"{low}value{high}"

    def allows(self, value: Any) -> bool:
        """Whether one value (one item, for a list) is allowed."""
        if self.choices is not None:
            return value in self.choices
        if self.minimum is not None and (value <= self.minimum if self.exclusive else value < self.minimum):
            return False
        return not (self.maximum is not None and (value >= self.maximum if self.exclusive else value > self.maximum))


PARAMETERS: dict[str, Parameter] = {
    "dataset": Parameter(
        "str", "mnist-sample",
        "Dataset: mnist-sample, mnist, fashion-mnist, digits, csv or folder (a labelled folder tree at data_dir).",
        choices=DATASET_NAMES,
        notebook_help={
            stem: ("Dataset of the small CNN trained here when there is no saved model; a saved model brings its "
                   "own.") for stem in SAVED_MODEL_NOTEBOOKS
        },
    ),
    "data_dir": Parameter(
        "str", "",
        ("Folder searched first for mnist / fashion-mnist files (for folder: the tree <data_dir>/<label>/*.png); empty "
         "for the default places."),
    ),
    "images_csv": Parameter("str", "", "Images CSV (784 integers 0-255 per row), for dataset csv."),
    "labels_csv": Parameter("str", "", "Labels CSV (one label per row), for dataset csv."),
    "test_fraction": Parameter(
        "float", 0.2,
        "Held-out test fraction where the dataset has no official split.",
        minimum=0.0, maximum=1.0, exclusive=True,
        notebook_help={
            stem: "Held-out test fraction of the small CNN trained here (a saved model brings its own split)."
            for stem in SAVED_MODEL_NOTEBOOKS
        },
    ),
    "seed": Parameter(
        "int", 42,
        "Seeds the held-out split and every random choice in this notebook.",
        minimum=0, maximum=2**32 - 1,
        notebook_help={
            "02_classical_baselines": "Seeds the splits, the subsamples and every model.",
            "03_dense_nets": "Seeds the splits, every weight initialization, dropout mask and shuffle.",
            "04_cnn": ("Seeds the splits, the folds, every weight initialization, dropout mask, augmentation and "
                       "shuffle."),
            "05_deployment": "Seeds the corruptions, the generated non-digit images and the small CNN trained here.",
            "08_adaptation": "Seeds the check split, the draws, the fine-tuning and the small CNN trained here.",
        },
    ),
    "split_seed": Parameter(
        "int", -1,
        "Seeds the held-out test split, the validation split and the training subsample; -1 uses seed.",
        minimum=-1, maximum=2**32 - 1,
    ),
    "n_grid_images": Parameter("int", 30, "Images in the grid of first images.", minimum=1, maximum=200),
    "images_per_class": Parameter("int", 8, "Images per class in the per-class grid.", minimum=1, maximum=30),
    "standardize_examples": Parameter(
        "int", 5,
        "Images shown before and after pixel-wise standardization.",
        minimum=1, maximum=20,
    ),
    "pca_points": Parameter("int", 2000, "Training images drawn in the PCA scatter plot.", minimum=10, maximum=100_000),
    "output_dir": Parameter(
        "str", "",
        "Set by digitrec run: the run folder for results/. Empty writes nothing.",
        notebook_help={
            "04_cnn": "Set by digitrec run: the run folder for results/ and models/. Empty writes nothing.",
            "05_deployment": ("Set by digitrec run: the run folder for results/; its saved model gets the threshold. "
                              "Empty writes nothing."),
            "07_stability": "Set by digitrec run: the sweep folder, for stability.json. Empty writes nothing.",
        },
    ),
    "val_fraction": Parameter(
        "float", 0.1,
        "Fraction of the training part held out for validation (early stopping, choices).",
        minimum=0.0, maximum=1.0, exclusive=True,
        notebook_help={
            "02_classical_baselines": "Fraction of the training part held out for validation (tuning and selection).",
            **{stem: "Validation fraction of the small CNN trained here." for stem in SAVED_MODEL_NOTEBOOKS},
        },
    ),
    "train_size": Parameter(
        "int", 0,
        "Stratified subsample of the training part (train + validation) for quick runs; 0 uses all.",
        minimum=0,
        notebook_help={
            stem: "Training subsample of the small CNN trained here; 0 uses all."
            for stem in SAVED_MODEL_NOTEBOOKS
        },
    ),
    "models": Parameter(
        "list[str]", list(CLASSICAL_MODELS),
        "Models to tune, in this order.",
        choices=CLASSICAL_MODELS,
    ),
    "knn_k": Parameter(
        "list[int]", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 30],
        "Numbers of neighbours tried (the first report's).",
        minimum=1,
    ),
    "knn_weights": Parameter(
        "list[str]", ["uniform"],
        "Vote weightings tried: uniform and/or distance.",
        choices=('uniform', 'distance'),
    ),
    "tree_criteria": Parameter(
        "list[str]", ["gini", "entropy"],
        "Split criteria tried: gini, entropy or log_loss.",
        choices=TREE_CRITERIA,
    ),
    "tree_min_depth": Parameter("int", 3, "Shallowest tree depth tried.", minimum=1, maximum=200),
    "tree_max_depth": Parameter("int", 30, "Deepest tree depth tried.", minimum=1, maximum=200),
    "logreg_c": Parameter(
        "list[float]", [0.1, 1.0],
        "Inverse regularization strengths C tried for logistic regression.",
        minimum=0.0, exclusive=True,
    ),
    "logreg_max_iter": Parameter("int", 100, "Iteration limit of each logistic-regression fit.", minimum=1),
    "forest_trees": Parameter(
        "list[int]", [100],
        "Numbers of trees tried for the random forest.",
        minimum=1, maximum=5000,
    ),
    "forest_max_features": Parameter(
        "list[str]", ["sqrt"],
        "Features considered per forest split: sqrt and/or log2.",
        choices=('sqrt', 'log2'),
    ),
    "svm_method": Parameter(
        "str", "exact",
        "RBF SVM: exact (libsvm's SVC) or nystroem (kernel approximation, linear SVM).",
        choices=('exact', 'nystroem'),
    ),
    "svm_c": Parameter("list[float]", [1.0, 10.0], "SVM regularization values C tried.", minimum=0.0, exclusive=True),
    "svm_train_size": Parameter(
        "int", 0,
        "Stratified subsample of training images for the SVM; 0 uses all of them.",
        minimum=0,
    ),
    "svm_components": Parameter(
        "int", 1500,
        "Nystroem components, for svm_method nystroem.",
        minimum=10, maximum=20_000,
    ),
    "svm_max_iter": Parameter("int", 300, "Iteration limit of the linear SVM, for svm_method nystroem.", minimum=1),
    "svm_pca_components": Parameter(
        "int", 0,
        "Principal components (fitted on train) fed to the SVM; 0 feeds all pixels.",
        minimum=0, maximum=784,
    ),
    "boosting_learning_rate": Parameter(
        "list[float]", [0.1],
        "Learning rates tried for gradient boosting.",
        minimum=0.0, maximum=10.0, exclusive=True,
    ),
    "boosting_max_iter": Parameter(
        "int", 20,
        "Most boosting rounds; early stopping on validation may use fewer.",
        minimum=1, maximum=10_000,
    ),
    "boosting_train_size": Parameter(
        "int", 0,
        "Stratified subsample of training images for boosting; 0 uses all of them.",
        minimum=0,
    ),
    "n_jobs": Parameter(
        "int", -1,
        "CPU cores for the forest and the tree sweep; -1 uses all of them.",
        minimum=-1, maximum=1024,
    ),
    "accelerate": Parameter("bool", False, "Patch scikit-learn with scikit-learn-intelex when it is installed."),
    "n_misclassified": Parameter(
        "int", 20,
        "Misclassified test images drawn per model.",
        minimum=0, maximum=200,
        notebook_help={
            "03_dense_nets": "Misclassified test images drawn for the chosen network.",
        },
    ),
    "zoo": Parameter("list[str]", list(DENSE_NETWORKS), "Zoo networks to train.", choices=DENSE_NETWORKS),
    "zoo_epochs": Parameter(
        "int", 3,
        "Epochs per zoo network; 0 uses each network's original epochs.",
        minimum=0, maximum=1000,
    ),
    "early_stopping": Parameter(
        "bool", False,
        "Stop a zoo network or search candidate once validation loss has stalled for patience epochs.",
        notebook_defaults={"04_cnn": True},
        notebook_help={
            "04_cnn": "Stop a network once validation loss has stalled for patience epochs.",
        },
    ),
    "patience": Parameter(
        "int", 5,
        "Epochs without a better validation loss before early stopping.",
        minimum=1, maximum=1000, notebook_defaults={"04_cnn": 3},
    ),
    "reduce_lr_patience": Parameter(
        "int", 0,
        ("Multiply a zoo network's learning rate by 0.3 after this many epochs without a better validation loss; 0 "
         "keeps it fixed."),
        minimum=0, maximum=1000,
        notebook_help={
            "04_cnn": ("Multiply a reproduced network's learning rate by 0.3 after this many epochs without "
                       "improvement of what its early stopping watches; 0 keeps its report's fixed rate (cnn_modern "
                       "has its own schedule)."),
        },
    ),
    "zoo_watching_accuracy": Parameter(
        "list[str]", [],
        ("Zoo networks whose early stopping and learning-rate cuts watch validation accuracy, keeping the epoch with "
         "the most validation digits right, instead of validation loss."),
        choices=DENSE_NETWORKS, empty_allowed=True,
    ),
    "scaling": Parameter(
        "str", "divide",
        "Input scaling of the zoo and the experiments: divide (by 255) or standardize.",
        choices=('divide', 'standardize'),
    ),
    "standardized_zoo": Parameter(
        "list[str]", [],
        "Zoo networks fed standardized pixels (each pixel's training mean and spread) whatever scaling says.",
        choices=DENSE_NETWORKS, empty_allowed=True,
    ),
    "experiments": Parameter("list[str]", list(DENSE_EXPERIMENTS), "Experiments to run.", choices=DENSE_EXPERIMENTS),
    "experiment_epochs": Parameter("int", 3, "Epochs per experiment run.", minimum=1, maximum=1000),
    "experiment_train_size": Parameter(
        "int", 0,
        "Stratified subsample of training images for the experiments; 0 uses all.",
        minimum=0,
    ),
    "experiment_batch_size": Parameter(
        "int", 128,
        "Batch size of the experiment runs (except the batch-size experiment).",
        minimum=1, maximum=65_536,
    ),
    "base_units": Parameter(
        "int", 128,
        "Width of the experiments' base network (one hidden layer, Adam).",
        minimum=1, maximum=65_536,
    ),
    "widths": Parameter(
        "list[int]", [16, 128, 512],
        "Hidden-layer widths tried in the width experiment.",
        minimum=1, maximum=65_536,
    ),
    "depths": Parameter(
        "list[int]", list(SEVERITY_LEVELS),
        "Numbers of hidden layers tried in the depth experiment.",
        minimum=1, maximum=50,
    ),
    "optimizers": Parameter("list[str]", list(OPTIMIZERS), "Optimizers compared.", choices=OPTIMIZERS),
    "dropouts": Parameter("list[float]", [0.0, 0.5], "Dropout rates tried.", minimum=0.0, maximum=0.95),
    "batch_sizes": Parameter(
        "list[int]", [32, 256],
        "Batch sizes tried in the batch-size x epochs experiment.",
        minimum=1, maximum=65_536,
    ),
    "epoch_options": Parameter(
        "list[int]", [1, 3],
        "Epoch counts read off each batch size's run.",
        minimum=1, maximum=1000,
    ),
    "scalings": Parameter(
        "list[str]", ["divide", "standardize"],
        "Input scalings compared.",
        choices=('divide', 'standardize'),
    ),
    "target_accuracy": Parameter(
        "float", 0.95,
        "Validation accuracy the smallest-network search must reach.",
        minimum=0.0, maximum=1.0, exclusive=True,
    ),
    "search_widths": Parameter(
        "list[int]", [16, 32, 64],
        "Hidden-layer widths of the smallest-network search.",
        minimum=1, maximum=65_536,
    ),
    "search_depths": Parameter(
        "list[int]", [1],
        "Numbers of hidden layers of the smallest-network search.",
        minimum=1, maximum=50,
    ),
    "search_epochs": Parameter(
        "int", 3,
        "Most epochs per search candidate; early stopping on validation loss when early_stopping is on.",
        minimum=1, maximum=1000,
    ),
    "search_train_size": Parameter(
        "int", 0,
        "Stratified subsample of training images for the search; 0 uses all.",
        minimum=0,
    ),
    "precision": Parameter(
        "str", "auto",
        ("Training precision: auto (float32, since dense networks measured no faster in 16 bits), float32, "
         "mixed_bfloat16 or mixed_float16."),
        choices=PRECISIONS,
        notebook_help={
            "04_cnn": ("Training precision: auto (mixed_bfloat16 on a CPU with bfloat16 arithmetic, mixed_float16 on a "
                       "GPU, float32 elsewhere), float32, mixed_bfloat16 or mixed_float16."),
        },
    ),
    "networks": Parameter("list[str]", list(CNN_NETWORKS), "Networks to train.", choices=CNN_NETWORKS),
    "epochs": Parameter(
        "int", 1,
        "Most epochs of each reproduced CNN; 0 uses its report's epochs (10, 10 and 5).",
        minimum=0, maximum=1000,
    ),
    "modern_epochs": Parameter(
        "int", 2,
        "Most epochs of cnn_modern; its learning-rate schedule spans them.",
        minimum=1, maximum=1000,
    ),
    "networks_watching_accuracy": Parameter(
        "list[str]", [],
        ("Networks whose early stopping watches validation accuracy, keeping the epoch with the most validation digits "
         "right, instead of validation loss."),
        choices=CNN_NETWORKS, empty_allowed=True,
    ),
    "augmentation": Parameter(
        "str", "auto",
        "Augmentation of cnn_modern: auto (by dataset), digits (no mirroring), fashion (with mirroring) or none.",
        choices=AUGMENTATIONS,
    ),
    "augmentation_strength": Parameter(
        "float", 0.08,
        "Largest random shift and zoom (fraction of the side); rotations go up to 100 times it in degrees.",
        minimum=0.0, maximum=0.3,
    ),
    "modern_robustness": Parameter(
        "list[str]", list(ROBUSTNESS_KINDS),
        ("Changes of real mail cnn_modern also trains on (half its images get one): pen (thicker, thinner), noise, "
         "occlusion (stripes, blots); [] for none."),
        choices=ROBUSTNESS_KINDS, empty_allowed=True,
    ),
    "modern_outlier_exposure": Parameter(
        "float", 0.25,
        ("Generated images of no digit added to cnn_modern's training images (this share of them), taught a uniform "
         "answer so that its confidence is low on what is not a digit; 0 for none."),
        minimum=0.0, maximum=1.0,
    ),
    "modern_scan_copies": Parameter(
        "float", 0.5,
        ("Copies per training digit of cnn_modern made to look like other writers' scans (a slant, stretched, 16-32 "
         "px, another pen, blurred or black and white), added to its training images; 1.5 copies each once and half "
         "twice; 0 for none, at most 3."),
        minimum=0.0, maximum=MAX_SCAN_COPIES,
    ),
    "modern_elastic": Parameter(
        "float", 0.0,
        ("Elastic distortion of cnn_modern's training digits (Simard et al.'s alpha in pixels, 34 in their paper; a "
         "smooth random field bends each stroke as another hand would): 0 for none, at most 60."),
        minimum=0.0, maximum=MAX_ELASTIC_ALPHA,
    ),
    "modern_members": Parameter(
        "int", 1,
        ("Networks like cnn_modern trained with seeds seed, seed + 1, ... whose mean probability is kept as cnn_modern "
         "(one plain Keras model); 1 for one network, at most 5."),
        minimum=1, maximum=MAX_MODERN_MEMBERS,
    ),
    "modern_filters": Parameter(
        "list[int]", [32, 64],
        "Filters of each cnn_modern block (each block halves the image side).",
        minimum=1, maximum=1024,
    ),
    "modern_convs_per_block": Parameter(
        "int", 2,
        "Unpadded 3x3 convolutions per cnn_modern block.",
        minimum=1, maximum=5,
    ),
    "modern_dense_units": Parameter("int", 128, "Units of cnn_modern's dense layer.", minimum=1, maximum=65_536),
    "modern_dropout": Parameter("float", 0.3, "Dropout before cnn_modern's output layer.", minimum=0.0, maximum=0.95),
    "modern_learning_rate": Parameter(
        "float", 0.003,
        "Peak learning rate of cnn_modern's warm-up and cosine decay (AdamW).",
        minimum=0.0, maximum=10.0, exclusive=True,
    ),
    "modern_batch_size": Parameter("int", 128, "Batch size of cnn_modern.", minimum=1, maximum=65_536),
    "modern_ema_momentum": Parameter(
        "float", 0.0,
        ("Above 0, AdamW keeps an exponential moving average of cnn_modern's weights with this momentum (e.g. 0.999) "
         "and the average is kept as the trained network, its batch-normalization statistics recomputed over one pass "
         "of the training images; 0 keeps the weights of the epoch that early stopping restores."),
        minimum=0.0, maximum=MAX_EMA_MOMENTUM,
    ),
    "label_smoothing": Parameter("float", 0.1, "Label smoothing of cnn_modern's loss.", minimum=0.0, maximum=0.5),
    "mirror_average": Parameter(
        "bool", True,
        ("Where mirroring is allowed (clothes), average cnn_modern's predictions of each image and its mirror image if "
         "that raises validation accuracy."),
    ),
    "cv_model": Parameter(
        "str", "cnn_rmsprop",
        "Network cross-validated with k folds of the training part.",
        choices=CNN_NETWORKS,
    ),
    "cv_folds": Parameter("int", 2, "Folds of the cross-validation; 0 skips it.", minimum=0, maximum=20),
    "cv_epochs": Parameter("int", 1, "Most epochs of each fold model.", minimum=1, maximum=1000),
    "fold_ensemble": Parameter("bool", True, "Add the mean of the fold models' probabilities as a model of its own."),
    "n_error_images": Parameter("int", 20, "Images drawn in each error-analysis grid.", minimum=0, maximum=200),
    "model_path": Parameter(
        "str", "",
        ("Saved .keras model to analyse; empty uses this run's models/cnn_selected.keras (or, with no run folder, "
         "trains a small CNN)."),
        notebook_help={
            "08_adaptation": ("Saved .keras model to adapt (never changed); empty uses this run's "
                              "models/cnn_selected.keras (or, with no run folder, trains a small CNN)."),
        },
    ),
    "standalone_epochs": Parameter(
        "int", 2,
        "Epochs of the small CNN trained when there is no saved model.",
        minimum=1, maximum=100,
        # 08 adapts the small CNN, so one epoch (a model that has more to learn from the office) is enough.
        notebook_defaults={"08_adaptation": 1},
    ),
    "target_accepted_accuracy": Parameter(
        "float", 0.995,
        ("Accuracy the answered validation digits (and those of threshold_field_data) must reach; sets the confidence "
         "threshold."),
        minimum=0.5, maximum=1.0, exclusive=True,
        notebook_help={
            "08_adaptation": ("Accuracy the answered digits must reach; each adapted model's threshold is chosen "
                              "for it on its own validation digits."),
        },
    ),
    "corruptions": Parameter(
        "list[str]", list(CORRUPTION_NAMES),
        "Corruptions of the test images to measure.",
        choices=CORRUPTION_NAMES,
    ),
    "severities": Parameter(
        "list[int]", list(SEVERITY_LEVELS),
        "Severities (1 mild, 2 middle, 3 strong) of each corruption.",
        choices=SEVERITY_LEVELS,
    ),
    "n_test_images": Parameter(
        "int", 0,
        "Test images corrupted per corruption and severity (the first ones); 0 uses all.",
        minimum=0,
    ),
    "n_nondigit_images": Parameter(
        "int", 1000,
        "Images of no digit per source, for the choice and again for the report.",
        minimum=10, maximum=100_000,
    ),
    "n_examples": Parameter(
        "int", 10,
        "Corrupted images shown for each of the worst corruptions.",
        minimum=1, maximum=50,
    ),
    "field_data": Parameter(
        "list[str]", [],
        ("Labelled folder trees (<root>/<label>/*.png) of other writers' digits to report on (relative paths are found "
         "under data_dir, then $DIGITREC_DATA); empty uses scikit-learn's 8x8 digits."),
        empty_allowed=True,
    ),
    "threshold_field_data": Parameter(
        "list[str]", [],
        ("Labelled folder trees whose answered digits must reach the target too: the threshold is the highest chosen "
         "on validation and on each. Never a set you want an honest figure from."),
        empty_allowed=True,
    ),
    "n_envelopes": Parameter(
        "int", 40,
        "Photo-like strings of 3 to 6 test digits read as digitrec read reads them; 0 skips them.",
    ),
    "office_data": Parameter(
        "str", "",
        ("Labelled folder tree (<root>/<label>/*.png) of the office's digits to adapt on and check on (a relative path "
         "is found under data_dir, then $DIGITREC_DATA); empty uses scikit-learn's 8x8 digits."),
    ),
    "label_counts": Parameter(
        "list[int]", [0, 100],
        ("Numbers of office digits labelled, one point of the curve each; 0 is the model as it came, -1 all the digits "
         "not held out to check on."),
        minimum=-1,
    ),
    "repeats": Parameter("int", 2, "Draws of the labelled digits per number (the check digits stay the same).",
                         minimum=1, maximum=20),
    "check_share": Parameter(
        "float", 0.5,
        "Share of the office's digits held out to check on, never labelled in any draw.",
        minimum=0.0, maximum=1.0, exclusive=True,
    ),
    "use_unlabelled": Parameter(
        "bool", False,
        ("Give each adaptation the digits not drawn as unlabelled ones, as digitrec adapt --unlabelled does (about "
         "three times slower)."),
    ),
    "compare_suggested": Parameter(
        "bool", True,
        "Also label the digits digitrec adapt --suggest suggests first, rather than at random, at each number.",
    ),
    "monitor_window": Parameter(
        "int", 250,
        ("Digits per window of the simulated stream that digitrec monitor checks (the command's default is 500; "
         "the model's test digits must hold a window)."),
        minimum=MINIMUM_MONITOR_WINDOW,
    ),
    "monitor_windows": Parameter(
        "int", 10,
        ("Windows of the simulated stream: three of the model's test digits, then a growing share of the office's "
         "digits, up to all."),
        minimum=4, maximum=50,
    ),
    "speed_batch_size": Parameter("int", 1000, "Batch size of the throughput measurement.", minimum=1, maximum=65_536),
    "results_dir": Parameter(
        "str", "",
        ("Folder of results records to compare; empty uses this run's results/, else reports/latest/results, else "
         "quick classical models made here."),
    ),
    "tolerance": Parameter(
        "float", 0.0,
        ("Validation accuracy a model may trail the best by and still count as tied; the cheapest tied model is "
         "recommended."),
        notebook_help={
            "07_stability": ("Validation accuracy a model may trail the best by and still count as tied, as in "
                             "06_model_comparison."),
        },
    ),
    "n_runner_ups": Parameter("int", 5, "Runner-ups compared with the recommended model by McNemar's test."),
    "example_digit": Parameter(
        "int", 0,
        "Index of the mnist-sample image rendered as a photo to show digitrec predict's preparation.",
    ),
    "sweep_dir": Parameter(
        "str", "",
        "Sweep folder whose seed<k>/results/ records are compared; empty makes two seeds of a quick run.",
    ),
    "quick_seeds": Parameter("list[int]", [1, 2], "Seeds of the quick run made when sweep_dir is empty."),
    "quick_train_size": Parameter(
        "int", 1000,
        "Training and validation images of the quick run made when sweep_dir is empty.",
    ),
}

