"""Parameter validation against the notebooks' parameters cells, before anything runs."""

from __future__ import annotations

import pytest

from digitrec_utils.exceptions import ParameterError
from digitrec_utils.params import coerce_value, load_profile, parse_override, resolve_parameters


def test_profile_values_reach_the_notebooks_that_declare_them():
    resolved = resolve_parameters({"dataset": "digits", "seed": 3, "eda": {"pca_points": 50}}, ["01_eda"])
    assert resolved["01_eda"] == {"dataset": "digits", "seed": 3, "pca_points": 50}


def test_typo_in_a_section_names_key_notebook_and_close_match():
    with pytest.raises(ParameterError, match=r"unknown key 'pca_point' for notebook 01_eda.*did you mean 'pca_points'"):
        resolve_parameters({"eda": {"pca_point": 10}}, ["01_eda"])


def test_unknown_common_key_and_unknown_section_are_both_reported():
    with pytest.raises(ParameterError) as raised:
        resolve_parameters({"sed": 1, "edaa": {"x": 1}}, ["01_eda"])
    message = str(raised.value)
    assert "unknown key 'sed'" in message and "did you mean 'seed'" in message
    assert "unknown section 'edaa'" in message and "did you mean 'eda'" in message


def test_a_problem_names_the_set_argument_that_caused_it_and_ends_its_sentence_once():
    with pytest.raises(ParameterError) as raised:
        resolve_parameters({"eda": {"pca_points": 10}}, ["01_eda"], source="params/x.yaml",
                           overrides=["eda.pca_point=5", "sed=1", "eda.zzz=1"])
    problems = str(raised.value).splitlines()[1:]
    assert problems[0].startswith("  - --set 'sed=1': unknown key 'sed'; no notebook declares it; "
                                  "did you mean 'seed'? ")
    assert problems[1].startswith("  - --set 'eda.pca_point=5': unknown key 'pca_point' for notebook 01_eda "
                                  "(section 'eda'); did you mean 'pca_points'? Its parameters are: ")
    assert problems[2].startswith("  - --set 'eda.zzz=1': unknown key 'zzz' for notebook 01_eda (section 'eda'). "
                                  "Its parameters are: ")
    assert not any("params/x.yaml" in problem or "?." in problem for problem in problems)


@pytest.mark.parametrize(
    "profile, expected",
    [({"seed": "forty"}, r"seed = 'forty' has the wrong type: expected int, got str"),
     ({"seed": True}, r"seed = True has the wrong type"),
     ({"seed": -1}, r"seed = -1 is not allowed: expected 0 <= value"),
     ({"test_fraction": 1.5}, r"test_fraction = 1.5 is not allowed: expected 0.0 < value < 1.0"),
     ({"dataset": "mnsit"}, r"dataset = 'mnsit' is not allowed: expected one of 'mnist-sample'"),
     ({"output_dir": "/tmp/x"}, r"'output_dir' is set by digitrec run itself")],
)
def test_bad_values_are_rejected_with_the_allowed_values(profile, expected):
    with pytest.raises(ParameterError, match=expected):
        resolve_parameters(profile, ["01_eda"])


def test_yaml_scientific_notation_string_becomes_a_float():
    assert coerce_value("learning_rate", "1e-3", "float") == pytest.approx(0.001)
    assert coerce_value("learning_rate", 2, "float") == 2.0  # An int is a valid float...
    with pytest.raises(ParameterError, match="test_fraction = 1.0 is not allowed"):
        coerce_value("test_fraction", 1, "float")  # ...but the range still applies.


