"""Precision for the hardware: detection on sample cpuinfo texts, the choice, and a float32 copy of a mixed model."""

from __future__ import annotations

import numpy as np
import pytest

from digitrec_utils.exceptions import ParameterError
from digitrec_utils.models import precision
from digitrec_utils.models.precision import (
    PrecisionChoice,
    choose_precision,
    computes_below_float32,
    copy_as_float32,
    describe_precision,
    policy_scope,
    read_cpu_flags,
)
from digitrec_utils.utils import environment
from digitrec_utils.utils.acceleration import find_gpus_cheaply

EPYC_WITH_BF16 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9654 96-Core Processor
flags\t\t: fpu vme sse sse2 avx avx2 avx512f avx512_vnni avx512_bf16 fma
"""
OLDER_XEON = """processor\t: 0
model name\t: Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz
flags\t\t: fpu vme sse sse2 avx avx2 fma
"""
SAPPHIRE_RAPIDS = """processor\t: 0
flags\t\t: avx512f amx_tile amx_bf16 amx_int8
"""


def test_bfloat16_is_detected_from_the_cpu_flags():
    assert "avx512_bf16" in read_cpu_flags(EPYC_WITH_BF16)
    assert choose_precision(flags=read_cpu_flags(EPYC_WITH_BF16)).policy == "mixed_bfloat16"
    assert choose_precision(flags=read_cpu_flags(SAPPHIRE_RAPIDS)).policy == "mixed_bfloat16"
    older = choose_precision(flags=read_cpu_flags(OLDER_XEON))
    assert older.policy == "float32" and "no bfloat16 arithmetic" in older.reason
    assert "avx512_bf16" in choose_precision(flags=read_cpu_flags(EPYC_WITH_BF16)).reason
    # Dense networks stay in float32 under auto, with the measurement that says why.
    dense = choose_precision(flags=read_cpu_flags(EPYC_WITH_BF16), networks="dense")
    assert dense.policy == "float32" and "gain nothing" in dense.reason
    assert choose_precision("mixed_bfloat16", flags=set(), networks="dense").policy == "mixed_bfloat16"
    assert read_cpu_flags("no flags here") == set()


@pytest.mark.parametrize("setting", ["1", "true", "yes"])
def test_the_environment_can_hide_the_cpus_bfloat16_so_auto_trains_in_float32(tmp_path, monkeypatch, setting):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(SAPPHIRE_RAPIDS + EPYC_WITH_BF16, encoding="utf-8")
    monkeypatch.setattr(environment, "CPUINFO", cpuinfo)
    monkeypatch.delenv(precision.HIDE_BFLOAT16_VARIABLE, raising=False)
    assert choose_precision().policy == "mixed_bfloat16"
    assert "bfloat16 in hardware (amx_bf16)" in environment.describe_cpu()
    monkeypatch.setenv(precision.HIDE_BFLOAT16_VARIABLE, setting)
    flags = read_cpu_flags()
    assert "amx_bf16" not in flags and "avx512f" in flags and "amx_tile" in flags
    hidden = choose_precision()
    assert hidden.policy == "float32" and "DIGITREC_HIDE_BFLOAT16 hides" in hidden.reason
    assert "AVX-512, bfloat16 hidden by DIGITREC_HIDE_BFLOAT16" in environment.describe_cpu()
    # Flags handed in are taken as they are, and an explicit request still wins.
    assert choose_precision(flags=read_cpu_flags(SAPPHIRE_RAPIDS)).policy == "mixed_bfloat16"
    assert choose_precision("mixed_bfloat16").policy == "mixed_bfloat16"
    monkeypatch.setenv(precision.HIDE_BFLOAT16_VARIABLE, "0")
    assert choose_precision().policy == "mixed_bfloat16"


def test_a_gpu_and_the_parameter_win_and_bad_requests_are_named():
    assert choose_precision(gpus=1, flags=set()).policy == "mixed_float16"
    assert choose_precision("float32", flags=read_cpu_flags(EPYC_WITH_BF16)).policy == "float32"
    with pytest.raises(ParameterError, match="allowed values are auto, float32"):
        choose_precision("half")
    with pytest.raises(ParameterError, match="needs a GPU"):
        choose_precision("mixed_float16", gpus=0, flags=set())


def test_a_model_trained_in_bfloat16_is_copied_to_float32_with_the_same_answers():
    from digitrec_utils.models.convnets import build_modern_cnn

    with policy_scope("mixed_bfloat16"):
        model = build_modern_cnn(filters=(4,), convs_per_block=1, dense_units=8, augmentation="digits",
                                 robustness=["pen"], total_steps=5)
    images = np.random.default_rng(0).random((16, 28, 28, 1)).astype("float32")
    copy = copy_as_float32(model)
    assert all(layer.dtype_policy.name == "float32" for layer in copy.layers)
    assert copy.get_layer("random_mail_changes").kinds == ["pen"]
    np.testing.assert_allclose(copy.predict(images, verbose=0), model.predict(images, verbose=0), atol=0.02)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_cnn_modern_with_mail_changes_trains_under_mixed_precision(policy):
    from digitrec_utils.models.convnets import build_modern_cnn

    with policy_scope(policy):
        model = build_modern_cnn(filters=(4,), convs_per_block=1, dense_units=8, augmentation="digits",
                                 robustness=["pen", "noise", "occlusion"], total_steps=5)
        images = np.random.default_rng(1).random((8, 28, 28, 1)).astype("float32")
        # In training the mail changes draw float32 noise; the layer computes in float32 whatever the policy.
        outputs = np.asarray(model(images, training=True))
    assert outputs.shape == (8, 10) and np.isfinite(outputs).all()
    assert model.get_layer("random_mail_changes").dtype_policy.name == "float32"


def test_gpus_are_counted_without_tensorflow_and_hidden_ones_do_not_count(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert find_gpus_cheaply(tmp_path / "absent") == 0
    (tmp_path / "0000:01:00.0").mkdir()
    (tmp_path / "0000:02:00.0").mkdir()
    assert find_gpus_cheaply(tmp_path) == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert find_gpus_cheaply(tmp_path) == 0


def test_the_report_sentence_says_what_runs_why_and_what_stays_float32():
    mixed = describe_precision(PrecisionChoice("mixed_bfloat16", "the CPU does bfloat16 arithmetic in hardware."))
    assert mixed.startswith("Networks train in mixed_bfloat16") and "compute in bfloat16" in mixed
    assert "output layers and losses stay float32" in mixed and "saved model are float32" in mixed
    plain = describe_precision(PrecisionChoice("float32", "the precision parameter asks for it."))
    assert plain == "Networks train in float32. Why: the precision parameter asks for it."


def _with_policy(policy, build):
    with policy_scope(policy):
        return build()


def test_a_network_trained_in_bfloat16_comes_back_and_is_saved_in_float32(tmp_path):
    import keras

    from digitrec_utils.models.model_files import save_model_bundle
    from digitrec_utils.models.nets import build_zoo_model
    from digitrec_utils.models.training import train_model

    rng = np.random.default_rng(2)
    images, labels = rng.random((64, 28, 28)).astype("float32"), rng.integers(0, 10, 64)
    model = _with_policy("mixed_bfloat16", lambda: build_zoo_model("mlp_tiny"))
    assert computes_below_float32(model)
    # The dense builders keep the output layer float32, so that the softmax and the loss are float32.
    assert model.layers[-1].compute_dtype == "float32"
    result = train_model(model, images, labels, images[:16], labels[:16], epochs=1, batch_size=32, seed=0, log=False)
    assert result.precision == "mixed_bfloat16"
    assert not computes_below_float32(result.model)
    path = save_model_bundle(model, tmp_path, name="mlp_tiny", class_names=[str(digit) for digit in range(10)],
                             dataset={"name": "synthetic"})
    loaded = keras.models.load_model(path)
    assert not computes_below_float32(loaded) and '"computes_in": "float32"' in path.with_suffix(".json").read_text()
    np.testing.assert_allclose(loaded.predict(images[:8], verbose=0), result.model.predict(images[:8], verbose=0),
                               atol=1e-6)


def test_the_validation_accuracy_reported_is_the_float32_copys():
    from digitrec_utils.models.nets import build_zoo_model
    from digitrec_utils.models.training import train_model

    rng = np.random.default_rng(3)
    images, labels = rng.random((96, 28, 28)).astype("float32"), rng.integers(0, 10, 96)
    model = _with_policy("mixed_bfloat16", lambda: build_zoo_model("mlp_512_rmsprop"))
    result = train_model(model, images, labels, images[:40], labels[:40], epochs=2, batch_size=32, seed=0, log=False)
    copied = np.mean(result.model.predict(images[:40], verbose=0).argmax(axis=1) == labels[:40])
    assert result.measured_val_accuracy is not None and result.val_accuracy == pytest.approx(copied)


def test_models_built_around_trained_networks_average_in_float32_under_a_mixed_policy():
    from digitrec_utils.engines.cnn import build_fold_ensemble
    from digitrec_utils.models.convnets import build_cnn, build_mirror_average

    trained = [copy_as_float32(_with_policy("mixed_bfloat16", lambda: build_cnn("cnn_small"))) for _ in range(2)]
    images = np.random.default_rng(4).random((8, 28, 28, 1)).astype("float32")
    # The notebook's global policy is still mixed_bfloat16 when it builds these after training.
    for build in (lambda: build_mirror_average(trained[0]), lambda: build_fold_ensemble(trained)):
        wrapper = _with_policy("mixed_bfloat16", build)
        assert not computes_below_float32(wrapper)
        probabilities = np.asarray(wrapper.predict(images, verbose=0))
        assert probabilities.dtype == np.float32
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
