"""Environment and GPU diagnosis: gather the facts, then turn them into findings with fixes.

`diagnose` is a pure function of a facts dict, so every situation a learner can hit (native
Windows, WSL2 without passthrough, a CPU-only build, an old driver...) is tested by feeding in
recorded facts rather than by owning that machine.
"""

import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

from bigcats.setup_plan import LEGACY_WINDOWS_GPU, SUPPORTED_PYTHON

CUDA12_MIN_DRIVER = {"Linux": (525, 60), "Windows": (527, 41)}  # NVIDIA's CUDA 12.x table
DROPPED_BELOW_CC = (6, 0)  # TF 2.17+ wheels have no kernels for Maxwell (5.x)
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}

WSL2_ROUTE = (
    "Use WSL2 (Windows 10 build 19044+ or Windows 11): install the NVIDIA driver on Windows only, "
    "then in PowerShell `wsl --install -d Ubuntu`, and inside Ubuntu: `git clone` this project, "
    "`./setup_env.sh` (it installs tensorflow[and-cuda] when `nvidia-smi` works there). " + LEGACY_WINDOWS_GPU
)


def _version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def project_root():
    """The checkout this package lives in, or None when installed elsewhere."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "notebooks").is_dir() and (root / "pyproject.toml").is_file() else None


def nvidia_smi():
    """nvidia-smi's report, or None where there is no working NVIDIA driver."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        done = subprocess.run([exe], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def driver_version(smi_text):
    match = re.search(r"Driver Version:\s*([\d.]+)", smi_text or "")
    return match.group(1) if match else None


def is_wsl():
    release = platform.release().lower()
    return "microsoft" in release or "wsl" in release


def gather_facts(memory_growth_problems=()):
    """Everything diagnose() needs, read off this machine. Imports TensorFlow."""
    facts = {
        "python": platform.python_version(),
        "executable": sys.executable,
        "prefix": sys.prefix,
        "platform": {
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
            "wsl": is_wsl(),
        },
        "tensorflow": _version("tensorflow"),
        "keras": _version("keras"),
        "numpy": _version("numpy"),
        "opencv": _version("opencv-python-headless") or _version("opencv-python"),
        "matplotlib": _version("matplotlib"),
        "tensorflow_metal": _version("tensorflow-metal"),
        "build": {},
        "gpus": [],
        "nvidia_smi": nvidia_smi(),
        "memory_growth_problems": list(memory_growth_problems),
        "keras_backend": os.environ.get("KERAS_BACKEND"),
    }
    root = project_root()
    facts["project_env"] = str(root / ".venv") if root and (root / ".venv").is_dir() else None
    facts["nvidia_driver"] = driver_version(facts["nvidia_smi"])
    if facts["tensorflow"]:
        import tensorflow as tf

        from bigcats.devices import gpu_details

        facts["build"] = {k: v for k, v in tf.sysconfig.get_build_info().items()}
        facts["gpus"] = gpu_details()
    return facts


def _finding(severity, message, fix=""):
    return {"severity": severity, "message": message, "fix": fix}


def _as_tuple(version):
    return tuple(int(x) for x in re.findall(r"\d+", version or "")[:3])


