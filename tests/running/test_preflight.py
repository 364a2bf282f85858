"""The full-scale MNIST profile's data, checked before any notebook starts, where the shared data is present."""

from __future__ import annotations

import pytest

from digitrec_utils import config
from digitrec_utils.exceptions import DatasetError
from digitrec_utils.params import list_notebooks, load_profile, resolve_parameters
from digitrec_utils.running.preflight import check_datasets

SHARED_DATA = config.PROJECT_ROOT.parent / "shared" / "data"
MNIST_PROFILE = config.PROJECT_ROOT / "params" / "mnist.yaml"
WITHOUT_FIELD_SETS = ["deployment.field_data=[]", "deployment.threshold_field_data=[]", "adaptation.office_data="]


@pytest.mark.skipif(not (SHARED_DATA / "mnist").is_dir() or not (SHARED_DATA / "field").is_dir(),
                    reason=f"{SHARED_DATA} lacks mnist/ or field/ (the real MNIST and other writers' digits)")
def test_the_mnist_profile_finds_mnist_and_its_field_sets_or_says_how_to_run_without_them(tmp_path, monkeypatch):
    profile = load_profile(MNIST_PROFILE)
    parameters = resolve_parameters(profile, list_notebooks())
    assert parameters["05_deployment"]["threshold_field_data"] == ["field/semeion"]  # semeion chooses...
    assert "field/optdigits" in parameters["05_deployment"]["field_data"]  # ...and optdigits only reports.
    monkeypatch.setenv("DIGITREC_DATA", str(SHARED_DATA))
    assert "mnist" in check_datasets(parameters)

    # A data folder with MNIST but no field sets: the run is refused, naming each set and the way around it.
    (tmp_path / "mnist").symlink_to(SHARED_DATA / "mnist", target_is_directory=True)
    monkeypatch.setenv("DIGITREC_DATA", str(tmp_path))
    with pytest.raises(DatasetError) as refused:
        check_datasets(parameters)
    message = str(refused.value)
    assert "threshold_field_data of 05_deployment: field/semeion: no such labelled folder tree" in message
    assert "field_data of 05_deployment: field/optdigits" in message
    assert "--set deployment.threshold_field_data=[] (the threshold is then chosen on validation alone" in message
    assert "office_data of 08_adaptation: field/semeion" in message and "--set adaptation.office_data=" in message
    assert "dataset 'mnist'" not in message  # MNIST itself was found.
    without = resolve_parameters(profile, list_notebooks(), overrides=WITHOUT_FIELD_SETS)
    assert "mnist" in check_datasets(without)
