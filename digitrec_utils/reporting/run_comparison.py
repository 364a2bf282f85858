"""Two run folders side by side (``digitrec compare RUN_A RUN_B``): which run's model to deploy, and what differs.

Each run's recommended model is the comparison notebook's (06), or the one it would name where the run had no 06
(:func:`~digitrec_utils.reporting.ranking.recommend_from_records`). Where both were tested on the same digits (the
same dataset checksum, which covers the files and the split, and the same test labels in the same order), the two
are compared with McNemar's exact test on those digits (:func:`~digitrec_utils.evaluation.evaluation.compare_paired`),
the test the suite uses everywhere; otherwise no paired test is made, the reason is given and only the figures are
set side by side. The test digits are read for this final comparison only: each model was chosen on validation in
its own run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitrec_utils.evaluation.evaluation import PairedComparison, compare_paired, estimate_images_needed
from digitrec_utils.exceptions import ParameterError, ResultsError
from digitrec_utils.params import RESERVED_KEYS
from digitrec_utils.reporting.index_page import read_recommendation
from digitrec_utils.reporting.ranking import read_predictions, recommend_from_records
from digitrec_utils.reporting.results import load_run_results

# How many of the digits that one model alone reads right are listed by their test index.
LISTED_DIGITS = 20


@dataclass
class RunSummary:
    """What one run folder holds for a comparison.

    Attributes
    ----------
    label : str
        ``A`` or ``B``.
    name : str
        The run folder's name (``latest`` is followed to the run it points at).
    manifest : dict
        Its ``run.json``.
    records : dict of str to dict
        Notebook -> results record.
    recommended : dict or None
        Its recommended model (:func:`~digitrec_utils.reporting.ranking.describe_model`'s keys).
    """

    label: str
    name: str
    manifest: dict
    records: dict[str, dict]
    recommended: dict | None

    @property
    def model(self) -> str:
        """``run A's cnn_modern (04_cnn)``, or a sentence that it has none."""
        if not self.recommended:
            return f"run {self.label} ({self.name}) has no recommended model"
        return f"run {self.label}'s {self.recommended['name']} ({self.recommended['notebook']})"

    def read_test_predictions(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The recommended model's test labels and predictions, or (None, None) where the record has none."""
        if not self.recommended:
            return None, None
        return read_predictions(self.records, f"{self.recommended['notebook']}/{self.recommended['name']}")

    def describe_test_digits(self) -> str:
        """The recommended model's test digits: dataset, split and count."""
        record = self.records.get((self.recommended or {}).get("notebook"), {})
        dataset = record.get("dataset", {})
        split = dataset.get("source", {}).get("split") or "its split"
        return f"{dataset.get('name', 'unknown data')}, {split}, {dataset.get('n_test', 0):,} test digits"


@dataclass
class RunComparison:
    """Two runs compared: their recommended models on the same digits, each notebook's headline, what differs.

    Attributes
    ----------
    first, second : RunSummary
    paired : PairedComparison or None
        The two recommended models on the same test digits; None where they cannot be paired.
    untestable : str
        Why no paired test was made ("" when it was).
    only_first, only_second : list of int
        Test indices of the digits that one recommended model alone reads right.
    headlines : list of (str, str, str)
        Notebook, its headline in A, in B ("" where it did not run).
    parameters : list of (str, str, object, object)
        Notebook, parameter, its value in A, in B, for each that differs ("not set" where a run left it out).
    versions : list of (str, str, str)
        What (code, a library, the data of a notebook), in A, in B, for each that differs.
    """

    first: RunSummary
    second: RunSummary
    paired: PairedComparison | None
    untestable: str = ""
    only_first: list[int] = field(default_factory=list)
    only_second: list[int] = field(default_factory=list)
    headlines: list[tuple[str, str, str]] = field(default_factory=list)
    parameters: list[tuple[str, str, object, object]] = field(default_factory=list)
    versions: list[tuple[str, str, str]] = field(default_factory=list)

    def describe(self) -> str:
        """One sentence first: which run to deploy, or that the test digits cannot tell the two apart and how many
        would."""
        if self.paired is None:
            return (f"No paired test: {self.untestable}. The figures are set side by side below; compare the two "
                    "models on the same labelled digits with `digitrec evaluate DIGITS --model A --model B`.")
        accuracy, p_value = self._read_paired()
        alone = {"A": len(self.only_first), "B": len(self.only_second)}
        n_images = self.paired.n_images
        if p_value < self.paired.significance and alone["A"] != alone["B"]:
            better, worse = (self.first, self.second) if alone["A"] > alone["B"] else (self.second, self.first)
            return (f"Deploy run {better.label} ({better.name}): its {better.recommended['name']} reads these test "
                    f"digits better than run {worse.label}'s {worse.recommended['name']} ({accuracy[better.label]:.2%} "
                    f"against {accuracy[worse.label]:.2%} on the same {n_images:,} test digits; "
                    f"it alone reads {alone[better.label]:,} right, the other alone {alone[worse.label]:,}; "
                    f"McNemar's exact p = {p_value:.2g}).")
        needed = estimate_images_needed(alone["A"], alone["B"], n_images, significance=self.paired.significance)
        if needed is not None:
            more = (f"; seeing a difference of this size reliably would take about {needed:,} test digits "
                    f"({max(needed - n_images, 0):,} more)")
        elif alone["A"] == 0:
            more = "; the two read exactly the same digits right"
        else:
            more = "; they read exactly as many right, so more digits of this kind would not choose either"
        return (f"The test digits cannot tell run A's {self.first.recommended['name']} ({accuracy['A']:.2%}) and run "
                f"B's {self.second.recommended['name']} ({accuracy['B']:.2%}) apart: on the same {n_images:,} test "
                f"digits, A's alone reads {alone['A']:,} right and B's alone {alone['B']:,}; McNemar's exact "
                f"p = {p_value:.2g}{more}.")

    def describe_lines(self) -> list[str]:
        """The sentence, then each run's recommended model, the headlines and what differs, as lines of text."""
        lines = [self.describe(), "", "Recommended models:"]
        for summary in (self.first, self.second):
            best = summary.recommended
            low, high = best["test_accuracy_ci95"] if best else (0.0, 0.0)
            figure = (f"{best['name']} ({best['notebook']}), test accuracy {best['test_accuracy']:.2%} (95% CI "
                      f"{low:.2%} to {high:.2%})" if best else "none")
            lines.append(f"  {summary.label} {summary.name}: {figure}")
        lines += ["", "Headlines:"]
        for notebook, first, second in self.headlines:
            lines += ([f"  {notebook}: {first} (both)"] if first == second else
                      [f"  {notebook} A: {first or 'did not run'}", f"  {notebook} B: {second or 'did not run'}"])
        lines += ["", "Parameters that differ:"]
        lines += [f"  {key}: {first} in A, {second} in B ({where})"
                  for key, first, second, where in self.group_parameters()] or ["  none"]
        lines += ["", "Code, libraries and data that differ:"]
        lines += [f"  {what}: {first} in A, {second} in B" for what, first, second in self.versions] or ["  none"]
        return lines

    def group_parameters(self) -> list[tuple[str, str, str, str]]:
        """The parameters that differ, each change once with the notebooks it was made in ("every notebook that has
        it" when all that have the parameter), for reading: parameter, value in A, in B, where."""
        groups: dict[tuple[str, str, str], list[str]] = {}
        for notebook, key, first, second in self.parameters:
            groups.setdefault((key, _show(first), _show(second)), []).append(notebook)
        having = {}
        for summary in (self.first, self.second):
            for run in summary.manifest.get("notebooks", []):
                for key in run.get("parameters", {}):
                    having.setdefault(key, set()).add(run["notebook"])
        return [(key, first, second, "every notebook that has it" if len(notebooks) > 1
                 and set(notebooks) == having.get(key) else ", ".join(notebooks))
                for (key, first, second), notebooks in groups.items()]

    def to_dict(self) -> dict:
        """The comparison for machines (``digitrec compare --json``)."""
        paired = None
        if self.paired is not None:
            accuracy, p_value = self._read_paired()
            paired = {"n_images": self.paired.n_images, "best": self.paired.best, "p_value": p_value,
                      "significance": self.paired.significance, "accuracy": accuracy,
                      "only_a_right": self.only_first, "only_b_right": self.only_second}
        return {"sentence": self.describe(),
                "runs": {summary.label: {"name": summary.name, "status": summary.manifest.get("status"),
                                         "recommended": summary.recommended}
                         for summary in (self.first, self.second)},
                "paired": paired, "untestable": self.untestable or None,
                "headlines": [{"notebook": notebook, "a": first, "b": second}
                              for notebook, first, second in self.headlines],
                "parameters": [{"notebook": notebook, "parameter": key, "a": first, "b": second}
                               for notebook, key, first, second in self.parameters],
                "versions": [{"what": what, "a": first, "b": second} for what, first, second in self.versions]}

    def _read_paired(self) -> tuple[dict[str, float], float]:
        """Each model's accuracy on the shared test digits, and McNemar's p-value between them."""
        table = self.paired.table.set_index("setting")
        accuracy = {label: float(table.loc[label, "accuracy"]) for label in ("A", "B")}
        return accuracy, float(table.loc["B" if self.paired.best == "A" else "A", "p-value"])


def _show(value) -> str:
    """A parameter's value as a reader wants it: text bare, anything else as Python writes it."""
    return value if isinstance(value, str) else repr(value)


def locate_run_folder(name: str | Path, reports_root: Path, *, label: str) -> Path:
    """Return a run folder given as a path or as a name under ``reports_root`` (``latest`` included).

    Raises
    ------
    ParameterError
        When it is no finished run folder, or is a seed sweep's folder (whose seeds are run folders).
    """
    folder = Path(name).expanduser()
    folder = (folder if folder.is_dir() else reports_root / str(name)).resolve()
    if (folder / "sweep.json").is_file():
        raise ParameterError(f"run {label}: {name} is a seed sweep; compare two of its seeds' folders, e.g. "
                             f"{Path(str(name)) / 'seed1'}, or a seed with another run's folder.")
    if not (folder / "run.json").is_file():
        raise ParameterError(f"run {label}: {name} is no finished run folder (none with run.json at {folder}); give "
                             f"a folder of {reports_root} (e.g. latest) or a path to one.")
    return folder


def read_run(folder: Path, *, label: str) -> RunSummary:
    """Read a run folder's manifest, results records and recommended model.

    Raises
    ------
    ParameterError
        When its ``run.json`` or a results record cannot be read.
    """
    try:
        manifest = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        results = folder / "results"
        records = load_run_results(results) if results.is_dir() else {}
    except (OSError, ValueError, ResultsError) as error:
        raise ParameterError(f"run {label}: {folder.name} cannot be read ({error}); run it again.") from None
    recommendation = read_recommendation(folder)
    tolerance = _find_tolerance(manifest)
    recommended = recommendation["recommended"] if recommendation else recommend_from_records(records,
                                                                                              tolerance=tolerance)
    return RunSummary(label, folder.name, manifest, records, recommended)


def _find_tolerance(manifest: dict) -> float:
    """The comparison's tolerance in a run's parameters (0 where 06 did not run or left it at its default)."""
    for run in manifest.get("notebooks", []):
        if run.get("notebook") == "06_model_comparison":
            return float(run.get("parameters", {}).get("tolerance", 0.0) or 0.0)
    return 0.0


def compare_runs(first: RunSummary, second: RunSummary) -> RunComparison:
    """Compare two runs (module docstring): their recommended models, headlines, parameters and versions."""
    comparison = RunComparison(first, second, None, headlines=_pair_headlines(first, second),
                               parameters=_pair_parameters(first, second), versions=_pair_versions(first, second))
    tested = {summary.label: summary.read_test_predictions() for summary in (first, second)}
    comparison.untestable = _find_why_untestable(first, second, tested)
    if comparison.untestable:
        return comparison
    (labels, predictions_first), (_, predictions_second) = tested["A"], tested["B"]
    comparison.paired = compare_paired(labels, {"A": predictions_first, "B": predictions_second})
    right_first, right_second = predictions_first == labels, predictions_second == labels
    comparison.only_first = np.flatnonzero(right_first & ~right_second).tolist()
    comparison.only_second = np.flatnonzero(right_second & ~right_first).tolist()
    return comparison


def _find_why_untestable(first: RunSummary, second: RunSummary, tested: dict[str, tuple]) -> str:
    """Why the two recommended models cannot be compared on the same digits, or "" when they can.

    ``tested``: each run's label -> its recommended model's test labels and predictions.
    """
    for summary in (first, second):
        if not summary.recommended:
            return f"{summary.model}, since no model of it has a validation accuracy"
        if tested[summary.label][0] is None:
            return f"{summary.model}'s record holds no per-digit test predictions"
    checksums = [summary.records[summary.recommended["notebook"]]["dataset"].get("sha256") for summary in
                 (first, second)]
    if checksums[0] != checksums[1]:
        return (f"the two models were tested on different digits (A: {first.describe_test_digits()}; B: "
                f"{second.describe_test_digits()}), so a paired test cannot be made; a run with the other's data "
                "and split (the same dataset, test_fraction and split_seed) can be compared")
    if not np.array_equal(tested["A"][0], tested["B"][0]):
        return "the two records' test labels differ although their dataset checksums agree; run them again"
    return ""


def _pair_headlines(first: RunSummary, second: RunSummary) -> list[tuple[str, str, str]]:
    """Each notebook of either run with its headline in each."""
    notebooks = sorted(set(first.records) | set(second.records))
    return [(notebook, first.records.get(notebook, {}).get("headline", ""),
             second.records.get(notebook, {}).get("headline", "")) for notebook in notebooks]


def _pair_parameters(first: RunSummary, second: RunSummary) -> list[tuple[str, str, object, object]]:
    """Each parameter whose value differs between the runs, notebook by notebook."""
    values = [{run["notebook"]: {key: value for key, value in run.get("parameters", {}).items()
                                 if key not in RESERVED_KEYS} for run in summary.manifest.get("notebooks", [])}
              for summary in (first, second)]
    changes = []
    for notebook in sorted(set(values[0]) | set(values[1])):
        if notebook not in values[0] or notebook not in values[1]:
            ran = "A" if notebook in values[0] else "B"
            changes.append((notebook, "(the notebook)", "ran" if ran == "A" else "did not run",
                            "ran" if ran == "B" else "did not run"))
            continue
        old, new = values[0][notebook], values[1][notebook]
        changes += [(notebook, key, old.get(key, "not set"), new.get(key, "not set"))
                    for key in sorted(set(old) | set(new)) if old.get(key, "not set") != new.get(key, "not set")]
    return changes


def _pair_versions(first: RunSummary, second: RunSummary) -> list[tuple[str, str, str]]:
    """The code (git commit, digitrec's files), each library and each notebook's data that differ between the runs."""
    rows = []
    environments = [summary.manifest.get("environment", {}) for summary in (first, second)]
    commits = [_describe_commit(environment.get("git", {})) for environment in environments]
    if commits[0] != commits[1]:
        rows.append(("git commit", *commits))
    code = [{run.get("fingerprint_parts", {}).get("code") for run in summary.manifest.get("notebooks", [])} - {None}
            for summary in (first, second)]
    if code[0] and code[1] and code[0] != code[1]:
        rows.append(("digitrec's code (its files' SHA-256)", *(", ".join(sorted(digest[:12] for digest in digests))
                                                              for digests in code)))
    packages = [environment.get("packages", {}) for environment in environments]
    rows += [(name, str(packages[0].get(name)), str(packages[1].get(name)))
             for name in sorted(set(packages[0]) | set(packages[1])) if packages[0].get(name) != packages[1].get(name)]
    checksums = [summary.manifest.get("dataset_sha256", {}) for summary in (first, second)]
    rows += [(f"data of {notebook}", str(checksums[0].get(notebook) or "none")[:12],
              str(checksums[1].get(notebook) or "none")[:12])
             for notebook in sorted(set(checksums[0]) & set(checksums[1]))
             if checksums[0].get(notebook) != checksums[1].get(notebook)]
    return rows


def _describe_commit(git: dict) -> str:
    """A git commit as a reader wants it: short, and whether the tree had uncommitted changes."""
    commit = git.get("commit")
    if not commit:
        return "unknown"
    return commit[:10] + (" with uncommitted changes" if git.get("dirty") else "")


def read_and_compare(run_a: str | Path, run_b: str | Path, *, reports_root: Path) -> RunComparison:
    """Locate, read and compare two run folders (see :func:`compare_runs`)."""
    first = read_run(locate_run_folder(run_a, reports_root, label="A"), label="A")
    second = read_run(locate_run_folder(run_b, reports_root, label="B"), label="B")
    return compare_runs(first, second)
