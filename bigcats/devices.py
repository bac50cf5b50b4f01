"""Which devices TensorFlow sees, and how training should use them.

One place decides the device setup for training: memory growth, precision policy and the
distribution strategy. The decisions are plain functions of the facts (GPU list, compute
capability), so they are tested without a GPU.
"""

import time
from dataclasses import dataclass, field

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


def gpu_details():
    """[{name, device_name, compute_capability}] for each GPU TensorFlow sees."""
    import tensorflow as tf

    details = []
    for gpu in tf.config.list_physical_devices("GPU"):
        info = tf.config.experimental.get_device_details(gpu)
        details.append(
            {
                "name": gpu.name,
                "device_name": info.get("device_name", "unknown GPU"),
                "compute_capability": list(info["compute_capability"]) if info.get("compute_capability") else None,
            }
        )
    return details


def choose_precision(gpus, build=None):
    """('mixed_float16' or 'float32', why) for a list of gpu_details() entries; `build` is
    tf.sysconfig.get_build_info(), whose list of compute capabilities rules out cards it cannot run."""
    from bigcats.doctor import gpu_supported

    if not gpus:
        return "float32", "no GPU: mixed precision only slows a CPU down"
    unsupported = [g["device_name"] for g in gpus if not gpu_supported(g.get("compute_capability"), build or {})]
    if unsupported:
        return "float32", f"this TensorFlow has no GPU code for {', '.join(unsupported)} (`doctor` says what to do)"
    capabilities = [tuple(g["compute_capability"]) for g in gpus if g.get("compute_capability")]
    if len(capabilities) == len(gpus) and min(capabilities) >= MIXED_PRECISION_MIN_CC:
        return "mixed_float16", "every GPU has compute capability >= 7.0 (tensor cores): float16 maths, float32 weights"
    return "float32", "a GPU below compute capability 7.0 (or unknown): mixed precision would not speed it up"


def split_cpu(n):
    """Split the CPU into n logical devices, to exercise multi-device code without GPUs.
    Like memory growth, this only works before TensorFlow has initialised its devices."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    return [d.name for d in tf.config.list_logical_devices("CPU")]


@dataclass
class TrainingSetup:
    strategy: object
    device: str
    replicas: int
    precision: str
    reasons: list = field(default_factory=list)

    def describe(self):
        lines = [f"device: {self.device}", f"replicas: {self.replicas}", f"precision: {self.precision}"]
        return "\n".join(lines + [f"  - {r}" for r in self.reasons])


def training_setup(devices=None, mixed_precision="auto"):
    """Pick the strategy and precision for this machine and apply the precision policy.

    devices: None for "every GPU, else the CPU"; or explicit device names to mirror over
    (e.g. two logical CPUs in tests). mixed_precision: "auto", True or False.
    """
    import keras
    import tensorflow as tf

    gpus = gpu_details()
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
    precision, why = choose_precision(gpus, tf.sysconfig.get_build_info() if gpus else None)
    if mixed_precision is not True and mixed_precision is not False:
        reasons.append(why)
    else:
        precision = "mixed_float16" if mixed_precision else "float32"
        reasons.append(f"precision set by the caller: {precision}")
    keras.mixed_precision.set_global_policy(precision)
    reasons.append(xla_reason(strategy.num_replicas_in_sync, gpu=bool(gpus)))
    return TrainingSetup(strategy, device, strategy.num_replicas_in_sync, precision, reasons)


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
