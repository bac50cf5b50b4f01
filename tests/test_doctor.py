"""Diagnosis from recorded facts: each situation a learner hits gets a finding with a fix."""

import pytest

from bigcats.environment.doctor import diagnose, why_no_gpu
from bigcats.environment.machine import driver_version

CUDA_BUILD = {"is_cuda_build": True, "cuda_version": "12.5.1", "cudnn_version": "9"}


def facts(
    system="Linux",
    wsl=False,
    machine="x86_64",
    tf="2.21.0",
    build=CUDA_BUILD,
    gpus=(),
    smi=None,
    driver=None,
    prefix="/p/.venv",
    project_env="/p/.venv",
    python="3.12.4",
    metal=None,
):
    return {
        "python": python,
        "executable": f"{prefix}/bin/python",
        "prefix": prefix,
        "platform": {"system": system, "release": "x", "machine": machine, "wsl": wsl},
        "tensorflow": tf,
        "keras": "3.15.1",
        "build": dict(build),
        "gpus": list(gpus),
        "nvidia_smi": smi,
        "nvidia_driver": driver,
        "project_env": project_env,
        "memory_growth_problems": [],
        "tensorflow_metal": metal,
    }


def gpu(cc, name="NVIDIA GeForce"):
    return {"name": "/physical_device:GPU:0", "device_name": name, "compute_capability": list(cc)}


def only(findings, severity=None):
    chosen = [f for f in findings if severity is None or f["severity"] == severity]
    assert chosen, findings
    return " ".join(f["message"] + " " + f["fix"] for f in chosen)


def test_native_windows_is_cpu_only_and_points_to_wsl2():
    text = only(diagnose(facts(system="Windows", build={"is_cuda_build": False})), "warning")
    assert "Native Windows" in text and "2.10" in text and "WSL2" in text and "wsl --install" in text
    assert "tensorflow<2.11" in text and "cudnn=8.1.0" in text  # the legacy route, named as such


def test_wsl2_without_gpu_passthrough():
    text = only(diagnose(facts(wsl=True)), "warning")
    assert "WSL2 without GPU passthrough" in text and "Windows side" in text


def test_linux_without_nvidia_driver():
    text = only(diagnose(facts()), "info")
    assert "No NVIDIA driver" in text and "nvidia-smi" in text


def test_cpu_only_tensorflow_build():
    text = only(diagnose(facts(build={"is_cuda_build": False}, smi="ok", driver="550.54")), "warning")
    assert "CPU-only build" in text and "tensorflow[and-cuda]" in text


def test_driver_present_but_tensorflow_sees_no_gpu():
    text = only(diagnose(facts(smi="Driver Version: 550.54", driver="550.54")), "error")
    assert "sees no GPU" in text and "tensorflow[and-cuda]" in text


def test_driver_too_old_for_cuda_12():
    text = only(diagnose(facts(gpus=[gpu((8, 6))], smi="x", driver="470.82")), "error")
    assert "too old for CUDA 12" in text and "575.51" in text


def test_a_driver_older_than_the_pip_cuda_wheels_ask_for_is_a_warning_with_the_same_minimum():
    text = only(diagnose(facts(gpus=[gpu((8, 6))], smi="x", driver="560.35")), "warning")
    assert "older than the CUDA 12.9 libraries" in text and "575.51 or newer" in text
    assert not [f for f in diagnose(facts(gpus=[gpu((8, 6))], smi="x", driver="575.51")) if "driver" in f["message"]]


def test_maxwell_gpu_is_no_longer_supported():
    text = only(diagnose(facts(gpus=[gpu((5, 2))], smi="x", driver="550.54")), "error")
    assert "no kernels for this GPU generation" in text


def test_pascal_gpu_gets_no_mixed_precision():
    findings = diagnose(facts(gpus=[gpu((6, 1))], smi="x", driver="580.82"))
    assert "mixed precision will not speed it up" in only(findings, "info")
    assert not [f for f in findings if f["severity"] == "error"]


def test_healthy_gpu_machine_has_no_problems():
    findings = diagnose(facts(gpus=[gpu((8, 9), "NVIDIA RTX 4090")], smi="x", driver="580.82"))
    assert [f["severity"] for f in findings] == ["info", "info"]
    assert "Keras trains on tensorflow here (the default)" in findings[0]["message"]
    assert "1 GPU(s): NVIDIA RTX 4090" in findings[1]["message"]


@pytest.mark.parametrize("machine,expect", [("arm64", "tensorflow-metal"), ("x86_64", "Intel Macs")])
def test_macos(machine, expect):
    text = only(diagnose(facts(system="Darwin", machine=machine, build={"is_cuda_build": False})))
    assert "macOS has no CUDA" in text and expect in text


def test_kernel_outside_the_project_environment():
    text = only(diagnose(facts(prefix="/usr", project_env="/p/.venv")), "warning")
    assert "not the project's environment" in text and "Python (bigcats)" in text


