"""Lesson: which devices Keras' backend sees, and how training should use them.

One place decides the device setup for training: memory growth, precision policy and the
distribution strategy. The decisions are plain functions of the facts (GPU list, compute
capability), so they are tested without a GPU. On TensorFlow, every GPU (MirroredStrategy); on
PyTorch or JAX (`bigcats.environment.backends`), the backend's one device.
"""

import contextlib
import os
import time
from dataclasses import dataclass, field

from bigcats.environment.gpus import gpus as backend_gpus
from bigcats.environment.gpus import tensorflow_gpus
from bigcats.environment.machine import gpu_supported

MIXED_PRECISION_MIN_CC = (7, 0)  # tensor cores: Volta and newer; older GPUs gain nothing


def enable_memory_growth():
    """Let TensorFlow take GPU memory as it needs it instead of all at once.

    Must run before anything touches the GPU; afterwards TensorFlow refuses ("Physical devices
    cannot be modified after being initialized"). Returns the problems, as sentences.
    """
    import tensorflow as tf

    problems = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            if not tf.config.experimental.get_memory_growth(gpu):
                problems.append(
                    f"Memory growth could not be set on {gpu.name}: the GPU was already in use. "
                    "Restart the kernel and run the memory-growth cell before any other TensorFlow code."
                )
    return problems


def choose_precision(gpus, build=None):
    """('mixed_float16' or 'float32', why) for a list of `gpus.tensorflow_gpus()` entries; `build` is
    tf.sysconfig.get_build_info(), whose list of compute capabilities rules out cards it cannot run."""
    if not gpus:
        return "float32", "no GPU: mixed precision only slows a CPU down"
    unsupported = [g["device_name"] for g in gpus if not gpu_supported(g.get("compute_capability"), build or {})]
    if unsupported:
        return "float32", f"this TensorFlow has no GPU code for {', '.join(unsupported)} (`doctor` says what to do)"
    capabilities = [tuple(g["compute_capability"]) for g in gpus if g.get("compute_capability")]
    if len(capabilities) == len(gpus) and min(capabilities) >= MIXED_PRECISION_MIN_CC:
        return "mixed_float16", "every GPU has compute capability >= 7.0 (tensor cores): float16 maths, float32 weights"
    return "float32", "a GPU below compute capability 7.0 (or unknown): mixed precision would not speed it up"


@dataclass
class TrainingSetup:
    strategy: object
    device: str
    replicas: int
    precision: str
    reasons: list = field(default_factory=list)
    augment_on: str = "pipeline"  # where the augmentation runs: "pipeline" (tf.data) or "step" (training step)

    def describe(self):
        lines = [f"device: {self.device}", f"replicas: {self.replicas}", f"precision: {self.precision}"]
        lines.append(f"augmentation: in the {'training step' if self.augment_on == 'step' else 'input pipeline'}")
        return "\n".join(lines + [f"  - {r}" for r in self.reasons])


