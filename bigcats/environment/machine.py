"""Environment tool: the facts about this machine that setup, the doctor and training all act on.

One place for each probe (the NVIDIA driver through nvidia-smi, WSL, an installed package's
version) and each constant (the Pythons the pins install on, Keras' backends, the compute
capabilities and drivers each route needs). Standard library only, in Python 3.8 syntax:
`setup_plan` runs it with the Python setup is about to build from, before anything is installed.
"""

import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

# The pinned requirements resolve for these (keras 3.15 and ipykernel 7.4 need 3.11; numpy 2.4,
# matplotlib 3.11 and pillow 13 have no 3.10 wheels); tests/test_support_matrix.py checks it.
SUPPORTED_PYTHON = ((3, 11), (3, 13))
BACKENDS = ("tensorflow", "torch", "jax")  # Keras 3's backends this project installs
# The compute capabilities the TensorFlow 2.21 wheel has kernels for (sm_60 ... sm_89, compute_90)
TENSORFLOW_CUDA = ((6, 0), (9, 0))
DROPPED_BELOW_CC = TENSORFLOW_CUDA[0]  # TF 2.17+ wheels have no kernels for Maxwell (5.x)
# PyTorch's CUDA 13 builds: Turing and newer, with a driver of the CUDA 13 branch
TORCH_CUDA_MIN = (7, 5)
TORCH_DRIVER_MIN = (580, 0)
# tensorflow[and-cuda] 2.21 was built with CUDA 12.5 and cuDNN 9.3, but pip brings today's CUDA 12.9
# and cuDNN 9.2x wheels; NVIDIA's table for CUDA 12.9 asks for driver 575.51 on Linux, 576.02 on
# Windows (whose driver serves WSL2)
TENSORFLOW_CUDA_WHEELS = dict(cuda="12.9", cudnn="9.2x", built_with_cuda="12.5", built_with_cudnn="9.3")
TENSORFLOW_DRIVER_MIN = {"Linux": (575, 51), "Windows": (576, 2)}
# below this no CUDA 12 runs at all; between it and the above, CUDA's minor-version compatibility
# runs most of it (NVIDIA's CUDA 12 table)
CUDA12_DRIVER_MIN = {"Linux": (525, 60), "Windows": (527, 41)}
# How Jupyter talks to its kernels: over local sockets where the system has them, which ipykernel
# takes as safe (over TCP it prints "Kernel is running over TCP without encryption" for every
# kernel, a line learners read as an error); Windows has only TCP.
KERNEL_TRANSPORT = "tcp" if os.name == "nt" else "ipc"
LEGACY_WINDOWS_GPU = (
    "Legacy native-Windows GPU route (untested here, not supported by this project's Keras 3 code): "
    "Python 3.10 (which this project's pins do not support), conda install -c conda-forge cudatoolkit=11.2 cudnn=8.1.0, "
    'pip install "tensorflow<2.11" "numpy<2".'
)


def version_numbers(text):
    """(8, 6) from '8.6', (560, 94) from '560.94'; () from '' or '[N/A]'."""
    numbers = re.findall(r"\d+", text or "")
    return tuple(int(n) for n in numbers[:2]) if re.match(r"\s*\d", text or "") else ()


def package_version(name):
    """The installed version of a distribution (`tensorflow`, `torch`), or None."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def is_wsl(system=None, release=None):
    """Linux running inside WSL (its kernel's release names Microsoft or WSL)."""
    system = system or platform.system()
    release = (release or platform.release()).lower()
    return system == "Linux" and ("microsoft" in release or "wsl" in release)


def has_nvidia_device():
    """True where an NVIDIA driver is installed (Linux), exposed (WSL2) or nvidia-smi exists."""
    return shutil.which("nvidia-smi") is not None or any(
        Path(path).exists() for path in ("/proc/driver/nvidia", "/dev/nvidia0", "/dev/dxg")
    )


def _nvidia_smi(*arguments, timeout=30):
    """nvidia-smi's output for these arguments, or None where it does not run or fails."""
    try:
        run = subprocess.run(
            [shutil.which("nvidia-smi") or "nvidia-smi", *arguments], capture_output=True, text=True, timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return run.stdout if run.returncode == 0 else None


def nvidia_smi_report():
    """nvidia-smi's report, as a learner sees it, or None where there is no working NVIDIA driver."""
    return _nvidia_smi(timeout=20) if shutil.which("nvidia-smi") else None


def driver_version(smi_report):
    """'581.57' from nvidia-smi's report, or None."""
    match = re.search(r"Driver Version:\s*([\d.]+)", smi_report or "")
    return match.group(1) if match else None


def nvidia_gpu():
    """(name, compute capability, driver) of the first NVIDIA GPU, from nvidia-smi; None without one.
    Drivers before 510 do not know the compute_cap field: then the capability is ()."""
    if _nvidia_smi("-L") is None:
        return None
    for fields in ("name,compute_cap,driver_version", "name,driver_version"):
        out = _nvidia_smi(f"--query-gpu={fields}", "--format=csv,noheader")
        if out and out.strip():
            values = [value.strip() for value in out.splitlines()[0].split(",")]
            capability = version_numbers(values[1]) if len(values) == 3 else ()
            return values[0], capability, version_numbers(values[-1])
    return None


def kernels_in_build(build):
    """The compute capabilities a TensorFlow build has GPU code for, from its build info:
    ([(6, 0), ...] as binaries, [(9, 0)] as portable PTX)."""
    listed = build.get("cuda_compute_capabilities") or []
    binaries = [(int(c[3:-1]), int(c[-1])) for c in listed if c.startswith("sm_")]
    portable = [(int(c[8:-1]), int(c[-1])) for c in listed if c.startswith("compute_")]
    return binaries, portable


def gpu_supported(compute_capability, build):
    """Does this TensorFlow build run on a GPU of this compute capability? True without a list."""
    binaries, portable = kernels_in_build(build)
    if not (binaries or portable) or not compute_capability:
        return True
    cc = tuple(compute_capability)
    same_major_binary = any(major == cc[0] and minor <= cc[1] for major, minor in binaries)
    return same_major_binary or any(major == cc[0] and minor <= cc[1] for major, minor in portable)
