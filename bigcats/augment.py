"""Augmentation: every training photo a little different every epoch, so that a CNN trained on a
few hundred photos learns lions and tigers, not those photos. Two kinds of change:

- a new framing, as another photographer would take it: closer, farther away, wider, taller,
  at a lower resolution;
- a new look: mirrored, tilted, lighter or darker, other contrast and colour, now and then black
  and white.

Made a batch at a time, in plain Keras operations (`keras.ops`), so the same code runs in the
tf.data pipeline on a CPU and inside the training step on a GPU, with TensorFlow or JAX
(docs/benchmarks.md#input-that-never-sets-the-pace). Framing, mirror and tilt are one affine map
per photo, so each output pixel is sampled once: from a pyramid of the photo at 1/2, 1/4 ... of
its size, the level chosen by how many photo pixels fall on one output pixel, so that zooming out
and low-resolution copies are smooth, not aliased. Past the photo's edges it is mirrored.

Every change of a batch is drawn up front as uniform numbers (`draws`, one row per photo), so the
same numbers give the same photos anywhere: the pipeline draws them from a stateless seed, the
`Augmentation` layer from its seed generator.
"""

import functools
import math
import sys

import keras
from keras import ops

# Training crops come from photos decoded this much larger than the model's input, so a
# tighter framing is still sharp. Zooming into the model-sized image instead (RandomZoom)
# taught the model that blurry means "lion" and sharp means "tiger"
# (docs/model-selection.md#round-2-sharp-photos-the-cheap-stem-the-round-2-default).
FRAMING_MARGIN = 1.5
DRAWS = 14  # uniform numbers per photo: one for each random choice below
LEVELS = 5  # the pyramid: the photo, then 1/2, 1/4, 1/8 and 1/16 of its size
GREY_WEIGHTS = (0.299, 0.587, 0.114)  # the luma of ITU-R BT.601, as PIL's convert("L")
# Where a photo is shrunk, pyramid levels this much coarser than its footprint alone asks for:
# then, over all framings, the photos are as sharp as the per-photo augmentation's antialiased
# resizing made them; sharper, the model learns a sharpness that test photos do not have
# (tests/test_augment.py, docs/benchmarks.md#input-that-never-sets-the-pace).
SHARPNESS_MATCH = 0.35

# What the experiments chose (docs/model-selection.md#round-4-augmentation-in-the-input-pipeline,
# #round-3-from-farther-away): the framing, then the look.
FRAMING = dict(min_side=0.6, max_stretch=1.35, max_zoom_out=1.8, zoom_out_fraction=0.5, low_res_fraction=0.3)
LOOK = dict(max_turn=0.05, brightness=0.1, contrast=0.2, colour=(0.43, 2.33), grey_fraction=0.1)


def decoded_size(image_size):
    """The side, in pixels, photos are decoded to for augmenting: FRAMING_MARGIN times the model's input."""
    return round(image_size * FRAMING_MARGIN)


