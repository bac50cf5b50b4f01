"""Environment tool: what setup_env.sh / setup_env.bat should install here, and what to tell its owner.

Both scripts call `python -m bigcats.environment.setup_plan` with the Python they are about to build the
environment from, *before* installing anything, so the platform logic lives here, in Python,
where tests can feed it any machine (Windows, WSL2, Linux with or without a driver, macOS):
`--check-python` (is this interpreter one the pins install on?), `--preflight` (what would break
the install: architecture, Windows' path limit, the Visual C++ runtime, AVX, a non-ASCII path),
and the plan itself (extra packages on stdout, advice on stderr). It imports only the standard
library and keeps to Python 3.8 syntax, so that an unsupported Python can still run it and be
told why.
"""

import argparse
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bigcats.environment.machine import (
    BACKENDS,
    CUDA12_DRIVER_MIN,
    INTEL_XPU_NAMES,
    KERNEL_TRANSPORT,
    LEGACY_WINDOWS_GPU,
    ROCM_OVERRIDES,
    SUPPORTED_PYTHON,
    TENSORFLOW_CUDA,
    TENSORFLOW_CUDA_WHEELS,
    TENSORFLOW_DRIVER_MIN,
    TORCH_CUDA_MIN,
    TORCH_DRIVER_MIN,
    TORCH_LEGACY_CUDA,
    TORCH_ROCM,
    gpu_adapters,
    is_wsl,
    nvidia_gpu,
    package_version,
    version_numbers,
)

# The deepest file of the TensorFlow 2.21 wheel lies this many characters below .venv\, and
# Windows refuses paths over 260 characters unless long paths are enabled (tensorflow#51841).
DEEPEST_BELOW_VENV = 181
WINDOWS_MAX_PATH = 260
VC_RUNTIME_MIN = (14, 40)  # TensorFlow 2.21's DLLs want this Visual C++ runtime or newer
WSL2_MIN_BUILD = 19044  # Windows 10 21H2: the first build where WSL2 GPU compute works


@dataclass
class Machine:
    system: str  # platform.system(): Linux, Windows, Darwin
    machine: str = "x86_64"  # platform.machine(): x86_64, AMD64, arm64, aarch64
    wsl: bool = False  # Linux running inside WSL
    nvidia_smi_ok: bool = False  # nvidia-smi runs and lists a GPU
    windows_build: int = 0  # Windows only
    wsl_installed: bool = False  # Windows only: a WSL Linux distribution is installed (`wsl -l -q`)
    gpu: str = ""  # the GPU's name, as nvidia-smi, lspci or Windows gives it
    compute_capability: tuple = ()  # NVIDIA: (8, 6); () where nvidia-smi cannot say (drivers before 510)
    driver: tuple = ()  # NVIDIA: (560, 94)
    gpu_vendor: str = ""  # nvidia, amd or intel: whose GPU setup plans for ('' with none)
    gfx_target: str = ""  # AMD on Linux: 'gfx1100', as the amdgpu kernel driver lists it


@dataclass
class Plan:
    packages: list = field(default_factory=list)  # extra pip requirements, beyond requirements.txt
    messages: list = field(default_factory=list)  # what to tell the person running setup
    gpu: str = "cpu"  # cuda, rocm, xpu, mps, metal or cpu: what training will run on
    supported: bool = True  # False: the pinned TensorFlow has no wheel here
    python_version: tuple = (3, 12)  # the Python the environment is built with
    backend: str = "tensorflow"  # KERAS_BACKEND for this environment: tensorflow, torch or jax
    backend_reason: str = "TensorFlow reaches the GPU here, or there is no GPU to reach"


REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements.txt"
# The torch and JAX routes' pins (Keras' other backends; TensorFlow stays installed for tf.data)
TORCH_REQUIREMENTS = REQUIREMENTS.parent / "requirements-torch.txt"
JAX_REQUIREMENTS = REQUIREMENTS.parent / "requirements-jax.txt"
TORCH_INDEX = "https://download.pytorch.org/whl"  # the Windows CUDA builds live only here


