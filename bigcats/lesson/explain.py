"""Lesson: looking inside the classifier, ROC curves and Grad-CAM heat maps."""

import numpy as np


def roc_curve(is_positive, scores):
    """(false-positive rates, true-positive rates, area under the curve) for one class,
    sweeping the decision threshold over every score."""
    is_positive = np.asarray(is_positive, dtype=bool)
    scores = np.asarray(scores, dtype=float)
    order = np.argsort(-scores, kind="stable")
    hits = is_positive[order]
    # One point per distinct threshold: tied scores move together, as they would in use.
    ends = np.r_[np.flatnonzero(np.diff(scores[order])), len(hits) - 1]
    true_pos, false_pos = np.cumsum(hits)[ends], np.cumsum(~hits)[ends]
    tpr = np.concatenate([[0.0], true_pos / max(hits.sum(), 1)])
    fpr = np.concatenate([[0.0], false_pos / max((~hits).sum(), 1)])
    return fpr, tpr, float(np.trapezoid(tpr, fpr))


def roc_curves(labels, probabilities, class_names):
    """{class: (fpr, tpr, auc)}: the positive class alone for two classes, one-vs-rest for more."""
    labels = np.asarray(labels)
    wanted = [1] if len(class_names) == 2 else range(len(class_names))
    return {class_names[i]: roc_curve(labels == i, probabilities[:, i]) for i in wanted}


def last_feature_layer(model):
    """The last layer with a spatial (4-D) output that is not a pooling layer: where Grad-CAM
    looks (a pooling layer after it would only halve an already coarse map)."""
    for layer in reversed(model.layers):
        shape = getattr(layer, "output", None) is not None and layer.output.shape
        if shape and len(shape) == 4 and "Pooling" not in type(layer).__name__:
            return layer.name
    raise ValueError(f"{model.name} has no convolutional layer to explain.")


def grad_cam(model, images, class_index, layer_name=None):
    """Heat maps in [0, 1], one per image (same height/width as the images): where the
    evidence for `class_index` (one class, or one per image) is, by the gradient-weighted
    activations of the last convolutional layer. On any Keras backend (`gradient`)."""
    import keras
    from keras import ops

    layer = model.get_layer(layer_name or last_feature_layer(model))
    # the model cut in two at that layer: the features, then the answer from them
    front = keras.Model(model.inputs, layer.output)
    back = keras.Model(layer.output, model.output)
    images = ops.convert_to_tensor(np.asarray(images, dtype="float32"))
    features = front(images, training=False)
    wanted = np.broadcast_to(np.asarray(class_index, dtype="int32"), (images.shape[0],))
    one_hot = ops.one_hot(ops.convert_to_tensor(wanted), model.output.shape[-1])
    gradients = gradient(lambda f: ops.sum(back(f, training=False) * one_hot), features)
    weights = ops.mean(gradients, axis=(1, 2), keepdims=True)  # importance of each channel
    cam = ops.relu(ops.sum(weights * features, axis=-1))
    cam = cam / (ops.max(cam, axis=(1, 2), keepdims=True) + 1e-8)
    heat = ops.image.resize(cam[..., None], tuple(images.shape[1:3]))[..., 0]
    return ops.convert_to_numpy(heat)


def gradient(scalar_function, x):
    """d scalar_function(x) / dx on the active Keras backend: Keras has no backend-neutral
    gradient, so each backend's own (TensorFlow's tape, torch's autograd, jax.grad)."""
    import keras

    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        x = x.detach().requires_grad_(True)
        return torch.autograd.grad(scalar_function(x), x)[0]
    if backend == "jax":
        import jax

        return jax.grad(scalar_function)(x)
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(x)
        value = scalar_function(x)
    return tape.gradient(value, x)
