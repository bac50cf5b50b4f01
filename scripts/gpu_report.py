"""The GPU check for an NVIDIA machine with PyTorch and JAX but no TensorFlow (its wheel cannot be
carried there; keras and this project can): docs/benchmarks.md#a-gpu-check-without-tensorflow.

    python scripts/gpu_report.py [--out gpu_report.json] [--image-size 144] [--steps 20] [--repeats 5]

For Keras on torch and on JAX, each in a fresh process: training photos/s of the model alone and of
the model with the augmentation inside its step (from photos as decoded, as `bigcats train` runs on
a GPU), at batch 16, 64 and 256, in float32 and mixed precision (the median of the repeats, warm-up
left out), and the doctor's PyTorch smoke test. One JSON object out.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("torch", "jax")
BATCHES = (16, 64, 256)
PRECISIONS = ("float32", "mixed_float16")


def one_backend(image_size, steps, repeats, batches):
    """The rows for the backend this process runs (KERAS_BACKEND), as a dict."""
    import keras

    from bigcats.benchmark.measure import decoded_batch, random_batch, time_training_steps
    from bigcats.environment.gpus import gpus
    from bigcats.lesson.augment import with_augmentation
    from bigcats.lesson.model import build_cnn, compile_model

    rows = []
    for precision in PRECISIONS:
        keras.mixed_precision.set_global_policy(precision)
        for batch in batches:
            x, y = random_batch(batch, image_size)
            alone = compile_model(build_cnn(image_size, seed=1))
            _, runs = time_training_steps(alone, x, y, steps, repeats=repeats)
            augmented = compile_model(with_augmentation(build_cnn(image_size, seed=1), image_size, seed=1))
            _, augmented_runs = time_training_steps(
                augmented, decoded_batch(batch, image_size), y, steps, repeats=repeats
            )
            model_rate = steps * batch / statistics.median(runs)
            augmented_rate = steps * batch / statistics.median(augmented_runs)
            rows.append({"precision": precision, "batch": batch, "model_images_per_second": model_rate,
                         "augmented_images_per_second": augmented_rate, "augmented_share": augmented_rate / model_rate})  # fmt: skip
    keras.mixed_precision.set_global_policy("float32")
    return {"backend": keras.backend.backend(), "keras": keras.__version__, "gpus": gpus(), "rows": rows,
            "tensorflow_imported": "tensorflow" in sys.modules}  # fmt: skip


def torch_smoke_test():
    from bigcats.environment.doctor import TORCH_SMOKE_TEST, gpu_smoke_test
    from bigcats.environment.gpus import torch_gpus

    return gpu_smoke_test(torch_gpus(), code=TORCH_SMOKE_TEST, framework="PyTorch")


def run_backend(backend, args):
    """`--one` of this script in a fresh process with Keras on `backend`: its dict, or its error."""
    command = [sys.executable, __file__, "--one", "--image-size", str(args.image_size), "--steps", str(args.steps),
               "--repeats", str(args.repeats), "--batches", *map(str, args.batches)]  # fmt: skip
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT, check=False)
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"backend": backend, "error": done.stderr[-3000:] or f"exited with status {done.returncode}"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="gpu_report.json")
    parser.add_argument("--image-size", type=int, default=144)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", type=int, nargs="+", default=list(BATCHES))
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--one", action="store_true", help="internal: the backend of this process only")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if args.one:
        print(json.dumps(one_backend(args.image_size, args.steps, args.repeats, args.batches)))
        return 0
    report = {"backends": [run_backend(backend, args) for backend in args.backends]}
    report["torch_smoke_test"] = torch_smoke_test() if "torch" in args.backends else None
    Path(args.out).write_text(json.dumps(report, indent=2))
    for entry in report["backends"]:
        for row in entry.get("rows", []):
            print(f"{entry['backend']:5} {row['precision']:13} batch {row['batch']:3}: model {row['model_images_per_second']:8.0f} "
                  f"photos/s, with its augmentation {row['augmented_images_per_second']:8.0f} ({row['augmented_share']:.0%})")  # fmt: skip
        if "error" in entry:
            print(f"{entry['backend']}: failed: {entry['error'][-500:]}")
    print(f"torch smoke test: {(report['torch_smoke_test'] or {}).get('status')}; the whole report: {args.out}")
    return 0 if all("error" not in entry for entry in report["backends"]) else 1


if __name__ == "__main__":
    sys.exit(main())
