"""Lesson: finding the photos, splitting them without leaks, and feeding them to TensorFlow.

Layout: DATA_DIR/<class>/*.jpg, one folder per class, as `keras.utils.image_dataset_from_directory`
expects. The split is decided per photo by a hash of its bytes, so it never changes between
runs, an exact duplicate can never land in two splits, and adding photos never moves old ones.
"""

import hashlib
import os
import sys
from pathlib import Path

from bigcats.lesson.synthetic import is_synthetic, make_synthetic_dataset, synthetic_banner

# The extensions Keras' directory loader lists; anything else is ignored by it, so we refuse it.
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
CLUTTER_NAMES = {"thumbs.db", "desktop.ini", "__macosx"}
SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.70, 0.15, 0.15)
QUARANTINE_MARKER = "REASONS.txt"  # `clean` writes it in every quarantine folder: never a class


def is_clutter(path):
    """System files (.DS_Store, Thumbs.db, hidden files) that are no one's photo."""
    name = Path(path).name
    return name.startswith(".") or name.lower() in CLUTTER_NAMES


def class_names(data_dir):
    """The class folders under `data_dir`, sorted; their order fixes the label numbers. A
    quarantine folder (it holds `clean`'s REASONS.txt) is never a class, wherever it is."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return []
    return sorted(
        p.name for p in data_dir.iterdir() if p.is_dir() and not is_clutter(p) and not (p / QUARANTINE_MARKER).exists()
    )


def list_files(data_dir):
    """Every non-clutter file under each class folder, as (path, class_index), sorted."""
    items = []
    for index, name in enumerate(class_names(data_dir)):
        for root, dirs, files in os.walk(Path(data_dir) / name):
            dirs[:] = sorted(d for d in dirs if not is_clutter(d))
            items += [(Path(root) / f, index) for f in sorted(files) if not is_clutter(f)]
    return items


def has_image_extension(path):
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def list_images(data_dir):
    """The files the training loader reads: (path, class_index) with an image extension."""
    return [(p, i) for p, i in list_files(data_dir) if has_image_extension(p)]


def file_digest(path):
    """The SHA-256 of a file's bytes, as hex: equal digests mean identical files."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def split_of_digest(digest, fractions=SPLIT_FRACTIONS):
    """Map a content hash to 'train', 'val' or 'test' with the given fractions."""
    position = int(digest[:12], 16) / 16**12
    edge = 0.0
    for split, fraction in zip(SPLITS, fractions):
        edge += fraction
        if position < edge:
            return split
    return SPLITS[-1]


def split_images(data_dir, fractions=SPLIT_FRACTIONS):
    """{'train': [(path, label)...], 'val': [...], 'test': [...]}, decided by file content."""
    splits = {name: [] for name in SPLITS}
    for path, label in list_images(data_dir):
        splits[split_of_digest(file_digest(path), fractions)].append((path, label))
    return splits


def count_per_class(items, names):
    """{class name: how many of the (path, label) items have that label}, every class listed."""
    counts = {name: 0 for name in names}
    for _, label in items:
        counts[names[label]] += 1
    return counts


def has_photos(data_dir):
    """Whether `data_dir` holds images of two classes or more: something to train on."""
    return len({label for _, label in list_images(data_dir)}) >= 2


def resolve_data_dir(data_dir, synthetic_dir=None, per_class=100):
    """Return (folder to use, is_synthetic): `data_dir` if it holds photos of two or more
    classes, else a synthetic set (made once, in `synthetic_dir`), announced loudly."""
    data_dir = Path(data_dir)
    if has_photos(data_dir):
        return data_dir, is_synthetic(data_dir)
    synthetic_dir = Path(synthetic_dir or data_dir.parent / "synthetic")
    if not is_synthetic(synthetic_dir):
        make_synthetic_dataset(synthetic_dir, per_class=per_class)
    print(synthetic_banner(synthetic_dir), file=sys.stderr)
    print(f"SYNTHETIC DATA in use: {synthetic_dir} (no photos in {data_dir})")
    return synthetic_dir, True


def title(text, synthetic):
    """Plot titles say so when the images are synthetic."""
    return f"{text}  [SYNTHETIC images]" if synthetic else text


# --- TensorFlow input pipeline -------------------------------------------------------------