def platform_table():
    """What each platform gets, as a Markdown table: the facts setup acts on, for notebook 01 (the
    README's table says the same; a test compares them)."""
    cuda, tf_driver, torch_driver = TENSORFLOW_CUDA_WHEELS, TENSORFLOW_DRIVER_MIN["Linux"][0], TORCH_DRIVER_MIN[0]
    legacy_driver = _dotted(CUDA12_DRIVER_MIN["Windows"])
    rows = [
        ("Linux / WSL2, NVIDIA Pascal to Hopper (compute capability 6.0-9.0)",
         f"TensorFlow on the GPU: `tensorflow[and-cuda]` brings CUDA {cuda['cuda']} / cuDNN {cuda['cudnn']} as pip "
         f"packages; driver {tf_driver}+"),
        ("Linux / WSL2, NVIDIA Blackwell (RTX 50xx, B200)",
         f"PyTorch on the GPU (TensorFlow 2.21 has no kernels for it); driver {torch_driver}+"),
        ("Native Windows, NVIDIA Turing or newer (RTX 20xx on)",
         f"PyTorch on the GPU, driver {torch_driver}+ (TensorFlow 2.10 was the last with a GPU there)"),
        ("Native Windows, NVIDIA Maxwell to Volta (GTX 9xx/10xx, Titan V)",
         f"PyTorch's CUDA 12.6 build on the GPU, driver {legacy_driver}+"),
        ("Native Windows, an older NVIDIA card or driver", "the CPU, or TensorFlow on the GPU inside WSL2"),
        ("Linux, AMD Radeon RX 6800-9070 or Instinct", "PyTorch's ROCm build on the GPU (other Radeons: the CPU)"),
        ("Windows or Linux, Intel Arc or Core Ultra's Arc graphics", "PyTorch's XPU build on the GPU"),
        ("macOS, Apple silicon", "PyTorch on the Apple GPU (`mps`); `--metal` adds `tensorflow-metal`"),
        ("macOS, Intel", "not supported: TensorFlow 2.21 has no Intel-Mac wheel"),
        ("No GPU, AMD on Windows, other Intel graphics", "TensorFlow on the CPU: every notebook still runs; "
         "a hosted notebook lends a GPU"),
    ]  # fmt: skip
    return "\n".join(["| Platform | Keras trains on |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)])


def tensorflow_pin(requirements=REQUIREMENTS):
    """'2.21.0' from requirements.txt, so the CUDA extra matches the pinned TensorFlow."""
    match = re.search(r"^tensorflow==([\w.]+)", Path(requirements).read_text(), re.M)
    return match.group(1) if match else None


def jax_pin(requirements=JAX_REQUIREMENTS):
    match = re.search(r"^jax==([\w.]+)", Path(requirements).read_text(), re.M)
    return match.group(1) if match else None


def plan(m, tf_version, cpu_only=False, metal=False, python_version=tuple(sys.version_info[:2]), backend=None):
    """The install plan for machine `m`. Pure: everything it knows comes in as arguments.
    `backend` (tensorflow, torch or jax) overrides the choice this function makes."""
    p = Plan(python_version=tuple(python_version))
    if backend in ("torch", "jax"):
        return _chosen_backend(m, p, backend, cpu_only)
    if backend is None and not cpu_only and not metal and _torch_reaches_the_gpu(m):
        return _torch_route(m, p)
    if _other_vendor_without_route(m, cpu_only, metal):
        p.messages += _other_vendor_cpu(m)
    elif m.system == "Linux" and m.nvidia_smi_ok and not cpu_only:
        _linux_nvidia(m, p, tf_version)
    elif m.system == "Linux" and cpu_only:
        p.messages.append("--cpu: TensorFlow will use the CPU only.")
    elif m.system == "Linux" and m.wsl:
        p.messages.append(
            "WSL2 without a working nvidia-smi: TensorFlow will use the CPU. For the GPU, install or "
            "update the NVIDIA driver on the Windows side (never inside WSL), run `wsl --update` in "
            "PowerShell, restart WSL, then re-run ./setup_env.sh here."
        )
    elif m.system == "Linux":
        p.messages.append(
            "No NVIDIA driver found (nvidia-smi): TensorFlow will use the CPU. Every notebook still runs; " + HOSTED
        )
    elif m.system == "Darwin" and m.machine != "arm64":
        p.supported = False
        p.messages.append(
            f"Intel Mac: TensorFlow {tf_version} publishes no wheel for Intel Macs (2.16 was the last), "
            "so this environment cannot be built here. Use an Apple-silicon Mac, a Linux machine or VM, "
            "or " + HOSTED
        )
    elif m.system == "Darwin":
        p.messages += _macos(m, metal, p)
    elif m.system == "Windows":
        p.messages += _windows(m)
    else:
        p.messages.append(f"{m.system}: no GPU route known; TensorFlow will use the CPU.")
    if p.gpu == "cpu" and p.backend_reason == Plan.backend_reason:
        p.backend_reason = "no GPU that TensorFlow or PyTorch can train on here: the CPU, with TensorFlow"
    return p


def _other_vendor_without_route(m, cpu_only, metal):
    return not (cpu_only or metal or m.nvidia_smi_ok) and m.gpu_vendor in ("amd", "intel") and m.system != "Darwin"


def _linux_nvidia(m, p, tf_version):
    low, high = TENSORFLOW_CUDA
    if m.compute_capability and m.compute_capability < low:
        p.messages.append(
            f"{_card(m)}: compute capability {_dotted(m.compute_capability)}. TensorFlow 2.17 and newer have no "
            f"kernels below {_dotted(low)}, and PyTorch's CUDA 13 builds start at {_dotted(TORCH_CUDA_MIN)}: "
            "training runs on the CPU."
            + ("" if _legacy_cuda_problem(m) else " `--backend torch` installs PyTorch's CUDA 12.6 build instead, "
               "which still has kernels for it.")
        )  # fmt: skip
        return
    p.packages.append(f"tensorflow[and-cuda]=={tf_version}")
    p.gpu = "cuda"
    cuda = TENSORFLOW_CUDA_WHEELS
    p.messages.append(
        f"NVIDIA driver found: installing tensorflow[and-cuda] (CUDA {cuda['cuda']} and cuDNN {cuda['cudnn']} as pip "
        f"packages; driver {TENSORFLOW_DRIVER_MIN['Linux'][0]} or newer)."
    )
    if not (m.compute_capability and m.compute_capability > high):
        p.backend_reason = (
            f"TensorFlow {tf_version} reaches NVIDIA GPUs of compute capability {_dotted(low)}-{_dotted(high)}"
        )
        return
    problem = _torch_cuda_problem(m)
    p.messages.append(
        f"{_card(m)} (compute capability {_dotted(m.compute_capability)}) is newer than the TensorFlow "
        f"{tf_version} wheel's kernels (up to {_dotted(high)}): it will fail at the first kernel. "
        + (f"PyTorch's CUDA build would train on it, but {problem}." if problem
           else "Leave out --backend tensorflow to train on PyTorch instead.")
    )  # fmt: skip


def _card(m):
    return m.gpu or "This NVIDIA GPU"


def _dotted(version):
    return ".".join(map(str, version))


def _torch_reaches_the_gpu(m):
    """Where Keras reaches the GPU through PyTorch and not through TensorFlow: native Windows with
    an NVIDIA card and driver one of PyTorch's CUDA builds takes, Blackwell, AMD GPUs whose gfx
    target the ROCm build has kernels for, Intel Arc, and Apple silicon."""
    device, _ = _torch_build(m)
    if device == "cuda" and m.system == "Linux":
        return bool(m.compute_capability) and m.compute_capability > TENSORFLOW_CUDA[1]
    return device != "cpu" and (device != "rocm" or m.gfx_target in TORCH_ROCM["targets"])


def _torch_device(m, cpu_only=False):
    """Where PyTorch's build for this machine trains: cuda, rocm, xpu, mps or cpu."""
    return _torch_build(m, cpu_only)[0]


def _torch_build(m, cpu_only=False):
    """(device, build): where PyTorch trains here and the local version label of the build that
    does it (cu130, cu126, rocm7.2, xpu, cpu; '' on macOS, whose one build drives the Apple GPU)."""
    if m.system == "Darwin":
        return ("mps" if m.machine == "arm64" and not cpu_only else "cpu"), ""
    if cpu_only or m.system not in ("Windows", "Linux"):
        return "cpu", "cpu"
    if m.nvidia_smi_ok:
        if not _torch_cuda_problem(m):
            return "cuda", "cu130"
        return ("cuda", TORCH_LEGACY_CUDA["build"]) if not _legacy_cuda_problem(m) else ("cpu", "cpu")
    if m.gpu_vendor == "amd" and m.system == "Linux" and m.gfx_target:
        return "rocm", TORCH_ROCM["build"]
    if m.gpu_vendor == "intel" and any(word in m.gpu for word in INTEL_XPU_NAMES):
        return "xpu", "xpu"
    return "cpu", "cpu"


def _torch_cuda_problem(m):
    """Why PyTorch's CUDA 13 build cannot use this NVIDIA GPU ('' where it can)."""
    if not m.compute_capability or not m.driver:
        return "nvidia-smi does not say this card's compute capability (its driver predates 510)"
    if m.compute_capability < TORCH_CUDA_MIN:
        return (
            f"PyTorch's CUDA 13 builds start at compute capability {_dotted(TORCH_CUDA_MIN)} (Turing); "
            f"{_card(m)} has {_dotted(m.compute_capability)}"
        )
    if m.driver < TORCH_DRIVER_MIN:
        return (
            f"PyTorch's CUDA 13 builds need NVIDIA driver {TORCH_DRIVER_MIN[0]} or newer; this one is "
            f"{_dotted(m.driver)}: update it (nvidia.com/drivers), then run setup again"
        )
    return ""


def _legacy_cuda_problem(m):
    """Why PyTorch's CUDA 12.6 build, kept for the cards CUDA 13 left out, cannot serve this one."""
    if not m.compute_capability or not m.driver or m.compute_capability >= TORCH_CUDA_MIN:
        return _torch_cuda_problem(m)
    if m.compute_capability < TORCH_LEGACY_CUDA["lowest"]:
        return f"{_card(m)} (compute capability {_dotted(m.compute_capability)}) is older than any PyTorch build"
    lowest = CUDA12_DRIVER_MIN["Windows" if m.system == "Windows" else "Linux"]
    if m.driver < lowest:
        return (
            f"PyTorch's CUDA 12.6 build (the last for compute capability {_dotted(m.compute_capability)}) needs "
            f"NVIDIA driver {_dotted(lowest)} or newer; this one is {_dotted(m.driver)}: update it "
            "(nvidia.com/drivers), then run setup again"
        )
    return ""


def torch_pin(requirements=TORCH_REQUIREMENTS):
    """'2.14.1' from requirements-torch.txt."""
    match = re.search(r"^torch==([\w.]+)", Path(requirements).read_text(), re.M)
    return match.group(1) if match else None


def _torch_packages(m, cpu_only=False):
    """pip arguments for the torch route: the build pinned with its label (2.14.1+cu130; an installed
    2.14.1+cpu satisfies a bare ==2.14.1, so a re-run after a driver update would keep it), from
    PyTorch's index for that build (PyPI's Windows wheel is the CPU build, its Linux one CUDA 13)."""
    _, build = _torch_build(m, cpu_only)
    if not build:
        return [f"torch=={torch_pin()}"]
    return [f"torch=={torch_pin()}+{build}", "--index-url", f"{TORCH_INDEX}/{build}"]


HOSTED = "a hosted notebook with a free GPU (docs/install.md#a-free-gpu-in-a-hosted-notebook)."
GPU_NAMES = {"cuda": "the NVIDIA GPU", "rocm": "the AMD GPU (ROCm)", "xpu": "the Intel GPU (XPU)",
             "mps": "the Apple GPU", "cpu": "the CPU"}  # fmt: skip


def _torch_route(m, p):
    p.backend = "torch"
    p.packages = _torch_packages(m)
    p.gpu = _torch_device(m)
    if p.gpu == "mps":
        p.backend_reason = "TensorFlow 2.21 reaches the Apple GPU only through tensorflow-metal (tested up to 2.18)"
        p.messages.append(
            "Apple silicon: Keras will train on PyTorch, whose macOS build drives the Apple GPU (MPS). "
            "`./setup_env.sh --metal` installs tensorflow-metal instead, to train with TensorFlow."
        )
        return p
    if p.gpu in ("rocm", "xpu"):
        p.backend_reason = (
            f"TensorFlow's wheel drives NVIDIA GPUs only; PyTorch's {p.gpu.upper()} build drives this one"
        )
        p.messages.append(_other_vendor_route(m, p.gpu))
        return p
    if m.system == "Windows":
        p.backend_reason = "TensorFlow 2.11 and newer have no GPU support on native Windows"
    else:
        p.backend_reason = (
            f"the TensorFlow 2.21 wheel has no kernels for compute capability {_dotted(m.compute_capability)}"
        )
    legacy = _torch_build(m)[1] == TORCH_LEGACY_CUDA["build"]
    p.messages.append(
        f"{_card(m)} (compute capability {_dotted(m.compute_capability)}, driver {_dotted(m.driver)}): "
        f"{p.backend_reason}, so Keras will train on PyTorch's "
        + ("CUDA 12.6 build, the last with kernels for this card" if legacy else "CUDA build")
        + " (KERAS_BACKEND=torch). TensorFlow stays installed, on the CPU, for tf.data."
    )
    return p


def _other_vendor_route(m, device):
    name = m.gpu or {"rocm": "This AMD GPU", "xpu": "This Intel GPU"}[device]
    if device == "rocm":
        return (
            f"{name} ({m.gfx_target}): Keras will train on PyTorch's ROCm build (KERAS_BACKEND=torch), which "
            "drives AMD GPUs through its `cuda` device and brings ROCm's libraries in the wheel; it needs the amdgpu "
            "kernel driver (found) and your user in the `render` and `video` groups (`sudo usermod -aG render,video "
            "$USER`, then log in again). Untested on AMD hardware here."
        )
    return (
        f"{name}: Keras will train on PyTorch's XPU build (KERAS_BACKEND=torch), which needs Intel's GPU driver: "
        "on Windows the Intel Arc & Iris Xe Graphics driver (intel.com), on Linux the client GPU packages of "
        "Intel's 'Installing Client GPUs' guide (level-zero, intel-opencl-icd). Untested on Intel GPUs here."
    )


def _other_vendor_cpu(m):
    """Why an AMD or Intel GPU without a route here trains on the CPU, and what would change that."""
    name = m.gpu or f"An {m.gpu_vendor.upper() if m.gpu_vendor == 'amd' else 'Intel'} GPU"
    if _torch_reaches_the_gpu(m):  # --backend tensorflow on a GPU PyTorch's build drives
        return [
            f"--backend tensorflow: TensorFlow trains on the CPU here; PyTorch's {_torch_device(m).upper()} build "
            f"would train on {name} (leave out --backend)."
        ]
    if m.gpu_vendor == "intel":
        return [
            f"{name}: PyTorch's XPU build drives Intel Arc (A- and B-series, Core Ultra's Arc graphics) and Data "
            "Center GPU Max" + ("" if m.gpu else " (lspci, from pciutils, would name this one)")
            + "; TensorFlow trains on the CPU here. Every notebook still runs; " + HOSTED
        ]  # fmt: skip
    if m.system == "Windows":
        return [
            f"{name} on native Windows: PyTorch publishes no ROCm build for Windows. AMD's own preview wheels "
            "(repo.radeon.com: RX 7000/9000 and Ryzen AI, Python 3.12 only) pin their own torch, not this project's, "
            "so setup leaves them out and TensorFlow trains on the CPU (docs/install.md#amd-radeon-and-instinct). "
            "GPU routes: Linux, or " + HOSTED
        ]
    if not m.gfx_target:
        return [
            f"{name}, but the amdgpu kernel driver offers it no compute queue (no /sys/class/kfd): TensorFlow "
            "trains on the CPU. A Radeon RX 6000 or newer needs a kernel with amdgpu (any current distribution) "
            "and /dev/kfd; then run setup again (docs/install.md#amd-radeon-and-instinct)."
        ]
    override = ROCM_OVERRIDES.get(m.gfx_target)
    lines = [
        f"{name} ({m.gfx_target}): PyTorch's ROCm build has no kernels for {m.gfx_target}, so TensorFlow "
        "trains on the CPU."
    ]
    if override:
        lines.append(
            f"  HSA_OVERRIDE_GFX_VERSION={override} makes ROCm run the kernels of a close chip on it: not supported by "
            "AMD, it works for many and crashes or computes wrong for some. To try: `./setup_env.sh --backend "
            f"torch`, `export HSA_OVERRIDE_GFX_VERSION={override}`, then `python -m bigcats doctor`, which checks a "
            "training step against the CPU (docs/install.md#amd-radeon-and-instinct)."
        )
    return lines


def _chosen_backend(m, p, backend, cpu_only):
    """--backend torch or jax: that backend, on the GPU where its builds reach it, else the CPU."""
    p.backend = backend
    p.backend_reason = f"--backend {backend}"
    if backend == "torch":
        p.packages, p.gpu = _torch_packages(m, cpu_only), _torch_device(m, cpu_only)
    else:
        p.packages = ["-r", JAX_REQUIREMENTS.name]
        cuda = m.system == "Linux" and m.nvidia_smi_ok and not cpu_only and not _torch_cuda_problem(m)
        p.packages += [f"jax[cuda13]=={jax_pin()}"] if cuda else []
        p.gpu = "cuda" if cuda else "cpu"
    p.messages.append(f"--backend {backend}: Keras will train on {backend}, on {GPU_NAMES[p.gpu]}.")
    if p.gpu == "rocm" and m.gfx_target not in TORCH_ROCM["targets"]:
        p.messages += _other_vendor_cpu(m)[1:] or [f"{m.gfx_target}: no kernels in the ROCm build; it may fail."]
    if m.nvidia_smi_ok and p.gpu == "cpu" and not cpu_only:
        p.messages.append(
            f"Its GPU build does not fit this machine: {_torch_cuda_problem(m) or 'none for ' + m.system}."
        )
    return p


def _macos(m, metal, p):
    if metal and p.python_version >= (3, 13):
        p.supported = False
        return [
            "--metal: tensorflow-metal (last release 1.2.0) has no wheel for Python 3.13. Use Python 3.12 "
            "(PYTHON=python3.12 ./setup_env.sh --metal), or leave out --metal to train on the CPU."
        ]
    if metal:
        p.packages.append("tensorflow-metal")
        p.gpu = "metal"
        return [
            "Apple silicon: installing tensorflow-metal, the plugin that runs TensorFlow on the Apple GPU. Its own "
            "compatibility table ends at TensorFlow 2.18, so with 2.21 it is untested here; if `import tensorflow` "
            "then fails, `.venv/bin/pip uninstall -y tensorflow-metal` goes back to the CPU."
        ]
    return [
        "Apple silicon: TensorFlow uses the CPU. `./setup_env.sh --metal` adds the Apple GPU plugin (tensorflow-metal)."
    ]


def _windows(m):
    if not m.nvidia_smi_ok:
        return ["No NVIDIA driver found: TensorFlow runs on the CPU. Every notebook still works; " + HOSTED]
    problem = _legacy_cuda_problem(m)
    lines = [
        "NVIDIA GPU found, but TensorFlow 2.11 and newer have no GPU support on native Windows"
        + (f", and {problem}" if problem else "")
        + ": this environment runs on the CPU. "
        + (
            "The GPU route is WSL2:"
            if problem
            else "Leave out --backend tensorflow to train on PyTorch's CUDA build; TensorFlow's GPU route is WSL2:"
        )
    ]
    if m.windows_build and m.windows_build < WSL2_MIN_BUILD:
        lines.append(
            f"  0. This is Windows build {m.windows_build}; WSL2 GPU support needs build {WSL2_MIN_BUILD}+ "
            "(Windows 10 21H2 or Windows 11). Run Windows Update first."
        )
    lines += [
        "  1. Keep the NVIDIA driver installed here, on Windows. Do NOT install a driver inside WSL.",
        "  2. PowerShell as administrator:  wsl --install -d Ubuntu   (then restart)"
        + ("   [WSL is already installed: skip to 3]" if m.wsl_installed else ""),
        "  3. In Ubuntu:  sudo apt update && sudo apt install -y python3-venv git",
        "                 git clone <this project> bigcats && cd bigcats && ./setup_env.sh",
        "     (setup_env.sh installs tensorflow[and-cuda] when nvidia-smi works inside Ubuntu)",
        "  " + LEGACY_WINDOWS_GPU,
    ]
    return lines


@dataclass
class Interpreter:
    """The Python a setup script is about to build the environment from, and where."""

    version: tuple  # (3, 12)
    system: str = "Linux"
    machine: str = "x86_64"
    bits: int = 64
    project_dir: str = ""
    long_paths: object = None  # Windows: LongPathsEnabled (True/False), None if unknown
    vc_runtime: object = None  # Windows: (14, 40) from the registry, None if not installed
    avx: object = None  # True/False, None if unknown
    os_release: dict = field(default_factory=dict)  # Linux: /etc/os-release (ID, VERSION_ID)


def python_problems(python):
    """[(message, fix)] that stop the pinned packages installing with this interpreter."""
    low, high = SUPPORTED_PYTHON
    shown = ".".join(map(str, python.version[:2]))
    problems = []
    if not low <= tuple(python.version[:2]) <= high:
        problems.append(
            (
                f"Python {shown} cannot install this project's pinned packages (they need 3.11-3.13).",
                _get_python(python),
            )
        )
    if python.system == "Windows" and (python.bits != 64 or python.machine.upper() not in ("AMD64", "X86_64")):
        problems.append(
            (
                f"This Python is {python.bits}-bit {python.machine}: TensorFlow publishes Windows wheels for 64-bit x86 only.",
                "Install the 64-bit Python 3.12 (python.org: 'Windows installer (64-bit)', or `winget install Python.Python.3.12`), "
                "open a new terminal and run setup_env.bat again.",
            )
        )
    return problems


def _get_python(python):
    if python.system == "Windows":
        return (
            "Install Python 3.12: `winget install Python.Python.3.12` or `py install 3.12` (the Python install manager), "
            "or python.org. Then open a NEW terminal window (the old one does not see it) and run setup_env.bat again."
        )
    if python.os_release.get("ID") == "ubuntu" and python.os_release.get("VERSION_ID", "") < "24.04":
        return (
            f"Ubuntu {python.os_release.get('VERSION_ID')} ships Python 3.10. Add 3.12 beside it: "
            "`sudo add-apt-repository ppa:deadsnakes/ppa && sudo apt install python3.12 python3.12-venv` "
            "(or `uv python install 3.12`), then `PYTHON=python3.12 ./setup_env.sh`."
        )
    if python.system == "Darwin":
        return (
            "Install Python 3.12 (`brew install python@3.12`, or python.org), then `PYTHON=python3.12 ./setup_env.sh`."
        )
    return "Install Python 3.12 (your package manager, pyenv or `uv python install 3.12`), then `PYTHON=python3.12 ./setup_env.sh`."


def preflight(python):
    """[(severity, message, fix)] for what would make the install or `import tensorflow` fail
    here, found before the ~700 MB download: 'error' stops the setup, 'warning' does not."""
    found = [("error", message, fix) for message, fix in python_problems(python)]
    if python.avx is False:
        found.append(
            (
                "error",
                "This CPU has no AVX instructions: TensorFlow's wheels are built for AVX and stop with "
                "'Illegal instruction' or a failed DLL load.",
                "Use a newer computer, a hosted notebook service, or build TensorFlow from source.",
            )
        )
    if python.system == "Windows":
        found += _windows_preflight(python)
    return found


def _windows_preflight(python):
    found = []
    longest_project = WINDOWS_MAX_PATH - 1 - DEEPEST_BELOW_VENV - len("\\.venv\\")
    if python.project_dir.startswith("\\\\"):
        found.append(
            (
                "error",
                f"The project is on a network or WSL path ({python.project_dir}); a Windows environment cannot be built there.",
                "Inside WSL, run ./setup_env.sh in Ubuntu instead; for Windows, clone the project onto a local drive (C:\\...).",
            )
        )
    if python.long_paths is not True and len(python.project_dir) > longest_project:
        found.append(
            (
                "error",
                f"The project folder's path is {len(python.project_dir)} characters long and Windows' long paths are "
                f"off: TensorFlow's files would pass the 260-character limit and the install would fail midway.",
                f"Move the project to a shorter path (at most {longest_project} characters, e.g. C:\\src\\bigcats), or enable "
                "long paths: in an administrator PowerShell, `New-ItemProperty -Path "
                "HKLM:\\SYSTEM\\CurrentControlSet\\Control\\FileSystem -Name LongPathsEnabled -Value 1 -PropertyType DWORD -Force`.",
            )
        )
    if python.vc_runtime is None or tuple(python.vc_runtime) < VC_RUNTIME_MIN:
        have = "not installed" if python.vc_runtime is None else "version " + ".".join(map(str, python.vc_runtime))
        found.append(
            (
                "error",
                f"The Microsoft Visual C++ runtime is {have}; TensorFlow 2.21 needs 14.40 or newer "
                "(else: 'DLL load failed while importing _pywrap_tensorflow_internal').",
                "`winget install Microsoft.VCRedist.2015+.x64` (or the 'latest supported Visual C++ "
                "Redistributable' from Microsoft), then run setup_env.bat again.",
            )
        )
    if not python.project_dir.isascii():
        found.append(
            (
                "warning",
                f"The project path has non-ASCII characters ({python.project_dir}); TensorFlow's DLLs can fail to load from such paths.",
                "If `import tensorflow` fails at the end, move the project to a path of plain letters (e.g. C:\\src\\bigcats).",
            )
        )
    return found


# JupyterLab's question "get notified about official Jupyter news?" covers the first notebook
# on a first start; the project's environment answers it once, for every learner.
LAB_OVERRIDES = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false"}}
# Its Jupyter Server saves the tutorial's notebooks as committed (bigcats/environment/jupyter_hooks.py).
SERVER_SETTINGS = {
    "ContentsManager": {"pre_save_hook": "bigcats.environment.jupyter_hooks.strip_tutorial_outputs"},
    "KernelManager": {"transport": KERNEL_TRANSPORT},
}


def write_lab_settings(prefix=sys.prefix):
    """Merge the project's JupyterLab settings into PREFIX/share/jupyter/lab/settings/overrides.json
    (the environment's own, not the user's), and have its Jupyter Server save the tutorial's
    notebooks as committed (bigcats/environment/jupyter_hooks.py). Returns the settings file."""
    path = _merge_json(Path(prefix, "share", "jupyter", "lab", "settings", "overrides.json"), LAB_OVERRIDES)
    # the environment's own server settings file: Jupyter Server reads the files in
    # jupyter_server_config.d/ only to enable extensions, so a hook set there is never applied
    server = _merge_json(Path(prefix, "etc", "jupyter", "jupyter_server_config.json"), SERVER_SETTINGS)
    earlier = Path(server.parent, "jupyter_server_config.d", "bigcats.json")  # where earlier setups wrote it
    earlier.unlink(missing_ok=True)
    return path


def _merge_json(path, sections):
    """Write `sections` ({section: {key: value}}) into the JSON file at `path`, keeping what else it holds."""
    import json

    settings = json.loads(path.read_text()) if path.exists() else {}
    for section, values in sections.items():
        settings.setdefault(section, {}).update(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2))
    return path


def _wsl_distributions():
    """The WSL Linux distributions installed (`wsl -l -q`, which writes UTF-16); [] if none or no WSL.
    (`wsl --status` answers even with none installed.)"""
    exe = shutil.which("wsl")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "-l", "-q"], capture_output=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    text = out.decode("utf-16-le", errors="ignore") if out[1:2] == b"\x00" else out.decode(errors="ignore")
    return [line.strip().strip("\x00") for line in text.splitlines() if line.strip().strip("\x00")]


