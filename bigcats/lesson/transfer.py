"""Lesson: transfer learning, an ImageNet-trained MobileNetV2 with a new lion/tiger head.

The backbone already knows fur, eyes and stripes from 1.3 million photos, so a few hundred
photos are enough to train the small head on top. Its weights come from Keras' download (online,
cached in ~/.keras/models) or from a local file given by path; offline without a file, the
caller gets WeightsUnavailable with what to do, never a hang or a stack trace.
"""

import socket
from pathlib import Path

WEIGHTS_HOST = ("storage.googleapis.com", 443)
WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
    "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{size}_no_top.h5"
)
IMAGENET_SIZES = (96, 128, 160, 192, 224)


class WeightsUnavailable(RuntimeError):
    pass


def _cached(size):
    return (Path.home() / ".keras" / "models" / Path(WEIGHTS_URL.format(size=size)).name).is_file()


def _online(timeout=5):
    try:
        socket.create_connection(WEIGHTS_HOST, timeout=timeout).close()
        return True
    except OSError:
        return False


def backbone(image_size, weights="imagenet"):
    """MobileNetV2 without its classifier, with pretrained weights ('imagenet' or a file path)."""
    import keras

    shape = (image_size, image_size, 3)
    if weights != "imagenet":
        path = Path(weights)
        if not path.is_file():
            raise WeightsUnavailable(f"No weights file at {path}.")
        net = keras.applications.MobileNetV2(input_shape=shape, include_top=False, weights=None)
        try:
            net.load_weights(path)
        except Exception as error:
            raise WeightsUnavailable(f"{path} does not hold MobileNetV2 (no top) weights: {error}") from None
        return net
    size = min(IMAGENET_SIZES, key=lambda s: abs(s - image_size))
    if not _cached(size) and not _online():
        raise WeightsUnavailable(
            "Offline, and the ImageNet weights are not cached. On a machine with internet, download\n"
            f"  {WEIGHTS_URL.format(size=size)}\n"
            "then give its path as the weights (BIGCATS_WEIGHTS=path/to/file.h5)."
        )
    try:
        return keras.applications.MobileNetV2(input_shape=shape, include_top=False, weights="imagenet")
    except Exception as error:
        raise WeightsUnavailable(f"Could not get the ImageNet weights ({error}).") from None


def add_head(base, num_classes, dropout=0.2):
    """The backbone `base` (frozen or not) with a new classifier on top: raw RGB pixels in
    [0, 255] in, class probabilities out. Notebook 07 writes the same function out."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=base.input_shape[1:], name="image")
    x = layers.Rescaling(1 / 127.5, offset=-1)(inputs)  # MobileNetV2 was trained on pixels in [-1, 1]
    x = base(x, training=False)  # inference mode: its batch-norm statistics stay ImageNet's
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="bigcats_mobilenetv2")


def build_transfer_model(image_size, num_classes=2, weights="imagenet", seed=None):
    """MobileNetV2 with pretrained weights, frozen, and a new head: only the head trains."""
    base = backbone(image_size, weights)
    base.trainable = False
    return add_head(base, num_classes)
