"""The per-photo augmentation kept as the baseline: new framings (`reframe`) and new looks
(`new_look`), reproducible by seed."""

import numpy as np
import pytest
import tensorflow as tf

from bigcats.benchmark import augment_per_photo as augment
from conftest import check_framings_of_red_and_blue


def test_reframe_crops_and_blurs_within_the_photo():
    # left half red, right half blue: any crop, zoomed-out ones with their mirrored borders too,
    # holds only these colours (no invented borders)
    photo = np.zeros((150, 150, 3), dtype=np.uint8)
    photo[:, :75, 0] = 255
    photo[:, 75:, 2] = 255
    out = np.stack(
        [
            augment.reframe(tf.constant(photo), 100, tf.constant([k, 2], tf.int64), low_res_fraction=0.5).numpy()
            for k in range(40)
        ]
    )
    assert out.shape == (40, 100, 100, 3) and out.dtype == np.float32
    check_framings_of_red_and_blue(out, sharp_below=200)
    again = augment.reframe(tf.constant(photo), 100, tf.constant([7, 2], tf.int64), low_res_fraction=0.5).numpy()
    np.testing.assert_array_equal(again, out[7])  # same seed, same framing


def test_a_window_past_the_edges_is_filled_with_the_mirrored_photo():
    photo = tf.constant((np.arange(100 * 80 * 3).reshape(100, 80, 3) % 251).astype(np.uint8))
    # a window twice the photo's size, centred on it: the photo at half size in the middle
    out = augment._crop_with_mirrored_border(
        photo, tf.constant([-50.0, -40.0]), tf.constant([200.0, 160.0]), 64
    ).numpy()
    assert out.shape == (64, 64, 3) and out.dtype == np.float32
    inner = out[16:48, 16:48]
    np.testing.assert_allclose(inner, tf.image.resize(photo, (32, 32), antialias=True).numpy(), atol=1e-3)
    np.testing.assert_array_equal(out[48:, 16:48], inner[31:15:-1])  # below it: its mirror image
    np.testing.assert_array_equal(out[16:48, :16], inner[:, 15::-1])
    # a window inside the photo is a plain crop
    plain = augment._crop_with_mirrored_border(photo, tf.constant([10.0, 20.0]), tf.constant([50.0, 40.0]), 25).numpy()
    np.testing.assert_allclose(plain, tf.image.resize(photo[10:60, 20:60], (25, 25), antialias=True).numpy(), atol=1e-3)


def test_reframe_zooms_out_as_often_as_asked():
    photo = (np.arange(150 * 150 * 3).reshape(150, 150, 3) % 253).astype(np.uint8)
    whole = tf.image.resize(tf.constant(photo), (60, 60), antialias=True).numpy()

    def zoomed_share(zoom_out_fraction):  # framings that are not the whole photo (1 in 40 draws a scale of ~1)
        return np.mean(
            [
                not np.allclose(
                    whole,
                    augment.reframe(
                        tf.constant(photo),
                        60,
                        tf.constant([k, 5], tf.int64),
                        min_side=1.0,
                        max_stretch=1.0,
                        zoom_out_fraction=zoom_out_fraction,
                        low_res_fraction=0.0,
                    ).numpy(),
                )
                for k in range(40)
            ]
        )

    assert zoomed_share(0.0) == 0 and zoomed_share(1.0) > 0.9 and 0.25 < zoomed_share(0.5) < 0.75


def _looks(photo, max_seed=40, **settings):
    return np.stack(
        [
            augment.new_look(tf.constant(photo, tf.float32), tf.constant([k, 9], tf.int64), **settings).numpy()
            for k in range(max_seed)
        ]
    )


def test_new_look_mirrors_half_the_photos_and_nothing_else_when_the_rest_is_off():
    photo = np.random.default_rng(0).uniform(0, 255, (20, 30, 3))
    out = _looks(photo, max_turn=0.0, brightness=0.0, contrast=0.0, colour=(1.0, 1.0), grey_fraction=0.0)
    mirrored = [np.allclose(o, photo[:, ::-1], atol=1e-3) for o in out]
    assert all(m or np.allclose(o, photo, atol=1e-3) for m, o in zip(mirrored, out))
    assert 0.25 < np.mean(mirrored) < 0.75


