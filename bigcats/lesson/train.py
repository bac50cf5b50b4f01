"""Lesson: training, checked data in, a saved `.keras` model and its record (JSON) out."""

import json
import math
import os
import shutil
import time
from pathlib import Path

from bigcats.lesson import config
from bigcats.lesson.clean import BadImagesError, bad_images_message, find_unusable
from bigcats.lesson.data import class_names, count_per_class, make_dataset, split_images
from bigcats.lesson.saving import backup_dir, ctrl_c_waits, save_whole
from bigcats.lesson.synthetic import is_synthetic

# Training settings outside these ranges are mistakes, refused before any work.
IMAGE_SIZE_RANGE = (32, 1024)  # below 32 px the stem and four poolings leave nothing to look at
BATCH_SIZE_RANGE = (1, 4096)
MODEL_SPACE_NEEDED = 50_000_000  # bytes free beside the model: this CNN's file is a few MB, with room to spare


def check_model_path(model_path, overwrite=True):
    """Refuse, before an hour of training, a model path that cannot end well: not a `.keras`
    file (all Keras 3 saves whole), a folder, under a file, unwritable, on a full disk, or an
    existing model when `overwrite` is False. Returns the path."""
    model_path = Path(model_path)
    if model_path.suffix != ".keras":
        raise ValueError(
            f"{model_path}: Keras 3 saves models as '.keras' files (not .h5, .hdf5 or a folder). "
            f"Use e.g. {model_path.with_suffix('.keras')}"
        )
    if model_path.is_dir():
        raise ValueError(f"{model_path} is a folder; give a file name for the model, e.g. {model_path / 'model.keras'}")
    folder = next((p for p in model_path.parents if p.exists()), Path("."))
    if not folder.is_dir():
        raise ValueError(f"{folder} is a file, so {model_path} cannot be made under it; choose another folder")
    if model_path.exists() and not overwrite:
        raise FileExistsError(
            f"{model_path} already holds a model. Give --overwrite to replace it (it is replaced only when "
            f"training has finished), or choose another name."
        )
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"{folder} is not writable, so the model cannot be saved there; choose another folder")
    free = shutil.disk_usage(folder).free
    if free < MODEL_SPACE_NEEDED:
        raise OSError(
            f"Only {free / 1e6:.0f} MB free in {folder}: the model needs about {MODEL_SPACE_NEEDED / 1e6:.0f} MB"
        )
    return model_path


def check_settings(epochs, image_size, batch_size, learning_rate):
    """Refuse training settings that would fail late or train nothing, saying what to give."""
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs {epochs}: give 1 or more (the tutorial trains {config.EPOCHS})")
    low, high = IMAGE_SIZE_RANGE
    if not low <= image_size <= high:
        # the stem's first maps alone: 16 photos x 32 channels at half the size, 4 bytes a number
        megabytes = 16 * 32 * (image_size / 2) ** 2 * 4 / 1e6
        raise ValueError(
            f"image size {image_size}: give {low} to {high} pixels (the tutorial uses {config.IMAGE_SIZE})"
            + (
                f"; at {image_size} px one batch of 16 would need over {megabytes:,.0f} MB for its first layer"
                if image_size > high
                else ""
            )
        )
    low, high = BATCH_SIZE_RANGE
    if not low <= batch_size <= high:
        raise ValueError(
            f"batch size {batch_size}: give {low} to {high} photos a step (the tutorial uses {config.BATCH_SIZE})"
        )
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"learning rate {learning_rate}: give a positive number such as {config.LEARNING_RATE}")


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


def build_record(data_dir, names, splits, history, seconds, setup, **settings):
    """The training record: classes, `settings` (the knobs used), curves, split sizes, devices,
    and the backend that trained (its name, version and device)."""
    import keras
    import tensorflow as tf

    from bigcats.environment.gpus import describe

    return {
        "class_names": names,
        **settings,
        "epochs_run": len(history.get("loss", [])),
        "train_seconds": round(seconds, 2),
        "history": history,
        "split_sizes": {s: count_per_class(items, names) for s, items in splits.items()},
        "data_dir": str(Path(data_dir).resolve()),
        "synthetic_data": is_synthetic(data_dir),
        "setup": setup,
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        "backend": describe(setup.get("device", "CPU")),
    }


