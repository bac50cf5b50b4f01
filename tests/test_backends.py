"""Keras on the GPU the learner has: which backend setup chooses for each machine, where the
choice is saved, and the same code on TensorFlow and PyTorch (checked here on the CPU)."""

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from bigcats.environment.setup_plan import Machine, main, plan
from conftest import ROOT, on_backend, require_backend

RTX_3060 = dict(gpu="NVIDIA GeForce RTX 3060", compute_capability=(8, 6), driver=(581, 57))
GTX_1080 = dict(gpu="NVIDIA GeForce GTX 1080", compute_capability=(6, 1), driver=(581, 57))
RTX_5090 = dict(gpu="NVIDIA GeForce RTX 5090", compute_capability=(12, 0), driver=(580, 95))
A100 = dict(gpu="NVIDIA A100-SXM4-80GB", compute_capability=(8, 0), driver=(575, 57))


def nvidia(system, card, **facts):
    return Machine(system, "AMD64" if system == "Windows" else "x86_64", nvidia_smi_ok=True, **{**card, **facts})


def test_native_windows_with_an_ampere_card_trains_on_pytorchs_cuda_build_from_its_own_index():
    p = plan(nvidia("Windows", RTX_3060, windows_build=22631), "2.21.0")
    assert p.backend == "torch" and p.gpu == "cuda"
    # the build pinned with its label: an installed 2.14.1+cpu satisfies a bare torch==2.14.1
    assert p.packages == ["torch==2.14.1+cu130", "--index-url", "https://download.pytorch.org/whl/cu130"]
    assert "no GPU support on native Windows" in p.backend_reason and "RTX 3060" in p.messages[0]


def test_native_windows_with_a_pascal_card_or_an_old_driver_gets_the_cpu_and_the_wsl2_route():
    old_pascal = plan(nvidia("Windows", {**GTX_1080, "driver": (516, 94)}), "2.21.0")
    assert old_pascal.backend == "tensorflow" and old_pascal.gpu == "cpu" and old_pascal.packages == []
    text = "\n".join(old_pascal.messages)
    assert "CUDA 12.6 build" in text and "527.41 or newer" in text and "516.94" in text
    assert "6.1" in text and "wsl --install -d Ubuntu" in text
    old = plan(nvidia("Windows", {**RTX_3060, "driver": (546, 1)}), "2.21.0")
    assert old.backend == "tensorflow" and "580 or newer" in old.messages[0] and "546.1" in old.messages[0]
    unknown = plan(Machine("Windows", nvidia_smi_ok=True), "2.21.0")  # a driver too old to say its card
    assert unknown.backend == "tensorflow" and "predates 510" in unknown.messages[0]


def test_linux_keeps_tensorflow_where_it_reaches_the_card_and_takes_torch_for_blackwell():
    ampere = plan(nvidia("Linux", A100), "2.21.0")
    assert ampere.backend == "tensorflow" and ampere.packages == ["tensorflow[and-cuda]==2.21.0"]
    blackwell = plan(nvidia("Linux", RTX_5090), "2.21.0")
    assert blackwell.backend == "torch" and blackwell.gpu == "cuda"
    assert blackwell.packages == ["torch==2.14.1+cu130", "--index-url", "https://download.pytorch.org/whl/cu130"]
    assert "no kernels for compute capability 12.0" in blackwell.backend_reason
    forced = plan(nvidia("Linux", RTX_5090), "2.21.0", backend="tensorflow")
    assert forced.backend == "tensorflow" and "fail at the first kernel" in "\n".join(forced.messages)
    old_driver = plan(nvidia("Linux", RTX_5090, driver=(570, 86)), "2.21.0")
    assert old_driver.backend == "tensorflow" and "need NVIDIA driver 580 or newer" in "\n".join(old_driver.messages)
    maxwell = plan(nvidia("Linux", {**A100, "compute_capability": (5, 2)}), "2.21.0")
    assert maxwell.gpu == "cpu" and maxwell.packages == [] and "CPU" in maxwell.messages[0]
    none = plan(Machine("Linux"), "2.21.0")
    assert none.backend == "tensorflow" and none.gpu == "cpu" and none.packages == []


