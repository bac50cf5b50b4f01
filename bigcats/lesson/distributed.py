"""Lesson: training across several machines, MultiWorkerMirroredStrategy, configured by TF_CONFIG.

Every machine runs the same command with its own TF_CONFIG (the cluster's addresses and this
machine's index); worker 0 is the chief and writes the model. Keras 3's `model.fit` does not
work under this strategy (keras-team/keras#20585: "Attempt to convert a value (PerReplica...)"),
so this is the custom training step TensorFlow documents: model and optimizer built in the
strategy's scope, `strategy.run` inside a `tf.function`, the loss averaged over the global batch,
results reduced across workers.
"""

import json
import os
import tempfile
import time
from pathlib import Path

from bigcats.lesson import config
from bigcats.lesson.data import make_dataset
from bigcats.lesson.evaluate import evaluate
from bigcats.lesson.model import build_cnn, optimizer
from bigcats.lesson.saving import history_path, label_and_record
from bigcats.lesson.train import build_record, check_model_path, checked_splits, training_settings


def cluster_info():
    """(task index, number of workers) from TF_CONFIG, or a clear error."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ValueError(
            'TF_CONFIG is not set. Each worker needs e.g. TF_CONFIG=\'{"cluster": {"worker": '
            '["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}\' (see docs/install.md#several-machines).'
        )
    try:
        spec = json.loads(raw)
        return int(spec["task"]["index"]), len(spec["cluster"]["worker"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"TF_CONFIG is not valid ({error}): {raw}") from None


def _distributed_step(strategy, model, optimizer, global_batch):
    import keras
    import tensorflow as tf

    loss_fn = keras.losses.SparseCategoricalCrossentropy(reduction="none")

    def replica_step(images, labels):
        with tf.GradientTape() as tape:
            probabilities = model(images, training=True)
            # Divide by the GLOBAL batch: summed over replicas this is the mean over all images.
            loss = tf.nn.compute_average_loss(loss_fn(labels, probabilities), global_batch_size=global_batch)
        gradients = tape.gradient(loss, model.trainable_weights)
        optimizer.apply(gradients, model.trainable_weights)
        hits = tf.reduce_sum(tf.cast(tf.argmax(probabilities, axis=1) == tf.cast(labels, tf.int64), tf.float32))
        return loss, hits

    @tf.function
    def step(batch):
        loss, hits = strategy.run(replica_step, args=batch)
        sum_ = tf.distribute.ReduceOp.SUM
        return strategy.reduce(sum_, loss, axis=None), strategy.reduce(sum_, hits, axis=None)

    return step


def _distributed_batches(strategy, items, image_size, global_batch, seed):
    """An endless iterator of the training batches, each split over the workers' replicas.
    Every worker must take the same number of steps, or the last all-reduce waits for ever: the
    data repeats and each epoch runs a fixed number of steps."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    train_ds = make_dataset(items, image_size, global_batch, training=True, seed=seed).repeat()
    return iter(strategy.experimental_distribute_dataset(train_ds.with_options(options)))


def _run_epochs(step, batches, steps, epochs, global_batch, say):
    """Run `epochs` of `steps` distributed steps; the loss and accuracy of each epoch."""
    history = {"loss": [], "accuracy": []}
    for epoch in range(epochs):
        loss = hits = 0.0
        for _ in range(steps):
            step_loss, step_hits = step(next(batches))
            loss, hits = loss + float(step_loss), hits + float(step_hits)
        history["loss"].append(loss / steps)
        history["accuracy"].append(hits / (steps * global_batch))
        say(f"epoch {epoch + 1}/{epochs} loss {history['loss'][-1]:.4f} accuracy {history['accuracy'][-1]:.4f}")
    return history


def _saved_by_the_chief(model, model_path, index):
    """Every worker saves (reading synchronised variables can need all of them); only the chief's
    (index 0) copy is kept. True on the chief."""
    if index == 0:
        model_path.parent.mkdir(parents=True, exist_ok=True)
        model.save(model_path)
        return True
    with tempfile.TemporaryDirectory() as folder:
        model.save(Path(folder) / "worker.keras")
    return False


def train_multiworker(
    data_dir,
    model_path,
    epochs=config.EPOCHS,
    image_size=config.IMAGE_SIZE,
    batch_size=config.BATCH_SIZE,
    learning_rate=config.LEARNING_RATE,
    seed=config.SEED,
    log=print,
    overwrite=False,
    restart=False,  # accepted for the command line's sake: multi-worker training does not resume
):
    """Train with every worker in TF_CONFIG; the chief (index 0) saves the model and its record."""
    import keras
    import tensorflow as tf

    settings = training_settings(epochs, image_size, batch_size, learning_rate, seed)
    model_path = check_model_path(model_path, overwrite)
    index, workers = cluster_info()
    # The strategy must exist before any other TensorFlow work ("Collective ops must be
    # configured at program startup"); then every worker checks its files before the first
    # step, because a bad one mid-epoch would leave the other workers waiting for ever.
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    names, splits = checked_splits(data_dir)
    keras.utils.set_random_seed(seed)  # same seed everywhere: same initial weights, same shuffle order
    global_batch = batch_size * strategy.num_replicas_in_sync
    steps = max(1, len(splits["train"]) // global_batch)
    batches = _distributed_batches(strategy, splits["train"], image_size, global_batch, seed)
    with strategy.scope():  # the same model and cosine schedule as single-machine training
        model = build_cnn(image_size, num_classes=len(names), seed=seed)
        adam = optimizer(learning_rate, decay_steps=steps * epochs)
    step = _distributed_step(strategy, model, adam, global_batch)
    start = time.perf_counter()
    history = _run_epochs(
        step, batches, steps, epochs, global_batch, lambda line: log(f"worker {index}/{workers}: {line}")
    )
    seconds = time.perf_counter() - start
    if not _saved_by_the_chief(model, model_path, index):
        return model, None
    setup = {
        "device": f"{workers} workers",
        "replicas": strategy.num_replicas_in_sync,
        "precision": "float32",
        "reasons": [
            "MultiWorkerMirroredStrategy from TF_CONFIG, custom training step (Keras 3 fit does not support it)"
        ],
    }
    record = build_record(data_dir, names, splits, history, seconds, setup, **settings, architecture=model.name)
    record = label_and_record(model_path, record)
    if splits["val"]:  # evaluate reads class names from the model just labelled
        record["val_accuracy"] = evaluate(model_path, data_dir, split="val", splits=splits)[0]["accuracy"]
        history_path(model_path).write_text(json.dumps(record, indent=2))
    return model, record