def test_lists_and_optionals():
    assert coerce_value("knn_k", [1, 3.0], "list[int]") == [1, 3]
    assert coerce_value("knn_k", 5, "list[int]") == [5]
    # A key no declaration names keeps the type its cell annotates, optional ones included.
    assert coerce_value("undeclared_limit", None, "int | None") is None
    assert coerce_value("undeclared_limit", None, "Optional[int]") is None
    with pytest.raises(ParameterError, match="train_size must not be empty; expected int"):
        coerce_value("train_size", None, "int | None")  # The declaration's type wins over the one passed.
    with pytest.raises(ParameterError, match="must not be an empty list"):
        coerce_value("knn_k", [], "list[int]")
    # Where an empty list means "none", as for the field sets a profile may name, it stays empty.
    without = resolve_parameters({"deployment": {"field_data": ["field/semeion"]}}, ["05_deployment"],
                                 overrides=["deployment.field_data=[]", "deployment.threshold_field_data=[]"])
    assert without["05_deployment"]["field_data"] == [] and without["05_deployment"]["threshold_field_data"] == []
    with pytest.raises(ParameterError, match="knn_k = 'x' has the wrong type"):
        coerce_value("knn_k", ["x"], "list[int]")


def test_overrides_parse_yaml_values_and_sections():
    assert parse_override("seed=7") == (None, "seed", 7)
    assert parse_override("eda.pca_points=100") == ("eda", "pca_points", 100)
    assert parse_override("learning_rate=1e-3") == (None, "learning_rate", "1e-3")
    resolved = resolve_parameters({"seed": 1}, ["01_eda"], overrides=["seed=9", "eda.pca_points=20"])
    assert resolved["01_eda"]["seed"] == 9 and resolved["01_eda"]["pca_points"] == 20
    with pytest.raises(ParameterError, match="expected key=value"):
        parse_override("seed")
    with pytest.raises(ParameterError, match="unknown section 'ed'"):
        parse_override("ed.pca_points=3")


