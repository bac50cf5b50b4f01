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
# PyTorch's CUDA 12.6 build, the last with kernels for Maxwell, Pascal and Volta (5.0-7.0; 2.15
# dropped it): setup gives it to the cards the CUDA 13 builds leave out, on CUDA 12's drivers
TORCH_LEGACY_CUDA = dict(build="cu126", lowest=(5, 0))
# PyTorch's ROCm build for Linux and the gfx targets it has kernels for (PYTORCH_ROCM_ARCH of its
# ROCm 7 wheels); the amdgpu kernel driver runs it, the wheel brings ROCm's libraries itself
TORCH_ROCM = dict(
    build="rocm7.2",
    targets=("gfx900", "gfx906", "gfx908", "gfx90a", "gfx942", "gfx950", "gfx1030", "gfx1100", "gfx1101",
             "gfx1102", "gfx1150", "gfx1151", "gfx1200", "gfx1201"),
)  # fmt: skip
# The gfx target whose kernels HSA_OVERRIDE_GFX_VERSION makes ROCm run on a close, unlisted chip:
# the same family, unsupported by AMD (docs/install.md#amd-radeon-and-instinct)
ROCM_OVERRIDES = {"gfx1031": "10.3.0", "gfx1032": "10.3.0", "gfx1034": "10.3.0", "gfx1035": "10.3.0",
                  "gfx1036": "10.3.0", "gfx1103": "11.0.0"}  # fmt: skip
# Intel GPUs PyTorch's XPU build drives: Arc A- and B-series, Core Ultra's Arc graphics, Data Center GPU Max
INTEL_XPU_NAMES = ("Arc", "Data Center GPU")
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


# The GPU makers' PCI vendor IDs (the PCI ID Repository), as the kernel and lspci give them
PCI_VENDORS = {0x10DE: "nvidia", 0x1002: "amd", 0x8086: "intel"}


def gfx_target(version):
    """'gfx1100' from the amdgpu driver's gfx_target_version 110000 (major, minor and stepping, the
    last two written in hex: 90010 is gfx90a); '' for 0, which the driver gives CPU nodes."""
    version = int(version)
    return f"gfx{version // 10000}{(version // 100) % 100:x}{version % 100:x}" if version else ""


def kfd_gfx_targets(nodes="/sys/class/kfd/kfd/topology/nodes"):
    """{PCI device ID: 'gfx1100'} for the AMD GPUs the amdgpu kernel driver offers for compute
    (its KFD topology: no ROCm install needed); {} where the driver is not loaded."""
    targets = {}
    for properties in sorted(Path(nodes).glob("*/properties")):
        try:
            values = dict(line.split(None, 1) for line in properties.read_text().splitlines() if " " in line)
        except OSError:
            continue
        target = gfx_target(values.get("gfx_target_version", "0"))
        if target:
            targets[int(values.get("device_id", "0"))] = target
    return targets


def pci_display_devices(devices="/sys/bus/pci/devices"):
    """[(vendor ID, device ID)] of the display controllers (PCI class 0x03) the Linux kernel lists."""
    found = []
    for device in sorted(Path(devices).glob("*")):
        try:
            if not (device / "class").read_text().strip().startswith("0x03"):
                continue
            found.append((int((device / "vendor").read_text(), 16), int((device / "device").read_text(), 16)))
        except (OSError, ValueError):
            continue
    return found


def lspci_names(text):
    """{(vendor ID, device ID): name} from `lspci -nn`, for the display controllers' names."""
    names = {}
    pattern = r"\[03[0-9a-f]{2}\]: (.+?) \[([0-9a-f]{4}):([0-9a-f]{4})\]"
    for match in re.finditer(pattern, text or "", re.I):
        names[(int(match.group(2), 16), int(match.group(3), 16))] = match.group(1)
    return names


def linux_adapters(devices="/sys/bus/pci/devices", nodes="/sys/class/kfd/kfd/topology/nodes", lspci_text=None):
    """[(vendor, name, gfx target)] of this Linux machine's GPUs: the PCI devices the kernel lists,
    named by lspci where it is installed, with the gfx target of AMD GPUs the driver offers."""
    if lspci_text is None:
        lspci_text = _run_quietly(["lspci", "-nn"]) or ""
    names, targets = lspci_names(lspci_text), kfd_gfx_targets(nodes)
    return [
        (PCI_VENDORS[vendor], names.get((vendor, device), ""), targets.get(device, "") if vendor == 0x1002 else "")
        for vendor, device in pci_display_devices(devices)
        if vendor in PCI_VENDORS
    ]


def vendor_of(provider, name=""):
    """'amd', 'intel' or 'nvidia' from a Windows display driver's provider (or the adapter's name)."""
    text = f"{provider} {name}".lower()
    for vendor, words in (("nvidia", ("nvidia",)), ("amd", ("advanced micro devices", "amd", "radeon")),
                          ("intel", ("intel",))):  # fmt: skip
        if any(word in text for word in words):
            return vendor
    return ""


def windows_adapters():
    """[(vendor, name, '')] of the display adapters Windows lists in its registry (Device Manager's
    display class): the name and provider each driver registered."""
    try:
        import winreg
    except ImportError:
        return []
    key = r"SYSTEM\CurrentControlSet\Control\Class\{4d36e968-e325-11ce-bfc1-08002be10318}"
    adapters = []
    try:
        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, key) as display_class:
            for index in range(winreg.QueryInfoKey(display_class)[0]):
                adapters += _windows_adapter(winreg, display_class, winreg.EnumKey(display_class, index))
    except OSError:
        pass
    return adapters


def _windows_adapter(winreg, display_class, subkey):
    try:
        with winreg.OpenKey(display_class, subkey) as adapter:
            name = winreg.QueryValueEx(adapter, "DriverDesc")[0]
            provider = winreg.QueryValueEx(adapter, "ProviderName")[0]
    except OSError:
        return []
    vendor = vendor_of(provider, name)
    return [(vendor, name, "")] if vendor else []


def gpu_adapters(system=None):
    """[(vendor, name, gfx target)] of this machine's GPUs, from what the operating system lists."""
    system = system or platform.system()
    if system == "Linux":
        return linux_adapters()
    return windows_adapters() if system == "Windows" else []


def _run_quietly(command, timeout=10):
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return run.stdout if run.returncode == 0 else None