def test_macos_apple_silicon_trains_on_the_apple_gpu_through_torch_unless_metal_is_asked_for():
    apple = plan(Machine("Darwin", "arm64"), "2.21.0")
    assert apple.backend == "torch" and apple.gpu == "mps" and apple.packages == ["torch==2.14.1"]  # one build
    metal = plan(Machine("Darwin", "arm64"), "2.21.0", metal=True, python_version=(3, 12))
    assert metal.backend == "tensorflow" and metal.packages == ["tensorflow-metal"]
    intel = plan(Machine("Darwin", "x86_64"), "2.21.0")
    assert not intel.supported and intel.backend == "tensorflow"


def test_backend_chosen_by_hand_gets_the_build_that_fits_the_machine():
    cpu_torch = plan(Machine("Linux"), "2.21.0", backend="torch")
    assert cpu_torch.backend == "torch" and cpu_torch.gpu == "cpu"
    assert cpu_torch.packages[-1] == "https://download.pytorch.org/whl/cpu"  # not 3 GB of CUDA for a CPU
    jax_gpu = plan(nvidia("Linux", A100, driver=(580, 95)), "2.21.0", backend="jax")
    assert jax_gpu.backend == "jax" and "jax[cuda13]==0.10.2" in jax_gpu.packages
    windows_jax = plan(nvidia("Windows", RTX_3060), "2.21.0", backend="jax")
    assert windows_jax.gpu == "cpu" and windows_jax.packages == ["-r", "requirements-jax.txt"]


def test_requirements_of_the_other_backends_are_pinned():
    assert "torch==" in (ROOT / "requirements-torch.txt").read_text()
    assert "jax==" in (ROOT / "requirements-jax.txt").read_text()