def test_new_look_is_reproducible_in_range_and_varied():
    photo = np.random.default_rng(1).uniform(0, 255, (24, 24, 3))
    out = _looks(photo)
    assert out.shape == (40, 24, 24, 3) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 255
    np.testing.assert_array_equal(out[3], _looks(photo, max_seed=4)[3])  # same seed, same look
    means = out.mean(axis=(1, 2, 3))
    assert means.max() - means.min() > 30  # lighter and darker photos
    grey = np.ptp(out, axis=-1).max(axis=(1, 2)) < 1e-3  # black and white: R = G = B everywhere
    assert 0 < grey.sum() < 12  # about one in ten


def test_new_look_tilts_without_empty_corners():
    # a flat grey photo stays flat grey when tilted: the corners are mirrored photo, not black
    photo = np.full((40, 40, 3), 100.0)
    out = _looks(photo, max_seed=10, brightness=0.0, contrast=0.0, colour=(1.0, 1.0), grey_fraction=0.0)
    np.testing.assert_allclose(out, 100.0, atol=1e-3)
    # and a tilt does turn the picture: a horizontal bar stops being horizontal
    bar = np.zeros((40, 40, 3))
    bar[18:22] = 255.0
    turned = _looks(bar, max_seed=10, max_turn=0.08, brightness=0.0, contrast=0.0, colour=(1.0, 1.0), grey_fraction=0.0)
    assert max(np.abs(t[:, 0] - t[:, -1]).max() for t in turned) > 100


def test_augment_frames_and_restyles_to_the_model_size():
    photo = tf.constant(np.random.default_rng(2).integers(0, 255, (90, 60, 3)), tf.uint8)
    out = augment.augment(photo, 32, tf.constant([5, 6], tf.int64)).numpy()
    again = augment.augment(photo, 32, tf.constant([5, 6], tf.int64)).numpy()
    assert out.shape == (32, 32, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out, again)


def test_new_look_draws_each_change_independently():
    # Keras' augmentation layers, each given the same seed, drew the same random number for every
    # change: mirrored photos were always the darker ones. Here mirroring says nothing of brightness.
    photo = np.zeros((8, 8, 3))
    photo[:, :4], photo[:, 4:] = 100.0, 150.0  # left darker than right
    out = _looks(photo, max_seed=200, max_turn=0.0, contrast=0.0, colour=(1.0, 1.0), grey_fraction=0.0)
    mirrored = out[:, 4, 1].mean(-1) > out[:, 4, 6].mean(-1)
    assert 0.35 < mirrored.mean() < 0.65
    assert abs(np.corrcoef(mirrored, out.mean(axis=(1, 2, 3)))[0, 1]) < 0.25


def test_reframe_refuses_crops_too_narrow_for_their_mirrored_border(monkeypatch):
    photo = tf.constant((np.arange(90 * 70 * 3).reshape(90, 70, 3) % 251).astype(np.uint8))
    with pytest.raises(ValueError, match="raise min_side or lower max_zoom_out"):
        augment.reframe(photo, 48, tf.constant([1, 2], tf.int64), min_side=0.45)
    for zoom in (0.9, 2.2):
        with pytest.raises(ValueError, match=r"give 1 .never zoom out. to 1.8"):
            augment.reframe(photo, 48, tf.constant([1, 2], tf.int64), max_zoom_out=zoom)
    # what the check prevents: without it, some framing fails inside TensorFlow
    monkeypatch.setattr(augment, "check_framing", lambda *settings: None)
    with pytest.raises(tf.errors.InvalidArgumentError, match="paddings"):
        for k in range(200):
            augment.reframe(
                photo, 48, tf.constant([k, 3], tf.int64), min_side=0.2, max_stretch=1.0, zoom_out_fraction=1.0
            )
    monkeypatch.undo()
    # at the limit, even the worst framing works: the narrowest crop at either edge of the widest canvas
    size, zoom = np.array([90.0, 70.0]), 1.8
    crop = (1 - 1 / zoom) * zoom * size
    for start in (-(zoom - 1) / 2 * size, size + (zoom - 1) / 2 * size - crop):
        out = augment._crop_with_mirrored_border(
            photo, tf.constant(start, tf.float32), tf.constant(crop, tf.float32), 48
        )
        assert out.shape == (48, 48, 3)
