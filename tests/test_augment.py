"""The batched augmentation: a new framing and look of every photo of a batch, from uniform draws,
the same on any backend, and distributed as the per-photo augmentation the experiments chose."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from bigcats.benchmark import augment_per_photo
from bigcats.lesson import augment
from conftest import check_framings_of_red_and_blue

LOOK_OFF = dict(brightness=0.0, contrast=0.0, colour=(1.0, 1.0), grey_fraction=0.0)
FRAMING_OFF = dict(zoom_out_fraction=0.0, min_side=1.0, max_stretch=1.0, low_res_fraction=0.0, max_turn=0.0)


def draws(photos, seed=0):
    return np.random.default_rng(seed).uniform(size=(photos, augment.DRAWS)).astype("float32")


def batched(photo, count, seed=0, size=48, **settings):
    photos = np.repeat(np.asarray(photo)[None], count, axis=0)
    return np.asarray(augment.augment_batch(photos, size, draws(count, seed), **settings))


def test_a_batch_is_reframed_within_the_photo_reproducibly():
    # left half red, right half blue: any framing, mirrored borders included, holds only these colours
    photo = np.zeros((72, 72, 3), dtype=np.uint8)
    photo[:, :36, 0] = 255
    photo[:, 36:, 2] = 255
    out = batched(photo, 64, **LOOK_OFF)
    assert out.shape == (64, 48, 48, 3) and out.dtype == np.float32
    check_framings_of_red_and_blue(out, sharp_below=150)
    np.testing.assert_array_equal(out, batched(photo, 64, **LOOK_OFF))  # the same draws, the same photos
    assert not np.array_equal(out, batched(photo, 64, seed=1, **LOOK_OFF))


def test_with_everything_off_the_photo_comes_through_as_it_is():
    photo = (np.arange(48 * 48 * 3).reshape(48, 48, 3) % 251).astype(np.uint8)
    out = batched(photo, 8, **LOOK_OFF, **FRAMING_OFF)
    mirrored = out[:, :, ::-1]  # half of them are mirror images: the only change left
    same = [np.allclose(o, photo, atol=1e-3) or np.allclose(m, photo, atol=1e-3) for o, m in zip(out, mirrored)]
    assert all(same)


def test_zoomed_out_the_photo_sits_in_the_middle_of_its_mirror_image():
    photo = (np.arange(96 * 96 * 3).reshape(96, 96, 3) % 251).astype(np.float32)
    rows = np.array([[0.0, 1.0, 0.99, 0.5, 0.5, 0.5, 1.0, 0.0, 0.9, 0.5, 0.5, 0.5, 0.5, 1.0]], "float32")
    # zoomed out 1.8x (1.0 - 0.01 * 0.8 = 1.792), the whole canvas, centred, not mirrored, level
    out = np.asarray(augment.augment_batch(photo[None], 96, rows, **LOOK_OFF))[0]
    inner = int(96 / 1.792 / 2) - 2
    centre = out[48 - inner : 48 + inner, 48 - inner : 48 + inner]
    assert centre.std() > 20  # the photo (smaller), not a flat colour
    left_border, right_border = out[40:56, 1:6], out[40:56, 90:95]
    np.testing.assert_allclose(left_border.mean(), out[40:56, 16:21].mean(), rtol=0.25)  # mirrored, not black
    assert left_border.min() > 0 and right_border.min() > 0


def _looks(photo, count, settings, per_photo):
    """Photos made from `photo` by the new code (batched) or the old (photo by photo)."""
    if not per_photo:
        return batched(photo, count, size=64, **settings)
    framing_keys = {"min_side", "max_stretch", "max_zoom_out", "zoom_out_fraction", "low_res_fraction"}
    framing = {k: v for k, v in settings.items() if k in framing_keys}
    look = {k: v for k, v in settings.items() if k not in framing_keys}
    image = tf.constant(photo)

    @tf.function
    def one(seed):
        first, second = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        return augment_per_photo.new_look(augment_per_photo.reframe(image, 64, first, **framing), second, **look)

    return np.stack([one(tf.constant([k, 11], tf.int64)).numpy() for k in range(count)])


def _geometry(out):
    """Per photo: photo pixels per output pixel, and the tilt (radians, either way) at the centre,
    read from a photo whose red and green channels count its columns and rows."""
    centre = out[:, 26:38, 26:38, :2].astype(np.float64) * (95 / 255)  # back to pixel indices
    steps = np.arange(12) - 5.5
    across = (centre * steps[None, None, :, None]).sum(axis=(1, 2)) / (12 * (steps**2).sum())
    down = (centre * steps[None, :, None, None]).sum(axis=(1, 2)) / (12 * (steps**2).sum())
    # across, down: (photos, [column, row]) change per output pixel
    scale = np.sqrt(np.abs(across[:, 0] * down[:, 1] - across[:, 1] * down[:, 0]))
    return scale, np.arctan2(np.abs(down[:, 0]), np.abs(down[:, 1]))


def _colours(out):
    """Per photo of a flat-coloured photo: grey level (brightness) and colour spread (saturation)."""
    mean = out.mean(axis=(1, 2))
    return mean @ np.array(augment.GREY_WEIGHTS), mean.std(axis=1)


def _contrast(out):
    """Per photo of a photo half at 100, half at 150 grey: the difference of the halves / 50."""
    return np.abs(out[:, :, 4:24].mean(axis=(1, 2, 3)) - out[:, :, 40:60].mean(axis=(1, 2, 3))) / 50


def _ks(a, b):
    """The two-sample Kolmogorov-Smirnov distance: the largest gap between the two cumulative shares."""
    grid = np.sort(np.concatenate([a, b]))
    return np.abs(
        np.searchsorted(np.sort(a), grid, "right") / len(a) - np.searchsorted(np.sort(b), grid, "right") / len(b)
    ).max()


def _statistics(per_photo, count=300, **changed):
    columns, rows = np.meshgrid(np.arange(96), np.arange(96))
    coordinates = np.stack([columns, rows, np.full_like(rows, 48)], axis=-1) * (255 / 95)
    flat = np.broadcast_to(np.array([120.0, 100.0, 80.0], "float32"), (96, 96, 3)).copy()
    halves = np.full((96, 96, 3), 100.0, "float32")
    halves[:, 48:] = 150.0
    scale, tilt = _geometry(_looks(coordinates.astype("float32"), count, {**LOOK_OFF, **changed}, per_photo))
    grey, spread = _colours(_looks(flat, count, {**FRAMING_OFF, **changed}, per_photo))
    contrast = _contrast(_looks(halves, count, {**FRAMING_OFF, "brightness": 0.0, **changed}, per_photo))
    # sharpness: how much neighbouring pixels of a fine texture still differ (low resolution, zooming out)
    texture = np.random.default_rng(5).uniform(0, 255, (96, 96, 3)).astype("float32")
    textured = _looks(texture, count, {**LOOK_OFF, **changed}, per_photo)
    sharpness = np.abs(np.diff(textured[:, 16:48, 16:48], axis=2)).mean(axis=(1, 2, 3))
    return {"scale": scale, "tilt": tilt, "brightness": grey, "saturation": spread, "contrast": contrast,
            "sharpness": sharpness}  # fmt: skip


# with 300 photos each, a Kolmogorov-Smirnov distance above 0.16 happens by chance about once in
# a thousand when both come from the same distribution
SAME_DISTRIBUTION = 0.16


@pytest.mark.slow
def test_the_batched_augmentation_is_distributed_as_the_per_photo_one():
    old, new = _statistics(per_photo=True), _statistics(per_photo=False)
    distances = {name: _ks(old[name], new[name]) for name in old}
    assert all(d < SAME_DISTRIBUTION for d in distances.values()), distances
    # and the comparison notices a real change: tilted up to 0.08 of a turn, 20% brightness, crops down to 85% only
    changed = _statistics(per_photo=False, max_turn=0.08, brightness=0.2, min_side=0.85)
    assert _ks(old["tilt"], changed["tilt"]) > SAME_DISTRIBUTION
    assert _ks(old["brightness"], changed["brightness"]) > SAME_DISTRIBUTION
    assert _ks(old["scale"], changed["scale"]) > SAME_DISTRIBUTION
    sharper = _statistics(per_photo=False, low_res_fraction=0.0)  # no low-resolution copies
    assert _ks(old["sharpness"], sharper["sharpness"]) > SAME_DISTRIBUTION


def test_compiled_step_by_step_it_makes_the_same_photos():
    # each step compiled alone, the transposes between them left to TensorFlow
    photos = np.random.default_rng(3).integers(0, 256, (16, 72, 72, 3)).astype("uint8")
    rows = draws(16, seed=3)
    assert (rows[:, 6] < augment.FRAMING["low_res_fraction"]).sum() >= 3  # low resolutions among them
    compiled = np.asarray(augment.compiled_augment_batch(48)(tf.constant(photos), tf.constant(rows)))
    np.testing.assert_allclose(compiled, np.asarray(augment.augment_batch(photos, 48, rows)), atol=0.05)


def test_the_layer_augments_only_in_training_and_draws_anew_every_step():
    photos = np.random.default_rng(0).integers(0, 255, (4, 72, 72, 3)).astype("uint8")
    layer = augment.Augmentation(48, seed=3)
    first, second = (np.asarray(layer(photos, training=True)) for _ in range(2))
    assert first.shape == (4, 48, 48, 3) and not np.array_equal(first, second)
    again = np.asarray(augment.Augmentation(48, seed=3)(photos, training=True))
    np.testing.assert_array_equal(first, again)  # the same seed, the same photos
    plain = np.asarray(layer(photos, training=False))
    np.testing.assert_allclose(plain, tf.image.resize(photos, (48, 48), antialias=True).numpy(), atol=1e-3)
    already = np.asarray(layer(plain, training=False))
    np.testing.assert_array_equal(already, plain)  # photos at the model's size pass unchanged


JAX_CHECK = """
import os, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from bigcats.lesson.augment import augment_batch
data = np.load(sys.argv[2])
np.save(sys.argv[3], np.asarray(augment_batch(data["photos"], 48, data["draws"])))
import keras
assert keras.backend.backend() == "jax"
# the training step as a lent GPU would time it: augmentation and model, from photos in memory
from bigcats.lesson.augment import with_augmentation
from bigcats.benchmark.measure import decoded_batch, time_training_steps
from bigcats.lesson.model import build_cnn, compile_model
trainer = compile_model(with_augmentation(build_cnn(48, seed=1), 48, seed=1))
warmup, runs = time_training_steps(trainer, decoded_batch(4, 48), np.array([0, 1, 0, 1]), steps=2, repeats=1)
assert "tensorflow" not in sys.modules, "the JAX path must not need TensorFlow"
print("steps", runs)
"""


def _jax_python():
    """A Python with Keras on JAX: $BIGCATS_JAX_PYTHON, or this one if it has JAX."""
    given = os.environ.get("BIGCATS_JAX_PYTHON")
    if given:
        return given
    try:
        import jax  # noqa: F401
    except ImportError:
        return None
    return sys.executable


def test_the_same_draws_give_the_same_photos_and_train_with_keras_on_jax(tmp_path):
    # the lent GPU machine runs Keras on JAX, without TensorFlow (docs/benchmarks.md#input-that-never-sets-the-pace)
    python = _jax_python()
    if python is None:
        pytest.skip("JAX is not installed here (set BIGCATS_JAX_PYTHON to a Python with jax and keras)")
    photos = np.random.default_rng(0).integers(0, 255, (6, 72, 72, 3)).astype("uint8")
    np.savez(tmp_path / "input.npz", photos=photos, draws=draws(6))
    environment = {**os.environ, "KERAS_BACKEND": "jax"}
    project = str(Path(__file__).resolve().parents[1])
    run = subprocess.run(
        [python, "-c", JAX_CHECK, project, str(tmp_path / "input.npz"), str(tmp_path / "jax.npy")],
        env=environment, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "steps [" in run.stdout
    on_tensorflow = np.asarray(augment.augment_batch(photos, 48, draws(6)))
    np.testing.assert_allclose(np.load(tmp_path / "jax.npy"), on_tensorflow, atol=0.05)


def test_settings_that_would_show_mirrors_of_mirrors_are_refused():
    with pytest.raises(ValueError, match="raise min_side or lower max_zoom_out"):
        augment.draw_changes(draws(2), 48, min_side=0.45)
    for zoom in (0.9, 2.2):
        with pytest.raises(ValueError, match=r"give 1 .never zoom out. to 1.8"):
            augment.draw_changes(draws(2), 48, max_zoom_out=zoom)


def test_a_lower_resolution_is_the_image_shrunk_as_a_photo_editor_does_and_enlarged_bilinearly():
    images = tf.random.uniform((3, 64, 64, 3), 0, 255, seed=1)
    sizes = tf.constant([0.0, 32.0, 40.0])  # no smaller than augment.SMALLEST_LOW_RESOLUTION
    columns = augment.transposed(augment.low_resolution_rows(images, sizes))
    out = augment.transposed(augment.low_resolution_rows(columns, sizes))  # the rows, then the columns
    np.testing.assert_allclose(out[0], images[0].numpy(), atol=1e-3)  # 0: left as it is
    for k, small in ((1, 32), (2, 40)):
        # tf.image.resize with antialiasing down, bilinear up; the edges differ (mirrored here, cut off there)
        expected = tf.image.resize(tf.image.resize(images[k : k + 1], (small, small), antialias=True), (64, 64))
        np.testing.assert_allclose(out[k, 6:-6, 6:-6], expected.numpy()[0, 6:-6, 6:-6], atol=0.05)


def test_a_framing_is_the_crop_resized_with_antialiasing():
    photo = tf.random.uniform((1, 96, 96, 3), 0, 255, seed=2)
    changes = augment.draw_changes(draws(1), 48, **LOOK_OFF)
    changes.update(zoom=tf.constant([1.0]), side=tf.constant([1.0]), stretch=tf.constant([1.0]))
    changes["mirror"] = tf.constant([False])
    framed = photo
    for axis in (0, 1):  # the rows, then the columns as rows of the transposed image
        start, step = augment.axis_framing(changes, 96, axis, 48)
        framed = augment.transposed(augment.resample_rows(framed, start, step, 48, augment.taps_needed(2.0)))
    expected = tf.image.resize(photo, (48, 48), antialias=True).numpy()
    np.testing.assert_allclose(framed[0, 3:-3, 3:-3], expected[0, 3:-3, 3:-3], atol=0.05)
