"""Environment tool: TensorFlow's start-up lines, which are harmless, kept out of a notebook.

Importing TensorFlow 2.21 prints a few lines from its C++ core straight to the process's standard
error, some of them before its logging is set up, so `TF_CPP_MIN_LOG_LEVEL=3` does not silence
them (docs/install.md#tensorflows-start-up-lines). Learners take them for errors. Here
each harmless line has a pattern and a sentence saying why it is harmless; `hide_harmless_lines`
drops those lines, and only those, from what reaches the notebook. Anything else TensorFlow
prints still shows.
"""

import atexit
import os
import re
import subprocess
import sys
import threading

from bigcats.environment.machine import has_nvidia_device

# (pattern, why it is harmless, needs_no_gpu): with needs_no_gpu the line is harmless only on a
# machine without an NVIDIA GPU; on one with a GPU the same words mean the GPU is not used.
HARMLESS_LINES = [
    (
        r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
        "TensorFlow's logging library saying it started after the first messages: no error.",
        False,
    ),
    (
        r"oneDNN custom operations are on",
        "TensorFlow uses Intel's oneDNN kernels on the CPU; results can differ in the last digits.",
        False,
    ),
    (
        r"oneDNN supports DT_(UINT8|HALF) only on platforms with AVX-512",
        "this CPU lacks the AVX-512 extension oneDNN needs for 8-bit pixels or half-precision numbers, so "
        "TensorFlow uses its own kernels: no error.",
        False,
    ),
    (
        r"This TensorFlow binary is optimized to use available CPU instructions",
        "the CPU has instructions TensorFlow could use if built from source: no error.",
        False,
    ),
    (  # the second line of the one above
        r"^To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags",
        "the CPU has instructions TensorFlow could use if built from source: no error.",
        False,
    ),
    (
        r"Unable to register cu(DNN|FFT|BLAS) factory",
        "two parts of TensorFlow both offer the same CUDA library; the second is ignored.",
        False,
    ),
    (
        r"computation placer already registered",
        "two parts of TensorFlow both registered the same helper; the second is ignored.",
        False,
    ),
    (
        r"TF-TRT Warning: Could not find TensorRT",
        "TensorRT, an optional NVIDIA inference library this tutorial does not use, is not installed.",
        False,
    ),
    (
        r"Could not find cuda drivers on your machine, GPU will not be used",
        "this machine has no NVIDIA driver, so TensorFlow runs on the CPU, as expected.",
        True,
    ),
    (
        r"failed call to cuInit: .*(UNKNOWN ERROR \(303\)|CUDA_ERROR_NO_DEVICE)",
        "no NVIDIA GPU answered, so TensorFlow runs on the CPU, as expected.",
        True,
    ),
    # XLA, TensorFlow's compiler, announces itself the first time it compiles (the augmentation
    # in the input pipeline; on a GPU, the training step too)
    (
        r"XLA service 0x[0-9a-f]+ initialized for platform",
        "XLA, TensorFlow's compiler, started: it compiles the augmentation (and on a GPU the training step).",
        False,
    ),
    (
        r"StreamExecutor (\[\d+\]|device \(\d+\)): ",
        "the device XLA compiles for, named: no error.",
        False,
    ),
    (
        r"disabling MLIR crash reproducer",
        "a debugging aid of TensorFlow's compiler, off unless asked for: no error.",
        False,
    ),
    (
        r"Compiled cluster using XLA!",
        "XLA compiled a function, as asked: no error.",
        False,
    ),
]


def why_harmless(line, gpu_present=None):
    """The reason a line TensorFlow printed is harmless, or None if it may matter."""
    if gpu_present is None:
        gpu_present = has_nvidia_device()
    for pattern, reason, needs_no_gpu in HARMLESS_LINES:
        if re.search(pattern, line) and not (needs_no_gpu and gpu_present):
            return reason
    return None


def tensorflow_startup_lines(timeout=300):
    """[(line, why it is harmless or None)] for what `import tensorflow` and a first look at the
    devices print, in a fresh Python (this one's), so a notebook can show and explain them. A line
    TensorFlow prints twice (once per library that loads its logging) is listed once."""
    code = "import tensorflow as tf; tf.config.list_physical_devices()"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, check=False)
    gpu_present = has_nvidia_device()
    lines = {}
    for line in run.stderr.splitlines():
        if line.strip():
            lines.setdefault(_LOG_PREFIX.sub("", line), line)  # the same message at another time: once
    return [(line, why_harmless(line, gpu_present)) for line in lines.values()]


# what TensorFlow's C++ logging puts before each message: level, date, time, thread
_LOG_PREFIX = re.compile(r"^[IWEF]\d{4} [\d:.]+\s+\d+ ")
_installed = []


def hide_harmless_lines():
    """From now on, drop TensorFlow's harmless start-up lines from this process's standard error.

    Call it before importing TensorFlow. Every other line is passed on unchanged, in order, and a
    progress bar's updates (ending in a carriage return) at once; what is still on its way when
    Python exits is passed on first. Returns True if it was installed (once per process), False
    if it already was or cannot be (no file descriptor 2, as on some Windows set-ups)."""
    if _installed:
        return False
    try:
        original = os.dup(2)
    except OSError:
        return False
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    gpu_present = has_nvidia_device()
    thread = threading.Thread(target=_pass_on, args=(read_end, original, gpu_present), daemon=True)
    thread.start()
    _installed.append(thread)
    atexit.register(_drain, original, thread)
    return True


def _drain(original, thread):
    """At exit: standard error back to where it went, and the last lines through the filter."""
    sys.stderr.flush()
    os.dup2(original, 2)  # closes the pipe's writing end, so the thread reads to its end
    thread.join(timeout=5)


def _pass_on(read_end, original, gpu_present):
    # one line at a time: a harmless line is dropped whole, everything else is written on at once
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        pending = b""
        while chunk := pipe.read(65536):
            pending += chunk
            *lines, pending = re.split(rb"(?<=[\r\n])", pending)
            for line in lines:
                if why_harmless(line.decode(errors="replace"), gpu_present) is None:
                    os.write(original, line)
        if pending:
            os.write(original, pending)