def test_memory_growth_set_too_late():
    f = facts(gpus=[gpu((8, 0))], smi="x", driver="550.54")
    f["memory_growth_problems"] = ["Memory growth could not be set on GPU:0: the GPU was already in use."]
    assert "already in use" in only(diagnose(f), "warning")


def test_unsupported_python_and_missing_tensorflow_are_errors_first():
    findings = diagnose(facts(python="3.9.18", tf=None))
    assert [f["severity"] for f in findings][:2] == ["error", "error"]
    assert "outside the range this project's pinned packages run on" in findings[0]["message"]
    assert "3.10" in diagnose(facts(python="3.10.12", tf=None))[0]["message"]  # 3.10 is out too
    assert why_no_gpu(facts(tf=None)) == "TensorFlow is not installed."


def test_driver_version_is_read_from_nvidia_smi():
    assert driver_version("| NVIDIA-SMI 550.54.14   Driver Version: 550.54.14   CUDA Version: 12.4 |") == "550.54.14"
    assert driver_version(None) is None


def test_a_kernel_from_another_checkout_is_a_blocking_finding(tmp_path):
    from bigcats.environment.doctor import kernel_finding

    for name in ("mine", "other"):
        (tmp_path / name / "notebooks").mkdir(parents=True)
        (tmp_path / name / ".venv").mkdir()
    assert kernel_finding(tmp_path / "mine" / "notebooks", prefix=tmp_path / "mine" / ".venv") is None
    finding = kernel_finding(tmp_path / "mine" / "notebooks", prefix=tmp_path / "other" / ".venv")
    assert finding["severity"] == "error" and str(tmp_path / "other" / ".venv") in finding["message"]
    assert "Change Kernel" in finding["fix"]
    assert kernel_finding(tmp_path / "none" / "notebooks", prefix=tmp_path / "other" / ".venv") is None


def test_the_first_cell_of_a_notebook_in_the_wrong_kernel_says_what_to_do(tmp_path):
    import subprocess
    import sys

    import nbformat

    from conftest import ROOT

    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        hosted, first = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"][:2]
        # -I -S: a Python without this environment's packages, as a wrong kernel is; the Colab cell
        # before it does nothing there (not even ask for `google`, which such a Python lacks)
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-c", hosted.source + "\n" + first.source],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert done.returncode == 1 and "Pick the kernel 'Python (bigcats)'" in done.stderr, (path.name, done.stderr)
        assert "This kernel runs" in done.stderr and "setup_env.sh" in done.stderr


