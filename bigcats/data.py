"""Finding the photos, splitting them without leaks, and feeding them to TensorFlow.

Layout: DATA_DIR/<class>/*.jpg, one folder per class, as `keras.utils.image_dataset_from_directory`
expects. The split is decided per photo by a hash of its bytes, so it never changes between
runs, an exact duplicate can never land in two splits, and adding photos never moves old ones.
"""

import hashlib
import os
import sys
from pathlib import Path

from bigcats.augment import FRAMING_MARGIN, augment

# The extensions Keras' directory loader lists; anything else is ignored by it, so we refuse it.
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
CLUTTER_NAMES = {"thumbs.db", "desktop.ini", "__macosx"}
SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.70, 0.15, 0.15)
SYNTHETIC_MARKER = "SYNTHETIC.txt"
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


def is_synthetic(data_dir):
    return (Path(data_dir) / SYNTHETIC_MARKER).exists()


def synthetic_banner(data_dir):
    line = "#" * 78
    return (
        f"{line}\n# SYNTHETIC DATA: no photos found, so the tutorial runs on generated images in\n"
        f"#   {data_dir}\n# Results on them say nothing about real lions and tigers. Put real photos in\n"
        f"# data/raw/lion/ and data/raw/tiger/ (see data/README.md) and run again.\n{line}"
    )


def resolve_data_dir(data_dir, synthetic_dir=None, per_class=60):
    """Return (folder to use, is_synthetic): `data_dir` if it holds photos of two or more
    classes, else a synthetic set (made once, in `synthetic_dir`), announced loudly."""
    data_dir = Path(data_dir)
    if len({label for _, label in list_images(data_dir)}) >= 2:
        return data_dir, is_synthetic(data_dir)
    from bigcats.synthetic import make_synthetic_dataset

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
    """Turn a decoded image upright, as PIL's ImageOps.exif_transpose would."""
    import tensorflow as tf

    transpose = lambda x: tf.transpose(x, [1, 0, 2])
    branches = [
        lambda: image,  # 1: upright
        lambda: tf.image.flip_left_right(image),  # 2: mirrored
        lambda: tf.image.rot90(image, 2),  # 3: upside down
        lambda: tf.image.flip_up_down(image),  # 4: mirrored upside down
        lambda: transpose(image),  # 5: mirrored, on its side
        lambda: tf.image.rot90(image, 3),  # 6: on its side (the common portrait case)
        lambda: tf.image.rot90(transpose(image), 2),  # 7: mirrored, on its other side
        lambda: tf.image.rot90(image, 1),  # 8: on its other side
    ]
    index = tf.clip_by_value(tf.cast(orientation, tf.int32) - 1, 0, 7)
    return tf.switch_case(index, branches)


def decode_and_resize(data, image_size, orientation=1):
    """Bytes -> float32 RGB tensor in [0, 255], (size, size, 3), upright. Training and
    prediction both come through here, so a photo is always read the same way (RGB, upright,
    same size, same scale). antialias: without it, shrinking a 3000-pixel photo to 144 pixels
    samples scattered pixels, and fur turns into stripe-like noise."""
    import tensorflow as tf

    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    return tf.image.resize(apply_orientation(image, orientation), (image_size, image_size), antialias=True)


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

    return tf.cast(tf.round(load_image(path, round(image_size * FRAMING_MARGIN), orientation)), tf.uint8)


def make_dataset(items, image_size, batch_size, training=False, seed=0, cache=True, augmenting=None):
    """A tf.data pipeline: parallel decode+resize, cache (decode once, not every epoch),
    reshuffle each epoch for training only, a new framing and look of every photo every epoch
    (`augment.augment`; by default for training only), batch, prefetch (overlap input with GPU
    work). cache=False decodes every file again every epoch, as the original 2022 recipe did."""
    import tensorflow as tf

    augmenting = training if augmenting is None else augmenting
    paths = [str(p) for p, _ in items]
    labels = [int(label) for _, label in items]
    turns = [exif_orientation(p) for p in paths]  # read in Python: header only, fast
    ds = tf.data.Dataset.from_tensor_slices((paths, turns, labels))
    load = load_for_augmenting if augmenting else load_image
    ds = ds.map(lambda p, t, y: (load(p, image_size, t), y), num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        ds = ds.cache()
    if training:
        ds = ds.shuffle(max(len(paths), 1), seed=seed, reshuffle_each_iteration=True)
    if augmenting:  # one seed per photo, new ones every epoch
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip(ds, seeds).map(
            lambda item, s: (augment(item[0], image_size, s), item[1]), num_parallel_calls=tf.data.AUTOTUNE
        )
    ds = ds.batch(batch_size)
    return ds.prefetch(tf.data.AUTOTUNE)