def test_profile_file_errors(tmp_path):
    with pytest.raises(ParameterError, match=r"absent.yaml not found. Available profiles: .*params/sample.yaml"):
        load_profile(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("seed: [1, 2\n")
    with pytest.raises(ParameterError, match="is not valid YAML"):
        load_profile(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(ParameterError, match="must be a mapping"):
        load_profile(listed)
    for text in ("", "# only a comment\n"):  # An empty file is a mistake; `{}` says "nothing changed" on purpose.
        empty = tmp_path / "empty.yaml"
        empty.write_text(text)
        with pytest.raises(ParameterError, match=r"profile .*empty.yaml is empty; .* Start from a copy of "
                                                 r"params/sample.yaml"):
            load_profile(empty)
    empty.write_text("{}\n")
    assert load_profile(empty) == {}


@pytest.mark.parametrize("section, expected", [
    ({"knn_k": []}, r"knn_k must not be an empty list"),
    ({"knn_k": [1, 5000]}, r"knn_k \[5000\] is larger than the 3,600 training images of 'mnist-sample'"),
    ({"tree_criteria": ["gini", "gain"]}, r"tree_criteria = 'gain' is not allowed: expected one of 'gini', 'entropy'"),
    ({"tree_min_depth": 12, "tree_max_depth": 5}, r"tree_min_depth = 12 is larger than tree_max_depth = 5"),
    ({"svm_method": "fast"}, r"svm_method = 'fast' is not allowed: expected one of 'exact', 'nystroem'"),
    ({"models": ["knn", "xgb"]}, r"models = 'xgb' is not allowed"),
    ({"n_jobs": 0}, r"n_jobs = 0 is not allowed"),
    ({"logreg_c": [0.0]}, r"logreg_c = 0.0 is not allowed: expected 0.0 < value"),
])
def test_classical_parameters_are_checked_before_the_run(section, expected):
    with pytest.raises(ParameterError, match=expected):
        resolve_parameters({"dataset": "mnist-sample", "classical": section}, ["02_classical_baselines"])


def test_k_is_checked_against_the_training_size_the_profile_asks_for():
    profile = {"dataset": "mnist-sample", "classical": {"train_size": 500, "knn_k": [30, 460]}}
    with pytest.raises(ParameterError, match=r"knn_k \[460\] is larger than the 450 training images"):
        resolve_parameters(profile, ["02_classical_baselines"])
    profile["classical"]["knn_k"] = [30, 450]
    assert resolve_parameters(profile, ["02_classical_baselines"])["02_classical_baselines"]["knn_k"] == [30, 450]


@pytest.mark.parametrize("section, expected", [
    ({"zoo": ["slp", "mlp_huge"]}, r"zoo = 'mlp_huge' is not allowed: expected one of 'slp'"),
    ({"experiments": ["width", "colour"]}, r"experiments = 'colour' is not allowed"),
    ({"optimizers": ["adagrad"]}, r"optimizers = 'adagrad' is not allowed"),
    ({"scaling": "minmax"}, r"scaling = 'minmax' is not allowed: expected one of 'divide', 'standardize'"),
    ({"target_accuracy": 1.2}, r"target_accuracy = 1.2 is not allowed"),
    ({"dropouts": [0.0, 1.0]}, r"dropouts = 1.0 is not allowed"),
])
def test_dense_parameters_are_checked_before_the_run(section, expected):
    with pytest.raises(ParameterError, match=expected):
        resolve_parameters({"dense": section}, ["03_dense_nets"])


def test_precision_is_checked_before_the_run(monkeypatch):
    with pytest.raises(ParameterError, match=r"precision = 'half' is not allowed: expected one of 'auto', 'float32'"):
        resolve_parameters({"precision": "half"}, ["03_dense_nets", "04_cnn"])
    # Hidden GPUs count as none, as TensorFlow would see them.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(ParameterError, match=r"04_cnn: precision = 'mixed_float16' needs an NVIDIA GPU"):
        resolve_parameters({"cnn": {"precision": "mixed_float16"}}, ["04_cnn"])
    resolved = resolve_parameters({"precision": "mixed_bfloat16"}, ["03_dense_nets", "04_cnn"])
    assert resolved["03_dense_nets"]["precision"] == resolved["04_cnn"]["precision"] == "mixed_bfloat16"


def test_a_benchmark_sees_the_notebooks_defaults_under_the_profiles_values():
    from digitrec_utils.params import resolve_with_defaults

    values = resolve_with_defaults({"seed": 3, "cnn": {"modern_epochs": 7}}, "04_cnn", overrides=["cnn.patience=2"])
    assert (values["seed"], values["modern_epochs"], values["patience"]) == (3, 7, 2)
    assert values["precision"] == "auto" and "cnn_modern" in values["networks"]  # Defaults of the cell.
    with pytest.raises(ParameterError, match="modern_epochs = 0 is not allowed"):
        resolve_with_defaults({"cnn": {"modern_epochs": 0}}, "04_cnn")


@pytest.mark.parametrize("module, settings_class, notebook", [
    ("classical", "ClassicalSettings", "02_classical_baselines"),
    ("dense", "DenseSettings", "03_dense_nets"),
    ("cnn", "CnnSettings", "04_cnn"),
])
def test_engine_settings_default_to_the_notebooks_parameters(module, settings_class, notebook):
    """Whoever calls an engine from Python gets the notebook's experiment: each settings field that is a notebook
    parameter defaults to the value of the notebook's parameters cell."""
    import dataclasses
    import importlib

    from digitrec_utils import config
    from digitrec_utils.params import get_default, get_notebook_parameters

    settings = getattr(importlib.import_module(f"digitrec_utils.engines.{module}"), settings_class)()
    schema = get_notebook_parameters(config.NOTEBOOKS_DIR / f"{notebook}.ipynb")
    differing = {}
    for field in dataclasses.fields(settings):
        if field.name in schema:
            value = getattr(settings, field.name)
            value = list(value) if isinstance(value, tuple) else value
            if value != get_default(schema, field.name):
                differing[field.name] = (value, get_default(schema, field.name))
    assert differing == {}, f"{settings_class} (left) and {notebook}'s parameters cell (right) disagree: {differing}"
