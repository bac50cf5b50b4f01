"""Benchmark baseline: the 2022 write-up's model, kept only as the baseline the tutorial's CNN is
timed and scored against (`measure.compare_recipes`; docs/model-selection.md#side-by-side-with-the-2022-recipe).
"""

import keras
from keras import layers


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


def original_recipe_settings(image_size=256, epochs=20):
    """How the 2022 recipe trained, as `lesson.train.train` takes it: its model, its own input
    pipeline (every photo decoded again every epoch, no cache, no augmentation), batch size 32 and
    Adam's default learning rate, constant."""
    return dict(build=build_original_recipe, image_size=image_size, epochs=epochs, schedule="constant", cache=False,
                augmenting=False, batch_size=32, learning_rate=1e-3)  # fmt: skip
