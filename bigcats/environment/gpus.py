"""Environment tool: every GPU listing in one place, for each of Keras' backends.

TensorFlow, PyTorch and JAX each list the GPUs they reach in their own way; these give them in
one form, {name, device_name, compute_capability}, for training (`lesson.devices`), the doctor and
the training record. Each imports its framework only when called.
"""

from bigcats.environment.machine import package_version


def active():
    """The backend Keras runs on in this process (imports Keras)."""
    import keras

    return keras.backend.backend()


def tensorflow_gpus():
    """[{name, device_name, compute_capability}] for each GPU TensorFlow sees."""
    import tensorflow as tf

    details = []
    for gpu in tf.config.list_physical_devices("GPU"):
        info = tf.config.experimental.get_device_details(gpu)
        capability = info.get("compute_capability")
        details.append(
            {
                "name": gpu.name,
                "device_name": info.get("device_name", "unknown GPU"),
                "compute_capability": list(capability) if capability else None,
            }
        )
    return details


def torch_gpus():
    """[{name, device_name, compute_capability}] for the GPUs PyTorch reaches: NVIDIA cards, AMD
    ones through its ROCm build (which drives them as `cuda` devices, named here with their gfx
    target and no compute capability), Intel ones through its XPU build, or the Apple GPU (MPS)."""
    import torch

    if torch.cuda.is_available():
        return [_torch_cuda_gpu(torch, index) for index in range(torch.cuda.device_count())]
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        return [
            {"name": f"xpu:{index}", "device_name": xpu.get_device_name(index), "compute_capability": None}
            for index in range(xpu.device_count())
        ]
    if torch.backends.mps.is_available():
        return [{"name": "mps", "device_name": "Apple GPU (MPS)", "compute_capability": None}]
    return []


def _torch_cuda_gpu(torch, index):
    name = torch.cuda.get_device_name(index)
    if torch.version.hip:  # ROCm: get_device_capability gives the gfx numbers, not NVIDIA's scale
        architecture = torch.cuda.get_device_properties(index).gcnArchName.split(":")[0]
        return {"name": f"cuda:{index}", "device_name": f"{name} ({architecture})", "compute_capability": None}
    return {
        "name": f"cuda:{index}",
        "device_name": name,
        "compute_capability": list(torch.cuda.get_device_capability(index)),
    }


def torch_build():
    """What this PyTorch was built for: 'CUDA 13.0', 'ROCm (HIP 7.2.53211)', 'XPU' or 'CPU build'."""
    import torch

    if torch.version.hip:
        return f"ROCm (HIP {torch.version.hip})"
    if torch.version.cuda:
        return f"CUDA {torch.version.cuda}"
    xpu_compiled = getattr(getattr(torch, "xpu", None), "_is_compiled", lambda: False)
    return "XPU" if xpu_compiled() else "CPU build"


def jax_gpus():
    import jax

    gpus = [d for d in jax.devices() if d.platform == "gpu"]
    return [{"name": f"gpu:{d.id}", "device_name": d.device_kind, "compute_capability": _capability(d)} for d in gpus]


def _capability(device):
    value = getattr(device, "compute_capability", None)  # '8.6' on CUDA devices
    return [int(part) for part in str(value).split(".")[:2]] if value else None


def gpus(backend=None):
    """The GPUs the given (default: the active) backend reaches, each as `tensorflow_gpus` lists them."""
    backend = backend or active()
    if backend == "torch":
        return torch_gpus()
    if backend == "jax":
        return jax_gpus()
    return tensorflow_gpus()


def training_device(backend=None):
    """Where Keras trains here, in words: 'cuda:0 (NVIDIA GeForce RTX 3060)', 'xpu:0 (Intel(R) Arc(TM)
    A770 Graphics)', '/physical_device:GPU:0 (Tesla T4)' or 'the CPU' (the first GPU of the backend)."""
    listed = gpus(backend)
    return f"{listed[0]['name']} ({listed[0]['device_name']})" if listed else "the CPU"


def describe(device):
    """What the training record says about the backend: its name, version, and the device."""
    backend = active()
    return {"backend": backend, "version": package_version(backend), "device": device}
