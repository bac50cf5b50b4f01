"""Environment tool: diagnosis of the environment and the GPU, facts first, then findings with fixes.

`diagnose` is a pure function of a facts dict, so every situation a learner can hit (native
Windows, WSL2 without passthrough, a CPU-only build, an old driver...) is tested by feeding in
recorded facts rather than by owning that machine. TensorFlow itself is only ever imported in a
child process (`probe_tensorflow`, `gpu_smoke_test`): an import that crashes, or a GPU that is
listed but fails its first real work, becomes a finding, not a dead doctor.
"""

import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from bigcats.environment.backends import SHOW_TENSORFLOW_GPUS, saved_choice
from bigcats.environment.hosted import hosted_notebook
from bigcats.environment.machine import (
    BACKENDS,
    CUDA12_DRIVER_MIN,
    DROPPED_BELOW_CC,
    LEGACY_WINDOWS_GPU,
    SUPPORTED_PYTHON,
    TENSORFLOW_CUDA_WHEELS,
    TENSORFLOW_DRIVER_MIN,
    TORCH_DRIVER_MIN,
    driver_version,
    gpu_supported,
    is_wsl,
    nvidia_smi_report,
    package_version,
)
from bigcats.environment.tf_errors import explain

NVIDIA_WHEELS = ("nvidia-cuda-runtime-cu12", "nvidia-cudnn-cu12", "nvidia-cuda-nvcc-cu12", "nvidia-cublas-cu12")

# TensorFlow's facts, read in a child process: a crash there is reported, not suffered.
PROBE = """
import json
import bigcats  # on torch, loads triton before TensorFlow (bigcats.environment.backends.load_triton_first)
import tensorflow as tf
from bigcats.environment.gpus import tensorflow_gpus
build = {key: value if isinstance(value, (str, int, float, bool, list)) else str(value)
         for key, value in tf.sysconfig.get_build_info().items()}
print(json.dumps({"version": tf.__version__, "build": build, "gpus": tensorflow_gpus()}))
"""

# One convolution, one matrix product and one XLA-compiled training step on each GPU, checked
# against the CPU: a GPU is working only when real work on it gives the CPU's answers.
SMOKE_TEST = """
import json
import os
os.environ["KERAS_BACKEND"] = "tensorflow"  # TensorFlow's own smoke test, whatever Keras trains on
import numpy as np
import tensorflow as tf
import keras
rng = np.random.default_rng(0)
x, k = rng.standard_normal((4, 16, 16, 3), "float32"), rng.standard_normal((3, 3, 3, 8), "float32")
a = rng.standard_normal((64, 64), "float32")
with tf.device("/CPU:0"):
    conv_cpu, product_cpu = tf.nn.conv2d(x, k, 1, "SAME").numpy(), tf.matmul(a, a).numpy()
results = []
for gpu in tf.config.list_logical_devices("GPU"):
    entry = {"device": gpu.name}
    try:
        with tf.device(gpu.name):
            conv, product = tf.nn.conv2d(x, k, 1, "SAME").numpy(), tf.matmul(a, a).numpy()
            model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3),
                                      keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
            model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=True)
            loss = float(model.train_on_batch(x, np.array([0, 1, 0, 1])))
        same = np.allclose(conv, conv_cpu, atol=1e-2) and np.allclose(product, product_cpu, rtol=1e-2, atol=0.1)
        entry.update(ok=bool(same and np.isfinite(loss)), error="" if same else "results differ from the CPU's")
    except Exception as error:
        entry.update(ok=False, error=f"{type(error).__name__}: {error}"[-4000:])
    results.append(entry)
print(json.dumps(results))
"""

