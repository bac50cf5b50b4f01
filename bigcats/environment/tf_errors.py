"""Environment tool: what TensorFlow's (and PyTorch's) errors and warnings mean, and what to do: one table of known
failures for `python -m bigcats doctor --explain` (a learner pastes what they got) and for the
doctor's own GPU smoke test and probes, which run the backend in a child process and explain its
output the same way. Each entry is matched against the real message text (tests feed it).
"""

import re

from bigcats.environment.startup_log import HARMLESS_LINES

# (pattern, severity, what it means, what to do)
KNOWN_FAILURES = [
    (
        r"not built with CUDA kernel binaries compatible with compute capability (1[0-2])\.\d|"
        r"compute capability 1[0-2]\.\d.*(not supported|no kernel)|CUDA_ERROR_INVALID_PTX",
        "error",
        "This GPU is a Blackwell card (compute capability 10.x or 12.x: B200, RTX 50xx); the TensorFlow "
        "2.21 wheel has GPU code for compute capabilities 6.0-8.9 and portable 9.0 only, so the first kernel fails.",
        "Train on the CPU (./setup_env.sh --cpu), use NVIDIA's TensorFlow container (nvcr.io/nvidia/tensorflow), "
        "or JAX or PyTorch, whose wheels support this card.",
    ),
    (
        r"compute capability (5\.\d)|sm_5\d",
        "error",
        "This GPU is a Maxwell card (compute capability 5.x): TensorFlow 2.17 and newer have no kernels for it.",
        "Train on the CPU, or use TensorFlow 2.16 in another environment (not this project's Keras 3.15 pins).",
    ),
    (
        r"Loaded runtime CuDNN library: ?([\d.]+).*(?:but )?source was compiled with: ?([\d.]+)",
        "error",
        "A cuDNN other than the one TensorFlow was built for was loaded first (usually a system or conda cuDNN "
        "found through LD_LIBRARY_PATH before the pip one).",
        "Remove old CUDA/cuDNN folders from LD_LIBRARY_PATH (or `unset LD_LIBRARY_PATH`), deactivate conda, "
        "and run ./setup_env.sh again so that tensorflow[and-cuda] brings its own.",
    ),
    (
        r"Cannot dlopen some GPU libraries|Could not load dynamic library 'lib(cudart|cublas|cudnn)",
        "error",
        "TensorFlow found the driver but not the CUDA libraries: the nvidia-* pip wheels are missing, or not in "
        "TensorFlow's own site-packages (a user site, another environment, conda), which is where it looks.",
        "`pip list | grep nvidia` inside .venv must show the CUDA wheels: run ./setup_env.sh (it installs "
        "tensorflow[and-cuda]); do not mix `pip install --user` or conda packages into .venv.",
    ),
    (
        r"No PTX compilation provider|Couldn't (find|get) ptxas|ptxas.*not found",
        "error",
        "XLA needs `ptxas` (from the nvidia-cuda-nvcc wheel or a CUDA toolkit) to compile for this GPU, and "
        "found none.",
        "Run ./setup_env.sh again (tensorflow[and-cuda] brings nvidia-cuda-nvcc); or turn XLA off with "
        "jit_compile=False.",
    ),
    (
        r"Unsupported \.version \d+\.\d+|ptxas.*too old|ptxas fatal",
        "error",
        "An older `ptxas` first on PATH (from an old CUDA toolkit) cannot compile what XLA asks of it; XLA "
        "prefers a ptxas on PATH over the pip one.",
        "Take the old CUDA's bin folder off PATH (`which ptxas` shows it), or upgrade that toolkit.",
    ),
    (
        r"XLA is disabling parallel compilation|driver version .* is insufficient|CUDA_ERROR_UNSUPPORTED_PTX_VERSION|"
        r"CUDA driver version is insufficient|NVIDIA driver on your system is too old",
        "error",
        "The NVIDIA driver is older than the CUDA the pip wheels bring (TensorFlow's: CUDA 12.9 today, needing driver "
        "575 or newer, the build itself made with 12.5, needing 555+; PyTorch's CUDA 13 build: driver 580 or newer).",
        "Update the NVIDIA driver (on WSL2: on the Windows side only), then check `nvidia-smi`.",
    ),
    (
        r"Torch not compiled with CUDA enabled",
        "error",
        "This PyTorch is the CPU build: a plain `pip install torch` on Windows gets it from PyPI, which has no CUDA "
        "build for Windows.",
        "Run setup_env.bat again: it installs the CUDA build its plan names, pinned with its label, from PyTorch's "
        'own index, and checks it after installing (pip install "torch==2.14.1+cu130" --index-url '
        "https://download.pytorch.org/whl/cu130; +cu126 for Maxwell to Volta).",
    ),
    (
        r"no kernel image is available for execution on the device|with CUDA capability sm_\d+ is not compatible "
        r"with the current PyTorch installation",
        "error",
        "This PyTorch build has no GPU code for this card: PyTorch's CUDA 13 builds start at compute capability 7.5 "
        "(Turing); older cards (Maxwell, Pascal, Volta) are only in its CUDA 12.6 build.",
        "Run setup_env again: for compute capability 5.0-7.0 its plan installs torch 2.14.1+cu126 (driver 527.41 "
        "or newer); or train on the CPU (docs/install.md#which-backend-trains-on-your-gpu).",
    ),
    (
        r"HIP error: invalid device function|hipErrorInvalidDeviceFunction|hipErrorNoBinaryForGpu",
        "error",
        "PyTorch's ROCm build has no kernels for this AMD GPU's gfx target (its wheels carry gfx900-gfx950 "
        "Instinct and gfx1030, gfx110x, gfx115x, gfx120x Radeon), so the first kernel fails "
        "(pytorch/pytorch#164346, ROCm/legacy-rocm-build#2536).",
        "Train on the CPU, or try HSA_OVERRIDE_GFX_VERSION before starting Python: 10.3.0 on RDNA2 (gfx1031-gfx1036: "
        "RX 6600/6700), 11.0.0 on gfx1103 (Radeon 780M). It makes ROCm run a close chip's kernels: AMD calls it a "
        "debugging switch, not a fix, and it can crash or give wrong answers, so run `python -m bigcats doctor` "
        "after setting it (docs/install.md#amd-radeon-and-instinct).",
    ),
    (
        r"Memory access fault by GPU node",
        "error",
        "The AMD GPU faulted on a memory access. With HSA_OVERRIDE_GFX_VERSION set, the usual cause is an override "
        "that does not fit this chip (ROCm/legacy-rocm-build#5238, ollama/ollama#8851).",
        "`echo $HSA_OVERRIDE_GFX_VERSION`: unset it, or set the value for this chip's family (10.3.0 RDNA2, 11.0.0 "
        "RDNA3), then run `python -m bigcats doctor`; without an override, update the kernel and amdgpu firmware.",
    ),
    (
        r"No HIP GPUs are available",
        "error",
        "PyTorch's ROCm build sees no AMD GPU: the amdgpu driver offers none to this user (/dev/kfd or "
        "/dev/dri/renderD* not readable), or none is there (AUTOMATIC1111/stable-diffusion-webui#16681, "
        "ROCm/vllm#893).",
        "`ls -l /dev/kfd /dev/dri/renderD*`; add yourself to their groups: `sudo usermod -aG render,video $USER`, "
        "then log out and in. In a container, pass --device=/dev/kfd --device=/dev/dri and the render group.",
    ),
    (
        r"Failed to initialize XPU devices|XPU device count is zero",
        "error",
        "PyTorch's XPU build found no working Intel GPU driver (pytorch/pytorch#145433, #147226), so Keras trains "
        "on the CPU.",
        "Install Intel's GPU driver: on Windows the 'Intel Arc & Iris Xe Graphics' driver (intel.com), on Linux "
        "the client GPU packages of Intel's 'Installing Client GPUs' guide (level-zero, intel-opencl-icd); then "
        "`python -m bigcats doctor`. Older Intel graphics (UHD, Iris Xe) are not among the XPU build's GPUs.",
    ),
    (
        r"Segmentation fault.*triton|triton.*Segmentation fault|triton/knobs\.py",
        "error",
        "triton (PyTorch's compiler, in its Linux CUDA builds) was loaded after TensorFlow, whose library since "
        "2.20 exports its LLVM to everything loaded later (tensorflow#124205): Python crashes.",
        "Import bigcats or keras before tensorflow (bigcats loads triton first when Keras runs on torch); in a "
        "notebook, restart the kernel and run the setup cell first.",
    ),
    (
        r"is not currently implemented for the MPS device|PYTORCH_ENABLE_MPS_FALLBACK",
        "warning",
        "An operation has no Apple-GPU (MPS) version in this PyTorch, so it stops (or, with the fallback on, runs "
        "on the CPU, slowly).",
        "Set PYTORCH_ENABLE_MPS_FALLBACK=1 before starting Python (the CPU then does that operation), or train "
        "with KERAS_TORCH_DEVICE=cpu.",
    ),
    (
        r"CUDA_ERROR_OUT_OF_MEMORY|ResourceExhaustedError|OOM when allocating|out of memory",
        "error",
        "The GPU ran out of memory: the batch or the images are too large, or another process holds the GPU.",
        "Lower --batch-size or --image-size (BIGCATS_BATCH_SIZE, BIGCATS_IMAGE_SIZE); check `nvidia-smi` for other "
        "processes; restart other notebooks' kernels.",
    ),
    (
        r"Physical devices cannot be modified after being initialized|Virtual devices cannot be modified",
        "error",
        "Memory growth (or a device split) was set after TensorFlow had already used the GPU.",
        "Restart the kernel and run the notebook from the top: the memory-growth cell comes first.",
    ),
    (
        r"cudart64_\d+\.dll|cudnn64_\d+\.dll",
        "error",
        "An old TensorFlow (2.10 or earlier) looks for CUDA 11 DLLs on native Windows. TensorFlow 2.11+ has "
        "no GPU support on native Windows at all.",
        "Use WSL2 for the GPU (docs/install.md#gpu-setup-platform-by-platform); native Windows runs on the CPU.",
    ),
    (
        r"tensorflow-gpu.*(removed|deprecated|is not supported)|The \"tensorflow-gpu\" package has been removed",
        "error",
        "`tensorflow-gpu` is an empty package that refuses to install; `tensorflow` has carried GPU support since 2.1.",
        "Install `tensorflow` (on Linux/WSL2 with an NVIDIA GPU: `tensorflow[and-cuda]`): ./setup_env.sh does it.",
    ),
    (
        r"No matching distribution found for tensorflow|Could not find a version that satisfies the requirement tensorflow",
        "error",
        "pip found no TensorFlow wheel for this Python or platform (TensorFlow 2.21: Python 3.10-3.13, 64-bit; "
        "this project's pins: 3.11-3.13; no Intel Macs).",
        "Use a 64-bit Python 3.12 (./setup_env.sh or setup_env.bat check this first).",
    ),
    (
        r"compiled using NumPy 1\.x cannot be run in\s+NumPy 2|_ARRAY_API not found|numpy\.core\.multiarray failed to import",
        "error",
        "A module built against NumPy 1.x is loaded under NumPy 2 (an old TensorFlow or an old package mixed in).",
        "Run ./setup_env.sh in a fresh .venv (the pins are built for NumPy 2), or downgrade only that package's "
        "environment: `pip install 'numpy<2'` there.",
    ),
    (
        r"ModuleNotFoundError: No module named '(tensorflow|bigcats|keras)'",
        "error",
        "This Python (a notebook's kernel, or the shell's python) is not the project's environment.",
        "In JupyterLab: Kernel > Change Kernel... > 'Python (bigcats)'. In a shell: use .venv/bin/python. Missing "
        "altogether: run ./setup_env.sh (setup_env.bat on Windows).",
    ),
    (
        r"Unknown image file format|Invalid JPEG data or crop window|jpeg::Uncompress failed|Input is empty",
        "error",
        "A file in the data folder is not a readable image (truncated, empty, or a web page saved as .jpg).",
        "`python -m bigcats clean DATA_DIR` finds it and moves it aside with its reason (nothing is deleted).",
    ),
    (
        r"Illegal instruction|SIGILL|The TensorFlow library was compiled to use AVX|AVX instructions?,? (but|which) (these|are) (aren't|not) available",
        "error",
        "TensorFlow's wheels use AVX instructions this CPU does not have, so importing TensorFlow kills Python.",
        "Use a computer with a CPU from the last ten years, a hosted notebook service, or build TensorFlow from source.",
    ),
    (
        r"DLL load failed while importing _pywrap_tensorflow_internal|msvcp140(_1)?\.dll",
        "error",
        "TensorFlow's DLLs did not load on Windows: usually the Visual C++ runtime is missing or older than 14.40, "
        "or the project path has non-ASCII characters.",
        "`winget install Microsoft.VCRedist.2015+.x64`, then try again; move the project to a plain path "
        "(C:\\src\\bigcats) if it persists.",
    ),
]


def explain(text, gpu_present=False):
    """[{severity, message, fix}] for everything recognised in `text` (an error message or a log),
    the known failures first, then the harmless start-up lines (with how to quiet them)."""
    findings = []
    for pattern, severity, message, fix in KNOWN_FAILURES:
        if re.search(pattern, text, re.I | re.S):
            findings.append({"severity": severity, "message": message, "fix": fix})
    harmless = {reason for line in text.splitlines() for reason in _harmless(line, gpu_present)}
    for reason in sorted(harmless):
        findings.append(
            {
                "severity": "info",
                "message": f"Harmless start-up line: {reason}",
                "fix": "Nothing to fix. The notebooks hide these lines; elsewhere TF_CPP_MIN_LOG_LEVEL=3 hides most "
                "(docs/install.md#tensorflows-start-up-lines).",
            }
        )
    return findings


def _harmless(line, gpu_present):
    for pattern, reason, needs_no_gpu in HARMLESS_LINES:
        if re.search(pattern, line) and not (needs_no_gpu and gpu_present):
            yield reason
