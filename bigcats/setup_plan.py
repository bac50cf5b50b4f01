"""What setup_env.sh / setup_env.bat should install on this machine, and what to tell its owner.

Both scripts call `python -m bigcats.setup_plan` after creating the environment, so the platform
logic lives here, in Python, where tests can feed it any machine (Windows, WSL2, Linux with or
without a driver, macOS). It imports nothing heavy: TensorFlow is not installed yet when it runs.
"""

import argparse
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

WSL2_MIN_BUILD = 19044  # Windows 10 21H2: the first build where WSL2 GPU compute works
LEGACY_WINDOWS_GPU = (
    "Legacy native-Windows GPU route (untested here, not supported by this project's Keras 3 code): "
    "Python 3.10, conda install -c conda-forge cudatoolkit=11.2 cudnn=8.1.0, "
    'pip install "tensorflow<2.11" "numpy<2".'
)


@dataclass
class Machine:
    system: str  # platform.system(): Linux, Windows, Darwin
    machine: str = "x86_64"  # platform.machine(): x86_64, AMD64, arm64, aarch64
    wsl: bool = False  # Linux running inside WSL
    nvidia_smi_ok: bool = False  # nvidia-smi runs and lists a GPU
    windows_build: int = 0  # Windows only
    wsl_installed: bool = False  # Windows only: the wsl command answers


@dataclass
class Plan:
    packages: list = field(default_factory=list)  # extra pip requirements, beyond requirements.txt
    messages: list = field(default_factory=list)  # what to tell the person running setup
    gpu: str = "cpu"  # cuda, metal or cpu
    supported: bool = True  # False: the pinned TensorFlow has no wheel here


REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements.txt"


def tensorflow_pin(requirements=REQUIREMENTS):
    """'2.21.0' from requirements.txt, so the CUDA extra matches the pinned TensorFlow."""
    match = re.search(r"^tensorflow==([\w.]+)", Path(requirements).read_text(), re.M)
    return match.group(1) if match else None


def plan(m, tf_version, cpu_only=False, metal=False):
    """The install plan for machine `m`. Pure: everything it knows comes in as arguments."""
    p = Plan()
    if m.system == "Linux" and m.nvidia_smi_ok and not cpu_only:
        p.packages.append(f"tensorflow[and-cuda]=={tf_version}")
        p.gpu = "cuda"
        p.messages.append("NVIDIA driver found: installing tensorflow[and-cuda] (CUDA 12 and cuDNN 9 as pip packages).")
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
            "No NVIDIA driver found (nvidia-smi): TensorFlow will use the CPU. Every notebook still runs."
        )
    elif m.system == "Darwin" and m.machine != "arm64":
        p.supported = False
        p.messages.append(
            f"Intel Mac: TensorFlow {tf_version} publishes no wheel for Intel Macs (2.16 was the last), "
            "so this environment cannot be built here. Use an Apple-silicon Mac, a Linux machine or VM, "
            "or a hosted notebook service."
        )
    elif m.system == "Darwin":
        p.messages += _macos(m, metal, p)
    elif m.system == "Windows":
        p.messages += _windows(m)
    else:
        p.messages.append(f"{m.system}: no GPU route known; TensorFlow will use the CPU.")
    return p


def _macos(m, metal, p):
    if metal:
        p.packages.append("tensorflow-metal")
        p.gpu = "metal"
        return ["Apple silicon: installing tensorflow-metal, the plugin that runs TensorFlow on the Apple GPU."]
    return [
        "Apple silicon: TensorFlow uses the CPU. `./setup_env.sh --metal` adds the Apple GPU plugin (tensorflow-metal)."
    ]


def _windows(m):
    if not m.nvidia_smi_ok:
        return ["No NVIDIA driver found: TensorFlow runs on the CPU. Every notebook still works."]
    lines = [
        "NVIDIA GPU found, but TensorFlow 2.11 and newer have no GPU support on native Windows: "
        "this environment runs on the CPU. The GPU route is WSL2:"
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


def _runs(command):
    exe = shutil.which(command[0])
    if not exe:
        return False
    try:
        return subprocess.run([exe, *command[1:]], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def this_machine():
    system = platform.system()
    release = platform.release().lower()
    return Machine(
        system=system,
        machine=platform.machine(),
        wsl=system == "Linux" and ("microsoft" in release or "wsl" in release),
        nvidia_smi_ok=_runs(["nvidia-smi", "-L"]),
        windows_build=sys.getwindowsversion().build if system == "Windows" else 0,
        wsl_installed=system == "Windows" and _runs(["wsl", "--status"]),
    )


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Print the extra packages this machine needs (stdout) and advice "
        "(stderr); exit status 3 where the pinned TensorFlow cannot be installed."
    )
    parser.add_argument("--cpu", action="store_true", help="never the CUDA libraries")
    parser.add_argument("--metal", action="store_true", help="Apple silicon: add tensorflow-metal")
    args = parser.parse_args(argv)
    result = plan(this_machine(), tensorflow_pin(), cpu_only=args.cpu, metal=args.metal)
    for line in result.messages:
        print(line, file=sys.stderr)
    print(" ".join(result.packages))
    return 0 if result.supported else 3


if __name__ == "__main__":
    sys.exit(main())
