"""The model, the metrics, and the device decisions (multi-device paths on logical CPUs)."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from bigcats.devices import choose_precision
from bigcats.evaluate import metrics
from conftest import ROOT


def test_model_takes_raw_pixels_and_outputs_probabilities():
    from bigcats.model import build_cnn

    model = build_cnn(32, num_classes=2)
    out = model.predict(np.random.uniform(0, 255, (3, 32, 32, 3)).astype("float32"), verbose=0)
    assert out.shape == (3, 2)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_output_layer_stays_float32_under_mixed_precision():
    import keras

    from bigcats.model import build_cnn

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_cnn(32)
        assert model.get_layer("probabilities").dtype_policy.compute_dtype == "float32"
        assert model.layers[-2].dtype_policy.compute_dtype == "float16"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_metrics_on_a_known_confusion():
    result = metrics([0, 0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1, 0], ["lion", "tiger"])
    assert result["confusion_matrix"] == [[2, 1], [1, 3]]
    assert result["accuracy"] == pytest.approx(5 / 7)
    assert result["per_class"]["tiger"]["precision"] == pytest.approx(3 / 4)
    assert result["per_class"]["lion"]["recall"] == pytest.approx(2 / 3)
    assert result["precision"] == pytest.approx((3 / 4 + 2 / 3) / 2)


@pytest.mark.parametrize("ccs,expected", [
    ([], "float32"), ([(8, 6)], "mixed_float16"), ([(7, 0), (8, 0)], "mixed_float16"),
    ([(8, 6), (6, 1)], "float32"), ([None], "float32"),
])
def test_precision_choice(ccs, expected):
    gpus = [{"name": f"GPU:{i}", "device_name": "x", "compute_capability": cc} for i, cc in enumerate(ccs)]
    assert choose_precision(gpus)[0] == expected


@pytest.mark.slow
def test_training_mirrors_over_two_logical_devices(tiny_data, tmp_path):
    """The multi-GPU path (MirroredStrategy, global batch = replicas x batch), on two logical
    CPUs. Its own process: devices can only be split before TensorFlow initialises them."""
    script = textwrap.dedent(f"""
        import json
        from bigcats.devices import split_cpu
        from bigcats.train import train
        devices = split_cpu(2)
        _, record = train({str(tiny_data)!r}, {str(tmp_path / 'm.keras')!r}, epochs=1, image_size=32,
                          batch_size=4, devices=devices, verbose=0)
        print(json.dumps(record["setup"]))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    setup = json.loads(done.stdout.strip().splitlines()[-1])
    assert setup["replicas"] == 2 and "MirroredStrategy" in setup["reasons"][0]
    assert (tmp_path / "m.keras").exists()