def draw_changes(draws, image_size, **settings):
    """The changes for a batch, one value per photo, from `draws` (uniform numbers in [0, 1),
    shape (photos, DRAWS)). Settings as in FRAMING and LOOK: with chance `zoom_out_fraction`
    from farther away (the photo in the middle of a canvas up to `max_zoom_out` times its size,
    the border its mirror image), a crop of `min_side` to all of the canvas' side, anywhere,
    stretched or squeezed up to `max_stretch`; with chance `low_res_fraction` at a low resolution
    (32 to image_size - 16 pixels, scaled up); mirrored half the time; turned by up to `max_turn`
    of a full turn; brightness shifted by up to `brightness` of the range; contrast scaled by
    1 ± `contrast`; saturation scaled by a factor in `colour` (log-uniform, so duller and more
    vivid are as likely), and with chance `grey_fraction` black and white."""
    s = {**FRAMING, **LOOK, **settings}
    check_framing(s["min_side"], s["max_stretch"], s["max_zoom_out"])
    draws = ops.cast(draws, "float32")

    def between(column, low, high):
        return low + (high - low) * draws[:, column]

    def chance(column, fraction):
        return draws[:, column] < fraction

    log_stretch, (duller, brighter) = math.log(s["max_stretch"]), s["colour"]
    return {
        "zoom": ops.where(chance(0, s["zoom_out_fraction"]), between(1, 1.0, s["max_zoom_out"]), 1.0),
        "side": between(2, s["min_side"], 1.0),
        "stretch": ops.exp(between(3, -log_stretch, log_stretch) / 2),  # width / height = stretch²
        "where": ops.stack([draws[:, 4], draws[:, 5]], axis=1),  # (down, across) within the free room
        "low_resolution": ops.where(chance(6, s["low_res_fraction"]), between(7, 32, max(image_size - 16, 33)), 0.0),
        "mirror": chance(8, 0.5),
        "turn": between(9, -s["max_turn"], s["max_turn"]) * 2 * math.pi,
        "brightness": between(10, -s["brightness"], s["brightness"]) * 255,
        "contrast": between(11, 1 - s["contrast"], 1 + s["contrast"]),
        "saturation": ops.where(
            chance(13, s["grey_fraction"]), 0.0, ops.exp(between(12, math.log(duller), math.log(brighter)))
        ),
    }


def check_framing(min_side, max_stretch, max_zoom_out):
    """A mirrored border can be at most as wide as the strip of photo it mirrors. Zoomed out
    at most 1.8x, a crop at the canvas' edge shows more photo than border on either side if it
    is at least 1 - 1/zoom of the canvas. Other settings would show mirrors of mirrors: refuse
    them up front, saying what to change."""
    if not 1 <= max_zoom_out <= 1.8:
        raise ValueError(
            f"max_zoom_out={max_zoom_out}: give 1 (never zoom out) to 1.8. Farther out, the "
            f"mirrored border would be wider than the photo it mirrors (and zooming out farther, mirrored "
            f"again, scored no better: docs/model-selection.md#after-round-7-what-else-was-tried)."
        )
    narrowest = min_side / math.sqrt(max_stretch)  # a crop's shorter side, as a fraction of the canvas
    if narrowest < 1 - 1 / max_zoom_out:
        raise ValueError(
            f"min_side={min_side}, max_stretch={max_stretch}, max_zoom_out={max_zoom_out}: "
            f"crops as narrow as {narrowest:.2f} of a canvas zoomed out {max_zoom_out}x can show more "
            f"mirror than photo. Keep min_side / sqrt(max_stretch) at least 1 - 1/max_zoom_out "
            f"({1 - 1 / max_zoom_out:.2f}): raise min_side or lower max_zoom_out."
        )


def photo_coordinates(changes, photo_size, image_size):
    """Where each output pixel samples the photo: (rows, columns), each (photos, image_size,
    image_size), in pixel indices of the photo (outside [0, size - 1] past its edges), and how
    many photo pixels fall on one output pixel (photos,). Output pixel (y, x) is turned about
    the centre, mirrored, then placed in the crop."""
    height, width = photo_size
    canvas = ops.stack([changes["zoom"] * height, changes["zoom"] * width], axis=1)
    shape = ops.stack([1 / changes["stretch"], changes["stretch"]], axis=1) * changes["side"][:, None]
    crop = ops.minimum(shape, 1.0) * canvas  # (height, width) in photo pixels
    photo = ops.convert_to_tensor([height, width], "float32")
    centre = changes["where"] * (canvas - crop) - (canvas - photo) / 2 + crop / 2 - 0.5
    scale = crop / image_size  # photo pixels per output pixel, down and across
    middle = (image_size - 1) / 2
    steps = ops.arange(image_size, dtype="float32") - middle
    down, across = steps[None, :, None], steps[None, None, :]
    cos, sin = ops.cos(changes["turn"])[:, None, None], ops.sin(changes["turn"])[:, None, None]
    mirror = ops.where(changes["mirror"], -1.0, 1.0)[:, None, None]
    rows = centre[:, 0, None, None] + scale[:, 0, None, None] * (sin * across + cos * down)
    columns = centre[:, 1, None, None] + scale[:, 1, None, None] * mirror * (cos * across - sin * down)
    return rows, columns, ops.sqrt(scale[:, 0] * scale[:, 1])