# PyTorch's facts and its smoke test, for Keras on torch (`bigcats.environment.backends`): the same work on
# each GPU torch reaches (NVIDIA's or AMD's as `cuda`, Intel's as `xpu`, or the Apple GPU), checked
# against torch's CPU.
TORCH_PROBE = """
import json
import torch
from bigcats.environment.gpus import torch_gpus
from bigcats.environment.gpus import torch_build
print(json.dumps({"version": torch.__version__, "cuda": torch.version.cuda, "hip": torch.version.hip,
                  "build": torch_build(), "gpus": torch_gpus()}))
"""
TORCH_SMOKE_TEST = """
import json
import os
os.environ["KERAS_BACKEND"] = "torch"
import numpy as np
import torch
import keras
from bigcats.environment.gpus import torch_gpus
rng = np.random.default_rng(0)
x, k = rng.standard_normal((4, 3, 16, 16), "float32"), rng.standard_normal((8, 3, 3, 3), "float32")
a = rng.standard_normal((64, 64), "float32")

def work(device):
    tx, tk, ta = (torch.from_numpy(v).to(device) for v in (x, k, a))
    conv, product = torch.nn.functional.conv2d(tx, tk, padding=1), ta @ ta
    with keras.device(device):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3),
                                  keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        loss = float(model.train_on_batch(np.transpose(x, (0, 2, 3, 1)), np.array([0, 1, 0, 1])))
    return conv.cpu().numpy(), product.cpu().numpy(), loss

conv_cpu, product_cpu, loss_cpu = work("cpu")
results = []
for gpu in torch_gpus():
    entry = {"device": gpu["name"]}
    try:
        conv, product, loss = work(gpu["name"])
        same = (np.allclose(conv, conv_cpu, atol=1e-2) and np.allclose(product, product_cpu, rtol=1e-2, atol=0.1)
                and abs(loss - loss_cpu) < 1e-2)
        entry.update(ok=bool(same), error="" if same else "results differ from the CPU's")
    except Exception as error:
        entry.update(ok=False, error=f"{type(error).__name__}: {error}"[-4000:])
    results.append(entry)
print(json.dumps(results))
"""

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}

WSL2_ROUTE = (
    "Use WSL2 (Windows 10 build 19044+ or Windows 11): install the NVIDIA driver on Windows only, "
    "then in PowerShell `wsl --install -d Ubuntu`, and inside Ubuntu: `git clone` this project, "
    "`./setup_env.sh` (it installs tensorflow[and-cuda] when `nvidia-smi` works there). " + LEGACY_WINDOWS_GPU
)


def project_root():
    """The checkout this package lives in, or None when installed elsewhere."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "notebooks").is_dir() and (root / "pyproject.toml").is_file() else None


def _child(code, timeout, framework="tensorflow"):
    """(returncode, stdout, stderr) of `code` run by this Python in a fresh process; TensorFlow's
    children see the GPUs TensorFlow sees, whatever Keras trains on (`backends.hide_gpus_from_tensorflow`)."""
    shown = {SHOW_TENSORFLOW_GPUS: "1"} if framework.lower() == "tensorflow" else {}
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=project_root() or None,
            env={**os.environ, **shown},
        )
    except subprocess.TimeoutExpired as expired:
        return None, "", f"did not finish in {timeout} s (it hung). {expired.stderr or ''}"
    return done.returncode, done.stdout, done.stderr


def _how_it_ended(returncode):
    if returncode is None:
        return "hung"
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


def probe_tensorflow(timeout=180, code=PROBE, framework="tensorflow"):
    """TensorFlow's version, build info and GPUs, read by `import tensorflow` in a child process:
    {ok: True, version, build, gpus}, or {ok: False, error, output} when that import fails.
    With code=TORCH_PROBE, framework="torch": PyTorch's {version, cuda, gpus}."""
    returncode, out, err = _child(code, timeout, framework)
    if returncode == 0:
        try:
            return {"ok": True, **json.loads(out.strip().splitlines()[-1])}
        except (ValueError, IndexError):
            pass
    last = next((line for line in reversed(err.splitlines()) if line.strip()), "no message")
    return {"ok": False, "error": f"`import {framework}` {_how_it_ended(returncode)}: {last}", "output": err[-6000:]}


def gpu_smoke_test(gpus, timeout=300, code=SMOKE_TEST, framework="TensorFlow"):
    """Real work on every visible GPU, checked against the CPU, in a child process with a time
    limit: {status: passed|failed|skipped, reason or gpus, findings}. code=TORCH_SMOKE_TEST,
    framework="PyTorch": the same on the GPUs PyTorch reaches."""
    if not gpus:
        return {"status": "skipped", "reason": f"no GPU is visible to {framework}, so there is nothing to run it on"}
    returncode, out, err = _child(code, timeout, framework)
    try:
        results = json.loads(out.strip().splitlines()[-1]) if returncode == 0 else None
    except (ValueError, IndexError):
        results = None
    if results is None:
        return {
            "status": "failed",
            "error": f"the smoke test {_how_it_ended(returncode)}",
            "findings": explain(err),
            "output": err[-6000:],
        }
    failed = [r for r in results if not r["ok"]]
    text = "\n".join(r["error"] for r in failed) + "\n" + err
    return {"status": "failed" if failed else "passed", "gpus": results, "findings": explain(text) if failed else []}