def backup_now_and_then(model_path, every_seconds=config.CHECKPOINT_SECONDS):
    """Keras' BackupAndRestore, keeping its state (weights, optimiser, epoch) in `x.backup/` beside
    the model, saved at the end of an epoch at most every `every_seconds` (not after every epoch:
    saving takes a fair part of a short epoch on a CPU), and once more when training ends, with
    the curves so far beside it. A run interrupted and started again resumes from the last saved
    epoch; `.curves` holds all epochs'. The folder stays until `saving.save_whole` has put the
    model in place: Ctrl-C or a crash between the end of `fit` and the saved model loses nothing."""
    import keras

    folder = backup_dir(model_path)

    class BackupNowAndThen(keras.callbacks.BackupAndRestore):
        def __init__(self):
            super().__init__(str(folder), save_freq="epoch", delete_checkpoint=False)
            self.curves, self.last_save, self.saved_epoch = {}, time.perf_counter(), None

        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)  # loads the saved state, if any
            saved = folder / "curves.json"
            self.curves = json.loads(saved.read_text()) if saved.exists() else {}

        def on_epoch_end(self, epoch, logs=None):
            for key, value in (logs or {}).items():
                self.curves.setdefault(key, []).append(float(value))
            self._current_epoch = epoch + 1  # what Keras' own on_epoch_end keeps (Keras 3.15)
            if time.perf_counter() - self.last_save >= every_seconds:
                self.save_now()

        def on_train_end(self, logs=None):
            if self.saved_epoch != self._current_epoch:
                self.save_now()  # the finished state: resuming it only saves the model

        def save_now(self):
            # Ctrl-C waits: a checkpoint cut off halfway through its weights resumed nothing
            with ctrl_c_waits():
                self._save_model()  # Keras' own save: weights, optimiser state and this epoch
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "curves.json").write_text(json.dumps(self.curves))
            self.last_save, self.saved_epoch = time.perf_counter(), self._current_epoch

        def forget(self):
            """Once the model is saved whole: the state to resume from goes (`save_whole` does this itself)."""
            shutil.rmtree(folder, ignore_errors=True)

    return BackupNowAndThen()


def resume_point(model_path, settings, restart=False):
    """The epoch an interrupted run of the same training stopped at (0: none, or `restart`).
    A run saved with other settings is refused: resuming it would train something else."""
    folder = backup_dir(model_path)
    if restart:
        shutil.rmtree(folder, ignore_errors=True)
    metadata, saved_settings = folder / "training_metadata.json", folder / "settings.json"
    if not metadata.exists():
        folder.mkdir(parents=True, exist_ok=True)
        saved_settings.write_text(json.dumps(settings))
        return 0
    if saved_settings.exists() and json.loads(saved_settings.read_text()) != settings:
        raise ValueError(
            f"An interrupted training with other settings can be resumed from {folder}. Run the same "
            f"command again to resume it, or add --restart to start afresh."
        )
    return int(json.loads(metadata.read_text())["epoch"])


def training_record(model, data_dir, names, splits, history, seconds, setup, **settings):
    """The training record for a model just trained. `history` is what `model.fit` returned (or
    its `.history` dict, e.g. of several fits joined); `setup` is `training_setup()`'s answer."""
    curves = getattr(history, "history", history)
    values = {key: [float(value) for value in values] for key, values in curves.items()}
    # xla: what Keras actually did, beside the reason training_setup foresaw before the model existed
    setup_info = {
        "device": setup.device,
        "replicas": setup.replicas,
        "precision": setup.precision,
        "xla": bool(model.jit_compile),
        "augmentation": setup.augment_on,
        "reasons": setup.reasons,
    }
    return build_record(data_dir, names, splits, values, seconds, setup_info, **settings)


def training_settings(epochs, image_size, batch_size, learning_rate, seed, schedule="cosine", patience=None,
                      augment_on="auto"):  # fmt: skip
    """The knobs of one training run, checked, in one dict: a resumed run must match them, and
    the record keeps them."""
    check_settings(epochs, image_size, batch_size, learning_rate)
    return dict(epochs_requested=epochs, image_size=image_size, batch_size=batch_size, learning_rate=learning_rate,
                seed=seed, schedule=schedule, patience=patience, augment_on=augment_on)  # fmt: skip


def training_data(splits, settings, setup, cache=True, augmenting=True):
    """(training pipeline, validation pipeline or None, steps per epoch) for `splits`, in global
    batches (every replica still gets `batch_size` photos), augmented where `setup` says."""
    global_batch = settings["batch_size"] * setup.replicas
    train_items, val_items = (even_for_replicas(splits[name], setup.replicas) for name in ("train", "val"))
    train_ds = make_dataset(train_items, settings["image_size"], global_batch, training=True, seed=settings["seed"],
                            cache=cache, augmenting=augmenting, augment_in=setup.augment_on)  # fmt: skip
    val_ds = make_dataset(val_items, settings["image_size"], global_batch, cache=cache) if val_items else None
    return train_ds, val_ds, math.ceil(len(train_items) / global_batch)


def compiled_for_training(build, num_classes, settings, setup, steps_per_epoch, augmenting=True):
    """(model, what fit trains): the model built and compiled in the strategy's scope, with the
    augmentation layer in front where the training step augments; the model alone is saved."""
    from bigcats.lesson.augment import with_augmentation
    from bigcats.lesson.model import compile_model

    image_size, seed = settings["image_size"], settings["seed"]
    decay_steps = steps_per_epoch * settings["epochs_requested"] if settings["schedule"] == "cosine" else None
    with setup.strategy.scope():
        model = build(image_size, num_classes=num_classes, seed=seed)
        in_step = augmenting and setup.augment_on == "step"
        trainer = with_augmentation(model, image_size, seed) if in_step else model
        return model, compile_model(trainer, settings["learning_rate"], decay_steps)