def _environment_findings(facts):
    found = []
    backend = (facts.get("keras_backend") or "tensorflow").strip().lower()
    if backend not in ("", "tensorflow"):
        found.append(
            _finding(
                "error",
                f"KERAS_BACKEND={backend} is set: Keras would run on {backend}, not on TensorFlow as this project does.",
                "`unset KERAS_BACKEND` (or set it to tensorflow) in your shell, or remove it from your shell's start-up file.",
            )
        )
    py = _as_tuple(facts["python"])[:2]
    if not SUPPORTED_PYTHON[0] <= py <= SUPPORTED_PYTHON[1]:
        found.append(
            _finding(
                "error",
                f"Python {facts['python']} is outside the range this project's pinned packages run on (3.11-3.13; TensorFlow 2.21 alone would take 3.10).",
                "Install Python 3.12 and run setup_env again.",
            )
        )
    if not facts.get("tensorflow"):
        found.append(
            _finding(
                "error",
                "TensorFlow is not installed in this Python.",
                "Run ./setup_env.sh (Windows: setup_env.bat), then pick the 'Python (bigcats)' kernel.",
            )
        )
    env = facts.get("project_env")
    if env and Path(facts["prefix"]).resolve() != Path(env).resolve():
        found.append(
            _finding(
                "warning",
                f"This Python ({facts['executable']}) is not the project's environment ({env}).",
                "In JupyterLab: Kernel > Change Kernel > 'Python (bigcats)'. No such kernel? "
                "Re-run setup_env, which registers it.",
            )
        )
    for problem in facts.get("memory_growth_problems", []):
        found.append(_finding("warning", problem, "Restart the kernel and set memory growth first."))
    return found


def _no_gpu_findings(facts):
    system = facts["platform"]["system"]
    tf_version = _as_tuple(facts.get("tensorflow"))
    if system == "Windows" and tf_version >= (2, 11):
        return [
            _finding(
                "warning",
                f"Native Windows: TensorFlow {facts['tensorflow']} has no GPU support here "
                "(2.10 was the last release with it). Training runs on the CPU.",
                WSL2_ROUTE,
            )
        ]
    if system == "Darwin":
        fix = (
            "On Apple silicon: ./setup_env.sh --metal installs tensorflow-metal for the Apple GPU."
            if facts["platform"]["machine"] == "arm64" and not facts.get("tensorflow_metal")
            else "Intel Macs have no GPU route (and TensorFlow 2.17+ no Intel-Mac wheels)."
        )
        return [_finding("info", "macOS has no CUDA: NVIDIA GPUs are not supported.", fix)]
    if not facts["build"].get("is_cuda_build", False):
        return [
            _finding(
                "warning",
                "This TensorFlow is a CPU-only build, so it cannot use a GPU.",
                'pip uninstall -y tensorflow-cpu && pip install "tensorflow[and-cuda]==2.21.0" (Linux/WSL2).',
            )
        ]
    if facts.get("nvidia_smi") is None:
        if facts["platform"]["wsl"]:
            return [
                _finding(
                    "warning",
                    "WSL2 without GPU passthrough: nvidia-smi does not work inside Linux.",
                    "Install or update the NVIDIA driver on the Windows side (never inside WSL), run "
                    "`wsl --update` in PowerShell, restart WSL, and check `nvidia-smi` inside Ubuntu.",
                )
            ]
        return [
            _finding(
                "info",
                "No NVIDIA driver found (nvidia-smi is missing or fails): training runs on the CPU.",
                "With an NVIDIA GPU: install its driver (525 or newer), check `nvidia-smi`, re-run ./setup_env.sh.",
            )
        ]
    return [
        _finding(
            "error",
            "An NVIDIA driver works (nvidia-smi) but TensorFlow sees no GPU: its CUDA libraries "
            "are missing or not found.",
            'pip install "tensorflow[and-cuda]==2.21.0" in this environment, and unset LD_LIBRARY_PATH '
            "entries that point at an older CUDA. `pip list | grep nvidia` should show the cuDNN/CUDA wheels.",
        )
    ]


