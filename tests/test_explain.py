"""ROC and Grad-CAM on cases whose answers are known."""

import numpy as np
import pytest

from bigcats.lesson.explain import grad_cam, last_feature_layer, roc_curve


def test_roc_of_perfect_random_and_inverted_scores():
    truth = [0, 0, 1, 1]
    assert roc_curve(truth, [0.1, 0.2, 0.8, 0.9])[2] == pytest.approx(1.0)
    assert roc_curve(truth, [0.9, 0.8, 0.2, 0.1])[2] == pytest.approx(0.0)
    assert roc_curve([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5])[2] == pytest.approx(0.5)
    fpr, tpr, _ = roc_curve(truth, [0.1, 0.6, 0.4, 0.9])
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1


def test_grad_cam_points_at_the_evidence():
    """A model whose only evidence is a bright patch: the heat map must light up there."""
    import keras
    from keras import layers

    inputs = keras.Input((32, 32, 3))
    x = layers.Conv2D(1, 1, use_bias=False, kernel_initializer="ones", name="feature")(inputs)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(2, activation="softmax", kernel_initializer=keras.initializers.Constant([[-1.0, 1.0]]))(x)
    model = keras.Model(inputs, outputs)
    image = np.zeros((1, 32, 32, 3), dtype="float32")
    image[0, 4:10, 20:28] = 1.0
    assert last_feature_layer(model) == "feature"
    heat = grad_cam(model, image, class_index=1)[0]
    assert heat.shape == (32, 32)
    assert heat[4:10, 20:28].mean() > 0.9 and heat[20:, :10].mean() < 0.1


def test_grad_cam_on_the_tutorial_cnn_uses_its_last_spatial_map():
    """The last block is not pooled: Grad-CAM must pick its 5x5 map (144-px input), the finest
    view the classifier has, not a pooled 3x3 one."""
    from bigcats.lesson.model import build_cnn

    model = build_cnn(144)
    assert tuple(model.get_layer(last_feature_layer(model)).output.shape[1:]) == (5, 5, 512)
    images = np.random.default_rng(0).uniform(0, 255, (2, 144, 144, 3)).astype("float32")
    heat = grad_cam(model, images, class_index=1)
    assert heat.shape == (2, 144, 144) and np.ptp(heat[0]) > 0


def test_image_grids_clip_out_of_range_pixels_instead_of_wrapping_them():
    import matplotlib

    matplotlib.use("Agg")
    from bigcats.lesson.plots import show_images

    image = np.full((4, 4, 3), 300.0)  # brighter than white after a colour change
    image[0, 0] = -5.0
    fig = show_images([image], ["x"])
    shown = fig.axes[0].get_images()[0].get_array()
    assert shown[1, 1, 0] == 255 and shown[0, 0, 0] == 0
