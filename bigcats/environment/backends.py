"""Environment tool: which Keras backend trains here, and on which device.

Keras 3 runs the same model on TensorFlow, PyTorch or JAX. TensorFlow is the tutorial's default
and stays installed everywhere (tf.data feeds every backend), but it reaches the GPU only on
Linux or WSL2 with an NVIDIA card it has kernels for; on native Windows, on Blackwell cards and
on Apple silicon, PyTorch does (docs/install.md#which-backend-trains-on-your-gpu). Setup decides
per machine (`bigcats.environment.setup_plan`) and saves the choice in the environment; `use_saved_choice`
applies it when bigcats is imported (the kernel does that before any cell), before Keras is,
unless KERAS_BACKEND is set by hand.
"""

import importlib.util
import json
import os
import sys
from pathlib import Path

from bigcats.environment.machine import BACKENDS, has_nvidia_device

KERNEL_NAME = "bigcats"  # the "Python (bigcats)" kernel setup_env registers in the environment
KERNEL_FIRST_LINE = "--IPKernelApp.exec_lines=import bigcats"  # what the kernel runs before any cell


def settings_file(prefix=sys.prefix):
    """Where setup saves this environment's backend: PREFIX/etc/bigcats/keras_backend.json."""
    return Path(prefix, "etc", "bigcats", "keras_backend.json")


def saved_choice(prefix=sys.prefix):
    """{"backend": ..., "reason": ...} as setup saved it, or None."""
    try:
        saved = json.loads(settings_file(prefix).read_text())
    except (OSError, ValueError):
        return None
    return saved if saved.get("backend") in BACKENDS else None


def use_saved_choice(prefix=sys.prefix):
    """Set KERAS_BACKEND to setup's choice for this environment, unless it is set already (by
    hand, or by the kernel). Works only before Keras is imported; `bigcats` calls it on import."""
    saved = saved_choice(prefix)
    if saved and not os.environ.get("KERAS_BACKEND"):
        os.environ["KERAS_BACKEND"] = saved["backend"]
    backend = os.environ.get("KERAS_BACKEND", "").strip().lower()
    if backend == "torch":
        load_triton_first()
    if importlib.util.find_spec("torch") is not None:
        quiet_about_no_driver()
    if backend in ("torch", "jax") and os.environ.get(SHOW_TENSORFLOW_GPUS) != "1":
        import wrapt

        wrapt.register_post_import_hook(hide_gpus_from_tensorflow, "tensorflow")


# Set to 1 where TensorFlow's own view of the GPUs is wanted beside another backend (the doctor's probes)
SHOW_TENSORFLOW_GPUS = "BIGCATS_SHOW_TENSORFLOW_GPUS"


def hide_gpus_from_tensorflow(tf):
    """Where Keras trains on torch or JAX, TensorFlow is there for tf.data only, and its first op
    would claim nearly all of a GPU it can see (its allocator reserves the memory up front), leaving
    the training backend short; so the moment TensorFlow is imported, it is shown no GPU. True where
    that worked; False where TensorFlow had already started (imported before bigcats), said once."""
    try:
        tf.config.set_visible_devices([], "GPU")
    except RuntimeError:
        import warnings

        warnings.warn(
            "TensorFlow started before bigcats, so it may hold GPU memory that Keras' backend needs. Restart the "
            "kernel (or Python) and import bigcats or keras before tensorflow.",
            stacklevel=2,
        )
        return False
    return True


def quiet_about_no_driver():
    """PyTorch's CUDA build warns "CUDA initialization: Unexpected error from cudaGetDeviceCount()"
    wherever it looks for a GPU on a machine with no NVIDIA driver (Keras does, on import): true and
    harmless there (the CPU trains), so not shown; with a driver it may matter and is shown."""
    import warnings

    if not has_nvidia_device():
        warnings.filterwarnings("ignore", message=r"CUDA initialization: Unexpected error from cudaGetDeviceCount")


def load_triton_first():
    """TensorFlow 2.20 and newer load their library with RTLD_GLOBAL, and a triton loaded after it
    crashes Python (tensorflow#124205, an LLVM clash). PyTorch's Keras backend loads triton where
    PyTorch has it (the Linux CUDA builds), so on torch it is loaded first, here."""
    if "triton" in sys.modules or importlib.util.find_spec("triton") is None:
        return
    if "tensorflow" in sys.modules:  # with Keras on TensorFlow, then KERAS_BACKEND=torch
        raise RuntimeError(
            "TensorFlow was imported before bigcats, and Keras is to run on torch: loading PyTorch's triton after "
            "TensorFlow crashes Python (tensorflow#124205). Restart the kernel (or Python) and import bigcats or "
            "keras before tensorflow."
        )
    import triton  # noqa: F401


def save_choice(backend, reason, prefix=sys.prefix):
    """Save the backend where the command line and the notebooks read it (`settings_file`), and
    have the "Python (bigcats)" kernel import bigcats before any cell, which applies it. Not as
    KERAS_BACKEND in kernel.json's `env`: Jupyter puts that over the server's environment, so a
    KERAS_BACKEND set by hand would lose. Returns the files written."""
    path = settings_file(prefix)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"backend": backend, "reason": reason}, indent=2))
    written = [path]
    kernel = Path(prefix, "share", "jupyter", "kernels", KERNEL_NAME, "kernel.json")
    if kernel.exists():
        spec = json.loads(kernel.read_text())
        # bigcats first: the saved choice, and triton before a learner's `import tensorflow` (`load_triton_first`)
        if KERNEL_FIRST_LINE not in spec.get("argv", []):
            spec.setdefault("argv", []).append(KERNEL_FIRST_LINE)
        kernel.write_text(json.dumps(spec, indent=1))
        written.append(kernel)
    return written