def gather_facts(memory_growth_problems=(), smoke_test=True):
    """Everything diagnose() needs, read off this machine. TensorFlow is imported only in child
    processes; smoke_test=False leaves out the GPU smoke test (it takes a few seconds a GPU)."""
    facts = {
        "python": platform.python_version(),
        "executable": sys.executable,
        "prefix": sys.prefix,
        "platform": {
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
            "wsl": is_wsl(),
            "hosted": hosted_notebook(),
        },
        "tensorflow": package_version("tensorflow"),
        "keras": package_version("keras"),
        "numpy": package_version("numpy"),
        "opencv": package_version("opencv-python-headless") or package_version("opencv-python"),
        "matplotlib": package_version("matplotlib"),
        "tensorflow_metal": package_version("tensorflow-metal"),
        "build": {},
        "gpus": [],
        "nvidia_smi": nvidia_smi_report(),
        "memory_growth_problems": list(memory_growth_problems),
        "keras_backend": os.environ.get("KERAS_BACKEND"),
        "backend_choice": saved_choice(),
        "torch": package_version("torch"),
        "jax": package_version("jax"),
        "nvidia_wheels": {name: package_version(name) for name in NVIDIA_WHEELS if package_version(name)},
        "ptxas": shutil.which("ptxas"),
        "ld_library_path": os.environ.get("LD_LIBRARY_PATH"),
        "conda_prefix": os.environ.get("CONDA_PREFIX"),
        "linux_libcuda_in_wsl": _linux_libcuda_in_wsl() if is_wsl() else [],
    }
    root = project_root()
    facts["project_env"] = str(root / ".venv") if root and (root / ".venv").is_dir() else None
    facts["nvidia_driver"] = driver_version(facts["nvidia_smi"])
    if facts["tensorflow"]:
        probe = probe_tensorflow()
        facts["tensorflow_probe"] = {key: probe[key] for key in ("ok", "error", "output") if key in probe}
        facts["build"], facts["gpus"] = probe.get("build", {}), probe.get("gpus", [])
        if smoke_test:
            facts["smoke_test"] = gpu_smoke_test(facts["gpus"])
    if _backend(facts) == "torch" and facts["torch"]:
        probe = probe_tensorflow(code=TORCH_PROBE, framework="torch")
        facts["torch_probe"] = probe
        if smoke_test and probe["ok"]:
            facts["torch_smoke_test"] = gpu_smoke_test(probe["gpus"], code=TORCH_SMOKE_TEST, framework="PyTorch")
    return facts


def _backend(facts):
    return (facts.get("keras_backend") or "tensorflow").strip().lower() or "tensorflow"


def _linux_libcuda_in_wsl():
    """libcuda files inside WSL other than Windows' own (/usr/lib/wsl/lib): a Linux driver installed
    inside WSL shadows the one Windows passes through."""
    folders = [
        *filter(None, os.environ.get("LD_LIBRARY_PATH", "").split(":")),
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib64",
    ]
    return sorted(
        {str(p) for folder in folders if "/usr/lib/wsl" not in folder for p in Path(folder).glob("libcuda.so*")}
    )


def _finding(severity, message, fix=""):
    return {"severity": severity, "message": message, "fix": fix}


def _as_tuple(version):
    return tuple(int(x) for x in re.findall(r"\d+", version or "")[:3])


