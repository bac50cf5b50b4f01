"""Training: checked data in, a saved `.keras` model and its history (JSON) out."""

import json
import time
from pathlib import Path

from bigcats import config
from bigcats.clean import find_unusable
from bigcats.data import class_names, count_per_class, is_synthetic, make_dataset, split_images


class BadImagesError(ValueError):
    """Files that would crash training, named, with the command that moves them aside."""


def check_model_path(model_path):
    """Keras 3 saves a whole model only to a `.keras` file; say so before an hour of training."""
    model_path = Path(model_path)
    if model_path.suffix != ".keras":
        raise ValueError(
            f"{model_path}: Keras 3 saves models as '.keras' files (not .h5, .hdf5 or a folder). "
            f"Use e.g. {model_path.with_suffix('.keras')}"
        )
    return model_path


def history_path(model_path):
    """models/x.keras -> models/x.history.json: the training record travels with the model."""
    return Path(model_path).with_suffix(".history.json")


def bad_images_message(bad, data_dir):
    listing = "\n".join(f"  {path}: {reason}" for path, reason in bad[:20])
    more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
    return (
        f"{len(bad)} file(s) in {data_dir} cannot be read by TensorFlow (training would crash on them):\n"
        f"{listing}{more}\n"
        f"Move them aside (nothing is deleted) with:  python -m bigcats clean {data_dir}"
    )


