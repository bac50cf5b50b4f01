"""The model, the metrics, and the device decisions (multi-device paths on logical CPUs)."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from bigcats.lesson.devices import choose_precision, xla_reason
from bigcats.lesson.evaluate import metrics
from conftest import ROOT


def test_model_takes_raw_pixels_and_outputs_probabilities():
    from bigcats.lesson.model import build_cnn

    model = build_cnn(32, num_classes=2)
    out = model.predict(np.random.uniform(0, 255, (3, 32, 32, 3)).astype("float32"), verbose=0)
    assert out.shape == (3, 2)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_squeeze_and_excitation_only_in_the_last_two_blocks_where_maps_are_small():
    from bigcats.lesson.model import build_cnn

    model = build_cnn(144)
    excited = [tuple(layer.output.shape[1:]) for layer in model.layers if type(layer).__name__ == "Multiply"]
    assert excited == [(9, 9, 256), (5, 5, 512)]  # not at 36x36 or 18x18, where it cost time
    assert model.layers[-3].output.shape[1:] == (512,) and type(model.layers[-4]).__name__ == "Multiply"


def test_pooling_in_the_blocks_is_anti_aliased_with_a_fixed_blur_that_training_and_saving_keep(tmp_path):
    import keras

    from bigcats.lesson.model import build_cnn, compile_model

    model = build_cnn(32)
    blurs = [layer for layer in model.layers if isinstance(layer, keras.layers.DepthwiseConv2D)]
    assert [tuple(b.output.shape[1:]) for b in blurs] == [(4, 4, 64), (2, 2, 128), (1, 1, 256)]
    binomial = np.outer([1, 2, 1], [1, 2, 1]) / 16
    kernels = [b.get_weights()[0] for b in blurs]
    for blur, kernel in zip(blurs, kernels):
        assert not blur.trainable and kernel.shape[:3] == (3, 3, blur.output.shape[-1])
        np.testing.assert_allclose(kernel, np.repeat(binomial[:, :, None, None], kernel.shape[2], axis=2))
    compile_model(model).fit(np.random.uniform(0, 255, (8, 32, 32, 3)), np.arange(8) % 2, epochs=2, verbose=0)
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    for kernel, blur in zip(kernels, [lay for lay in reloaded.layers if isinstance(lay, keras.layers.DepthwiseConv2D)]):
        np.testing.assert_array_equal(blur.get_weights()[0], kernel)


def test_anti_aliased_pooling_changes_less_than_max_pooling_when_the_picture_moves_a_pixel():
    import keras
    from keras import layers

    from bigcats.lesson.model import max_blur_pool

    stripes = np.zeros((1, 32, 33, 1), "float32")
    stripes[:, :, ::4] = 1.0  # thin vertical stripes, 4 px apart
    pictures = keras.Input((32, 32, 1))
    pooled = {
        "max": keras.Model(pictures, layers.MaxPooling2D(padding="same")(pictures)),
        "anti-aliased": keras.Model(pictures, max_blur_pool(pictures)),
    }
    change = {name: float(np.abs(m(stripes[:, :, :32]) - m(stripes[:, :, 1:])).mean()) for name, m in pooled.items()}
    assert change["anti-aliased"] < 0.2 * change["max"]  # measured: 0.05 against 1.0


def test_output_layer_stays_float32_under_mixed_precision():
    import keras

    from bigcats.lesson.model import build_cnn

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_cnn(32)
        assert model.get_layer("probabilities").dtype_policy.compute_dtype == "float32"
        assert model.layers[-2].dtype_policy.compute_dtype == "float16"
        # a training-mode call in float16 (a GPU's first training step) still gives float32 out
        images = np.random.uniform(0, 255, (4, 32, 32, 3)).astype("float32")
        assert model(images, training=True).dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_metrics_on_a_known_confusion():
    result = metrics([0, 0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1, 0], ["lion", "tiger"])
    assert result["confusion_matrix"] == [[2, 1], [1, 3]]
    assert result["accuracy"] == pytest.approx(5 / 7)
    assert result["per_class"]["tiger"]["precision"] == pytest.approx(3 / 4)
    assert result["per_class"]["lion"]["recall"] == pytest.approx(2 / 3)
    assert result["precision"] == pytest.approx((3 / 4 + 2 / 3) / 2)


@pytest.mark.parametrize(
    "ccs,expected",
    [
        ([], "float32"),
        ([(8, 6)], "mixed_float16"),
        ([(7, 0), (8, 0)], "mixed_float16"),
        ([(8, 6), (6, 1)], "float32"),
        ([None], "float32"),
    ],
)
def test_precision_choice(ccs, expected):
    gpus = [{"name": f"GPU:{i}", "device_name": "x", "compute_capability": cc} for i, cc in enumerate(ccs)]
    assert choose_precision(gpus)[0] == expected


def test_no_mixed_precision_for_a_card_the_build_has_no_code_for():
    build = {"cuda_compute_capabilities": ["sm_60", "sm_70", "sm_80", "sm_89", "compute_90"]}
    blackwell = [{"name": "GPU:0", "device_name": "RTX 5090", "compute_capability": [12, 0]}]
    precision, why = choose_precision(blackwell, build)
    assert precision == "float32" and "no GPU code for RTX 5090" in why
    ada = [{"name": "GPU:0", "device_name": "RTX 4090", "compute_capability": [8, 9]}]
    assert choose_precision(ada, build)[0] == "mixed_float16"


def test_what_training_says_of_xla_is_what_keras_decides_on_a_gpu(monkeypatch):
    """Keras' jit_compile="auto" compiles with XLA where it sees a GPU, except for a model built
    under a distribution strategy, and never on a CPU-only machine. A pretend GPU in TensorFlow's
    device list shows the first two here."""
    import tensorflow as tf

    from bigcats.lesson.model import build_cnn

    cpu_only = build_cnn(32)._resolve_auto_jit_compile()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])  # before the pretend GPU: it lists devices
    gpu = tf.config.PhysicalDevice(name="/physical_device:GPU:0", device_type="GPU")
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda *args: [gpu])
    alone = build_cnn(32)._resolve_auto_jit_compile()
    with strategy.scope():
        mirrored = build_cnn(32)._resolve_auto_jit_compile()
    assert (cpu_only, alone, mirrored) == (False, True, False)
    assert "off" in xla_reason(1, gpu=False) and "compiles" in xla_reason(1) and "off" in xla_reason(2)


@pytest.mark.slow
@pytest.mark.parametrize("augment_on", ["pipeline", "step"])
def test_training_mirrors_over_two_logical_devices(tiny_data, tmp_path, augment_on):
    """The multi-GPU path (MirroredStrategy, global batch = replicas x batch), on two logical
    CPUs, with the augmentation in the pipeline or in the training step, as on GPUs. Its own
    process: devices can only be split before TensorFlow initialises them."""
    script = textwrap.dedent(f"""
        import json
        import tensorflow as tf
        from bigcats.lesson.train import train
        # two logical CPUs stand in for two GPUs (only before TensorFlow initialises its devices)
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        devices = [device.name for device in tf.config.list_logical_devices("CPU")]
        _, record = train({str(tiny_data)!r}, {str(tmp_path / "m.keras")!r}, epochs=2, image_size=32,
                          batch_size=4, devices=devices, verbose=0, augment_on={augment_on!r})
        print(json.dumps(record["setup"]))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    setup = json.loads(done.stdout.strip().splitlines()[-1])
    assert setup["replicas"] == 2 and "MirroredStrategy" in setup["reasons"][0]
    assert setup["xla"] is False and any("XLA: off" in r for r in setup["reasons"])  # what Keras did, as foreseen
    assert setup["augmentation"] == augment_on
    assert (tmp_path / "m.keras").exists()