def _backend_findings(facts):
    """Which backend Keras trains on here, and why; an error where it cannot."""
    backend, choice = _backend(facts), facts.get("backend_choice") or {}
    if backend not in BACKENDS:
        return [_finding("error", f"KERAS_BACKEND={backend} is set: bigcats runs Keras on {', '.join(BACKENDS)}.",
                         "Set one of those, or `unset KERAS_BACKEND` (and remove it from your shell's start-up "
                         "file) for the one setup chose.")]  # fmt: skip
    if backend != "tensorflow" and not facts.get(backend):
        return [_finding("error", f"KERAS_BACKEND={backend}, but {backend} is not installed in this environment.",
                         f"./setup_env.sh --backend {backend} (Windows: setup_env.bat --backend {backend}), "
                         "or `unset KERAS_BACKEND`.")]  # fmt: skip
    if choice.get("backend") == backend:
        why = f"setup chose it: {choice.get('reason', '')}"
    elif facts.get("keras_backend"):
        why = f"KERAS_BACKEND={backend} is set by hand" + (f"; setup chose {choice['backend']}" if choice else "")
    else:
        why = "the default"
    return [_finding("info", f"Keras trains on {backend} here ({why}).")]


def _torch_findings(facts):
    """PyTorch's view of the GPU, where Keras trains on torch."""
    probe = facts.get("torch_probe")
    if _backend(facts) != "torch" or not probe:
        return []
    if not probe["ok"]:
        return [_finding("error", f"PyTorch is installed but cannot be imported: {probe['error']}",
                         "The findings below say why, where they can."), *explain(probe.get("output", ""))]  # fmt: skip
    found = []
    if probe["gpus"]:
        names = ", ".join(g["device_name"] for g in probe["gpus"])
        found.append(_finding("info", f"PyTorch {probe['version']} sees {len(probe['gpus'])} GPU(s): {names}."))
    elif probe.get("hip") or probe.get("build") == "XPU":
        found.append(_other_vendor_sees_none(probe))
    elif facts.get("nvidia_smi") is not None:
        cpu_build = not probe.get("cuda")
        found.append(_finding(
            "error",
            f"An NVIDIA driver works (nvidia-smi) but PyTorch {probe['version']} sees no GPU"
            + (": it is the CPU build." if cpu_build else "."),
            "Run setup_env again: it installs the CUDA build of the torch requirements-torch.txt pins, with the "
            "build's label, from the index for this machine, and checks it." if cpu_build else "Check the driver (580 or newer for PyTorch's CUDA 13 build): `nvidia-smi`.",
        ))  # fmt: skip
    else:
        found.append(_finding("info", f"PyTorch {probe['version']} sees no GPU: training runs on the CPU."))
    smoke = facts.get("torch_smoke_test") or {}
    if smoke.get("status") == "passed":
        found.append(_finding("info", f"PyTorch GPU smoke test passed on {len(smoke['gpus'])} GPU(s): a convolution, a "
                                      "matrix product and a Keras training step gave the CPU's answers."))  # fmt: skip
    elif smoke.get("status") == "failed":
        errors = "; ".join(f"{r['device']}: {r['error'][:300]}" for r in smoke.get("gpus", []) if not r["ok"])
        found.append(_finding("error", f"PyTorch lists the GPU, but real work on it failed ({errors or smoke.get('error', '')}).",
                              "The findings below say why, where they can."))  # fmt: skip
        found += smoke.get("findings", [])
    return found


def _other_vendor_sees_none(probe):
    """PyTorch's ROCm or XPU build that lists no GPU: the driver or the permissions, not the build."""
    if probe.get("hip"):
        return _finding(
            "error",
            f"PyTorch {probe['version']} is the ROCm build but sees no AMD GPU: the amdgpu driver offers this user "
            "none (/dev/kfd and /dev/dri/renderD* belong to the render and video groups).",
            "`sudo usermod -aG render,video $USER`, log out and in, then `python -m bigcats doctor` "
            "(docs/install.md#amd-radeon-and-instinct).",
        )
    return _finding(
        "error",
        f"PyTorch {probe['version']} is the XPU build but sees no Intel GPU: Intel's GPU driver is missing or too "
        "old, or this Intel GPU is not one the build drives (Arc, Core Ultra's Arc graphics, Data Center GPU Max).",
        "Install Intel's GPU driver (Windows: 'Intel Arc & Iris Xe Graphics' from intel.com; Linux: Intel's "
        "'Installing Client GPUs' guide), then `python -m bigcats doctor` (docs/install.md#intel-arc-and-core-ultra).",
    )