def _windows_registry(key, name):
    try:
        import winreg

        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, key) as handle:
            return winreg.QueryValueEx(handle, name)[0]
    except (ImportError, OSError):
        return None


def _vc_runtime():
    """(14, 40) from 'v14.40.33810.00' in the registry, or None where it is not installed."""
    version = _windows_registry(r"SOFTWARE\Microsoft\VisualStudio\14.0\VC\Runtimes\x64", "Version")
    match = re.match(r"v?(\d+)\.(\d+)", version or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def _has_avx(system):
    if system == "Windows":
        try:
            import ctypes

            return bool(ctypes.windll.kernel32.IsProcessorFeaturePresent(39))  # PF_AVX_INSTRUCTIONS_AVAILABLE
        except (AttributeError, OSError):
            return None
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None  # macOS: Apple silicon has no AVX and needs none; Intel Macs are refused anyway
    return bool(re.search(r"^flags\s*:.*\bavx\b", flags, re.M)) if platform.machine() in ("x86_64", "AMD64") else None


def _os_release():
    try:
        lines = Path("/etc/os-release").read_text().splitlines()
    except OSError:
        return {}
    return {key: value.strip('"') for key, _, value in (line.partition("=") for line in lines) if value}


def this_interpreter(project_dir):
    """The facts `preflight` needs, read off this Python and this machine."""
    system = platform.system()
    long_paths = _windows_registry(r"SYSTEM\CurrentControlSet\Control\FileSystem", "LongPathsEnabled")
    return Interpreter(
        version=tuple(sys.version_info[:3]),
        system=system,
        machine=platform.machine(),
        bits=64 if sys.maxsize > 2**32 else 32,
        project_dir=str(project_dir),
        long_paths=None if long_paths is None else bool(long_paths),
        vc_runtime=_vc_runtime() if system == "Windows" else None,
        avx=_has_avx(system),
        os_release=_os_release() if system == "Linux" else {},
    )


def this_machine():
    system = platform.system()
    nvidia = nvidia_gpu()
    other = () if nvidia else preferred_adapter(gpu_adapters(system))
    return Machine(
        system=system,
        machine=platform.machine(),
        wsl=is_wsl(system),
        nvidia_smi_ok=nvidia is not None,
        windows_build=sys.getwindowsversion().build if system == "Windows" else 0,
        wsl_installed=system == "Windows" and bool(_wsl_distributions()),
        gpu=nvidia[0] if nvidia else (other[1] if other else ""),
        compute_capability=nvidia[1] if nvidia else (),
        driver=nvidia[2] if nvidia else (),
        gpu_vendor="nvidia" if nvidia else (other[0] if other else ""),
        gfx_target=other[2] if other else "",
    )


def preferred_adapter(adapters):
    """The (vendor, name, gfx target) setup plans for where nvidia-smi found no NVIDIA GPU: an AMD GPU
    the ROCm build has kernels for, then an Intel one the XPU build drives, then any AMD or Intel
    GPU (to say why it trains on the CPU); () with none."""

    def rank(adapter):
        vendor, name, target = adapter
        return (vendor == "amd" and target in TORCH_ROCM["targets"],
                vendor == "intel" and any(word in name for word in INTEL_XPU_NAMES), vendor == "amd")  # fmt: skip

    candidates = [adapter for adapter in adapters if adapter[0] in ("amd", "intel")]
    return max(candidates, key=rank) if candidates else ()


def machine_from_file(path):
    """A Machine from a JSON description: {"system": "Windows", "machine": "AMD64", "gpu":
    "NVIDIA GeForce RTX 3060", "compute_capability": "8.6", "driver": "581.57"}, or {"system":
    "Linux", "gpu_vendor": "amd", "gpu": "AMD Radeon RX 7900 XTX", "gfx_target": "gfx1100"} (any
    other Machine field may be given too); an NVIDIA `gpu` means nvidia-smi works."""
    import json

    facts = json.loads(Path(path).read_text())
    known = set(Machine.__dataclass_fields__)
    unknown = sorted(set(facts) - known)
    if unknown or "system" not in facts:
        raise SystemExit(
            f"{path}: "
            + (f"unknown field(s) {', '.join(unknown)}; " if unknown else "no 'system'; ")
            + f"a machine is described by {', '.join(sorted(known))}"
        )
    for name in ("compute_capability", "driver"):
        facts[name] = version_numbers(str(facts.get(name, "")))
    facts.setdefault("gpu_vendor", "nvidia" if facts.get("gpu") else "")
    facts.setdefault("nvidia_smi_ok", bool(facts.get("gpu")) and facts["gpu_vendor"] == "nvidia")
    if facts["gpu_vendor"] not in ("", "nvidia", "amd", "intel"):
        raise SystemExit(f"{path}: gpu_vendor is nvidia, amd or intel, not {facts['gpu_vendor']!r}")
    return Machine(**facts)


def torch_build_problem(result, installed):
    """What is wrong with the installed PyTorch for this plan: '' where it is the planned build (or
    the plan has none). pip takes an installed 2.14.1+cpu for a bare torch==2.14.1 (PEP 440 ignores
    the local label), so this is checked after installing, by the version's label."""
    wanted = next((package.split("==", 1)[1] for package in result.packages if package.startswith("torch==")), None)
    if wanted is None or installed == wanted:
        return ""
    index = result.packages[result.packages.index("--index-url") + 1] if "--index-url" in result.packages else ""
    again = f'pip install --force-reinstall "torch=={wanted}"' + (f" --index-url {index}" if index else "")
    return (
        f"PyTorch {installed or 'is not installed'}"
        + (" is installed" if installed else "")
        + f", but this machine's plan is torch {wanted} (Keras would train on the wrong device). "
        + f"Run setup again, or in the environment: {again}"
    )


def plan_json(m, result):
    """The plan as `--json` prints it: the backend, what is installed, what is said."""
    import json
    from dataclasses import asdict

    install = ["pip", "install", "-r", REQUIREMENTS.name] + (
        [] if not result.packages else ["&&", "pip", "install", *result.packages]
    )
    return json.dumps({**asdict(result), "install": " ".join(install), "machine": asdict(m)}, indent=2)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Print the extra packages this machine needs (stdout) and advice "
        "(stderr); exit status 3 where the pinned TensorFlow cannot be installed."
    )
    parser.add_argument("--cpu", action="store_true", help="never the CUDA libraries")
    parser.add_argument("--metal", action="store_true", help="Apple silicon: add tensorflow-metal")
    parser.add_argument(
        "--check-python", action="store_true", help="only: can this Python install the pins? (exit 1 if not)"
    )
    parser.add_argument(
        "--preflight", action="store_true", help="only: what would break the install here (exit 1 on an error)"
    )
    parser.add_argument("--lab-settings", action="store_true", help="only: write the environment's JupyterLab settings")
    parser.add_argument(
        "--backend", choices=BACKENDS, help="Keras' backend, instead of the one chosen for this machine"
    )
    parser.add_argument("--machine", metavar="FILE", help="plan for the machine described in this JSON file instead")
    parser.add_argument("--json", action="store_true", help="print the whole plan as JSON (on stdout)")
    parser.add_argument(
        "--save-backend", action="store_true", help="only: save the plan's backend in the environment and its kernel"
    )
    parser.add_argument(
        "--check-build", action="store_true", help="only: is the installed PyTorch the plan's build? (exit 1 if not)"
    )
    args = parser.parse_args(argv)
    if args.lab_settings:
        print(f"JupyterLab settings: {write_lab_settings()}", file=sys.stderr)
        return 0
    if args.check_python or args.preflight:
        python = this_interpreter(REQUIREMENTS.parent)
        found = preflight(python) if args.preflight else [("error", *problem) for problem in python_problems(python)]
        for severity, message, fix in found:
            print(f"{severity.upper()}: {message}\n    fix: {fix}", file=sys.stderr)
        return 1 if any(severity == "error" for severity, _, _ in found) else 0
    machine = machine_from_file(args.machine) if args.machine else this_machine()
    result = plan(machine, tensorflow_pin(), cpu_only=args.cpu, metal=args.metal, backend=args.backend)
    if args.save_backend:
        from bigcats.environment.backends import save_choice

        for path in save_choice(result.backend, result.backend_reason):
            print(f"Keras backend {result.backend} ({result.backend_reason}): {path}", file=sys.stderr)
        return 0
    if args.check_build:
        problem = torch_build_problem(result, package_version("torch"))
        print(
            f"ERROR: {problem}" if problem else f"PyTorch build: {package_version('torch') or 'none'}", file=sys.stderr
        )
        return 1 if problem else 0
    if args.json:
        print(plan_json(machine, result))
        return 0 if result.supported else 3
    for line in result.messages:
        print(line, file=sys.stderr)
    print(" ".join(result.packages))
    return 0 if result.supported else 3


if __name__ == "__main__":
    sys.exit(main())