def exif_orientation(path):
    """The EXIF orientation tag (1-8, 1 = stored upright). Phones store many photos sideways
    with this tag; TensorFlow's decoders ignore it, so we apply it ourselves."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return int(image.getexif().get(0x0112, 1)) if image.format == "JPEG" else 1
    except Exception:
        return 1  # unreadable files are the cleaner's business, not this function's


def apply_orientation(image, orientation):
    """Turn a decoded image upright, as PIL's ImageOps.exif_transpose would: EXIF's eight
    orientations are a transpose, a mirror and an upside-down flip, each on or off (three cheap
    conditions, where a `switch_case` of eight branches cost a quarter of the decoding time)."""
    import tensorflow as tf

    orientation = tf.cast(orientation, tf.int32)

    def when(cases, image, change):
        return tf.cond(tf.reduce_any(tf.equal(orientation, cases)), lambda: change(image), lambda: image)

    image = when([5, 6, 7, 8], image, lambda x: tf.transpose(x, [1, 0, 2]))  # on its side
    image = when([2, 3, 6, 7], image, lambda x: tf.reverse(x, [1]))  # mirrored left to right
    return when([3, 4, 7, 8], image, lambda x: tf.reverse(x, [0]))  # upside down


# libjpeg decodes at 1/2, 1/4 or 1/8 of the size almost that much faster: a 24-megapixel photo
# need not be decoded whole to make a 216-pixel image (docs/benchmarks.md#input-that-never-sets-the-pace).
JPEG_SCALES = (1, 2, 4, 8)


def decode_photo(data, shortest=0):
    """Bytes -> uint8 RGB (height, width, 3). A JPEG whose shorter side is `shortest` pixels or
    more at 1/2, 1/4 or 1/8 of its size is decoded at the smallest such scale; other formats whole."""
    import tensorflow as tf

    def jpeg():
        size = tf.reduce_min(tf.image.extract_jpeg_shape(data)[:2])
        scale = sum(tf.cast(size >= factor * shortest, tf.int32) for factor in JPEG_SCALES[1:])
        decoders = [lambda f=f: tf.io.decode_jpeg(data, channels=3, ratio=f) for f in JPEG_SCALES]
        return tf.switch_case(scale, decoders) if shortest else decoders[0]()

    def other():
        return tf.io.decode_image(data, channels=3, expand_animations=False)

    return tf.cond(tf.io.is_jpeg(data), jpeg, other)


def resize(image, image_size):
    """A decoded image as a float32 (image_size, image_size, 3) square, antialiased: without that,
    a 3000-pixel photo shrunk to 144 pixels samples scattered pixels, and fur turns into
    stripe-like noise. (Averaging each new pixel's area instead was 2.5 times faster, but made
    photos sharper than those the model was chosen on, and it scored lower:
    docs/benchmarks.md#input-that-never-sets-the-pace.)"""
    import tensorflow as tf

    return tf.image.resize(image, (image_size, image_size), antialias=True)


def decode_and_resize(data, image_size, orientation=1, shortest=None):
    """Bytes -> float32 RGB tensor in [0, 255], (size, size, 3), upright. Training and
    prediction both come through here, so a photo is always read the same way (RGB, upright,
    same size, same scale). The image is turned upright after resizing: the same pixels (the
    square is resized the same way either way round), fewer to move. `shortest`: the shorter side
    a JPEG is decoded to at least (`decode_photo`; by default image_size, 0 for whole)."""
    shortest = image_size if shortest is None else shortest
    return apply_orientation(resize(decode_photo(data, shortest), image_size), orientation)


def load_image(path, image_size, orientation=None):
    """One photo file as the model reads it: float32 RGB in [0, 255], (image_size, image_size, 3),
    upright (EXIF orientation applied, read from the file unless given)."""
    import tensorflow as tf

    if orientation is None:
        orientation = exif_orientation(path)
    return decode_and_resize(
        tf.io.read_file(path if isinstance(path, tf.Tensor) else str(path)), image_size, orientation
    )


def load_for_augmenting(path, image_size, orientation=None):
    """A photo as `augment` starts from it: decoded FRAMING_MARGIN times larger than the model's
    input, in whole-number pixels (uint8: the training pipeline caches these, 4x less memory than
    float32)."""
    import tensorflow as tf

    from bigcats.lesson.augment import decoded_size

    return tf.cast(tf.round(load_image(path, decoded_size(image_size), orientation)), tf.uint8)


def shuffled_in_memory(decoded, count, batch_size, seed):
    """Batches of the `count` (image, label) pairs that `decoded` yields in batches, in a new order every epoch: the images
    are decoded once, now, into one tensor, and each epoch shuffles their indices. (Shuffling the
    images themselves refilled a buffer of all of them at the start of every epoch, a pause of
    tens of milliseconds before each first batch: docs/benchmarks.md#input-that-never-sets-the-pace.)"""
    import numpy as np
    import tensorflow as tf
    from tqdm.auto import tqdm

    images, labels = [], []
    with tqdm(total=count, desc="Decoding photos", unit="photo", leave=False, disable=count < 2000) as progress:
        for image_batch, label_batch in decoded:
            images.append(image_batch.numpy())
            labels.append(label_batch.numpy())
            progress.update(len(label_batch))
    # variables: the pipeline refers to them (a constant would be copied into it for every epoch)
    images = tf.Variable(np.concatenate(images), trainable=False)
    labels = tf.Variable(np.concatenate(labels), trainable=False)
    order = tf.data.Dataset.range(count).shuffle(count, seed=seed, reshuffle_each_iteration=True)
    batches = order.batch(batch_size).map(lambda index: (tf.gather(images, index), tf.gather(labels, index)))
    return batches.prefetch(tf.data.AUTOTUNE)


def input_pipeline(items, load, batch_size, training=False, seed=0, cache=True):
    """(path, label) pairs -> a tf.data pipeline of (images, labels) batches: each photo read and
    decoded in parallel by `load(path, orientation)`, cached (decoded once, not every epoch),
    reshuffled every epoch for training, batched, and prefetched (the next batch is made while the
    model trains on this one). Notebook 04 writes the same lines in its cells."""
    import tensorflow as tf

    paths = [str(path) for path, _ in items]
    turns = [exif_orientation(path) for path in paths]  # which way up: read from each file's header
    labels = [int(label) for _, label in items]
    ds = tf.data.Dataset.from_tensor_slices((paths, turns, labels))
    ds = ds.map(lambda path, turn, label: (load(path, turn), label), num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        ds = ds.cache()
    if training:
        ds = ds.shuffle(max(len(paths), 1), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def augmented_in_pipeline(batches, image_size, seed):
    """`batches` of photos as decoded for augmenting, each batch augmented a batch ahead of the
    model (`augment.augment_batch`, compiled), with new random draws every batch and every epoch."""
    import tensorflow as tf

    from bigcats.lesson.augment import DRAWS, compiled_augment_batch

    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    augment_images = compiled_augment_batch(image_size)

    def augment(batch, batch_seed):
        images, labels = batch
        return augment_images(images, tf.random.stateless_uniform([tf.shape(images)[0], DRAWS], batch_seed)), labels

    return (
        tf.data.Dataset.zip(batches, seeds).map(augment, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    )


def make_dataset(
    items, image_size, batch_size, training=False, seed=0, cache=True, augmenting=None, augment_in="pipeline"
):
    """The pipeline training and evaluation read: `input_pipeline`, with the photos decoded for
    augmenting where they will be augmented (by default for training only), here in the pipeline
    when `augment_in` is "pipeline" (`augmented_in_pipeline`), or later in the training step
    ("step": the batches are the photos as decoded, uint8 at FRAMING_MARGIN times the size, for
    `augment.Augmentation`). A cached training set is decoded into memory at once
    (`shuffled_in_memory`). cache=False decodes every file again every epoch, as the original 2022
    recipe did."""
    if augment_in not in ("pipeline", "step"):
        raise ValueError(f"augment_in={augment_in!r}: give 'pipeline' or 'step'")
    augmenting = training if augmenting is None else augmenting
    read = load_for_augmenting if augmenting else load_image

    def load(path, turn):
        return read(path, image_size, turn)

    if cache and training and items:
        batches = shuffled_in_memory(input_pipeline(items, load, 64, cache=False), len(items), batch_size, seed)
    else:
        batches = input_pipeline(items, load, batch_size, training, seed, cache)
    return augmented_in_pipeline(batches, image_size, seed) if augmenting and augment_in == "pipeline" else batches
