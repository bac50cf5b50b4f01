"""The CNN: small enough to train on a laptop CPU in well under a minute, shaped the way
small-data CNNs work well. The choices below were made by experiment (README: "How the default
model was chosen"), judged on plain held-out photos and on hard transformed copies of them,
not on validation accuracy alone.

Compared with the original write-up's 3-conv net on [0,1] pixels: a stem that shrinks the image
4x at once, depthwise-separable convolutions with batch normalisation and swish, anti-aliased
max-pooling between them, squeeze-and-excitation in the last two blocks, global average pooling
instead of a huge Flatten->Dense, dropout; and augmentation (in the input pipeline,
`bigcats.augment`). Pixel scaling lives in the model, so a saved model takes raw RGB pixels and
nobody can forget to scale them at prediction time.
"""

import keras
import numpy as np
from keras import layers

from bigcats import config

BLUR_KERNEL = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0]) / 16  # binomial: the smallest blur that keeps the mean


def _normalise(x):
    # momentum 0.9, not the default 0.99: an epoch here is ~22 steps, and the slow default
    # leaves the statistics used at inference stale for many epochs.
    x = layers.BatchNormalization(momentum=0.9)(x)
    # swish (x * sigmoid(x), as in EfficientNet), not ReLU: smooth, and it lets a little of the
    # negative side through; over six seeds it scored 0.6-1.8 points higher on every check, for
    # about 6% more training time (README, round 6).
    return layers.Activation("swish")(x)


def _stem(x, filters):
    # A strided full convolution (it sees only 3 colour channels, too few to separate), then
    # max-pooling: the first layers at full resolution were most of the training time, and
    # shrinking 4x at once (as ResNet does) made each image 3x cheaper, which paid for larger
    # input images (144 px) and more epochs within the 2022 recipe's time.
    x = _normalise(layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False)(x))
    return layers.MaxPooling2D(padding="same")(x)


def _separable_block(x, filters, pool=True, excite=False):
    # Separable: a 3x3 filter per channel, then a 1x1 mix. Far fewer weights and operations than
    # a full convolution, which on a few hundred photos generalised better and trained faster.
    x = _normalise(layers.SeparableConv2D(filters, 3, padding="same", use_bias=False)(x))
    if excite:
        x = _squeeze_and_excite(x)
    return _max_blur_pool(x) if pool else x


def _max_blur_pool(x):
    # Max-pooling keeps the strongest response in every other 2x2 window, so moving the photo by
    # one pixel can change what comes out: the map aliases. Anti-aliased ("MaxBlurPool", Zhang,
    # 2019, "Making convolutional networks shift-invariant again"): the max over every window,
    # then a fixed [1 2 1] blur before keeping every other pixel. Over nine seeds it scored
    # 0.4-1.5 points higher on every check, for about 6% more time per step on a 2-core CPU (an H100
    # at batch 16: 10-17%; README, round 8).
    x = layers.MaxPooling2D(pool_size=2, strides=1, padding="same")(x)  # "same": a 32-px image still fits
    # built-in layers only, so `load_model(safe_mode=True)` needs nothing of ours; "zeros" draws no
    # random numbers, so every other layer starts from the weights the seed gave it before
    blur = layers.DepthwiseConv2D(
        3, strides=2, padding="same", use_bias=False, trainable=False, depthwise_initializer="zeros"
    )
    x = blur(x)
    blur.set_weights([np.repeat(BLUR_KERNEL[:, :, None, None], x.shape[-1], axis=2)])  # fixed: never trained
    return x


def _squeeze_and_excite(x, reduction=8):
    # Squeeze-and-excitation (Hu et al., 2018; as in MobileNetV3 and EfficientNet): the block looks
    # at its whole map once and turns each channel up or down, so the evidence found anywhere in
    # the photo (stripes, a mane) can weigh in everywhere. Most useful on small, distant animals.
    weights = layers.GlobalAveragePooling2D(keepdims=True)(x)
    weights = layers.Conv2D(max(x.shape[-1] // reduction, 8), 1, activation="swish")(weights)
    weights = layers.Conv2D(x.shape[-1], 1, activation="sigmoid")(weights)
    return layers.Multiply()([x, weights])


def build_cnn(image_size, num_classes=2, filters=(32, 64, 128, 256, 512), dropout=0.3, seed=None):
    """Raw RGB pixels in [0, 255] in, class probabilities out. (`seed` is accepted so that every
    model builder `train` calls has the same signature; Keras' global seed fixes the weights.)"""
    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = layers.Rescaling(1.0 / 255)(inputs)
    x = _stem(x, filters[0])
    blocks = filters[1:]
    for i, n in enumerate(blocks):
        # Squeeze-and-excitation in the last two blocks only: their maps are small (9x9 and 5x5 at
        # 144 px), so there it costs little time; in every block it cost about a fifth more
        # (README, rounds 6 and 7). No max-pool after the last block: averaging its 5x5 map (not a
        # pooled 3x3 one) keeps a small animal's evidence from being merged with its surround
        # first (round 6).
        x = _separable_block(x, n, pool=i < len(blocks) - 1, excite=i >= len(blocks) - 2)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    # float32 output even under mixed precision: softmax in float16 loses small probabilities.
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="bigcats_cnn")


def optimizer(learning_rate=config.LEARNING_RATE, decay_steps=None):
    """Adam; with decay_steps, the learning rate follows a cosine from `learning_rate` down to
    5% of it over that many steps (large steps first, fine ones at the end)."""
    if decay_steps:
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps, alpha=0.05)
    return keras.optimizers.Adam(learning_rate)


def compile_model(model, learning_rate=config.LEARNING_RATE, decay_steps=None):
    model.compile(
        optimizer=optimizer(learning_rate, decay_steps),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def build_original_recipe(image_size=256, num_classes=2, seed=None):
    """The 2022 write-up's model, kept as the baseline to beat: three small convolutions, a
    256-unit dense layer on the flattened maps, pixels scaled to [0, 1], no augmentation.
    (It ended in one sigmoid unit; a 2-way softmax is the same model and shares our tools.)"""
    return keras.Sequential(
        [
            keras.Input(shape=(image_size, image_size, 3)),
            layers.Rescaling(1.0 / 255),
            layers.Conv2D(16, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(16, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(256, activation="relu"),
            layers.Dense(num_classes, activation="softmax", dtype="float32"),
        ],
        name="original_recipe",
    )