@pytest.mark.parametrize(
    "facts, backend",
    [
        ({"system": "Windows", "machine": "AMD64", **RTX_3060}, "torch"),
        ({"system": "Linux", "machine": "x86_64", **RTX_5090}, "torch"),
        ({"system": "Darwin", "machine": "arm64"}, "torch"),
        ({"system": "Linux", "machine": "x86_64", **A100}, "tensorflow"),
        ({"system": "Linux", "machine": "x86_64"}, "tensorflow"),
    ],
)
def test_the_command_answers_for_a_machine_described_in_a_file(tmp_path, capsys, facts, backend):
    described = {k: ".".join(map(str, v)) if isinstance(v, tuple) else v for k, v in facts.items()}
    path = tmp_path / "machine.json"
    path.write_text(json.dumps(described))
    assert main(["--json", "--machine", str(path)]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["backend"] == backend and answer["backend_reason"] and answer["install"].startswith("pip install")


def test_a_machine_file_with_an_unknown_field_is_refused_with_the_fields_it_takes(tmp_path):
    path = tmp_path / "machine.json"
    path.write_text(json.dumps({"system": "Linux", "cuda_cores": 10496}))
    with pytest.raises(SystemExit, match=r"unknown field.*cuda_cores.*compute_capability"):
        main(["--json", "--machine", str(path)])


def test_nvidia_smi_facts_are_read_as_numbers(monkeypatch):
    from bigcats.environment import machine

    def fake(command, **kwargs):
        fields = command[1]
        if "compute_cap" in fields:
            return subprocess.CompletedProcess(command, 0, "NVIDIA GeForce RTX 3060, 8.6, 581.57\n", "")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(machine.subprocess, "run", fake)
    assert machine.nvidia_gpu() == ("NVIDIA GeForce RTX 3060", (8, 6), (581, 57))
    assert machine.version_numbers("[N/A]") == () and machine.version_numbers("560.94") == (560, 94)


def test_the_choice_is_saved_for_the_command_line_and_the_kernel_and_a_hand_set_backend_wins(tmp_path, monkeypatch):
    from bigcats.environment import backends

    kernel = tmp_path / "share" / "jupyter" / "kernels" / "bigcats" / "kernel.json"
    kernel.parent.mkdir(parents=True)
    kernel.write_text(json.dumps({"argv": ["python", "-m", "ipykernel_launcher"], "display_name": "Python (bigcats)"}))
    written = backends.save_choice("torch", "TensorFlow 2.11 and newer have no GPU support on native Windows", tmp_path)
    assert written == [backends.settings_file(tmp_path), kernel]
    spec = json.loads(kernel.read_text())
    assert "env" not in spec and spec["display_name"] == "Python (bigcats)"  # an env there would beat a hand-set one
    assert spec["argv"][-1] == "--IPKernelApp.exec_lines=import bigcats"  # before any cell's `import tensorflow`
    backends.save_choice("torch", "again", tmp_path)
    assert json.loads(kernel.read_text())["argv"].count(spec["argv"][-1]) == 1
    monkeypatch.setattr(backends, "load_triton_first", lambda: None)
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    backends.use_saved_choice(tmp_path)
    assert os.environ["KERAS_BACKEND"] == "torch"
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    backends.use_saved_choice(tmp_path)
    assert os.environ["KERAS_BACKEND"] == "jax"  # set by hand: kept


def test_setup_scripts_save_the_backend_and_take_the_option():
    sh = (ROOT / "setup_env.sh").read_text()
    bat = (ROOT / "setup_env.bat").read_text()
    assert "--save-backend" in sh and "--backend)" in sh
    assert "%PLAN_FLAGS% --save-backend" in bat and '"--backend"' in bat


# --- the same code on PyTorch (CPU here) -------------------------------------------------------

TRIANGLE = """
import json, sys
import numpy as np
import keras
from bigcats.lesson.augment import augment_batch
from bigcats.lesson.explain import grad_cam
from bigcats.lesson.model import build_cnn, compile_model
from bigcats.lesson.saving import label_and_record
data = np.load(sys.argv[1])
if sys.argv[3] == "build":  # trained a step and saved as bigcats saves, its optimiser in the file
    model = compile_model(build_cnn(48, seed=1), decay_steps=10)
    model.fit(data["photos"][:, :48, :48].astype("float32"), np.array([0, 1, 0, 1]), epochs=1, verbose=0)
    model.save(sys.argv[2])
    label_and_record(sys.argv[2], {"class_names": ["lion", "tiger"], "image_size": 48})
model = keras.models.load_model(sys.argv[2])  # as a graduate loads it, optimiser and all
np.savez(sys.argv[2] + "." + keras.backend.backend() + ".npz",
         augmented=np.asarray(augment_batch(data["photos"], 48, data["draws"])),
         probabilities=model.predict(data["photos"][:, :48, :48].astype("float32"), verbose=0),
         heat=grad_cam(model, data["photos"][:, :48, :48].astype("float32"), 1))
print(keras.backend.backend())
"""


def test_torch_and_tensorflow_give_the_same_photos_answers_and_heat_maps_from_one_file(tmp_path):
    """A .keras file trained on torch loads on TensorFlow (its optimiser by its public name: as
    Keras records it, TensorFlow would import torch and crash) and answers the same; the same draws
    give the same augmented photos on both; Grad-CAM (each backend's own gradient) agrees."""
    require_backend("torch")
    from conftest import random_rgb

    photos = np.stack([random_rgb(seed, 72, 72) for seed in range(4)])
    draws = np.random.default_rng(5).uniform(size=(4, 14)).astype("float32")
    np.savez(tmp_path / "input.npz", photos=photos, draws=draws)
    model = tmp_path / "m.keras"
    for backend, step in (("torch", "build"), ("tensorflow", "load")):
        run = on_backend(backend, TRIANGLE, tmp_path / "input.npz", model, step)
        assert run.returncode == 0 and run.stdout.strip() == backend, run.stderr[-3000:]
    torch, tensorflow = (np.load(f"{model}.{b}.npz") for b in ("torch", "tensorflow"))
    np.testing.assert_allclose(torch["augmented"], tensorflow["augmented"], atol=0.05)
    np.testing.assert_allclose(torch["probabilities"], tensorflow["probabilities"], atol=1e-5)
    np.testing.assert_allclose(torch["heat"], tensorflow["heat"], atol=1e-3)


SETUP_ON_TORCH = """
import json
from bigcats.lesson.devices import training_setup
setup = training_setup()
print(json.dumps({"device": setup.device, "replicas": setup.replicas, "precision": setup.precision,
                  "augment_on": setup.augment_on, "reasons": setup.reasons}))
try:
    training_setup(augment_on="pipeline")
except ValueError as error:
    print(error)
"""


def test_on_torch_training_takes_one_device_and_augments_in_the_step():
    require_backend("torch")
    run = on_backend("torch", SETUP_ON_TORCH)
    assert run.returncode == 0, run.stderr[-3000:]
    first, refusal = run.stdout.strip().splitlines()[-2:]
    setup = json.loads(first)
    assert setup["device"] == "CPU" and setup["replicas"] == 1 and setup["precision"] == "float32"
    assert setup["augment_on"] == "step" and any("one device" in r for r in setup["reasons"])
    assert "runs only on TensorFlow" in refusal


def test_the_torch_smoke_test_compares_a_device_with_the_cpu():
    """The doctor's PyTorch smoke test, its GPU list swapped for the CPU (the only device here)."""
    require_backend("torch")
    from bigcats.environment.doctor import TORCH_SMOKE_TEST

    code = TORCH_SMOKE_TEST.replace("for gpu in torch_gpus():", "for gpu in [{'name': 'cpu'}]:")
    assert code != TORCH_SMOKE_TEST
    run = on_backend("torch", code)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == [{"device": "cpu", "ok": True, "error": ""}]


def test_on_torch_bigcats_loads_triton_before_tensorflow_and_says_so_where_it_is_too_late():
    """TensorFlow 2.21 exports its LLVM to later libraries, and triton (PyTorch's, on Linux) then
    crashes Python; bigcats, imported first (the kernel does), loads triton before TensorFlow."""
    require_backend("torch")
    import importlib.util

    if importlib.util.find_spec("triton") is None:
        pytest.skip("this PyTorch has no triton (only its Linux CUDA builds do)")
    fine = on_backend("torch", "import bigcats\nimport tensorflow\nimport keras\nprint(keras.backend.backend())")
    assert fine.returncode == 0 and fine.stdout.strip() == "torch", fine.stderr[-2000:]
    late = "import tensorflow, os\nos.environ['KERAS_BACKEND'] = 'torch'\nimport bigcats\n"
    run = on_backend("tensorflow", late)
    assert run.returncode == 1 and "import bigcats or keras before tensorflow" in run.stderr


@pytest.mark.slow
def test_the_command_line_trains_evaluates_predicts_and_diagnoses_on_torch(tmp_path, tiny_data):
    require_backend("torch")
    model = tmp_path / "m.keras"
    cli = "import sys\nfrom bigcats.__main__ import main\nsys.exit(main(sys.argv[1:]))\n"

    def bigcats(*args):
        run = on_backend("torch", cli, *args)
        assert run.returncode == 0, run.stderr[-3000:]
        return run.stdout

    bigcats("train", "--data", tiny_data, "--model", model, "--epochs", "2", "--image-size", "48")
    record = json.loads(bigcats("evaluate", "--model", model, "--data", tiny_data, "--json"))
    assert record["n"] > 0 and 0 <= record["accuracy"] <= 1
    lines = bigcats("predict", "--model", model, str(next((tiny_data / "lion").iterdir())), "--json")
    assert json.loads(lines.splitlines()[0])["label"] in ("lion", "tiger")
    doctor = json.loads(bigcats("doctor", "--json"))
    assert doctor["keras_backend"] == "torch" and doctor["torch_probe"]["ok"]
    assert any("Keras trains on torch" in f["message"] for f in doctor["findings"])
    saved = json.loads(bigcats("evaluate", "--model", model, "--data", tiny_data, "--json"))
    assert saved == record  # deterministic scoring
    from bigcats.lesson.evaluate import model_record

    trained = model_record(model)["backend"]
    assert trained["backend"] == "torch" and trained["version"].startswith("2.") and trained["device"] == "CPU"


def test_a_saved_optimiser_is_recorded_by_its_public_name_and_nothing_else_changes(tmp_path):
    import zipfile

    from bigcats.lesson.saving import make_backend_neutral

    path = tmp_path / "m.keras"
    optimiser = '{"module": "keras.src.backend.torch.optimizers.torch_adam", "class_name": "Adam"}'
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", '{"compile_config": {"optimizer": ' + optimiser + "}}")
        archive.writestr("model.weights.h5", b"\x89HDF weights")
    make_backend_neutral(path)
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        assert config["compile_config"]["optimizer"] == {"module": "keras.optimizers", "class_name": "Adam"}
        assert archive.read("model.weights.h5") == b"\x89HDF weights"
    before = path.read_bytes()
    make_backend_neutral(path)  # already neutral (as TensorFlow's files are): left as it is
    assert path.read_bytes() == before


