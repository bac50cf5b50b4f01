"""Finding the photos, splitting them without leaks, and feeding them to TensorFlow.

Layout: DATA_DIR/<class>/*.jpg, one folder per class, as `keras.utils.image_dataset_from_directory`
expects. The split is decided per photo by a hash of its bytes, so it never changes between
runs, an exact duplicate can never land in two splits, and adding photos never moves old ones.
"""

import hashlib
import os
import sys
from pathlib import Path

# The extensions Keras' directory loader lists; anything else is ignored by it, so we refuse it.
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
CLUTTER_NAMES = {"thumbs.db", "desktop.ini", "__macosx"}
SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.70, 0.15, 0.15)
SYNTHETIC_MARKER = "SYNTHETIC.txt"


def is_clutter(path):
    """System files (.DS_Store, Thumbs.db, hidden files) that are no one's photo."""
    name = Path(path).name
    return name.startswith(".") or name.lower() in CLUTTER_NAMES


def class_names(data_dir):
    """The class folders under `data_dir`, sorted; their order fixes the label numbers."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return []
    return sorted(p.name for p in data_dir.iterdir() if p.is_dir() and not is_clutter(p))


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

    transpose = lambda x: tf.transpose(x, [1, 0, 2])  # noqa: E731
    branches = [
        lambda: image,                                   # 1: upright
        lambda: tf.image.flip_left_right(image),         # 2: mirrored
        lambda: tf.image.rot90(image, 2),                # 3: upside down
        lambda: tf.image.flip_up_down(image),            # 4: mirrored upside down
        lambda: transpose(image),                        # 5: mirrored, on its side
        lambda: tf.image.rot90(image, 3),                # 6: on its side (the common portrait case)
        lambda: tf.image.rot90(transpose(image), 2),     # 7: mirrored, on its other side
        lambda: tf.image.rot90(image, 1),                # 8: on its other side
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
    import tensorflow as tf

    if orientation is None:
        orientation = exif_orientation(path)
    return decode_and_resize(tf.io.read_file(path if isinstance(path, tf.Tensor) else str(path)), image_size, orientation)


# Training crops come from photos decoded this much larger than the model's input, so a
# tighter framing is still sharp. Zooming into the model-sized image instead (RandomZoom)
# taught the model that blurry means "lion" and sharp means "tiger": on plain photos it then
# called more than a third of the lions tigers (README, "How the default model was chosen").
FRAMING_MARGIN = 1.5


def reframe(image, image_size, seed, min_side=0.6, max_stretch=1.35, max_zoom_out=1.8, zoom_out_fraction=0.5,
            low_res_fraction=0.3):
    """A random new framing of one photo, as another photographer would take it: with chance
    `zoom_out_fraction` from farther away (the photo in the middle of a canvas up to
    `max_zoom_out` (at most 1.8) times its size, the border filled with its mirror image), then a
    crop of 60-100% of the side, anywhere, stretched or squeezed up to `max_stretch` (a wide or
    tall photo resized to a square), and with chance `low_res_fraction` a low-resolution version
    (a small web photo scaled up). `seed`: shape [2] integer tensor; the same seed gives the same
    framing. Returns float32 (image_size, image_size, 3)."""
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(seed, 8)
    uniform = lambda k, low=0.0, high=1.0: tf.random.stateless_uniform([], seeds[k], low, high)  # noqa: E731
    size = tf.cast(tf.shape(image)[:2], tf.float32)
    # at most 1.8: then a crop always shows more photo than mirror on either side (mirroring needs that)
    zoom = tf.where(uniform(7) < zoom_out_fraction, uniform(6, 1.0, min(max_zoom_out, 1.8)), 1.0)
    canvas = size * zoom
    side = uniform(0, min_side, 1.0)
    stretch = tf.sqrt(tf.exp(uniform(1, -tf.math.log(max_stretch), tf.math.log(max_stretch))))
    crop = tf.minimum(side * tf.stack([1 / stretch, stretch]), 1.0) * canvas  # (height, width)
    start = tf.stack([uniform(2), uniform(3)]) * (canvas - crop) - (canvas - size) / 2  # in the photo
    framed = _crop_with_mirrored_border(image, start, crop, image_size)
    low = tf.cast(uniform(4, 32, max(image_size - 16, 33)), tf.int32)

    def low_resolution():
        return tf.image.resize(tf.image.resize(framed, (low, low), antialias=True), (image_size, image_size))

    return tf.cond(uniform(5) < low_res_fraction, low_resolution, lambda: framed)


def _crop_with_mirrored_border(image, start, crop, image_size):
    """The window [start, start + crop) of `image` (it may reach past the edges), resized to
    image_size: the part inside the photo is resized, the rest filled by mirroring it. Only the
    visible part is resized, so zooming out costs little more than a plain crop."""
    import tensorflow as tf

    size = tf.cast(tf.shape(image)[:2], tf.float32)
    low, high = tf.maximum(start, 0.0), tf.minimum(start + crop, size)
    per_pixel = image_size / crop
    before = tf.cast(tf.round((low - start) * per_pixel), tf.int32)
    inner = tf.maximum(tf.cast(tf.round((high - low) * per_pixel), tf.int32), 1)
    inner = tf.minimum(inner, image_size - before)
    after = image_size - before - inner
    first, last = tf.cast(low, tf.int32), tf.cast(high, tf.int32)
    visible = tf.slice(image, tf.concat([first, [0]], 0), tf.concat([tf.maximum(last - first, 1), [3]], 0))
    framed = tf.image.resize(visible, inner, antialias=True)
    framed = tf.pad(framed, [[before[0], after[0]], [before[1], after[1]], [0, 0]], mode="SYMMETRIC")
    return tf.ensure_shape(framed, (image_size, image_size, 3))


def make_dataset(items, image_size, batch_size, training=False, seed=0, cache=True, reframing=None):
    """A tf.data pipeline: parallel decode+resize, cache (decode once, not every epoch),
    reshuffle each epoch for training only, new random framings (`reframe`; by default for
    training only), batch, prefetch (overlap input with GPU work).
    cache=False decodes every file again every epoch, as the original 2022 recipe did."""
    import tensorflow as tf

    reframing = training if reframing is None else reframing
    load_size = round(image_size * FRAMING_MARGIN) if reframing else image_size
    paths = [str(p) for p, _ in items]
    labels = [int(label) for _, label in items]
    turns = [exif_orientation(p) for p in paths]  # read in Python: header only, fast
    ds = tf.data.Dataset.from_tensor_slices((paths, turns, labels))
    ds = ds.map(lambda p, t, y: (load_image(p, load_size, t), y), num_parallel_calls=tf.data.AUTOTUNE)
    if reframing:  # whole-number pixels, cached as bytes: 4x less memory than float32
        ds = ds.map(lambda x, y: (tf.cast(tf.round(x), tf.uint8), y))
    if cache:
        ds = ds.cache()
    if training:
        ds = ds.shuffle(max(len(paths), 1), seed=seed, reshuffle_each_iteration=True)
    if reframing:  # one seed per photo, new ones every epoch
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip(ds, seeds).map(lambda item, s: (reframe(item[0], image_size, s), item[1]),
                                                num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size)
    return ds.prefetch(tf.data.AUTOTUNE)