def pyramid(images, levels=LEVELS):
    """The photos at full size, 1/2, 1/4 ...: each level the 2x2 average of the one before."""
    images = [ops.cast(images, "float32")]
    for _ in range(levels - 1):
        images.append(ops.average_pool(images[-1], 2, strides=2, padding="valid"))
    return images


def _mirrored(index, size):
    """Pixel indices past either edge mirrored back inside, as the edge of a photo in a mirror:
    ... 2 1 0 | 0 1 2 ... size-1 | size-1 size-2 ..."""
    position = ops.mod(index + 0.5, 2 * size)
    return ops.where(position > size, 2 * size - position, position) - 0.5


def sample(levels, rows, columns, level_of_photo):
    """Bilinear samples of each photo at (rows, columns) (level-0 pixel indices), blending the two
    pyramid levels around `level_of_photo` (photos,), a fractional level. Returns (photos,
    image_size, image_size, channels), float32."""
    photos = ops.shape(rows)[0]
    sizes = [tuple(level.shape[1:3]) for level in levels]
    areas = [h * w for h, w in sizes]
    # whole numbers (uint8): the gathers are most of the time, and a quarter of float32's bytes
    # are quicker to gather; the photo itself is exact, its coarser levels within half a level
    flat = ops.concatenate(
        [
            ops.reshape(ops.cast(ops.clip(ops.round(level), 0, 255), "uint8"), (-1, levels[0].shape[-1]))
            for level in levels
        ],
        axis=0,
    )
    # where each level starts in `flat`: the levels before it, every photo of each
    starts = ops.cast(photos, "int32") * ops.convert_to_tensor([sum(areas[:k]) for k in range(len(levels))], "int32")
    lowest = ops.clip(ops.floor(level_of_photo), 0, len(levels) - 1)
    blend = ops.clip(level_of_photo - lowest, 0.0, 1.0)[:, None, None, None]
    lowest = ops.cast(lowest, "int32")
    return (1 - blend) * _sample_level(flat, starts, sizes, rows, columns, lowest) + blend * _sample_level(
        flat, starts, sizes, rows, columns, ops.minimum(lowest + 1, len(levels) - 1)
    )


def _sample_level(flat, starts, sizes, rows, columns, level):
    """Bilinear samples of each photo at its own pyramid `level` (photos,)."""
    heights = ops.take(ops.convert_to_tensor([h for h, _ in sizes], "int32"), level)
    widths = ops.take(ops.convert_to_tensor([w for _, w in sizes], "int32"), level)
    shrink = ops.power(2.0, ops.cast(level, "float32"))[:, None, None]
    first = ops.take(starts, level) + ops.arange(ops.shape(level)[0], dtype="int32") * heights * widths
    heights, widths, first = heights[:, None, None], widths[:, None, None], first[:, None, None]
    rows = _mirrored((rows + 0.5) / shrink - 0.5, ops.cast(heights, "float32"))
    columns = _mirrored((columns + 0.5) / shrink - 0.5, ops.cast(widths, "float32"))
    top, left = ops.floor(rows), ops.floor(columns)
    down, across = (rows - top)[..., None], (columns - left)[..., None]
    top, left = ops.cast(top, "int32"), ops.cast(left, "int32")

    def pixels(row, column):
        row, column = ops.clip(row, 0, heights - 1), ops.clip(column, 0, widths - 1)
        return ops.cast(ops.take(flat, first + row * widths + column, axis=0), "float32")

    upper = pixels(top, left) * (1 - across) + pixels(top, left + 1) * across
    lower = pixels(top + 1, left) * (1 - across) + pixels(top + 1, left + 1) * across
    return upper * (1 - down) + lower * down