def test_the_gpu_report_runs_keras_on_torch_without_tensorflow(tmp_path):
    """scripts/gpu_report.py, for a lent NVIDIA machine without TensorFlow: here on torch's CPU,
    tiny, its JSON and its claim that TensorFlow was never imported."""
    require_backend("torch")
    out = tmp_path / "gpu.json"
    command = [sys.executable, str(ROOT / "scripts" / "gpu_report.py"), "--backends", "torch", "--image-size", "32",
               "--steps", "1", "--repeats", "1", "--batches", "2", "--out", str(out)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    (torch,) = json.loads(out.read_text())["backends"]
    assert torch["backend"] == "torch" and not torch["tensorflow_imported"]
    assert [(row["precision"], row["batch"]) for row in torch["rows"]] == [("float32", 2), ("mixed_float16", 2)]
    assert all(row["model_images_per_second"] > 0 and row["augmented_share"] > 0 for row in torch["rows"])
    assert "torch float32       batch   2" in done.stdout


TENSORFLOWS_VIEW = """
import json, sys
import bigcats  # the kernel imports it before any cell
import tensorflow as tf
from tensorflow.python.eager import context
at_import = [d.name for d in context.context()._visible_device_list]  # [] until set, or the runtime starts
list(tf.data.Dataset.range(8).map(lambda x: x * 2).batch(4))  # a tf.data pipeline, as the lessons build
print(json.dumps({"set": at_import, "logical_gpus": len(tf.config.list_logical_devices("GPU"))}))
"""


@pytest.mark.parametrize(
    "backend, shown, hidden",
    [("jax", "0", True), ("torch", "0", True), ("tensorflow", "0", False), ("jax", "1", False)],
)  # fmt: skip
def test_tensorflow_is_shown_no_gpu_before_any_pipeline_where_another_backend_trains(backend, shown, hidden):
    """TensorFlow's device list is set, to the CPU alone, the moment it is imported where Keras
    trains on torch or JAX; left as TensorFlow finds it where TensorFlow trains, or where the
    doctor asks for TensorFlow's own view. (This machine has no GPU: what is checked is that the
    visible devices were set, before the pipeline started TensorFlow's runtime.)"""
    env = {**os.environ, "KERAS_BACKEND": backend, "BIGCATS_SHOW_TENSORFLOW_GPUS": shown}
    run = subprocess.run([sys.executable, "-c", TENSORFLOWS_VIEW], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    view = json.loads(run.stdout.strip().splitlines()[-1])
    assert view["logical_gpus"] == 0
    assert view["set"] == (["/physical_device:CPU:0"] if hidden else [])


def test_tensorflow_started_before_bigcats_is_told_it_may_hold_the_gpu():
    from bigcats.environment.backends import hide_gpus_from_tensorflow

    def refuse(devices, device_type):  # what TensorFlow raises once its runtime has claimed the devices
        raise RuntimeError("Visible devices cannot be modified after being initialized")

    started_tensorflow = types.SimpleNamespace(config=types.SimpleNamespace(set_visible_devices=refuse))
    with pytest.warns(UserWarning, match="import bigcats or keras before tensorflow"):
        assert hide_gpus_from_tensorflow(started_tensorflow) is False
