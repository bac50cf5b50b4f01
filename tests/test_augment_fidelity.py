"""The batched augmentation filters as the per-photo one did, framing by framing.

Both are driven by the same draws (`augment.draw_changes`; `augment_per_photo.reframe_as_drawn`
and `mirror_and_turn` with the values given), the look left alone, at the tutorial's sizes (a
216-px decoded photo, 144-px output). A model trained on framings whose sharpness depends on how
they are framed, or that alias, scores less on photos from elsewhere
(docs/model-selection.md#the-batched-augmentation-filtered-as-the-per-photo-one). So, for each
class of framing (enlarged close-ups, whole photos, zoomed out, low-resolution copies), the two
must agree on the variance of the Laplacian, on the power near the output's Nyquist frequency
and on what comes through from detail finer than the output can hold (the alias). A control
proves the measures can tell: plain bilinear sampling (no filter as wide as the shrink) fails them.
"""

import functools

import cv2
import numpy as np
import pytest
import tensorflow as tf

from bigcats.benchmark import augment_per_photo
from bigcats.lesson import augment

PHOTO, SIZE = 216, 144  # augment.decoded_size(SIZE) and the model's input
LOOK_OFF = dict(brightness=0.0, contrast=0.0, colour=(1.0, 1.0), grey_fraction=0.0)
FRAMINGS = 192  # paired draws
# tolerances: batched / per-photo, mean over a class of framings
SHARPNESS = (0.9, 1.1)
NEAR_NYQUIST = (0.8, 1.25)
ALIAS = 1.5  # the batched leak at most this many times the per-photo one (plus a floor below)


def natural_photo(seed):
    """A photo-like grey texture: power falling as 1 / frequency², with edges, 0-255, RGB uint8."""
    rng = np.random.default_rng(seed)
    frequency = np.hypot(*np.meshgrid(np.fft.fftfreq(PHOTO), np.fft.fftfreq(PHOTO)))
    spectrum = np.fft.fft2(rng.standard_normal((PHOTO, PHOTO))) / np.maximum(frequency, 1 / PHOTO)
    texture = np.real(np.fft.ifft2(spectrum))
    texture = (texture - texture.mean()) / texture.std() * 40 + 128
    return np.repeat(np.clip(texture, 0, 255).astype(np.uint8)[..., None], 3, axis=-1)


@functools.cache
def paired_draws():
    draws = np.random.default_rng(0).uniform(size=(FRAMINGS, augment.DRAWS)).astype("float32")
    changes = {k: np.asarray(v) for k, v in augment.draw_changes(draws, SIZE, **LOOK_OFF).items()}
    return draws, changes


def framing_classes(changes):
    """Index arrays of the framings in each class, by photo pixels per output pixel (footprint)."""
    shape = np.stack([1 / changes["stretch"], changes["stretch"]], axis=1) * changes["side"][:, None]
    footprint = np.sqrt(np.prod(np.minimum(shape, 1.0), axis=1)) * changes["zoom"] * PHOTO / SIZE
    low = changes["low_resolution"] > 0
    return {
        "enlarged": np.flatnonzero(~low & (footprint <= 1.0)),
        "whole": np.flatnonzero(~low & (changes["zoom"] == 1.0) & (footprint >= 1.3)),
        "zoomed out": np.flatnonzero(~low & (changes["zoom"] > 1.0)),
        "low resolution": np.flatnonzero(low),
    }


@tf.function(reduce_retracing=True)
def _per_photo(image, zoom, side, stretch, where, low, mirror, turn):
    framed = augment_per_photo.reframe_as_drawn(image, SIZE, zoom, side, stretch, where, low)
    return tf.clip_by_value(augment_per_photo.mirror_and_turn(framed, mirror, turn), 0.0, 255.0)


def per_photo(photos, changes):
    keys = ("zoom", "side", "stretch", "where", "low_resolution", "mirror", "turn")
    return np.stack([_per_photo(tf.constant(photo), *(changes[k][i] for k in keys)).numpy() for i, photo in enumerate(photos)])  # fmt: skip


def batched(photos, draws):
    return np.asarray(augment.augment_batch(photos, SIZE, draws, **LOOK_OFF))


def grey(images):
    return np.asarray(images, np.float64) @ np.array(augment.GREY_WEIGHTS)


def sharpness(images):
    return np.array([cv2.Laplacian(g, cv2.CV_64F).var() for g in grey(images)])


def near_nyquist_power(images):
    """Each image's power at 0.75-1.0 of the Nyquist frequency (radially), Hann-windowed."""
    g = grey(images)
    window = np.outer(np.hanning(SIZE), np.hanning(SIZE))
    radius = np.hypot(*np.meshgrid(np.fft.fftfreq(SIZE), np.fft.fftfreq(SIZE))) / 0.5
    power = np.abs(np.fft.fft2((g - g.mean(axis=(1, 2), keepdims=True)) * window)) ** 2
    return power[:, (radius >= 0.75) & (radius < 1.0)].sum(axis=1)