def new_colours(images, changes):
    """Brightness, contrast (about each photo's mean) and saturation (a blend with the photo's
    grey version, as PIL's ImageEnhance.Color does: far cheaper than a round trip through HSV),
    clipped to [0, 255] once at the end."""
    brightness, contrast, saturation = (
        changes[k][:, None, None, None] for k in ("brightness", "contrast", "saturation")
    )
    mean = ops.mean(images, axis=(1, 2), keepdims=True)
    images = contrast * images + ((1 - contrast) * mean + brightness)
    grey = ops.sum(images * ops.convert_to_tensor(GREY_WEIGHTS, "float32"), axis=-1, keepdims=True)
    return ops.clip(grey + saturation * (images - grey), 0.0, 255.0)


def augment_batch(images, image_size, draws, **settings):
    """A new framing and a new look of every photo in a batch of decoded photos (any size, any
    number type, pixels in [0, 255]): float32 (photos, image_size, image_size, 3). `draws`:
    uniform numbers in [0, 1), shape (photos, DRAWS); settings as for `draw_changes`."""
    turned = frame_batch(images, image_size, draws, **settings)
    return finish_batch(enlarge_columns(turned, draws, **settings), draws, **settings)


def frame_batch(images, image_size, draws, **settings):
    """The first part of `augment_batch`: each photo framed, mirrored and tilted, sampled from the
    pyramid level its framing (and any lower resolution) calls for, and transposed, its columns
    as rows, for `enlarge_columns` (free here, where every pixel is sampled anyway)."""
    changes = draw_changes(draws, image_size, **settings)
    levels = pyramid(images)
    rows, columns, footprint = photo_coordinates(changes, tuple(levels[0].shape[1:3]), image_size)
    rows, columns = ops.transpose(rows, (0, 2, 1)), ops.transpose(columns, (0, 2, 1))
    low = changes["low_resolution"]
    # a low-resolution copy is a framing seen through fewer pixels: as blurred as a photo
    # that many times larger on each output pixel
    footprint = ops.where(low > 0, footprint * image_size / ops.maximum(low, 1.0), footprint)
    # shrinking (more than one photo pixel on an output pixel) smooths; enlarging does not
    level = ops.where(footprint > 1.0, ops.log2(ops.maximum(footprint, 1.0)) + SHARPNESS_MATCH, 0.0)
    return sample(levels, rows, columns, level)


def enlarge_columns(turned, draws, **settings):
    """The second part of `augment_batch`: the columns of the low-resolution copies, from images
    transposed by `frame_batch`, and back upright."""
    changes = draw_changes(draws, turned.shape[1], **settings)
    return ops.transpose(_enlarge_rows(turned, changes["low_resolution"]), (0, 2, 1, 3))


def finish_batch(framed, draws, **settings):
    """The last part of `augment_batch`: the rows of the low-resolution copies, then the new colours."""
    changes = draw_changes(draws, framed.shape[1], **settings)
    return new_colours(_enlarge_rows(framed, changes["low_resolution"]), changes)


@functools.cache
def compiled_augment_batch(image_size):
    """`augment_batch(images, image_size, draws)` on TensorFlow compiled with XLA, in its three
    parts (compiled as one, XLA recomputed the framing for every pixel the lower resolutions read;
    with a transpose and the reads after it in one part, it read each column one number at a time):
    fused into a few loops it ran several times faster on a CPU than op by op
    (docs/benchmarks.md#input-that-never-sets-the-pace). Where this TensorFlow cannot compile it,
    the same function op by op, said once."""
    import tensorflow as tf

    frame = tf.function(lambda images, draws: frame_batch(images, image_size, draws), jit_compile=True)
    columns = tf.function(enlarge_columns, jit_compile=True)
    finish = tf.function(finish_batch, jit_compile=True)

    def compiled(images, draws):
        return finish(columns(frame(images, draws), draws), draws)

    try:  # one small batch, now (not inside whatever is being traced): XLA compiles it here or not at all
        with tf.init_scope():
            compiled(tf.zeros((1, image_size, image_size, 3), tf.uint8), tf.zeros((1, DRAWS)))
    except (tf.errors.OpError, NotImplementedError, ValueError) as error:
        print(f"Augmenting without XLA ({str(error).splitlines()[0]}): slower, the same photos", file=sys.stderr)
        return tf.function(lambda images, draws: augment_batch(images, image_size, draws))
    return compiled