def _environment_findings(facts):
    found = _backend_findings(facts)
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
                f"With an NVIDIA GPU: install its driver ({TENSORFLOW_DRIVER_MIN['Linux'][0]} or newer for TensorFlow, "
                f"{TORCH_DRIVER_MIN[0]} or newer for PyTorch), check `nvidia-smi`, re-run ./setup_env.sh. With an AMD "
                "or Intel GPU, setup_env installs PyTorch's ROCm or XPU build where they drive it "
                "(docs/install.md#which-backend-trains-on-your-gpu).",
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


def _driver_findings(shown, driver, system):
    """An NVIDIA driver too old for CUDA 12 (an error), or older than the CUDA 12.9 wheels ask for (a warning)."""
    cuda, lowest, wanted = (
        TENSORFLOW_CUDA_WHEELS["cuda"],
        CUDA12_DRIVER_MIN.get(system),
        TENSORFLOW_DRIVER_MIN.get(system),
    )
    if not (driver and lowest and wanted) or driver[:2] >= wanted:
        return []
    update = f"Update the driver to {wanted[0]}.{wanted[1]} or newer (on WSL2: on the Windows side)."
    if driver[:2] < lowest:
        return [_finding("error", f"NVIDIA driver {shown} is too old for CUDA 12, which this TensorFlow uses.", update)]
    return [
        _finding(
            "warning",
            f"NVIDIA driver {shown} is older than the CUDA {cuda} libraries pip installs for this TensorFlow ask "
            "for: most of it runs (CUDA's minor-version compatibility), some XLA-compiled steps may not.",
            update,
        )
    ]


def _gpu_findings(facts):
    found = []
    system = facts["platform"]["system"]
    driver = _as_tuple(facts.get("nvidia_driver"))
    found += _driver_findings(facts["nvidia_driver"], driver, "Windows" if facts["platform"]["wsl"] else system)
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


def _probe_findings(facts):
    probe = facts.get("tensorflow_probe") or {"ok": True}
    if probe["ok"]:
        return []
    explained = explain(probe.get("output", "") + "\n" + probe["error"])
    fix = (
        "The findings below say why, where they can."
        if explained
        else (
            "Move .venv aside (mv .venv .venv.broken) and run ./setup_env.sh again; if it still fails, paste the "
            "output into `python -m bigcats doctor --explain -`."
        )
    )
    return [_finding("error", f"TensorFlow is installed but cannot be imported: {probe['error']}", fix), *explained]


def _smoke_findings(facts):
    smoke = facts.get("smoke_test")
    if not smoke or smoke["status"] == "skipped":
        return []
    if smoke["status"] == "passed":
        return [_finding("info", f"GPU smoke test passed on {len(smoke['gpus'])} GPU(s): a convolution, a matrix "
                                 "product and an XLA-compiled training step gave the CPU's answers.")]  # fmt: skip
    errors = "; ".join(f"{r['device']}: {r['error'][:300]}" for r in smoke.get("gpus", []) if not r["ok"])
    message = f"TensorFlow lists the GPU, but real work on it failed ({errors or smoke.get('error', '')})."
    return [_finding("error", message, "The findings below say why, where they can."), *smoke.get("findings", [])]


