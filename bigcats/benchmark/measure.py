"""Benchmark: an honest CPU-vs-GPU measurement: the tutorial's model, the same batch, on every device.

Warm-up steps (graph tracing, XLA compilation) are timed separately and left out of the speed.
Each step returns its loss as a Python number, which waits for the device to finish, so
asynchronous GPU work cannot flatter the figures. Several repeats; the median is reported.
"""

import statistics
import sys
import time
from pathlib import Path

import numpy as np

from bigcats.lesson import config


def available_devices():
    """The devices the active Keras backend trains on: TensorFlow's logical CPU and GPUs; for
    PyTorch or JAX the CPU and the backend's GPU (`bigcats.environment.backends`)."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_logical_devices() if d.device_type in ("CPU", "GPU")]
    from bigcats.environment.gpus import gpus

    return ["cpu"] + [gpu["name"] for gpu in gpus()[:1]]


def time_training_steps(model, x, y, steps=5, warmup_steps=2, repeats=3):
    """(warm-up seconds, [seconds per repeat of `steps` steps]) for a compiled Keras model on one
    batch. Plain Keras, so the same timing runs on any backend (TensorFlow here; JAX on a lent
    GPU machine: docs/benchmarks.md#what-a-gpu-buys). float() of the loss waits for the device."""
    start = time.perf_counter()
    for _ in range(warmup_steps):
        float(model.train_on_batch(x, y, return_dict=True)["loss"])
    warmup = time.perf_counter() - start
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            float(model.train_on_batch(x, y, return_dict=True)["loss"])
        runs.append(time.perf_counter() - start)
    return warmup, runs


def random_batch(batch_size, image_size, seed=config.SEED):
    """A batch of random pixels in [0, 255] and random labels: speed does not depend on content."""
    rng = np.random.default_rng(seed)
    return (
        rng.uniform(0, 255, (batch_size, image_size, image_size, 3)).astype("float32"),
        rng.integers(0, 2, batch_size),
    )


def benchmark_device(
    device,
    image_size=config.IMAGE_SIZE,
    batch_size=config.BATCH_SIZE,
    steps=5,
    warmup_steps=2,
    repeats=3,
    seed=config.SEED,
):
    """{name, kind, images_per_second, warmup_seconds, repeats_seconds} for one device, and
    augmented_images_per_second: the same steps with the augmentation inside them, from photos as
    decoded (as `bigcats train` runs them on a GPU). `device` as `available_devices` names it."""
    import keras

    from bigcats.lesson.augment import with_augmentation
    from bigcats.lesson.model import build_cnn, compile_model

    x, y = random_batch(batch_size, image_size, seed)
    photos = decoded_batch(batch_size, image_size, seed)
    with keras.device(device):
        x, y, photos = (keras.ops.convert_to_tensor(value) for value in (x, y, photos))
        model = compile_model(build_cnn(image_size, seed=seed))
        warmup, runs = time_training_steps(model, x, y, steps, warmup_steps, repeats)
        augmented = compile_model(with_augmentation(build_cnn(image_size, seed=seed), image_size, seed))
        _, augmented_runs = time_training_steps(augmented, photos, y, steps, warmup_steps, repeats)
    return {
        "name": device,
        "kind": "CPU" if "CPU" in device.upper() else "GPU",
        "images_per_second": steps * batch_size / statistics.median(runs),
        "warmup_seconds": warmup,
        "repeats_seconds": runs,
        "augmented_images_per_second": steps * batch_size / statistics.median(augmented_runs),
    }


def decoded_batch(batch_size, image_size, seed=config.SEED):
    """Random photos as the training pipeline decodes them for augmenting: uint8, FRAMING_MARGIN
    times the model's input size."""
    from bigcats.lesson.augment import decoded_size

    size = decoded_size(image_size)
    return np.random.default_rng(seed).integers(0, 256, (batch_size, size, size, 3)).astype("uint8")


def cv2_loop(items, image_size):
    """Images/second of the original write-up's reading: cv2 in a Python loop, one photo at a time."""
    import cv2

    start = time.perf_counter()
    batch = []
    for path, _ in items:
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        batch.append(cv2.resize(image, (image_size, image_size)).astype("float32"))
    np.stack(batch)
    return len(items) / (time.perf_counter() - start)


def first_pass(items, image_size, shortest=None):
    """Images/second of the training pipeline's first pass (decoding into the cache, at the size
    augmentation crops from): `shortest` None decodes as training does (JPEGs at a reduced scale
    when large), 0 decodes every photo whole."""
    import tensorflow as tf

    from bigcats.lesson.augment import decoded_size
    from bigcats.lesson.data import decode_and_resize, exif_orientation

    size = decoded_size(image_size)
    paths = [str(p) for p, _ in items]

    def load(path, turn):
        return decode_and_resize(tf.io.read_file(path), size, turn, shortest)

    start = time.perf_counter()  # the EXIF reads are part of the pass
    ds = tf.data.Dataset.from_tensor_slices((paths, [exif_orientation(p) for p in paths]))
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(config.BATCH_SIZE)
    for batch in ds:
        batch.numpy()
    return len(items) / (time.perf_counter() - start)


def make_large_jpegs(items, folder, count=24, side=4000):
    """`count` of the photos scaled up to `side` pixels and saved as JPEGs, as from a camera."""
    from pathlib import Path

    import cv2

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    large = []
    for number, (path, label) in enumerate(items[:count]):
        target = folder / f"large_{number:03d}.jpg"
        image = cv2.imread(str(path))
        height, width = image.shape[:2]
        scale = side / max(height, width)
        cv2.imwrite(
            str(target),
            cv2.resize(image, (round(width * scale), round(height * scale))),
            [cv2.IMWRITE_JPEG_QUALITY, 90],
        )
        large.append((target, label))
    return large


def _large_jpegs_figures(items, image_size, count, side):
    """The first pass over `count` of the photos scaled up to `side` pixels: cv2, tf.data decoding
    a JPEG at a fraction of its size, and tf.data decoding it whole."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        large = make_large_jpegs(items, folder, count, side)
        return {
            "images": len(large),
            "side": side,
            "cv2_images_per_second": cv2_loop(large, image_size),
            "tfdata_images_per_second": first_pass(large, image_size),
            "tfdata_whole_decode_images_per_second": first_pass(large, image_size, shortest=0),
        }


def _augmented_figures(items, image_size, batch_size, epochs):
    """Augmented photos/s as training reads them: a batch at a time (today), photo by photo
    (rounds 4-8), with Keras' layers, and the per-photo pipeline as `model.fit` read it before."""
    from bigcats.benchmark.augment_per_photo import per_photo_dataset

    # What training really reads: a new framing and look of every photo every epoch, as `bigcats
    # train` reads it, one pass after another through one iterator. Each reader is timed alone,
    # made afresh each round, after a pass that decodes into the cache and compiles (once per
    # training): a reader left waiting keeps filling its prefetch buffer in the background,
    # slowing the one being timed and later handing out batches it made in that time.
    batches = -(-len(items) // batch_size)
    per_photo = per_photo_dataset(items, image_size, batch_size)
    datasets = {
        "batched": batched_augmentation(items, image_size, batch_size),
        "per_photo": per_photo.repeat(),
        "keras_layers": keras_layers_dataset(items, image_size, batch_size),
    }
    rates = {"batched": [], "per_photo": [], "keras_layers": [], "before": []}
    for _ in range(epochs):  # interleaved, round by round, so a slow spell of the machine slows both
        for name, dataset in datasets.items():
            reader = iter(dataset)
            _read(reader, batches)
            rates[name].append(2 * len(items) / _read(reader, 2 * batches))
            del reader
        # and as `model.fit` read the per-photo pipeline before: a new iterator every epoch, which
        # refilled the shuffle buffer with every photo before the first batch
        rates["before"].append(_images_per_second(per_photo, len(items), 2))
    rate = {name: statistics.median(values) for name, values in rates.items()}
    return {
        "augmented_images_per_second": rate["batched"],
        "per_photo_augmented_images_per_second": rate["per_photo"],
        "before_augmented_images_per_second": rate["before"],
        "keras_layers_images_per_second": rate["keras_layers"],
        "augmented_ratio": rate["batched"] / rate["per_photo"],
        "augmented_ratio_to_before": rate["batched"] / rate["before"],
        "augmented_ratio_to_keras_layers": rate["batched"] / rate["keras_layers"],
    }


def benchmark_pipeline(
    items, image_size=config.IMAGE_SIZE, batch_size=config.BATCH_SIZE, epochs=3, large_count=24, large_side=4000
):
    """Images/second of each part of the input, side by side in this run: `epochs` passes over
    the files as a Python loop of cv2 reads (the original write-up) against the tf.data pipeline
    (parallel decode, cache, prefetch); the first pass alone, on these photos and on `large_count`
    of them scaled up to `large_side` pixels; and augmented photos as training reads them
    (`_augmented_figures`)."""
    from bigcats.lesson.data import make_dataset

    naive = statistics.harmonic_mean([cv2_loop(items, image_size) for _ in range(epochs)])  # all photos / all time
    tfdata = _images_per_second(make_dataset(items, image_size, batch_size), len(items), epochs)
    result = {
        "images": len(items),
        "epochs": epochs,
        "naive_images_per_second": naive,
        "tfdata_images_per_second": tfdata,
        "ratio": tfdata / naive,
        "first_pass": {
            "cv2_images_per_second": cv2_loop(items, image_size),
            "tfdata_images_per_second": first_pass(items, image_size),
        },
    }
    if large_count:
        result["large_jpegs"] = _large_jpegs_figures(items, image_size, large_count, large_side)
    return {**result, **_augmented_figures(items, image_size, batch_size, epochs)}


def batched_augmentation(items, image_size, batch_size):
    """Batches of augmented photos, repeating, as training gets them: from the tf.data pipeline on
    TensorFlow; on PyTorch or JAX (whose operations cannot run inside tf.data) the decoded photos
    from tf.data, augmented by the `Augmentation` layer on the backend's device, as in the training step."""
    import keras

    from bigcats.lesson.augment import Augmentation
    from bigcats.lesson.data import make_dataset

    if keras.backend.backend() == "tensorflow":
        return make_dataset(items, image_size, batch_size, training=True).repeat()
    decoded = make_dataset(items, image_size, batch_size, training=True, augment_in="step").repeat()
    return InTheStep(decoded, Augmentation(image_size, seed=config.SEED))


def keras_layers(image_size, seed=config.SEED):
    """Keras' own preprocessing layers making the kinds of change `augment_batch` makes, for
    timing: mirrored, tilted up to 0.05 of a turn, closer (to 0.6 of the side) or farther away (to
    1.8x), each axis on its own (wider, taller), anywhere, resized with antialiasing, then
    brightness, contrast, saturation, now and then black and white. Only low resolutions have no layer."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomRotation(0.05, fill_mode="reflect", seed=seed),
            layers.RandomZoom((-0.4, 0.8), (-0.4, 0.8), fill_mode="reflect", seed=seed),
            layers.RandomTranslation(0.2, 0.2, fill_mode="reflect", seed=seed),
            layers.Resizing(image_size, image_size, antialias=True),
            layers.RandomBrightness(0.1, seed=seed),
            layers.RandomContrast(0.2, seed=seed),
            layers.RandomSaturation((0.3, 0.7), seed=seed),
            layers.RandomGrayscale(0.1, seed=seed),
        ],
        name="keras_layers_augmentation",
    )


def keras_layers_dataset(items, image_size, batch_size):
    """The training pipeline's decoded photos, a batch at a time through `keras_layers` in tf.data
    (where Keras' preprocessing layers run on any backend), repeating."""
    import tensorflow as tf

    from bigcats.lesson.data import make_dataset

    augmentation = keras_layers(image_size)
    decoded = make_dataset(items, image_size, batch_size, training=True, augment_in="step").repeat()
    return decoded.map(
        lambda images, labels: (augmentation(tf.cast(images, tf.float32), training=True), labels),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


class InTheStep:
    """A pipeline of decoded photos, each batch augmented by `layer` when it is read."""

    def __init__(self, decoded, layer):
        self.decoded, self.layer = decoded, layer

    def __iter__(self):
        return ((self.layer(images, training=True), labels) for images, labels in self.decoded)


def _read(reader, batches):
    """Seconds to read `batches` batches from an iterator (the images brought to the host)."""
    import keras

    start = time.perf_counter()
    for _ in range(batches):
        keras.ops.convert_to_numpy(next(reader)[0])  # the backend's tensors, whichever it is
    return time.perf_counter() - start


def _images_per_second(dataset, images, epochs):
    start = time.perf_counter()
    for _ in range(epochs):
        for batch, _ in dataset:
            batch.numpy()
    return images * epochs / (time.perf_counter() - start)


def fit_images_per_second(items, image_size=config.IMAGE_SIZE, batch_size=config.BATCH_SIZE, epochs=2):
    """Images/second of `model.fit` end to end, input and augmentation included, placed as
    `bigcats train` places them: the last of `epochs` epochs (the first fills the cache and
    compiles). Returns (images/second, where the augmentation ran)."""
    import keras

    from bigcats.lesson.augment import with_augmentation
    from bigcats.lesson.data import make_dataset
    from bigcats.lesson.devices import training_setup
    from bigcats.lesson.model import build_cnn, compile_model

    setup = training_setup()
    dataset = make_dataset(items, image_size, batch_size, training=True, augment_in=setup.augment_on)
    with setup.strategy.scope():
        model = build_cnn(image_size, num_classes=max(label for _, label in items) + 1, seed=config.SEED)
        trainer = compile_model(with_augmentation(model, image_size) if setup.augment_on == "step" else model)

    class EpochTimes(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds = time.perf_counter() - self.start

    clock = EpochTimes()
    steps = -(-len(items) // batch_size)
    # shuffle=False: the pipeline shuffles (Keras would only warn that it ignores its own shuffle)
    trainer.fit(dataset.repeat(), steps_per_epoch=steps, epochs=epochs, shuffle=False, callbacks=[clock], verbose=0)
    return len(items) / clock.seconds, setup.augment_on


def run_benchmark(
    data_dir=None,
    image_size=config.IMAGE_SIZE,
    batch_size=config.BATCH_SIZE,
    steps=5,
    warmup_steps=2,
    repeats=3,
    pipeline_epochs=3,
    progress=True,
    large_photos=24,
    large_side=4000,
):
    """The `benchmark --json` object: per-device training speed, GPU speed-up, input pipeline
    (`large_photos` of the photos scaled up to `large_side` pixels for the decoding figures)."""
    from tqdm.auto import tqdm

    from bigcats.lesson.clean import BadImagesError, bad_images_message, find_unusable
    from bigcats.lesson.data import list_images, resolve_data_dir

    devices = available_devices()
    results = [
        benchmark_device(d, image_size, batch_size, steps, warmup_steps, repeats)
        for d in tqdm(devices, desc="Benchmarking devices", unit="device", disable=not progress)
    ]
    cpu = max((r["images_per_second"] for r in results if r["kind"] == "CPU"), default=None)
    gpu = max((r["images_per_second"] for r in results if r["kind"] == "GPU"), default=None)
    notes = [
        f"batch {batch_size}, {image_size}x{image_size} images, {steps} steps x {repeats} repeats "
        f"(median), {warmup_steps} warm-up steps excluded"
    ]
    if gpu is None:
        notes.append(_no_gpu_note())
    result = {"devices": results, "gpu_speedup": gpu / cpu if gpu and cpu else None, "pipeline": None, "notes": notes}

    data_dir, synthetic = resolve_data_dir(data_dir or config.DATA_DIR)
    items = list_images(data_dir)
    bad = find_unusable([p for p, _ in items], progress=progress)
    if bad:  # the cv2 loop would die on them with an unhelpful error
        raise BadImagesError(bad_images_message(bad, data_dir))
    if items:
        result["pipeline"] = benchmark_pipeline(
            items, image_size, batch_size, pipeline_epochs, large_photos, large_side
        )
        result["pipeline"]["data_dir"] = str(data_dir)
        result["pipeline"]["synthetic_data"] = synthetic
        fit, place = fit_images_per_second(items, image_size, batch_size)
        result["pipeline"].update(fit_images_per_second=fit, augmentation=place)
        result["pipeline"]["pace"] = pace_note(
            result["pipeline"]["augmented_images_per_second"], max(gpu or 0, cpu or 0), gpu is not None, fit
        )
    return result


def _no_gpu_note():
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        return f"No GPU visible to Keras on {backend}, so no speed-up can be measured (`python -m bigcats doctor` says why)."
    from bigcats.environment.doctor import gather_facts, why_no_gpu

    return "No GPU visible to TensorFlow, so no speed-up can be measured: " + why_no_gpu(gather_facts())


# The slower of two lent NVIDIA H100 machines with this model at 144 px, batch 16
# (docs/benchmarks.md#what-a-gpu-buys), as a reference for those without a GPU: not a result of this run.
GPU_IMAGES_PER_SECOND = 2250


def pace_note(augmented, training, have_gpu, fit=None):
    """Which sets the pace of training, from what was measured: the CPU preparing augmented photos
    (`augmented`/s), the model's steps alone (`training`/s), and `model.fit` doing both (`fit`/s)."""
    note = (
        f"This CPU prepares {augmented:.0f} augmented photos/s; the {'GPU' if have_gpu else 'CPU'} trains the "
        f"model alone on {training:.0f}/s"
    )
    if fit:
        note += f", model.fit with its input on {fit:.0f}/s"
    if augmented < training:
        return note + ": the input pipeline sets the pace of training, not the device."
    if have_gpu:
        return note + ": the GPU sets the pace."
    if fit:
        note += f" (input and augmentation take {max(training / fit - 1, 0):.0%} more time than the model alone)"
    note += (
        f". An H100 GPU trained this model on at least {GPU_IMAGES_PER_SECOND:,} photos/s at 144 px, batch 16 "
        f"(docs/benchmarks.md#what-a-gpu-buys)"
    )
    return note + (
        ": faster than this CPU augments, so with a GPU the augmentation runs on the GPU, in the training step."
        if augmented < GPU_IMAGES_PER_SECOND
        else "."
    )


def train_record(*args, **kwargs):
    """bigcats.lesson.train.train, returning only the (picklable) record. Its progress goes to standard
    error: a fresh process writes to the real standard output, which `--json` keeps for JSON."""
    import contextlib

    from bigcats.lesson.train import train

    with contextlib.redirect_stdout(sys.stderr):
        return train(*args, **kwargs)[1]


def _in_fresh_process(function, *args, **kwargs):
    """Run in a new Python process, so that neither model's time depends on what ran before it
    in the same process (once here, 39 s alone against 50 s after another model; this machine's
    noise is also about 20%, so each model gets the same clean start instead)."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args, kwargs)


def _hard_copies(data_dir, work_dir, stress_copies):
    """{check: folder} of hard transformed copies of data_dir's test split: `stress` (other
    framing, distance, sizes, light and compression) and `farther` (from farther away only)."""
    from bigcats.lesson.data import class_names, split_images
    from bigcats.lesson.robustness import make_stress_set

    names = class_names(data_dir)
    test_items = split_images(data_dir)["test"]
    return {
        "stress": make_stress_set(test_items, names, work_dir / "stress", copies=stress_copies),
        "farther": make_stress_set(test_items, names, work_dir / "farther", copies=2, kind="farther"),
    }


def compare_recipes(
    data_dir,
    work_dir,
    image_size=config.IMAGE_SIZE,
    epochs=config.EPOCHS,
    original_size=256,
    original_epochs=20,
    stress_copies=3,
    rounds=1,
):
    """Train the 2022 recipe and the tutorial's default side by side, in this run, on the same
    split; score both on the test split, on hard transformed copies of it (an independent check:
    other framing, distance, sizes, light and compression) and on copies of it from farther away
    only. Returns the table and the time ratio: with `rounds` > 1, both are trained that many
    times, interleaved, and the ratio is the median of the rounds' ratios (each round's two runs
    are close in time, so a machine that slows down for a while slows both).

    The 2022 recipe keeps its own input pipeline (every photo decoded again every epoch, no
    cache), batch size (32) and learning rate (Adam's default, constant), but not its take/skip
    split, which leaked test photos into training."""
    from bigcats.benchmark.baselines import original_recipe_settings

    if rounds < 1:
        raise ValueError(f"rounds={rounds}: give 1 or more (3 gives a firmer time ratio on a noisy machine).")
    checks = _hard_copies(data_dir, Path(work_dir), stress_copies)
    recipes = [
        ("original 2022 recipe", "original", original_recipe_settings(original_size, original_epochs)),
        ("tutorial default", "tutorial", dict(image_size=image_size, epochs=epochs)),
    ]
    runs = {slug: [] for _, slug, _ in recipes}
    for round_index in range(rounds):
        # each recipe goes first in every other round, so neither always inherits the other's wake
        for label, slug, settings in recipes[::-1] if round_index % 2 else recipes:
            print(f"Round {round_index + 1} of {rounds}: training the {label}...", flush=True)
            runs[slug].append(_train_and_score(data_dir, checks, Path(work_dir) / f"{slug}.keras", settings))
    rows = [_recipe_row(label, settings["image_size"], runs[slug]) for label, slug, settings in recipes]
    ratios = [t["train_seconds"] / o["train_seconds"] for o, t in zip(runs["original"], runs["tutorial"])]
    return {
        "recipes": rows,
        "time_ratio": statistics.median(ratios),
        "time_ratios": ratios,
        "rounds": rounds,
        **{f"{kind}_images": sum(1 for _ in folder.rglob("*.jpg")) for kind, folder in checks.items()},
        "data_dir": str(data_dir),
    }


def _train_and_score(data_dir, checks, path, settings):
    from bigcats.lesson.evaluate import evaluate

    # the benchmark's own scratch model, trained again, from the start, every round
    record = _in_fresh_process(train_record, data_dir, path, verbose=2, overwrite=True, restart=True, **settings)
    return {
        "epochs_run": record["epochs_run"],
        "train_seconds": record["train_seconds"],
        "test_accuracy": evaluate(path, data_dir, "test")[0]["accuracy"],
        **{f"{kind}_accuracy": evaluate(path, folder, "all")[0]["accuracy"] for kind, folder in checks.items()},
    }


def _recipe_row(label, image_size, runs):
    """One recipe's line of the table: median time (and each run's), mean accuracies."""
    mean = lambda key: statistics.mean(r[key] for r in runs)
    return {
        "recipe": label,
        "image_size": image_size,
        "epochs_run": runs[-1]["epochs_run"],
        "train_seconds": statistics.median(r["train_seconds"] for r in runs),
        "train_seconds_each": [r["train_seconds"] for r in runs],
        "test_accuracy": mean("test_accuracy"),
        "stress_accuracy": mean("stress_accuracy"),
        "farther_accuracy": mean("farther_accuracy"),
    }
