"""Lesson: the CNN, small enough to train on a laptop CPU in well under a minute, shaped the way
small-data CNNs work well. Notebook 04 writes the same functions out, runs each on a batch of
photos and assembles the model from them; a test checks that both build the same network.
Each choice was made by experiment, judged on plain held-out photos and on hard transformed
copies of them (docs/model-selection.md).

Compared with the original write-up's 3-conv net on [0,1] pixels: a stem that shrinks the image
4x at once, depthwise-separable convolutions with batch normalisation and swish, anti-aliased
max-pooling between them, squeeze-and-excitation in the last two blocks, global average pooling
instead of a huge Flatten->Dense, and dropout. Pixel scaling lives in the model, so a saved
model takes raw RGB pixels and nobody can forget to scale them at prediction time.
"""

import keras
import numpy as np
from keras import layers

from bigcats.lesson import config

BLUR = np.outer([1, 2, 1], [1, 2, 1]) / 16  # binomial: the smallest blur that keeps the mean


def normalise(x):
    """Batch normalisation, then swish."""
    # momentum 0.9, not 0.99: an epoch here is a few dozen steps, and the slow default leaves the
    # statistics used at inference stale (docs/model-selection.md#round-1-kept-for-the-record).
    # swish, not ReLU: smooth, lets a little of the negative side through, scored higher on every
    # check (docs/model-selection.md#round-6-where-the-mistakes-are-swish-and-no-last-max-pool)
    x = layers.BatchNormalization(momentum=0.9)(x)
    return layers.Activation("swish")(x)


def stem(x, filters):
    """A strided convolution, then max-pooling: the image 4x smaller before any other layer."""
    # full (not separable): it sees only 3 colour channels. Shrinking at once, as ResNet does,
    # because the first layers at full resolution were most of the training time
    # (docs/model-selection.md#round-2-sharp-photos-the-cheap-stem-the-round-2-default)
    x = normalise(layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False)(x))
    return layers.MaxPooling2D(padding="same")(x)


def max_blur_pool(x):
    """Anti-aliased max-pooling (Zhang, 2019): the max over every 2x2 window, then a fixed blur
    before keeping every other pixel, so a photo moved by a pixel gives nearly the same map."""
    # plain max-pooling keeps every other window's max, so thin stripes flicker in and out as the
    # photo moves (docs/model-selection.md#round-8-anti-aliased-pooling-the-current-default)
    x = layers.MaxPooling2D(pool_size=2, strides=1, padding="same")(x)  # "same": a 32-px image still fits
    # built-in layers only, so `load_model(safe_mode=True)` needs nothing of ours; "zeros" draws no
    # random numbers, so every other layer starts from the weights the seed gave it before
    blur = layers.DepthwiseConv2D(
        3, strides=2, padding="same", use_bias=False, trainable=False, depthwise_initializer="zeros"
    )
    x = blur(x)
    blur.set_weights([np.repeat(BLUR[:, :, None, None], x.shape[-1], axis=2)])  # fixed: never trained
    return x


def squeeze_and_excite(x, reduction=8):
    """Squeeze-and-excitation (Hu et al., 2018): the block looks at its whole map once and turns
    each channel up or down, so evidence found anywhere (stripes, a mane) counts everywhere."""
    weights = layers.GlobalAveragePooling2D(keepdims=True)(x)
    weights = layers.Conv2D(max(x.shape[-1] // reduction, 8), 1, activation="swish")(weights)
    weights = layers.Conv2D(x.shape[-1], 1, activation="sigmoid")(weights)
    return layers.Multiply()([x, weights])


def separable_block(x, filters, pool=True, excite=False):
    """A 3x3 filter per channel, then a 1x1 mix; normalised; optionally excited, then pooled."""
    # separable: far fewer weights and operations than a full convolution, which on a few hundred
    # photos generalised better and trained faster (docs/model-selection.md#round-1-kept-for-the-record)
    x = normalise(layers.SeparableConv2D(filters, 3, padding="same", use_bias=False)(x))
    if excite:
        x = squeeze_and_excite(x)
    return max_blur_pool(x) if pool else x


def build_cnn(image_size, num_classes=2, filters=(32, 64, 128, 256, 512), dropout=0.3, seed=None):
    """Raw RGB pixels in [0, 255] in (image_size x image_size x 3), class probabilities out.
    (`seed` is accepted so that every model builder `train` calls has the same signature; Keras'
    global seed fixes the weights.)"""
    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = layers.Rescaling(1.0 / 255)(inputs)  # in the model: the saved model takes raw pixels
    x = stem(x, filters[0])
    blocks = filters[1:]
    for number, block_filters in enumerate(blocks):
        # squeeze-and-excitation only in the last two blocks, where the maps are small and it costs
        # little (docs/model-selection.md#round-7-squeeze-and-excitation-where-it-is-cheap); no
        # pooling after the last, so a small animal is not merged with its surround first
        # (docs/model-selection.md#round-6-where-the-mistakes-are-swish-and-no-last-max-pool)
        last = number == len(blocks) - 1
        x = separable_block(x, block_filters, pool=not last, excite=number >= len(blocks) - 2)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    # float32 output even under mixed precision: softmax in float16 loses small probabilities
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="bigcats_cnn")


def optimizer(learning_rate=config.LEARNING_RATE, decay_steps=None):
    """Adam; with decay_steps, the learning rate follows a cosine from `learning_rate` down to
    5% of it over that many steps (large steps first, fine ones at the end)."""
    if decay_steps:
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps, alpha=0.05)
    return keras.optimizers.Adam(learning_rate)


def compile_model(model, learning_rate=config.LEARNING_RATE, decay_steps=None):
    """The model compiled as notebook 04 compiles it: Adam (see `optimizer`), cross-entropy on
    class numbers, accuracy. Returns the model."""
    model.compile(
        optimizer=optimizer(learning_rate, decay_steps),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