def _cuda_library_findings(facts):
    found = []
    wheels = facts.get("nvidia_wheels") or {}
    build = facts.get("build") or {}
    if wheels:
        have = ", ".join(f"{name.removeprefix('nvidia-').removesuffix('-cu12')} {v}" for name, v in wheels.items())
        built = f"CUDA {build.get('cuda_version', '?')}, cuDNN {build.get('cudnn_version', '?')}"
        found.append(_finding("info", f"pip's CUDA libraries: {have} (this TensorFlow was built with {built})."))
    path = facts.get("ld_library_path") or ""
    if wheels and re.search(r"cuda|cudnn|nvidia", path, re.I):
        found.append(_finding("warning", f"LD_LIBRARY_PATH ({path}) names CUDA folders: their libraries load before "
                              "the pip ones and can be the wrong version.", "`unset LD_LIBRARY_PATH` (or remove "
                              "the CUDA folders from it) in the shell that starts Python or JupyterLab."))  # fmt: skip
    if facts.get("conda_prefix"):
        found.append(_finding("warning", f"A conda environment is active ({facts['conda_prefix']}): its CUDA or cuDNN "
                              "can shadow the pip ones.", "`conda deactivate` before using .venv."))  # fmt: skip
    ptxas = facts.get("ptxas")
    if ptxas and "site-packages" not in ptxas and facts.get("gpus"):  # XLA compiles for a GPU only
        found.append(_finding("info", f"XLA will use the ptxas found first on PATH ({ptxas}), not the pip one; an "
                              "old one fails with 'Unsupported .version'.", "If XLA fails, take that CUDA's bin "
                              "folder off PATH."))  # fmt: skip
    if facts.get("linux_libcuda_in_wsl"):
        found.append(_finding("error", f"A Linux NVIDIA driver is installed inside WSL ({', '.join(facts['linux_libcuda_in_wsl'])}): "
                              "it shadows the driver Windows passes through.", "Remove the Linux driver inside WSL "
                              "(`sudo apt remove --purge 'nvidia-*'`, keep none) and keep only the Windows one."))  # fmt: skip
    for gpu in facts.get("gpus", []):
        cc = gpu.get("compute_capability")
        if cc and not gpu_supported(cc, build):
            found.append(_finding("error", f"{gpu['device_name']} (compute capability {cc[0]}.{cc[1]}): this TensorFlow "
                                  f"has GPU code for {', '.join(build.get('cuda_compute_capabilities', []))} only, "
                                  "so its first kernel would fail.", "Train on the CPU (./setup_env.sh --cpu), use NVIDIA's "
                                  "TensorFlow container, or JAX or PyTorch for this card."))  # fmt: skip
    return found


def diagnose(facts):
    """Findings [{severity, message, fix}], errors first."""
    found = _environment_findings(facts) + _probe_findings(facts)
    if facts.get("tensorflow") and (facts.get("tensorflow_probe") or {"ok": True})["ok"]:
        tensorflow = _gpu_findings(facts) if facts["gpus"] else _no_gpu_findings(facts)
        found += _as_aside(tensorflow) if _torch_trains_on_a_gpu(facts) else tensorflow
        found += _smoke_findings(facts) + _cuda_library_findings(facts)
    found += _torch_findings(facts)
    return sorted(found, key=lambda f: SEVERITY_ORDER[f["severity"]])


def _torch_trains_on_a_gpu(facts):
    return _backend(facts) == "torch" and bool((facts.get("torch_probe") or {}).get("gpus"))


def _as_aside(findings):
    """TensorFlow's GPU troubles where Keras trains on torch's GPU: true, but not in the way."""
    return [
        {**f, "severity": "info", "message": "TensorFlow (here for tf.data only): " + f["message"]} for f in findings
    ]


def report(facts=None):
    """The doctor's report as one dict (the `doctor --json` object)."""
    facts = facts or gather_facts()
    return {**facts, "findings": diagnose(facts)}


def format_report(rep):
    """`report()`'s dict as the text `python -m bigcats doctor` prints: facts, then findings with fixes."""
    lines = [
        f"Python      {rep['python']}  ({rep['executable']})",
        f"Platform    {rep['platform']['system']} {rep['platform']['release']} {rep['platform']['machine']}"
        + ("  [WSL]" if rep["platform"]["wsl"] else "")
        + (f"  [{rep['platform']['hosted']}: its own TensorFlow and CUDA]" if rep["platform"].get("hosted") else ""),
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
    smoke = rep.get("smoke_test") or {}
    if smoke:
        lines.append(f"GPU smoke   {smoke['status']}" + (f" ({smoke['reason']})" if smoke.get("reason") else ""))
    lines.append(f"Backend     Keras trains on {_backend(rep)}")
    torch = rep.get("torch_probe") or {}
    if torch.get("ok"):
        gpus = ", ".join(g["device_name"] for g in torch["gpus"]) or "none visible to PyTorch"
        lines.append(f"PyTorch     {torch['version']} ({torch.get('build', 'build unknown')}); GPUs: {gpus}")
    smoke = rep.get("torch_smoke_test") or {}
    if smoke:
        lines.append(f"torch smoke {smoke['status']}" + (f" ({smoke['reason']})" if smoke.get("reason") else ""))
    lines.append("")
    for f in rep["findings"]:
        lines.append(f"[{f['severity'].upper()}] {f['message']}")
        if f["fix"]:
            lines.append(f"    fix: {f['fix']}")
    if not any(f["severity"] == "error" for f in rep["findings"]):
        lines.append("No blocking problems found.")
    return "\n".join(lines)