def _gpu_findings(facts):
    found = []
    system = facts["platform"]["system"]
    driver = _as_tuple(facts.get("nvidia_driver"))
    needed = CUDA12_MIN_DRIVER.get("Windows" if facts["platform"]["wsl"] else system)
    if driver and needed and driver[:2] < needed:
        found.append(
            _finding(
                "error",
                f"NVIDIA driver {facts['nvidia_driver']} is too old for CUDA "
                f"{facts['build'].get('cuda_version', '12')}, which this TensorFlow uses.",
                f"Update the driver to {needed[0]}.{needed[1]} or newer.",
            )
        )
    for gpu in facts["gpus"]:
        cc = tuple(gpu.get("compute_capability") or ())
        label = f"{gpu['device_name']} (compute capability {'.'.join(map(str, cc)) or '?'})"
        if cc and cc < DROPPED_BELOW_CC:
            found.append(
                _finding(
                    "error",
                    f"{label}: TensorFlow 2.17+ has no kernels for this GPU generation.",
                    "Use the CPU, or an older TensorFlow (2.16) in a separate environment.",
                )
            )
        elif cc and cc < (7, 0):
            found.append(
                _finding(
                    "info",
                    f"{label}: no tensor cores, so mixed precision will not speed it up.",
                    "Nothing to fix: training uses float32 on this GPU.",
                )
            )
    names = ", ".join(g["device_name"] for g in facts["gpus"])
    found.append(_finding("info", f"TensorFlow sees {len(facts['gpus'])} GPU(s): {names}."))
    return found


def why_no_gpu(facts):
    """One sentence on why TensorFlow sees no GPU here (for reports that need the short answer)."""
    if not facts.get("tensorflow"):
        return "TensorFlow is not installed."
    return _no_gpu_findings(facts)[0]["message"]


def kernel_finding(notebook_dir, prefix=None):
    """An error finding if this Python is not the environment of the checkout the notebook lives
    in (`notebook_dir/../.venv`), e.g. a kernel another copy's setup registered; else None."""
    expected = Path(notebook_dir).resolve().parent / ".venv"
    actual = Path(prefix or sys.prefix).resolve()
    if not expected.is_dir() or actual == expected.resolve():
        return None
    return _finding(
        "error",
        f"This kernel runs the Python of {actual}, not this checkout's environment ({expected}): its packages, "
        f"and the bigcats it imports, may be another copy's.",
        "Run ./setup_env.sh (setup_env.bat on Windows) in this checkout, start JupyterLab from it "
        "(.venv/bin/jupyter lab notebooks/) and pick 'Python (bigcats)' under Kernel > Change Kernel...",
    )


def diagnose(facts):
    """Findings [{severity, message, fix}], errors first."""
    found = _environment_findings(facts)
    if facts.get("tensorflow"):
        found += _gpu_findings(facts) if facts["gpus"] else _no_gpu_findings(facts)
    return sorted(found, key=lambda f: SEVERITY_ORDER[f["severity"]])


def report(facts=None):
    """The doctor's report as one dict (the `doctor --json` object)."""
    facts = facts or gather_facts()
    return {**facts, "findings": diagnose(facts)}


def format_report(rep):
    """`report()`'s dict as the text `python -m bigcats doctor` prints: facts, then findings with fixes."""
    lines = [
        f"Python      {rep['python']}  ({rep['executable']})",
        f"Platform    {rep['platform']['system']} {rep['platform']['release']} {rep['platform']['machine']}"
        + ("  [WSL]" if rep["platform"]["wsl"] else ""),
    ]
    lines += [
        f"{name:<11} {rep.get(name) or 'not installed'}"
        for name in ("tensorflow", "keras", "numpy", "opencv", "matplotlib")
    ]
    build = rep.get("build") or {}
    lines.append(
        f"TF build    CUDA {build.get('cuda_version', 'n/a')}, cuDNN {build.get('cudnn_version', 'n/a')}, "
        f"CUDA build: {build.get('is_cuda_build', False)}"
    )
    lines.append(f"GPUs        {', '.join(g['device_name'] for g in rep['gpus']) or 'none visible to TensorFlow'}")
    lines.append(f"nvidia-smi  {'driver ' + rep['nvidia_driver'] if rep.get('nvidia_driver') else 'not available'}")
    lines.append("")
    for f in rep["findings"]:
        lines.append(f"[{f['severity'].upper()}] {f['message']}")
        if f["fix"]:
            lines.append(f"    fix: {f['fix']}")
    if not any(f["severity"] == "error" for f in rep["findings"]):
        lines.append("No blocking problems found.")
    return "\n".join(lines)