def test_the_augmentation_runs_in_the_step_with_a_gpu_or_few_cores_else_in_the_pipeline():
    from bigcats.lesson.devices import augmentation_place

    assert augmentation_place(True, cores=64)[0] == "step"  # a GPU augments in the step
    assert augmentation_place(False, cores=2)[0] == "step" and augmentation_place(False, cores=16)[0] == "pipeline"
    assert augmentation_place(True, "pipeline")[0] == "pipeline" and augmentation_place(False, "step", 16)[0] == "step"
    with pytest.raises(ValueError, match="give 'auto', 'pipeline' or 'step'"):
        augmentation_place(False, "gpu")


@pytest.mark.slow
def test_augmenting_in_the_training_step_trains_and_saves_the_model_alone(tiny_data, tmp_path):
    import keras

    from bigcats.lesson.augment import Augmentation
    from bigcats.lesson.data import make_dataset, split_images
    from bigcats.lesson.train import train

    items = split_images(tiny_data)["train"]
    photos, _ = next(iter(make_dataset(items, 32, 4, training=True, augment_in="step")))
    assert photos.shape[1:] == (48, 48, 3) and photos.dtype == "uint8"  # as decoded, for the device to augment
    model, record = train(tiny_data, tmp_path / "m.keras", epochs=2, image_size=32, batch_size=4, verbose=0,
                          augment_on="step")  # fmt: skip
    assert record["setup"]["augmentation"] == "step" and record["epochs_run"] == 2
    saved = keras.models.load_model(tmp_path / "m.keras")
    assert not any(isinstance(layer, Augmentation) for layer in saved.layers)
    assert saved.input_shape == (None, 32, 32, 3) and saved.count_params() == model.count_params()


