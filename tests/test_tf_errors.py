"""`doctor --explain`: the cause and the fix for what learners actually paste, fed the real texts
(TensorFlow, XLA, pip and Windows messages, as the issue threads and this machine print them);
and the doctor itself never imports TensorFlow, so a TensorFlow that crashes is a finding."""

import json
import os
import subprocess
import sys

import pytest

from bigcats.environment import doctor, machine
from bigcats.environment.tf_errors import explain
from conftest import ROOT

CASES = [
    ("blackwell", "W0000 gpu_device.cc:2344] TensorFlow was not built with CUDA kernel binaries compatible with compute "
                  "capability 12.0. CUDA kernels will be jit-compiled from PTX ...\nCUDA_ERROR_INVALID_PTX", "Blackwell"),
    ("maxwell", "Ignoring visible gpu device (device: 0, name: NVIDIA GeForce GTX 970, compute capability: 5.2) with Cuda "
                "compute capability 5.2. The minimum required Cuda capability is 6.0.", "Maxwell"),
    ("cudnn", "E0000 cuda_dnn.cc:535] Loaded runtime CuDNN library: 9.1.0 but source was compiled with: 9.3.0.  CuDNN "
              "library needs to have matching major version and equal or higher minor version.", "cuDNN other than"),
    ("dlopen", "W0000 gpu_device.cc:2256] Cannot dlopen some GPU libraries. Please make sure the missing libraries "
               "mentioned above are installed properly if you would like to use GPU.", "not the CUDA libraries"),
    ("no ptxas", "INTERNAL: No PTX compilation provider is available. Neither ptxas/nvlink nor nvjtlink is available.",
     "needs `ptxas`"),
    ("old ptxas", "ptxas fatal   : Unsupported .version 8.5; current version is '8.0'", "older `ptxas`"),
    ("old driver", "The NVIDIA driver's CUDA version is 12.2 which is older than the PTX compiler version 12.9.86. Because "
                   "the driver is older than the PTX compiler version, XLA is disabling parallel compilation", "driver is older"),
    ("oom", "ResourceExhaustedError: OOM when allocating tensor with shape[256,32,72,72] and type float on "
            "/job:localhost/replica:0/task:0/device:GPU:0", "ran out of memory"),
    ("cuda oom", "E0000 gpu_device.cc] failed to allocate 2.00G: CUDA_ERROR_OUT_OF_MEMORY: out of memory", "ran out of memory"),
    ("memory growth", "RuntimeError: Physical devices cannot be modified after being initialized", "Memory growth"),
    ("windows", "W tensorflow/stream_executor/platform/default/dso_loader.cc:64] Could not load dynamic library "
                "'cudart64_110.dll'; dlerror: cudart64_110.dll not found", "native Windows"),
    ("tensorflow-gpu", 'The "tensorflow-gpu" package has been removed!', "empty package"),
    ("no wheel", "ERROR: Could not find a version that satisfies the requirement tensorflow (from versions: none)\nERROR: "
                 "No matching distribution found for tensorflow", "no TensorFlow wheel"),
    ("numpy", "A module that was compiled using NumPy 1.x cannot be run in\nNumPy 2.4.6 as it may crash.", "NumPy 1.x"),
    ("kernel", "ModuleNotFoundError: No module named 'tensorflow'", "not the project's environment"),
    ("kernel bigcats", "ModuleNotFoundError: No module named 'bigcats'", "not the project's environment"),
    ("bad image", "InvalidArgumentError: Graph execution error: Unknown image file format. One of JPEG, PNG, GIF, BMP "
                  "required. [[{{node DecodeImage}}]]", "not a readable image"),
    ("bad jpeg", "jpeg::Uncompress failed. Invalid JPEG data or crop window.", "not a readable image"),
    ("avx", "Illegal instruction (core dumped)", "AVX"),
    ("dll", "ImportError: DLL load failed while importing _pywrap_tensorflow_internal: A dynamic link library (DLL) "
            "initialization routine failed.", "Visual C++ runtime"),
    # PyTorch's other GPU builds, as pytorch/pytorch#164346, #145433 and the ROCm threads cited beside each entry print them
    ("hip gfx", "RuntimeError: HIP error: invalid device function\nHIP kernel errors might be asynchronously reported at "
                "some other API call, so the stacktrace below might be incorrect.\nFor debugging consider passing "
                "AMD_SERIALIZE_KERNEL=3", "no kernels for this AMD GPU's gfx target"),
    ("hip none", "RuntimeError: No HIP GPUs are available", "sees no AMD GPU"),
    ("hip fault", "Memory access fault by GPU node-2 (Agent handle: 0x56468ab3bb50) on address 0x7fe55fb03000. Reason: "
                  "Page not present or supervisor privilege.\nAborted (core dumped)", "faulted on a memory access"),
    ("xpu driver", "torch/xpu/__init__.py:60: UserWarning: Failed to initialize XPU devices. The driver may not be "
                   "installed, installed incorrectly, or incompatible with the current setup. (Triggered internally at "
                   "/pytorch/c10/xpu/XPUFunctions.cpp:109.)", "no working Intel GPU driver"),
    ("pascal on cu130", "UserWarning: NVIDIA GeForce GTX 1080 with CUDA capability sm_61 is not compatible with the "
                        "current PyTorch installation.", "only in its CUDA 12.6 build"),
]  # fmt: skip