def beyond_nyquist_noise(changes, index, seed=3):
    """Per framing, grey noise holding only detail wholly finer than the framing's output can
    show (past the corner of its band, in output cycles per pixel): whatever of it comes through is alias."""
    rng = np.random.default_rng(seed)
    frequency = np.fft.fftfreq(PHOTO)
    down, across = frequency[:, None], frequency[None, :]
    shape = np.stack([1 / changes["stretch"], changes["stretch"]], axis=1) * changes["side"][:, None]
    steps = np.minimum(shape, 1.0) * changes["zoom"][:, None] * PHOTO / SIZE  # photo pixels per output pixel
    sources = []
    for i in index:
        output_frequency = np.hypot(steps[i, 0] * down, steps[i, 1] * across) / 0.5  # in output Nyquists
        noise = np.real(np.fft.ifft2(np.fft.fft2(rng.standard_normal((PHOTO, PHOTO))) * (output_frequency > 1.45)))
        noise = np.clip(noise / noise.std() * 30 + 128, 0, 255).astype(np.uint8)
        sources.append(np.repeat(noise[..., None], 3, axis=-1))
    return np.stack(sources)


def measure(photos, draws, changes, index, make):
    """Mean sharpness and near-Nyquist power of the framings `index` of `photos`, made by `make`."""
    out = make(photos[index], draws[index]) if make is batched else make(photos[index], _rows(changes, index))
    return sharpness(out).mean(), near_nyquist_power(out).mean()


def _rows(changes, index):
    return {k: v[index] for k, v in changes.items()}


def alias_leak(changes, draws, index, make):
    """Output variance / input variance of noise finer than each framing's output can hold."""
    sources = beyond_nyquist_noise(changes, index)
    out = make(sources, draws[index]) if make is batched else make(sources, _rows(changes, index))
    return (grey(out).var(axis=(1, 2)) / grey(sources).var(axis=(1, 2))).mean()


@functools.cache
def photos():
    return np.stack([natural_photo(seed) for seed in range(FRAMINGS)])


def compare():
    """{class: (sharpness ratio, near-Nyquist ratio)} and {shrunk class: (batched leak, per-photo leak)}."""
    draws, changes = paired_draws()
    ratios, leaks = {}, {}
    for name, index in framing_classes(changes).items():
        assert len(index) >= 12, f"too few {name} framings among the draws ({len(index)})"
        new = measure(photos(), draws, changes, index, batched)
        old = measure(photos(), draws, changes, index, per_photo)
        ratios[name] = (new[0] / old[0], new[1] / old[1])
        if name in ("whole", "zoomed out"):  # shrunk framings, where detail can alias
            leaks[name] = (alias_leak(changes, draws, index, batched), alias_leak(changes, draws, index, per_photo))
    return ratios, leaks


def within(ratios, leaks):
    in_range = all(
        SHARPNESS[0] <= s <= SHARPNESS[1] and NEAR_NYQUIST[0] <= n <= NEAR_NYQUIST[1] for s, n in ratios.values()
    )
    return in_range and all(new <= ALIAS * old + 1e-3 for new, old in leaks.values())


@pytest.mark.slow
def test_the_batched_augmentation_filters_each_framing_as_the_per_photo_one():
    ratios, leaks = compare()
    assert within(ratios, leaks), (ratios, leaks)


def bilinear_rows(images, start, step, rows, taps):
    """The control: `augment.resample_rows` with the triangle's radius held at one pixel, as a
    resize without antialiasing reads a shrunk photo."""
    from keras import ops

    centres = start[:, None] + (ops.arange(rows, dtype="float32")[None, :] + 0.5) * step[:, None]
    index = ops.ceil(centres - 1.5)[..., None] + ops.arange(2, dtype="float32")
    weight = ops.maximum(0.0, 1.0 - ops.abs(index + 0.5 - centres[..., None]))
    weight = weight / ops.sum(weight, axis=-1, keepdims=True)
    return augment._weighted_rows(images, augment._mirrored(index, images.shape[1]), weight)


@pytest.mark.slow
def test_the_comparison_fails_plain_bilinear_sampling(monkeypatch):
    # without a filter as wide as the shrink, shrunk framings come out too sharp and alias: the
    # comparison must say so, or it proves nothing
    monkeypatch.setattr(augment, "resample_rows", bilinear_rows)
    ratios, leaks = compare()
    assert not within(ratios, leaks)
    assert ratios["zoomed out"][1] > NEAR_NYQUIST[1] and leaks["zoomed out"][0] > ALIAS * leaks["zoomed out"][1]
