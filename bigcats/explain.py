"""Looking inside the classifier: ROC curves and Grad-CAM heat maps."""

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
    activations of the last convolutional layer."""
    import keras
    import tensorflow as tf

    layer = model.get_layer(layer_name or last_feature_layer(model))
    probe = keras.Model(model.inputs, [layer.output, model.output])
    images = tf.convert_to_tensor(images, dtype=tf.float32)
    with tf.GradientTape() as tape:
        features, probabilities = probe(images, training=False)
        wanted = tf.broadcast_to(tf.constant(class_index, dtype=tf.int32), tf.shape(probabilities)[:1])
        score = tf.gather(probabilities, wanted, axis=1, batch_dims=1)
    gradients = tape.gradient(score, features)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)  # importance of each channel
    cam = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))
    cam = cam / (tf.reduce_max(cam, axis=(1, 2), keepdims=True) + 1e-8)
    return tf.image.resize(cam[..., None], images.shape[1:3])[..., 0].numpy()