def even_for_replicas(items, replicas):
    """Drop the last (at most replicas-1) images so that every batch splits evenly.
    Keras 3 under MirroredStrategy fails on a first batch that cannot ("AddN must have the same
    size") and on a batch that leaves a replica empty (batch normalisation sees 0 images)."""
    return items[: len(items) // replicas * replicas]


def checked_splits(data_dir, check_images=True):
    """(class names, splits) of data_dir, after making sure no file would crash training."""
    names = class_names(data_dir)
    splits = split_images(data_dir)
    if len(names) < 2 or not splits["train"]:
        raise ValueError(f"{data_dir} needs at least two class folders with images, like {data_dir}/lion/*.jpg")
    trained_on = count_per_class(splits["train"], names)
    empty = [name for name, n in trained_on.items() if n == 0]
    if empty:  # a class with nothing to learn from would still "train", to a model that never names it
        raise ValueError(
            f"No training photos for class {', '.join(empty)} in {data_dir} (about 70% of each "
            f"folder's photos train, chosen by their content; the rest are held out). Add photos "
            f"to {Path(data_dir) / empty[0]}: a few dozen per class at least."
        )
    if check_images:
        bad = find_unusable([p for items in splits.values() for p, _ in items])
        if bad:
            raise BadImagesError(bad_images_message(bad, data_dir))
    return names, splits


def write_record(model_path, data_dir, names, splits, history, seconds, setup, **settings):
    """The training record (history JSON) beside the model; `settings` are the knobs used."""
    import keras
    import tensorflow as tf

    record = {
        "class_names": names,
        **settings,
        "epochs_run": len(history.get("loss", [])),
        "train_seconds": round(seconds, 2),
        "history": history,
        "split_sizes": {s: count_per_class(items, names) for s, items in splits.items()},
        "data_dir": str(data_dir),
        "synthetic_data": is_synthetic(data_dir),
        "setup": setup,
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }
    history_path(model_path).write_text(json.dumps(record, indent=2))
    return record


def save_now_and_then(model_path, every_seconds=60):
    """A callback that saves the model at the end of an epoch if the last save is at least
    `every_seconds` old, so an interrupted run still leaves a model on disk."""
    import keras

    # not after every epoch: saving takes a fair part of a short epoch on a CPU
    last_save = [time.perf_counter()]

    def on_epoch_end(epoch, logs):
        if time.perf_counter() - last_save[0] >= every_seconds:
            callback.model.save(model_path)
            last_save[0] = time.perf_counter()

    callback = keras.callbacks.LambdaCallback(on_epoch_end=on_epoch_end)
    return callback


def record_training(model, model_path, data_dir, names, splits, history, seconds, setup, **settings):
    """Write the training record beside the model: classes, settings, curves, devices. `history`
    is what `model.fit` returned (or its `.history` dict, e.g. of several fits joined); `setup` is
    `training_setup()`'s answer. Returns the record."""
    curves = getattr(history, "history", history)
    values = {key: [float(value) for value in values] for key, values in curves.items()}
    # xla: what Keras actually did, beside the reason training_setup foresaw before the model existed
    setup_info = {
        "device": setup.device,
        "replicas": setup.replicas,
        "precision": setup.precision,
        "xla": bool(model.jit_compile),
        "reasons": setup.reasons,
    }
    return write_record(model_path, data_dir, names, splits, values, seconds, setup_info, **settings)


def train(
    data_dir,
    model_path,
    epochs=config.EPOCHS,
    image_size=config.IMAGE_SIZE,
    batch_size=config.BATCH_SIZE,
    learning_rate=config.LEARNING_RATE,
    seed=config.SEED,
    schedule="cosine",
    patience=None,
    devices=None,
    verbose="auto",
    check_images=True,
    build=None,
    cache=True,
    augmenting=True,
):
    """Train the CNN (or the model `build(image_size, num_classes=, seed=)` returns) on
    data_dir/<class>/ and save it. Returns (model, record).

    schedule: "cosine" (the learning rate decays over all epochs) or "constant".
    patience: None trains every epoch (the default: on a few dozen validation photos, early
    stopping stops on noise); a number stops after that many epochs without a better
    validation loss and restores the best weights. cache, augmenting: see data.make_dataset
    (augmenting=False trains on the photos as they are, as the 2022 recipe did)."""
    import keras
    import tensorflow as tf

    from bigcats.devices import training_setup
    from bigcats.model import build_cnn, compile_model

    model_path = check_model_path(model_path)
    names, splits = checked_splits(data_dir, check_images)
    keras.utils.set_random_seed(seed)
    setup = training_setup(devices)
    global_batch = batch_size * setup.replicas  # each replica still sees `batch_size` images
    train_items, val_items = (even_for_replicas(splits[s], setup.replicas) for s in ("train", "val"))
    train_ds = make_dataset(
        train_items, image_size, global_batch, training=True, seed=seed, cache=cache, augmenting=augmenting
    )
    val_ds = make_dataset(val_items, image_size, global_batch, cache=cache) if val_items else None
    monitor = "val_loss" if val_ds is not None else "loss"
    steps = -(-len(train_items) // global_batch) * epochs
    with setup.strategy.scope():
        model = compile_model(
            (build or build_cnn)(image_size, num_classes=len(names), seed=seed),
            learning_rate,
            decay_steps=steps if schedule == "cosine" else None,
        )

    callbacks = [save_now_and_then(model_path)]
    if patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=patience, restore_best_weights=True))
    model_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        # shuffle=False: the tf.data pipeline already reshuffles every epoch (Keras would only
        # warn that it ignores its own shuffle for a dataset).
        history = model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=epochs,
            shuffle=False,
            callbacks=callbacks,
            verbose=verbose,
        )
    except tf.errors.InvalidArgumentError as error:
        if not any(word in error.message for word in ("image", "JPEG", "PNG", "decode", "Decode")):
            raise
        raise BadImagesError(
            f"TensorFlow could not read an image during training ({error.message.splitlines()[0]}).\n"
            f"Find and move the bad file aside with:  python -m bigcats clean {data_dir}"
        ) from None
    seconds = time.perf_counter() - start
    model.save(model_path)
    record = record_training(
        model,
        model_path,
        data_dir,
        names,
        splits,
        history,
        seconds,
        setup,
        image_size=image_size,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        epochs_requested=epochs,
        schedule=schedule,
        architecture=model.name,
    )
    return model, record
