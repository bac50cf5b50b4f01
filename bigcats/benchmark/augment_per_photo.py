"""Benchmark baseline: the per-photo augmentation of rounds 4-8, the reference the batched augmentation
(`bigcats.lesson.augment`) is measured against, photo by photo on the same draws
(tests/test_augment_fidelity.py), and the baseline `benchmark` times it against
(docs/benchmarks.md#input-that-never-sets-the-pace). Training no longer uses it.

- `reframe`: a new framing, as another photographer would take it (closer, farther away, wider,
  taller, at a lower resolution);
- `new_look`: mirrored, tilted, lighter or darker, other contrast and colour, now and then black
  and white.

Both run per photo inside `tf.data.Dataset.map`, each change drawn from a stateless seed.
"""

import math

from bigcats.lesson.augment import check_framing


def reframe(
    image,
    image_size,
    seed,
    min_side=0.6,
    max_stretch=1.35,
    max_zoom_out=1.8,
    zoom_out_fraction=0.5,
    low_res_fraction=0.3,
):
    """A random new framing of one photo, as another photographer would take it: with chance
    `zoom_out_fraction` from farther away (the photo in the middle of a canvas up to
    `max_zoom_out` (at most 1.8) times its size, the border filled with its mirror image), then a
    crop of 60-100% of the side, anywhere, stretched or squeezed up to `max_stretch` (a wide or
    tall photo resized to a square), and with chance `low_res_fraction` a low-resolution version
    (a small web photo scaled up). `seed`: shape [2] integer tensor; the same seed gives the same
    framing. Returns float32 (image_size, image_size, 3)."""
    import tensorflow as tf

    check_framing(min_side, max_stretch, max_zoom_out)
    seeds = tf.random.experimental.stateless_split(seed, 8)
    uniform = lambda k, low=0.0, high=1.0: tf.random.stateless_uniform([], seeds[k], low, high)
    zoom = tf.where(uniform(7) < zoom_out_fraction, uniform(6, 1.0, max_zoom_out), 1.0)
    side = uniform(0, min_side, 1.0)
    stretch = tf.sqrt(tf.exp(uniform(1, -tf.math.log(max_stretch), tf.math.log(max_stretch))))
    where = tf.stack([uniform(2), uniform(3)])
    low = tf.where(uniform(5) < low_res_fraction, tf.floor(uniform(4, 32, max(image_size - 16, 33))), 0.0)
    return reframe_as_drawn(image, image_size, zoom, side, stretch, where, low)


def reframe_as_drawn(image, image_size, zoom, side, stretch, where, low):
    """`reframe` with its random values given (as `bigcats.lesson.augment.draw_changes` gives them for
    one photo; `low` 0: not at a low resolution)."""
    import tensorflow as tf

    size = tf.cast(tf.shape(image)[:2], tf.float32)
    canvas = size * zoom
    crop = tf.minimum(side * tf.stack([1 / stretch, stretch]), 1.0) * canvas  # (height, width)
    start = where * (canvas - crop) - (canvas - size) / 2  # in the photo
    framed = _crop_with_mirrored_border(image, start, crop, image_size)
    small = tf.cast(tf.maximum(low, 1.0), tf.int32)

    def low_resolution():
        return tf.image.resize(tf.image.resize(framed, (small, small), antialias=True), (image_size, image_size))

    return tf.cond(low > 0, low_resolution, lambda: framed)


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


def new_look(image, seed, max_turn=0.05, brightness=0.1, contrast=0.2, colour=(0.43, 2.33), grey_fraction=0.1):
    """One framed photo (float32 pixels in [0, 255]) seen anew: mirrored half the time, tilted by
    up to `max_turn` of a full turn (the corners filled with its mirror image), brightness
    shifted by up to `brightness` of the range, contrast scaled by 1 ± `contrast`, colour
    saturation scaled by a factor in `colour` (0 would be grey, 2 twice as vivid), and with
    chance `grey_fraction` black and white. `seed`: shape [2] integer tensor."""
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(seed, 7)
    uniform = lambda k, low=0.0, high=1.0: tf.random.stateless_uniform([], seeds[k], low, high)
    image = mirror_and_turn(image, uniform(0) < 0.5, uniform(1, -max_turn, max_turn) * 2 * math.pi)
    image = tf.clip_by_value(image + uniform(2, -brightness, brightness) * 255, 0.0, 255.0)
    mean = tf.reduce_mean(image, [0, 1], keepdims=True)
    image = tf.clip_by_value((image - mean) * uniform(3, 1 - contrast, 1 + contrast) + mean, 0.0, 255.0)
    # saturation as a blend with the photo's grey version (as PIL's ImageEnhance.Color does):
    # far cheaper than a round trip through HSV; log-uniform, so duller and more vivid are as likely
    saturation = tf.exp(uniform(4, math.log(colour[0]), math.log(colour[1])))
    saturation = tf.where(uniform(5) < grey_fraction, 0.0, saturation)
    grey = tf.reduce_sum(image * [0.299, 0.587, 0.114], axis=-1, keepdims=True)
    return tf.clip_by_value(grey + saturation * (image - grey), 0.0, 255.0)


def mirror_and_turn(image, mirror, angle):
    """`new_look`'s geometry with its random values given: mirrored (a bool) then turned by `angle` radians."""
    import tensorflow as tf

    return _turn(tf.cond(mirror, lambda: tf.reverse(image, [1]), lambda: image), angle)


def _turn(image, angle):
    """`image` rotated by `angle` radians about its centre, corners filled by mirroring."""
    import tensorflow as tf

    cos, sin = tf.cos(angle), tf.sin(angle)
    height, width = (tf.cast(n - 1, tf.float32) for n in tf.unstack(tf.shape(image)[:2]))
    # the projective transform maps each output pixel to the input pixel it samples
    transform = tf.stack(
        [
            cos,
            -sin,
            (width - (cos * width - sin * height)) / 2,
            sin,
            cos,
            (height - (sin * width + cos * height)) / 2,
            0.0,
            0.0,
        ]
    )
    turned = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None],
        transforms=transform[None],
        output_shape=tf.shape(image)[:2],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )
    return tf.ensure_shape(turned[0], image.shape)


def augment(image, image_size, seed):
    """A new framing and a new look of one decoded photo: float32 (image_size, image_size, 3)."""
    import tensorflow as tf

    # a seed each: with one seed for both, reframe's and new_look's draws would be the same numbers
    # (stateless_split(seed, 7) is the start of stateless_split(seed, 8))
    framing, look = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    return new_look(reframe(image, image_size, framing), look)


def per_photo_dataset(items, image_size, batch_size, seed=0):
    """The training pipeline as it was with this augmentation: decode, cache, shuffle, then
    `augment` photo by photo in `tf.data.Dataset.map`, then batch. For timing only."""
    import tensorflow as tf

    from bigcats.lesson.data import exif_orientation, load_for_augmenting

    paths = [str(p) for p, _ in items]
    ds = tf.data.Dataset.from_tensor_slices((paths, [exif_orientation(p) for p in paths], [y for _, y in items]))
    ds = ds.map(lambda p, t, y: (load_for_augmenting(p, image_size, t), y), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.cache().shuffle(max(len(paths), 1), seed=seed, reshuffle_each_iteration=True)
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    ds = tf.data.Dataset.zip(ds, seeds).map(
        lambda item, s: (augment(item[0], image_size, s), item[1]), num_parallel_calls=tf.data.AUTOTUNE
    )
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