@pytest.mark.parametrize("text, words", [(text, words) for _, text, words in CASES], ids=[name for name, _, _ in CASES])
def test_each_known_failure_is_explained_with_a_fix(text, words):
    findings = explain(text)
    errors = [f for f in findings if f["severity"] == "error"]
    assert errors and any(words in f["message"] for f in errors), findings
    assert all(f["fix"] for f in findings)


def test_the_rocm_override_is_offered_with_its_risk_and_the_guard_that_checks_it():
    (finding,) = explain("RuntimeError: HIP error: invalid device function")
    assert "HSA_OVERRIDE_GFX_VERSION" in finding["fix"] and "10.3.0" in finding["fix"]
    assert "wrong answers" in finding["fix"] and "python -m bigcats doctor" in finding["fix"]


def test_harmless_start_up_lines_are_said_to_be_harmless_and_nothing_else():
    log = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "E0000 cuda_dnn.cc:8310] Unable to register cuDNN factory: Attempting to register factory for plugin cuDNN\n"
        "W0000 TF-TRT Warning: Could not find TensorRT\n"
        "I0000 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.\n"
        "E0000 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n"
        "E0000 util.cc:131] oneDNN supports DT_UINT8 only on platforms with AVX-512. Falling back\n"
    )
    findings = explain(log)
    assert {f["severity"] for f in findings} == {"info"} and len(findings) == 6
    assert all("Harmless" in f["message"] and "TF_CPP_MIN_LOG_LEVEL" in f["fix"] for f in findings)
    # with a GPU, the CUDA lines are not harmless
    assert len(explain(log, gpu_present=True)) == 4