def test_the_environment_answers_jupyterlabs_news_question(tmp_path):
    import json

    from bigcats.environment.setup_plan import write_lab_settings

    path = tmp_path / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"}}))
    assert write_lab_settings(tmp_path) == path
    settings = json.loads(path.read_text())
    assert settings["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
    assert settings["@jupyterlab/apputils-extension:themes"] == {"theme": "JupyterLab Dark"}  # a learner's own kept


# --- Keras on PyTorch (tests/test_backends.py has the machines; here, what the doctor makes of them)

WINDOWS_TORCH = dict(system="Windows", machine="AMD64", build={"is_cuda_build": False}, smi="x", driver="581.57")
RTX_3060 = {"name": "cuda:0", "device_name": "NVIDIA GeForce RTX 3060", "compute_capability": [8, 6]}
CHOSEN = {"backend": "torch", "reason": "TensorFlow 2.11 and newer have no GPU support on native Windows"}


def on_torch(torch_probe, smoke=None, **machine):
    return {**facts(**machine), "keras_backend": "torch", "backend_choice": CHOSEN, "torch": "2.14.1",
            "torch_probe": torch_probe, "torch_smoke_test": smoke}  # fmt: skip


def test_windows_training_on_torchs_gpu_keeps_tensorflows_missing_gpu_as_an_aside():
    probe = {"ok": True, "version": "2.14.1+cu130", "cuda": "13.0", "gpus": [RTX_3060]}
    smoke = {"status": "passed", "gpus": [{"device": "cuda:0", "ok": True, "error": ""}], "findings": []}
    findings = diagnose(on_torch(probe, smoke, **WINDOWS_TORCH))
    assert not [f for f in findings if f["severity"] != "info"]
    said = "\n".join(f["message"] for f in findings)
    assert "Keras trains on torch here (setup chose it: TensorFlow 2.11 and newer" in said
    assert "PyTorch 2.14.1+cu130 sees 1 GPU(s): NVIDIA GeForce RTX 3060" in said
    assert "PyTorch GPU smoke test passed" in said and "TensorFlow (here for tf.data only): Native Windows" in said


def test_torchs_cpu_build_beside_a_working_driver_is_an_error_with_the_right_index():
    probe = {"ok": True, "version": "2.14.1+cpu", "cuda": None, "gpus": []}
    (error,) = [f for f in diagnose(on_torch(probe, **WINDOWS_TORCH)) if f["severity"] == "error"]
    assert "it is the CPU build" in error["message"] and "requirements-torch.txt" in error["fix"]


def test_a_failed_torch_smoke_test_is_explained():
    probe = {"ok": True, "version": "2.14.1+cu130", "cuda": "13.0", "gpus": [RTX_3060]}
    text = "RuntimeError: CUDA error: no kernel image is available for execution on the device"
    from bigcats.environment.tf_errors import explain

    smoke = {"status": "failed", "gpus": [{"device": "cuda:0", "ok": False, "error": text}], "findings": explain(text)}
    errors = [f["message"] for f in diagnose(on_torch(probe, smoke, **WINDOWS_TORCH)) if f["severity"] == "error"]
    assert any("PyTorch lists the GPU, but real work on it failed" in m for m in errors)
    assert any("no GPU code for this card" in m for m in errors)


def test_a_ptxas_on_path_matters_only_where_xla_compiles_for_a_gpu():
    on_path = {"ptxas": "/usr/local/cuda/bin/ptxas"}
    without = diagnose({**facts(), **on_path})
    assert not [f for f in without if "ptxas" in f["message"]]  # no GPU: nothing for XLA to compile there
    with_gpu = diagnose({**facts(gpus=[gpu((8, 6))], smi="x", driver="580.82"), **on_path})
    assert [f for f in with_gpu if "ptxas" in f["message"]]


# --- PyTorch's ROCm and XPU builds: the doctor's findings from their probes (the smoke test itself
# runs on the CPU here: tests/test_backends.py)

LINUX_AMD = dict(system="Linux", build={"is_cuda_build": True})
RX_7900 = {"name": "cuda:0", "device_name": "AMD Radeon RX 7900 XTX (gfx1100)", "compute_capability": None}
ARC_A770 = {"name": "xpu:0", "device_name": "Intel(R) Arc(TM) A770 Graphics", "compute_capability": None}
ROCM_PROBE = {
    "ok": True,
    "version": "2.14.1+rocm7.2",
    "cuda": None,
    "hip": "7.2.53211",
    "build": "ROCm (HIP 7.2.53211)",
}
XPU_PROBE = {"ok": True, "version": "2.14.1+xpu", "cuda": None, "hip": None, "build": "XPU"}


@pytest.mark.parametrize("probe, card", [(ROCM_PROBE, RX_7900), (XPU_PROBE, ARC_A770)], ids=["rocm", "xpu"])
def test_rocm_and_xpu_gpus_that_pass_the_smoke_test_are_working(probe, card):
    smoke = {"status": "passed", "gpus": [{"device": card["name"], "ok": True, "error": ""}], "findings": []}
    findings = diagnose(on_torch({**probe, "gpus": [card]}, smoke, **LINUX_AMD))
    assert not [f for f in findings if f["severity"] == "error"]
    said = "\n".join(f["message"] for f in findings)
    assert f"sees 1 GPU(s): {card['device_name']}" in said and "PyTorch GPU smoke test passed" in said


def test_a_rocm_or_xpu_build_that_sees_no_gpu_names_the_permission_or_the_driver():
    (rocm,) = [f for f in diagnose(on_torch({**ROCM_PROBE, "gpus": []}, **LINUX_AMD)) if f["severity"] == "error"]
    assert "ROCm build but sees no AMD GPU" in rocm["message"] and "usermod -aG render,video" in rocm["fix"]
    (xpu,) = [f for f in diagnose(on_torch({**XPU_PROBE, "gpus": []}, **LINUX_AMD)) if f["severity"] == "error"]
    assert "XPU build but sees no Intel GPU" in xpu["message"] and "Intel's GPU driver" in xpu["fix"]


def test_a_gfx_target_outside_the_rocm_build_fails_the_smoke_test_and_is_explained():
    from bigcats.environment.doctor import format_report, report
    from bigcats.environment.tf_errors import explain

    text = "RuntimeError: HIP error: invalid device function"
    rx_6700 = {**RX_7900, "device_name": "AMD Radeon RX 6700 XT (gfx1031)"}
    smoke = {"status": "failed", "gpus": [{"device": "cuda:0", "ok": False, "error": text}], "findings": explain(text)}
    rep = report(on_torch({**ROCM_PROBE, "gpus": [rx_6700]}, smoke, **LINUX_AMD))
    errors = [f for f in rep["findings"] if f["severity"] == "error"]
    assert any("real work on it failed" in f["message"] for f in errors)
    assert any("HSA_OVERRIDE_GFX_VERSION" in f["fix"] for f in errors)
    assert "PyTorch     2.14.1+rocm7.2 (ROCm (HIP 7.2.53211)); GPUs: AMD Radeon RX 6700 XT (gfx1031)" in format_report(
        rep
    )