def free_ports(n):
    import socket

    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_on_localhost_train_in_step(tiny_data, tmp_path):
    """MultiWorkerMirroredStrategy for real: two processes, TF_CONFIG, 127.0.0.1 only."""
    import os

    workers = [f"127.0.0.1:{p}" for p in free_ports(2)]
    procs = []
    for index in range(2):
        env = {
            **os.environ,
            "TF_CONFIG": json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}),
        }
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bigcats",
                    "train",
                    "--multi-worker",
                    "--data",
                    str(tiny_data),
                    "--model",
                    str(tmp_path / f"w{index}" / "m.keras"),
                    "--epochs",
                    "2",
                    "--image-size",
                    "32",
                    "--batch-size",
                    "4",
                    "--learning-rate",
                    "0.003",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [p.communicate(timeout=400) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    losses = [[line.split("loss")[1] for line in out.splitlines() if ": epoch " in line] for out, _ in outputs]
    assert len(losses[0]) == 2 and losses[0] == losses[1], losses  # the same loss on both workers
    record = json.loads((tmp_path / "w0" / "m.history.json").read_text())
    assert record["setup"]["replicas"] == 2 and record["epochs_run"] == 2 and 0 <= record["val_accuracy"] <= 1
    assert record["learning_rate"] == 0.003
    assert not (tmp_path / "w1" / "m.keras").exists()  # only the chief keeps a model


@pytest.mark.slow
def test_recipe_comparison_trains_both_in_interleaved_rounds_and_scores_them_on_the_stress_set(
    tiny_data, tmp_path, capsys
):
    from bigcats.benchmark.measure import compare_recipes

    result = compare_recipes(
        tiny_data, tmp_path, image_size=32, epochs=1, original_size=48, original_epochs=1, stress_copies=1, rounds=2
    )
    original, tutorial = result["recipes"]
    assert original["image_size"] == 48 and tutorial["image_size"] == 32
    assert all(
        r["epochs_run"] == 1 and 0 <= r["stress_accuracy"] <= 1 and 0 <= r["farther_accuracy"] <= 1
        for r in (original, tutorial)
    )
    assert len(original["train_seconds_each"]) == len(tutorial["train_seconds_each"]) == 2
    ratios = [t / o for o, t in zip(original["train_seconds_each"], tutorial["train_seconds_each"])]
    assert result["time_ratios"] == pytest.approx(ratios) and result["time_ratio"] == pytest.approx(sum(ratios) / 2)
    assert result["stress_images"] == sum(1 for _ in (tmp_path / "stress").rglob("*.jpg")) > 0
    assert result["farther_images"] == len(list((tmp_path / "farther").rglob("*_farther[01].jpg"))) > 0
    order = [line.split("training the ")[1] for line in capsys.readouterr().out.splitlines() if "training the" in line]
    assert order == ["original 2022 recipe...", "tutorial default...", "tutorial default...", "original 2022 recipe..."]
    with pytest.raises(ValueError, match="rounds=0"):
        compare_recipes(tiny_data, tmp_path, rounds=0)


@pytest.mark.parametrize(
    "augmented, training, have_gpu, fit, expected",
    [
        (800, 2600, True, None, "the input pipeline sets the pace"),
        (5000, 2600, True, 2500, "the GPU sets the pace"),
        (800, 420, False, None, "so with a GPU the augmentation runs on the GPU"),
        (2000, 420, False, 350, "take 20% more time than the model alone"),
        (9000, 420, False, 400, "photos/s at 144 px, batch 16"),
    ],
)
def test_benchmark_says_whether_the_pipeline_or_the_device_sets_the_pace(augmented, training, have_gpu, fit, expected):
    from bigcats.benchmark.measure import GPU_IMAGES_PER_SECOND, pace_note

    note = pace_note(augmented, training, have_gpu, fit)
    assert expected in note and f"{augmented} augmented photos/s" in note
    assert (f"with its input on {fit}/s" in note) == bool(fit)
    assert ("augmentation runs on the GPU" in note) == (not have_gpu and augmented < GPU_IMAGES_PER_SECOND)


def test_training_steps_are_timed_on_any_keras_backend_without_tensorflow_calls():
    # the same helper times the model on a lent GPU under JAX (README, "What a GPU buys")
    import inspect

    from bigcats.benchmark.measure import random_batch, time_training_steps
    from bigcats.lesson.model import build_cnn, compile_model

    assert "tf." not in inspect.getsource(time_training_steps)
    x, y = random_batch(4, 32)
    assert x.shape == (4, 32, 32, 3) and x.min() >= 0 and x.max() <= 255 and set(y) <= {0, 1}
    warmup, runs = time_training_steps(compile_model(build_cnn(32)), x, y, steps=2, warmup_steps=1, repeats=2)
    assert warmup > 0 and len(runs) == 2 and all(t > 0 for t in runs)


@pytest.mark.parametrize("every_s, saves", [(0, 3), (3600, 0)])
def test_training_keeps_its_state_to_resume_from_now_and_then(tmp_path, every_s, saves):
    from bigcats.lesson.train import backup_now_and_then

    backup = backup_now_and_then(tmp_path / "m.keras", every_seconds=every_s)
    written = []
    backup._save_model = lambda: written.append(backup._current_epoch)
    for epoch in range(3):
        backup.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1)})
    assert written == list(range(1, saves + 1)) and backup.curves["loss"] == [1.0, 0.5, 1.0 / 3]


def test_recipe_training_reports_progress_on_stderr_so_json_output_stays_clean(tiny_data, tmp_path, capsys):
    from bigcats.benchmark.measure import train_record

    record = train_record(tiny_data, tmp_path / "m.keras", epochs=1, image_size=32, batch_size=8, verbose=2)
    out, err = capsys.readouterr()
    assert record["epochs_run"] == 1
    assert out == "" and "val_accuracy" in err  # the per-epoch line