def test_doctor_explain_reads_a_file_or_standard_input(tmp_path):
    (tmp_path / "error.txt").write_text(CASES[2][1])
    command = [sys.executable, "-m", "bigcats", "doctor", "--explain"]
    done = subprocess.run([*command, tmp_path / "error.txt", "--json"], capture_output=True, text=True, cwd=ROOT)
    findings = json.loads(done.stdout)["findings"]
    assert done.returncode == 0 and set(findings[0]) == {"severity", "message", "fix"}
    done = subprocess.run([*command, "-"], input="Illegal instruction", capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and "[ERROR]" in done.stdout and "AVX" in done.stdout


@pytest.mark.parametrize("how", ["raise ImportError('libcudart.so.12: cannot open shared object file')",
                                 "import os, signal; os.kill(os.getpid(), signal.SIGILL)"])  # fmt: skip
def test_a_tensorflow_that_crashes_on_import_is_a_finding_not_a_dead_doctor(tmp_path, how):
    fake = tmp_path / "fake" / "tensorflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(how + "\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "fake")}
    done = subprocess.run(
        [sys.executable, "-m", "bigcats", "doctor"], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert done.returncode == 0 and "cannot be imported" in done.stdout, done.stderr[-2000:]
    assert "Traceback" not in done.stdout + done.stderr  # the child's traceback is read, not shown
    command = [sys.executable, "-m", "bigcats", "doctor", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    first = report["findings"][0]
    assert first["severity"] == "error" and "cannot be imported" in first["message"]
    if "SIGILL" in how:
        assert "killed by SIGILL" in first["message"] and any("AVX" in f["message"] for f in report["findings"])


def test_doctor_json_here_reports_the_smoke_test_skipped_with_the_reason():
    done = subprocess.run(
        [sys.executable, "-m", "bigcats", "doctor", "--json"], capture_output=True, text=True, cwd=ROOT
    )
    report = json.loads(done.stdout)
    if report["gpus"]:
        pytest.skip("this machine has a GPU: the smoke test ran")
    assert report["smoke_test"] == {"status": "skipped", "reason": doctor.gpu_smoke_test([])["reason"]}


def test_a_listed_gpu_that_fails_real_work_is_an_error_explained(monkeypatch):
    recorded = json.dumps([{"device": "/device:GPU:0", "ok": False, "error": "InternalError: Failed to launch kernel: "
                            "CUDA_ERROR_INVALID_PTX; TensorFlow was not built with CUDA kernel binaries compatible with "
                            "compute capability 12.0"}])  # fmt: skip
    monkeypatch.setattr(doctor, "_child", lambda code, timeout, framework: (0, recorded + "\n", ""))
    smoke = doctor.gpu_smoke_test([{"name": "GPU:0"}])
    assert smoke["status"] == "failed"
    facts = {**fact_sheet(), "gpus": [{"name": "GPU:0", "device_name": "RTX 5090", "compute_capability": [12, 0]}],
             "smoke_test": smoke, "nvidia_driver": "580.1", "nvidia_smi": "x"}  # fmt: skip
    messages = [f["message"] for f in doctor.diagnose(facts) if f["severity"] == "error"]
    assert any("real work on it failed" in m for m in messages) and any("Blackwell" in m for m in messages)
    assert any("GPU code for sm_60" in m for m in messages)  # the build's own list says so too
    monkeypatch.setattr(doctor, "_child", lambda code, timeout, framework: (-11, "", "Segmentation fault"))
    assert doctor.gpu_smoke_test([{"name": "GPU:0"}])["error"] == "the smoke test was killed by SIGSEGV"


def fact_sheet():
    return {
        "python": "3.12.4", "executable": "/p/.venv/bin/python", "prefix": "/p/.venv", "project_env": "/p/.venv",
        "platform": {"system": "Linux", "release": "x", "machine": "x86_64", "wsl": False}, "tensorflow": "2.21.0",
        "keras": "3.15.1", "build": {"is_cuda_build": True, "cuda_version": "12.5.1", "cudnn_version": "9",
        "cuda_compute_capabilities": ["sm_60", "sm_70", "sm_80", "sm_89", "compute_90"]}, "gpus": [],
        "nvidia_smi": None, "nvidia_driver": None, "memory_growth_problems": [], "tensorflow_metal": None,
    }  # fmt: skip


@pytest.mark.parametrize(
    "capability, supported",
    [((6, 1), True), ((7, 5), True), ((8, 6), True), ((8, 9), True), ((9, 0), True), ((10, 0), False),
     ((12, 0), False), ((5, 2), False)],
)  # fmt: skip
def test_compute_capability_against_the_builds_list(capability, supported):
    assert machine.gpu_supported(capability, fact_sheet()["build"]) is supported
    assert machine.gpu_supported(capability, {"is_cuda_build": False}) is True  # no list: nothing to say


def test_cuda_library_facts_become_findings():
    facts = {**fact_sheet(), "gpus": [{"name": "GPU:0", "device_name": "RTX 4090", "compute_capability": [8, 9]}],
             "nvidia_driver": "580.1", "nvidia_smi": "x",
             "nvidia_wheels": {"nvidia-cudnn-cu12": "9.21.0", "nvidia-cuda-runtime-cu12": "12.9.79"},
             "ld_library_path": "/usr/local/cuda-11.8/lib64", "conda_prefix": "/opt/conda/envs/old",
             "ptxas": "/usr/local/cuda-11.8/bin/ptxas", "linux_libcuda_in_wsl": ["/usr/lib/x86_64-linux-gnu/libcuda.so.1"]}  # fmt: skip
    text = "\n".join(f"{f['severity']}: {f['message']}" for f in doctor.diagnose(facts))
    assert "cudnn 9.21.0" in text and "built with CUDA 12.5.1" in text
    assert "warning: LD_LIBRARY_PATH" in text and "warning: A conda environment" in text
    assert "cuda-11.8/bin/ptxas" in text and "error: A Linux NVIDIA driver is installed inside WSL" in text
    assert "GPU code for" not in text  # 8.9 is in the build
