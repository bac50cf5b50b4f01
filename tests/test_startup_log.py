"""TensorFlow's harmless start-up lines are recognised and dropped; everything else passes."""

import subprocess
import sys

from bigcats.environment.startup_log import why_harmless

# Recorded from `import tensorflow` (TF 2.21.0, CPU, no GPU) on this project's machine.
TF_221_STARTUP = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796120351.035919    3927 port.cc:153] oneDNN custom operations are on. You may see slightly different numerical results due to floating-point round-off errors from different computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.
I0000 00:00:1796120351.036178    3927 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
I0000 00:00:1796192417.384921    5780 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use available CPU instructions in performance-critical operations.
To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.
E0000 00:00:1796120352.699608    3927 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)
"""
# Recorded when the augmentation first runs (TF 2.21.0, CPU): XLA compiling it, oneDNN passing on float16.
TF_221_XLA = """\
I0000 00:00:1796128976.589188   27707 service.cc:153] XLA service 0x55ca6c4eafe0 initialized for platform Host (this does not guarantee that XLA will be used). Devices:
I0000 00:00:1796128976.589220   27707 service.cc:161]   StreamExecutor [0]: Host, Default Version (Driver: 0.0.0; Runtime: 0.0.0; Toolkit: 0.0.0; DNN: 0.0.0)
I0000 00:00:1796128976.606035   27707 dump_mlir_util.cc:269] disabling MLIR crash reproducer, set env var `MLIR_CRASH_REPRODUCER_DIRECTORY` to enable.
I0000 00:00:1796128976.884091   27707 device_compiler.h:208] Compiled cluster using XLA!  This line is logged at most once for the lifetime of the process.
E0000 00:00:1796134455.265111    7308 util.cc:131] oneDNN supports DT_HALF only on platforms with AVX-512. Falling back to the default Eigen-based implementation if present.
"""
REAL_ERRORS = [
    "W0000 00:00:1796128976.9 27707 xla_compiler.cc:1000] Failed to compile: UNIMPLEMENTED: ImageProjectiveTransformV3",
    "E0000 00:00:1796120352.1 3927 cuda_dnn.cc:535] Loaded runtime CuDNN library: 9.1.0 but source was compiled with: 9.3.0.",
    "W0000 00:00:1796120352.1 3927 gpu_device.cc:2431] Cannot dlopen some GPU libraries.",
    "Traceback (most recent call last):",
]


def test_each_recorded_startup_line_is_harmless_without_a_gpu():
    for line in (TF_221_STARTUP + TF_221_XLA).splitlines():
        assert why_harmless(line, gpu_present=False), line


def test_the_cuda_lines_matter_where_there_is_a_gpu():
    cuda_lines = [line for line in TF_221_STARTUP.splitlines() if "cuda" in line.lower()]
    assert len(cuda_lines) == 2
    assert all(why_harmless(line, gpu_present=True) is None for line in cuda_lines)


def test_a_line_printed_twice_at_two_times_is_listed_once(monkeypatch):
    from bigcats.environment import startup_log

    twice = TF_221_STARTUP + TF_221_STARTUP.replace("1796120351", "1796120399")
    monkeypatch.setattr(startup_log.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, "", twice))
    lines = startup_log.tensorflow_startup_lines()
    assert [line for line, _ in lines] == TF_221_STARTUP.splitlines()


def test_real_errors_are_never_called_harmless():
    for line in REAL_ERRORS:
        assert why_harmless(line, gpu_present=False) is None, line


def test_the_filter_drops_only_harmless_lines_at_the_file_descriptor(tmp_path):
    # a child process writes to fd 2 directly, as TensorFlow's C++ core does
    script = tmp_path / "child.py"
    script.write_text(
        "import os, time\n"
        "from bigcats.environment.startup_log import hide_harmless_lines\n"
        "assert hide_harmless_lines() and not hide_harmless_lines()\n"
        f"os.write(2, {TF_221_STARTUP.encode()!r})\n"
        "os.write(2, b'a real problem\\n')\n"
        "os.write(2, b'progress 1/2\\rprogress 2/2\\r')\n"
        "time.sleep(0.5)\n"
        "os.write(2, b'the last words, at exit')\n"  # no newline, no pause: still passed on
    )
    env = {"PATH": "/nonexistent"}  # no nvidia-smi on PATH; the devices checked are the machine's
    run = subprocess.run([sys.executable, str(script)], capture_output=True, env=env, check=False)
    run.stderr = run.stderr.decode()  # as bytes: text mode would turn each carriage return into a newline
    assert run.returncode == 0, run.stderr
    from bigcats.environment.machine import has_nvidia_device

    if not has_nvidia_device():
        assert run.stderr == "a real problem\nprogress 1/2\rprogress 2/2\rthe last words, at exit"
    else:
        assert "a real problem" in run.stderr and "absl::InitializeLog" not in run.stderr


def test_a_progress_bar_passes_the_filter_as_it_is_drawn(tmp_path):
    """Updates that end in a carriage return (tqdm, Keras) are passed on at once, not at the next newline."""
    script = tmp_path / "child.py"
    script.write_text(
        "import os, sys, time\n"
        "from bigcats.environment.startup_log import hide_harmless_lines\n"
        "hide_harmless_lines()\n"
        "os.write(2, b'step 1 of 2\\r')\n"
        "time.sleep(30)\n"
    )
    child = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.PIPE)
    try:
        assert child.stderr.read(len("step 1 of 2\r")) == b"step 1 of 2\r"  # while the child still sleeps
    finally:
        child.kill()
        child.wait()
