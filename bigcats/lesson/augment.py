"""Lesson: augmentation, every training photo a little different every epoch, so that a CNN trained on a
few hundred photos learns lions and tigers, not those photos. Two kinds of change:

- a new framing, as another photographer would take it: closer, farther away, wider, taller,
  at a lower resolution;
- a new look: mirrored, tilted, lighter or darker, other contrast and colour, now and then black
  and white.

Made a batch at a time, in plain Keras operations (`keras.ops`), so the same code runs in the
tf.data pipeline on a CPU and inside the training step on a GPU, with TensorFlow, JAX or PyTorch
(docs/benchmarks.md#input-that-never-sets-the-pace). It filters as a photo editor resizes: each
axis of the framing is resampled with a triangle filter as wide as the number of photo pixels
that fall on one output pixel (`tf.image.resize(..., antialias=True)`), then the low resolution
(the same filter down, bilinear back up), then a tilt read 1:1. A shrunk photo filtered less than
that aliases, filtered more is blurred, and either ties sharpness to the framing, which photos
from elsewhere do not share (docs/model-selection.md#the-batched-augmentation-filtered-as-the-per-photo-one).
Every step reads whole rows (banded gathers: cheap), columns as rows of the transposed image.

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
GREY_WEIGHTS = (0.299, 0.587, 0.114)  # the luma of ITU-R BT.601, as PIL's convert("L")
SMALLEST_LOW_RESOLUTION = 32  # pixels a side of the smallest low-resolution copy

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
        "low_resolution": ops.where(
            chance(6, s["low_res_fraction"]),
            between(7, SMALLEST_LOW_RESOLUTION, max(image_size - 16, SMALLEST_LOW_RESOLUTION + 1)),
            0.0,
        ),
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


def axis_framing(changes, side, axis, image_size):
    """Where the output reads the photo along `axis` (0: down, 1: across), the photo `side`
    pixels long that way: (start, step), each (photos,). Output pixel i covers photo coordinates
    start + i * step to start + (i + 1) * step (photo pixel k covers [k, k + 1); past its edges
    lies its mirror image). A mirrored photo reads across from the crop's far edge, a negative step."""
    canvas = changes["zoom"] * side
    shape = changes["stretch"] if axis else 1 / changes["stretch"]
    crop = ops.minimum(shape * changes["side"], 1.0) * canvas
    start = changes["where"][:, axis] * (canvas - crop) - (canvas - side) / 2
    step = crop / image_size
    if axis:
        start, step = ops.where(changes["mirror"], start + crop, start), ops.where(changes["mirror"], -step, step)
    return start, step


def taps_needed(widest_step):
    """How many rows a triangle filter of radius `widest_step` (at least 1) can touch."""
    return math.floor(2 * max(widest_step, 1.0)) + 2


def resample_rows(images, start, step, rows, taps):
    """`rows` new rows of each image (photos, height, width, channels): row i the triangle-weighted
    average of the image's rows around start + (i + 0.5) * step (photos,), the triangle's radius
    |step| (at least 1: bilinear where the image is enlarged), past the edges the image's mirror
    image: `tf.image.resize(..., antialias=True)` of any crop. `taps` (static): `taps_needed`."""
    centres = start[:, None] + (ops.arange(rows, dtype="float32")[None, :] + 0.5) * step[:, None]
    radius = ops.maximum(ops.abs(step), 1.0)[:, None]
    index = ops.ceil(centres - radius - 0.5)[..., None] + ops.arange(taps, dtype="float32")
    weight = ops.maximum(0.0, 1.0 - ops.abs(index + 0.5 - centres[..., None]) / radius[..., None])
    weight = weight / ops.sum(weight, axis=-1, keepdims=True)
    return _weighted_rows(images, _mirrored(index, images.shape[1]), weight)


def _mirrored(index, size):
    """Row indices past either edge mirrored back inside, as a photo's edge in a mirror:
    ... 1 0 | 0 1 ... size-1 | size-1 size-2 ... (as int32)."""
    index = ops.where(index < 0, -index - 1, index)
    index = ops.where(index >= size, 2 * size - index - 1, index)
    return ops.cast(ops.clip(index, 0, size - 1), "int32")


def _weighted_rows(images, index, weight):
    """Row i of each image: the sum over k of weight[:, i, k] * images[:, index[:, i, k]]. Whole
    rows are gathered, the cheap kind of read."""
    photos, height = ops.shape(images)[0], images.shape[1]
    flat = ops.reshape(images, (-1, *images.shape[2:]))  # (photos * height rows, width, channels)
    first = (ops.arange(photos, dtype="int32") * height)[:, None]
    total = 0.0
    for k in range(index.shape[-1]):
        row = ops.cast(ops.take(flat, first + index[:, :, k], axis=0), "float32")
        total = total + row * weight[:, :, k, None, None]
    return total


def low_resolution_rows(images, sizes):
    """The rows of each image as if shrunk to `sizes` (photos,) rows with the triangle filter and
    enlarged back bilinearly, as a small web photo scaled up looks (0: left as it is)."""
    rows = images.shape[1]
    small = ops.where(sizes > 0, ops.floor(sizes), float(rows))
    taps = taps_needed(rows / SMALLEST_LOW_RESOLUTION)
    shrunk = resample_rows(images, ops.zeros_like(small), rows / small, rows, taps)  # rows past `small` unused
    # enlarging: each row a blend of the two small rows around it (half-pixel centres, edges held)
    position = (ops.arange(rows, dtype="float32")[None, :] + 0.5) * small[:, None] / rows - 0.5
    before = ops.floor(position)
    weight = position - before
    index = ops.stack([ops.maximum(before, 0), ops.minimum(before + 1, small[:, None] - 1)], axis=-1)
    return _weighted_rows(shrunk, ops.cast(index, "int32"), ops.stack([1 - weight, weight], axis=-1))