def fit_with_backup(trainer, train_ds, val_ds, steps_per_epoch, settings, model_path, data_dir, verbose="auto"):
    """Fit with the backup that lets an interrupted run resume (`backup_now_and_then`), and early
    stopping where `patience` asks for it. Returns the backup, whose `.curves` hold every epoch.
    Ctrl-C and an unreadable photo end with what to do next."""
    import keras
    import tensorflow as tf

    backup = backup_now_and_then(model_path, config.env_param("BIGCATS_CHECKPOINT_SECONDS", config.CHECKPOINT_SECONDS))
    callbacks = [backup]
    if settings["patience"]:
        monitor = "val_loss" if val_ds is not None else "loss"
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor=monitor, patience=settings["patience"], restore_best_weights=True)
        )
    try:
        # one pass after another through one iterator: a new one every epoch started the pipeline's
        # compiled augmentation afresh (docs/benchmarks.md#input-that-never-sets-the-pace); shuffle=False:
        # the pipeline reshuffles every epoch
        trainer.fit(train_ds.repeat(), steps_per_epoch=steps_per_epoch, validation_data=val_ds,
                    epochs=settings["epochs_requested"], shuffle=False, callbacks=callbacks, verbose=verbose)  # fmt: skip
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"training stopped: {model_path} is as it was{_what_resumes(model_path)}") from None
    except tf.errors.InvalidArgumentError as error:
        if not any(word in error.message for word in ("image", "JPEG", "PNG", "decode", "Decode")):
            raise
        raise BadImagesError(
            f"TensorFlow could not read an image during training ({error.message.splitlines()[0]}).\n"
            f"Find and move the bad file aside with:  python -m bigcats clean {data_dir}"
        ) from None
    return backup


def _what_resumes(model_path):
    saved = backup_dir(model_path) / "training_metadata.json"
    if saved.exists():
        return f"; the same command again resumes after epoch {json.loads(saved.read_text())['epoch']}"
    return ", and nothing was saved to resume from yet"


def train(data_dir, model_path, epochs=config.EPOCHS, image_size=config.IMAGE_SIZE, batch_size=config.BATCH_SIZE,
          learning_rate=config.LEARNING_RATE, seed=config.SEED, schedule="cosine", patience=None, devices=None,
          verbose="auto", check_images=True, build=None, cache=True, augmenting=True, overwrite=False, restart=False,
          augment_on="auto"):  # fmt: skip
    """Train the CNN (or the model `build(image_size, num_classes=, seed=)` returns) on
    data_dir/<class>/ and save it. Returns (model, record).

    schedule: "cosine" (the learning rate decays over all epochs) or "constant".
    patience: None trains every epoch (the default: on a few dozen validation photos, early
    stopping stops on noise); a number stops after that many epochs without a better
    validation loss and restores the best weights. cache, augmenting: see data.make_dataset
    (augmenting=False trains on the photos as they are, as the 2022 recipe did). augment_on:
    where the augmentation runs: "auto", "pipeline" or "step" (devices.augmentation_place). overwrite: an
    existing model is replaced (whole, when training has finished) only if True.
    Ctrl-C stops training and leaves any model already at model_path as it was; the same call
    again resumes from the last saved epoch (restart=True starts afresh)."""
    import keras

    from bigcats.lesson.devices import training_setup
    from bigcats.lesson.model import build_cnn

    settings = training_settings(epochs, image_size, batch_size, learning_rate, seed, schedule, patience, augment_on)
    model_path = check_model_path(model_path, overwrite)
    names, splits = checked_splits(data_dir, check_images)
    resumed_at = resume_point(model_path, {**settings, "data_dir": str(Path(data_dir).resolve())}, restart)
    if resumed_at:
        print(f"Resuming the interrupted training of {model_path} after epoch {resumed_at} of {epochs} "
              f"(add --restart to start afresh)", flush=True)  # fmt: skip
    keras.utils.set_random_seed(seed)
    setup = training_setup(devices, augment_on=augment_on)
    start = time.perf_counter()  # decoding the photos counts: the 2022 recipe decodes them during fit
    train_ds, val_ds, steps_per_epoch = training_data(splits, settings, setup, cache, augmenting)
    model, trainer = compiled_for_training(build or build_cnn, len(names), settings, setup, steps_per_epoch, augmenting)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    backup = fit_with_backup(trainer, train_ds, val_ds, steps_per_epoch, settings, model_path, data_dir, verbose)
    seconds = time.perf_counter() - start
    record = training_record(trainer, data_dir, names, splits, backup.curves, seconds, setup, **settings,
                             architecture=model.name)  # fmt: skip
    return model, save_whole(model, model_path, record)