def lower_resolution(images, sizes):
    """Each image (photos, size, size, channels) as if shrunk to `sizes` (photos,) pixels a side
    and enlarged back, bilinearly, as a small web photo scaled up looks (0: left as it is). The
    images come already blurred to that scale (sampled from a coarser pyramid level), so each
    small pixel is read at its centre; enlarging blends the two around every output pixel, across
    the columns, then down the rows (whole rows at a time: cheap)."""
    columns = ops.transpose(_enlarge_rows(ops.transpose(images, (0, 2, 1, 3)), sizes), (0, 2, 1, 3))
    return _enlarge_rows(columns, sizes)


def _enlarge_rows(images, sizes):
    """The rows of each image (photos, size, size, channels) as if shrunk to `sizes` (photos,)
    rows and enlarged back: each row a blend of the two small rows around it, read at their centres."""
    size = images.shape[1]
    small = ops.where(sizes > 0, ops.floor(sizes), float(size))[:, None]  # (photos, 1)
    position = (ops.arange(size, dtype="float32")[None, :] + 0.5) * small / size - 0.5
    first = ops.floor(position)
    weight = (position - first)[:, :, None, None]
    # the small rows before and after each output row, as rows of the image at their centres
    rows = [ops.clip(ops.round((ops.clip(first + k, 0, small - 1) + 0.5) * size / small - 0.5), 0, size - 1) for k in (0, 1)]  # fmt: skip
    return _blend_rows(images, [ops.cast(r, "int32") for r in rows], weight)


def _blend_rows(images, rows, weight):
    """Row i of each image: rows[0][i] and rows[1][i] blended by weight[i]."""
    photos, size = ops.shape(images)[0], images.shape[1]
    flat = ops.reshape(images, (-1, size, images.shape[-1]))  # (photos * size rows, size, channels)
    first = (ops.arange(photos, dtype="int32") * size)[:, None]
    before, after = (ops.take(flat, first + r, axis=0) for r in rows)
    return before * (1 - weight) + after * weight


class Augmentation(keras.layers.Layer):
    """`augment_batch` as a Keras layer, for a training step that augments (on a GPU, or a CPU of few cores):
    new draws every step from its own seed generator; at inference it only resizes to the model's
    input. Never saved with the model: `with_augmentation` puts it in front of the
    model for training only."""

    def __init__(self, image_size, seed=None, **kwargs):
        kwargs.setdefault("dtype", "float32")  # the maths in float32, even under mixed precision
        super().__init__(**kwargs)
        self.image_size = image_size
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=False):
        if not training:
            images = ops.cast(images, "float32")
            same = tuple(images.shape[1:3]) == (self.image_size, self.image_size)
            return images if same else ops.image.resize(images, (self.image_size, self.image_size), antialias=True)
        draws = keras.random.uniform((ops.shape(images)[0], DRAWS), seed=self.seed_generator)
        # on TensorFlow compiled with XLA even where the training step is not (a CPU); JAX compiles
        # the whole step
        if keras.backend.backend() == "tensorflow":
            return compiled_augment_batch(self.image_size)(images, draws)
        return augment_batch(images, self.image_size, draws)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.image_size, self.image_size, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "image_size": self.image_size, "seed": self.seed}


def with_augmentation(model, image_size, seed=None):
    """`model` with the augmentation in front (`Augmentation`), for a training step that augments:
    it takes the photos as decoded (`data.make_dataset(..., augment_in="step")`)
    and shares every weight with `model`, which alone is saved."""
    photos = keras.Input((None, None, 3), name="photo")
    return keras.Model(photos, model(Augmentation(image_size, seed=seed)(photos)), name=f"{model.name}_augmented")
