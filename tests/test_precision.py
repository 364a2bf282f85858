"""Precision for the hardware: detection on sample cpuinfo texts, the choice, and a float32 copy of a mixed model."""

from __future__ import annotations

import numpy as np
import pytest

from digitrec_utils.exceptions import ParameterError
from digitrec_utils.precision import choose_precision, copy_as_float32, read_cpu_flags

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
    assert read_cpu_flags("no flags here") == set()


def test_a_gpu_and_the_parameter_win_and_bad_requests_are_named():
    assert choose_precision(gpus=1, flags=set()).policy == "mixed_float16"
    assert choose_precision("float32", flags=read_cpu_flags(EPYC_WITH_BF16)).policy == "float32"
    with pytest.raises(ParameterError, match="allowed values are auto, float32"):
        choose_precision("half")
    with pytest.raises(ParameterError, match="needs a GPU"):
        choose_precision("mixed_float16", gpus=0, flags=set())


def test_a_model_trained_in_bfloat16_is_copied_to_float32_with_the_same_answers():
    import keras

    from digitrec_utils.convnets import build_modern_cnn

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_modern_cnn(filters=(4,), convs_per_block=1, dense_units=8, augmentation="digits",
                                 robustness=["pen"], total_steps=5)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    images = np.random.default_rng(0).random((16, 28, 28, 1)).astype("float32")
    copy = copy_as_float32(model)
    assert all(layer.dtype_policy.name == "float32" for layer in copy.layers)
    assert copy.get_layer("random_mail_changes").kinds == ["pen"]
    np.testing.assert_allclose(copy.predict(images, verbose=0), model.predict(images, verbose=0), atol=0.02)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_cnn_modern_with_mail_changes_trains_under_mixed_precision(policy):
    import keras

    from digitrec_utils.convnets import build_modern_cnn

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = build_modern_cnn(filters=(4,), convs_per_block=1, dense_units=8, augmentation="digits",
                                 robustness=["pen", "noise", "occlusion"], total_steps=5)
        images = np.random.default_rng(1).random((8, 28, 28, 1)).astype("float32")
        # In training the mail changes draw float32 noise; the layer computes in float32 whatever the policy.
        outputs = np.asarray(model(images, training=True))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert outputs.shape == (8, 10) and np.isfinite(outputs).all()
    assert model.get_layer("random_mail_changes").dtype_policy.name == "float32"