def tilt(images, turns):
    """Each image turned by `turns` (photos,) radians about its centre, read bilinearly at 1:1,
    the corners filled with its mirror image."""
    photos, size = ops.shape(images)[0], images.shape[1]
    middle = (size - 1) / 2
    steps = ops.arange(size, dtype="float32") - middle
    down, across = steps[None, :, None], steps[None, None, :]
    cos, sin = ops.cos(turns)[:, None, None], ops.sin(turns)[:, None, None]
    rows = _mirrored_position(sin * across + cos * down + middle, size)
    columns = _mirrored_position(cos * across - sin * down + middle, size)
    top, left = ops.floor(rows), ops.floor(columns)
    below, right = (rows - top)[..., None], (columns - left)[..., None]
    top, left = ops.cast(top, "int32"), ops.cast(left, "int32")
    flat = ops.reshape(images, (-1, images.shape[-1]))
    first = (ops.arange(photos, dtype="int32") * size * size)[:, None, None]

    def pixels(row, column):
        return ops.take(flat, first + ops.clip(row, 0, size - 1) * size + ops.clip(column, 0, size - 1), axis=0)

    upper = pixels(top, left) * (1 - right) + pixels(top, left + 1) * right
    lower = pixels(top + 1, left) * (1 - right) + pixels(top + 1, left + 1) * right
    return upper * (1 - below) + lower * below


def _mirrored_position(position, size):
    """Positions (pixel centres at whole numbers) past either edge mirrored back inside."""
    position = ops.mod(position + 0.5, 2.0 * size)
    return ops.where(position > size, 2.0 * size - position, position) - 0.5


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
    for step in augment_steps(image_size, **settings):
        images = step(images, draws)
    return images


def augment_steps(image_size, **settings):
    """`augment_batch` step by step, each `step(images, draws)`: the framing's rows, then its
    columns and their low resolution (the columns as rows of the transposed images), then the rows'
    low resolution, then the tilt and the new colours. Each step reads whole rows of what the step
    before it wrote."""
    settings = {**FRAMING, **LOOK, **settings}
    axis_step = functools.partial(frame_axis, image_size=image_size, settings=settings)
    low_step = functools.partial(low_resolution_step, image_size=image_size, settings=settings)
    last_step = functools.partial(tilt_and_colours, image_size=image_size, settings=settings)
    down, across = functools.partial(axis_step, axis=0), functools.partial(axis_step, axis=1)
    return (down, transposed, across, low_step, transposed, low_step, last_step)


def frame_axis(images, draws, axis, image_size, settings):
    """Each photo's framing along `axis` (1: the columns, as rows of transposed images): its rows
    resampled to image_size, each from the rows its output row covers."""
    start, step = axis_framing(draw_changes(draws, image_size, **settings), images.shape[1], axis, image_size)
    taps = taps_needed(settings["max_zoom_out"] * images.shape[1] / image_size)  # the whole zoomed-out canvas
    return resample_rows(images, start, step, image_size, taps)


def low_resolution_step(images, draws, image_size, settings):
    """Each image's rows at its drawn low resolution (the columns, given transposed images)."""
    return low_resolution_rows(images, draw_changes(draws, image_size, **settings)["low_resolution"])


def tilt_and_colours(images, draws, image_size, settings):
    """The last step: each image tilted, then given its new colours."""
    changes = draw_changes(draws, image_size, **settings)
    return new_colours(tilt(images, changes["turn"]), changes)


def transposed(images, draws=None):
    """The images' columns as rows."""
    return ops.transpose(images, (0, 2, 1, 3))


@functools.cache
def compiled_augment_batch(image_size):
    """`augment_batch(images, image_size, draws)` on TensorFlow, each step compiled with XLA
    alone and the transposes left to TensorFlow: given a gather of an image computed in the same
    compiled function, XLA computes the image again for every read, and fused with a transpose it
    reads one number at a time (docs/benchmarks.md#input-that-never-sets-the-pace). Where this
    TensorFlow cannot compile, the same function op by op, said once."""
    import tensorflow as tf

    steps = [step if step is transposed else tf.function(step, jit_compile=True) for step in augment_steps(image_size)]

    def compiled(images, draws):
        for step in steps:
            images = step(images, draws)
        return images

    try:  # one small batch, now (not inside whatever is being traced): XLA compiles it here or not at all
        with tf.init_scope():
            compiled(tf.zeros((1, image_size, image_size, 3), tf.uint8), tf.zeros((1, DRAWS)))
    except (tf.errors.OpError, NotImplementedError, ValueError) as error:
        print(f"Augmenting without XLA ({str(error).splitlines()[0]}): slower, the same photos", file=sys.stderr)
        return tf.function(lambda images, draws: augment_batch(images, image_size, draws))
    return compiled


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
    and shares every weight with `model`, which alone is saved. Notebook 04 writes the same line."""
    return keras.Sequential([keras.Input((None, None, 3)), Augmentation(image_size, seed=seed), model])