def training_setup(devices=None, mixed_precision="auto", augment_on="auto"):
    """Pick the strategy, precision and place of the augmentation for this machine, and apply the
    precision policy.

    devices: None for "every GPU, else the CPU"; or explicit device names to mirror over
    (e.g. two logical CPUs in tests). mixed_precision: "auto", True or False. augment_on: "auto"
    (see `augmentation_place`), "pipeline" or "step".
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return _one_device_setup(keras.backend.backend(), devices, mixed_precision, augment_on)
    import tensorflow as tf

    gpus = tensorflow_gpus()
    reasons = []
    if devices is None:
        devices = [g["name"].replace("physical_device:", "") for g in gpus]
    if len(devices) > 1:
        strategy = tf.distribute.MirroredStrategy(devices)
        reasons.append(f"MirroredStrategy over {len(devices)} devices: each takes a slice of every batch")
    else:
        strategy = tf.distribute.get_strategy()
        reasons.append("one device: the default strategy (no distribution needed)")
    device = ", ".join(devices) if devices else "CPU"
    if not gpus:
        reasons.append("no GPU visible to TensorFlow: training runs on the CPU (see notebook 02 for why)")
    precision = _set_precision(choose_precision(gpus, tf.sysconfig.get_build_info() if gpus else None),
                               mixed_precision, reasons)  # fmt: skip
    reasons.append(xla_reason(strategy.num_replicas_in_sync, gpu=bool(gpus)))
    place, why = augmentation_place(bool(gpus), augment_on, cpu_cores())
    reasons.append(why)
    return TrainingSetup(strategy, device, strategy.num_replicas_in_sync, precision, reasons, place)


def _set_precision(chosen, mixed_precision, reasons):
    """Apply the precision: `chosen` (precision, why) unless the caller set it (True or False)."""
    import keras

    precision, why = chosen
    if mixed_precision is True or mixed_precision is False:
        precision, why = ("mixed_float16" if mixed_precision else "float32"), "precision set by the caller"
    reasons.append(why)
    keras.mixed_precision.set_global_policy(precision)
    return precision


class OneDevice:
    """The strategy of a backend without tf.distribute (PyTorch, JAX): one device, nothing to split."""

    num_replicas_in_sync = 1

    def scope(self):
        return contextlib.nullcontext()


def _one_device_setup(backend, devices, mixed_precision, augment_on):
    """training_setup on PyTorch or JAX: the backend's first GPU, else the CPU; the same precision
    rule; the augmentation in the training step (Keras operations become the backend's inside the
    tf.data pipeline, where they cannot run)."""
    if devices is not None and len(devices) > 1:
        raise ValueError(
            f"Training over several devices (MirroredStrategy) is TensorFlow's; Keras on {backend} trains on one "
            "device. Run with KERAS_BACKEND=tensorflow for that."
        )
    if augment_on == "pipeline":
        raise ValueError(
            f"augment_on='pipeline' runs only on TensorFlow: on {backend}, Keras operations inside the tf.data "
            "pipeline become the backend's and fail. Give 'step' or 'auto'."
        )
    gpus = backend_gpus(backend)[:1]
    reasons = [f"Keras on {backend}: one device (MirroredStrategy and --multi-worker are TensorFlow's)"]
    if not gpus:
        reasons.append(f"no GPU visible to {backend}: training runs on the CPU")
    # the same rule: the Apple GPU has no compute capability, so float32 there
    precision = _set_precision(choose_precision(gpus), mixed_precision, reasons)
    reasons.append(
        "XLA: JAX compiles the whole training step"
        if backend == "jax"
        else f"compiled: no (Keras' jit_compile='auto' runs {backend} eagerly)"
    )
    reasons.append(f"augmentation inside the training step: the only place on {backend}")
    device = f"{gpus[0]['name']} ({gpus[0]['device_name']})" if gpus else "CPU"
    return TrainingSetup(OneDevice(), device, 1, precision, reasons, "step")


# Up to this many CPU cores, augmenting inside the training step (in turn with the model) beat
# augmenting in the pipeline (at the same time, on the same cores) on the 2-core development
# machine; with more cores the pipeline takes a smaller share of them
# (docs/benchmarks.md#input-that-never-sets-the-pace).
STEP_AUGMENTATION_MAX_CORES = 4


def cpu_cores():
    """The CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def augmentation_place(gpu, augment_on="auto", cores=1):
    """(where the augmentation runs, why): "step" (inside the training step) or "pipeline" (the
    tf.data pipeline, a batch ahead of the model). With a GPU, in the step: a GPU trains this model
    faster than any laptop's CPU can prepare augmented photos, so the CPU only feeds it cached
    photos. On a CPU of STEP_AUGMENTATION_MAX_CORES `cores` or fewer, in the step too: sharing so few
    cores with the model cost more than taking turns; on a larger CPU, in the pipeline."""
    if augment_on in ("pipeline", "step"):
        return (
            augment_on,
            f"augmentation in the {'training step' if augment_on == 'step' else 'input pipeline'}: set by the caller",
        )
    if augment_on != "auto":
        raise ValueError(f"augment_on={augment_on!r}: give 'auto', 'pipeline' or 'step'")
    if gpu:
        return "step", "augmentation inside the training step, on the GPU: the CPU only reads cached photos"
    if cores <= STEP_AUGMENTATION_MAX_CORES:
        return (
            "step",
            f"augmentation inside the training step, in turn with the model ({cores} CPU cores: too few to share)",
        )
    return "pipeline", f"augmentation in the tf.data pipeline, a batch ahead of the model ({cores} CPU cores)"


def xla_reason(replicas, gpu=True):
    """What Keras' jit_compile="auto" decides. With a GPU it compiles the training step with XLA,
    except for a model built under a tf.distribute strategy such as MirroredStrategy
    (keras/src/trainers/trainer.py, `_resolve_auto_jit_compile`). Without one it never does:
    forced on, XLA made this model's training step several times slower on a CPU
    (docs/benchmarks.md#what-a-gpu-buys)."""
    if not gpu:
        return "XLA: off (Keras' jit_compile='auto' never uses it without a GPU)"
    if replicas > 1:
        return "XLA: off (Keras' jit_compile='auto' does not use it under tf.distribute: MirroredStrategy)"
    return "XLA: Keras compiles the training step with XLA on the GPU (jit_compile='auto')"


def time_matmul(device, n=1024, repeats=5):
    """Median seconds and GFLOP/s of an n x n float32 matrix multiply on `device`,
    after one warm-up run. `.numpy()` waits for the result: GPU ops are asynchronous."""
    import tensorflow as tf

    with tf.device(device):
        a = tf.random.uniform((n, n))
        b = tf.random.uniform((n, n))
        tf.reduce_sum(tf.matmul(a, b)).numpy()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            tf.reduce_sum(tf.matmul(a, b)).numpy()
            times.append(time.perf_counter() - start)
    seconds = sorted(times)[len(times) // 2]
    return {"device": device, "n": n, "seconds": seconds, "gflops": 2 * n**3 / seconds / 1e9}
