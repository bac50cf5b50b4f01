"""Lesson: reloading a saved model, scoring it, and classifying new photos the way it was trained."""

import json
import sys
import zipfile
from pathlib import Path

import numpy as np

from bigcats.lesson.clean import (
    TINY_SIDE,
    BadImagesError,
    bad_images_message,
    check_file,
    find_unusable,
    pixel_size,
    sniff,
)
from bigcats.lesson.data import (
    IMAGE_EXTENSIONS,
    class_names,
    count_per_class,
    has_image_extension,
    is_clutter,
    load_image,
    make_dataset,
    split_images,
)
from bigcats.lesson.saving import file_sha256, history_path, read_labels

# What `predict` looks for in a folder: what training reads, and WebP, which TensorFlow's decoder
# also reads and which photos saved from a web page often are.
PREDICT_EXTENSIONS = (*IMAGE_EXTENSIONS, ".webp")
# Photo formats the decoder cannot read: listed so that they get an error saying what to do,
# where a folder would otherwise pass over them in silence.
UNREADABLE_PHOTOS = {".tif": "TIFF", ".tiff": "TIFF", ".heic": "HEIC", ".heif": "HEIF", ".avif": "AVIF"}


class ModelLoadError(RuntimeError):
    pass


def load_trained_model(model_path):
    """(model, record): the model, plus class names and image size from its history JSON.
    safe_mode (the default, kept explicit) refuses to run code stored in a model file."""
    import keras

    model_path = Path(model_path)
    if not model_path.is_file():
        raise ModelLoadError(
            f"No model at {model_path}. Train one first: python -m bigcats train --data DIR --model {model_path}"
        )
    if model_path.suffix != ".keras":
        raise ModelLoadError(f"{model_path}: expected a Keras 3 '.keras' file.")
    if not zipfile.is_zipfile(model_path):  # every .keras file is a zip archive
        with open(model_path, "rb") as handle:
            head = handle.read(512)
        if head.startswith(b"PK"):
            what = "a damaged or incomplete zip archive (a .keras file is a zip); copy it again"
        elif head.startswith(b"\x89HDF"):
            what = "an HDF5 (.h5) file under a .keras name; give it its .h5 name, or save the model as .keras"
        else:
            what = f"{sniff(head).replace(' TensorFlow reads', ' Keras saves')}; give the path of a .keras model"
        raise ModelLoadError(f"{model_path} is not a readable Keras model: it is {what}.")
    try:
        model = keras.models.load_model(model_path, safe_mode=True)
    except Exception as error:
        if "safe_mode" in str(error):
            raise ModelLoadError(
                f"{model_path} contains Python code (a Lambda layer), which is not loaded: a model "
                "file could run anything. Load it yourself with safe_mode=False only if you trust "
                "where it came from."
            ) from None
        raise ModelLoadError(
            f"{model_path} is not a readable Keras model ({type(error).__name__}: {error}). "
            "Was it copied completely? Train it again if in doubt."
        ) from None
    return model, model_record(model_path)


def model_record(model_path):
    """The training record, with the class names and input size the model file itself carries.
    Older models carry none and rely on their record; a model with neither, or a record that
    belongs to another model, is refused: it would answer with names that mean nothing or lie."""
    labels = read_labels(model_path)
    record_file = history_path(model_path)
    record = json.loads(record_file.read_text()) if record_file.exists() else None
    if record and record.get("model_sha256") and record["model_sha256"] != file_sha256(model_path):
        if labels is None or record.get("class_names") != labels["class_names"]:
            raise ModelLoadError(
                f"{record_file} belongs to another model than {model_path} (it was replaced or copied without "
                f"it). Move the record aside, or train the model again."
            )
        record = {key: record[key] for key in ("class_names", "image_size") if key in record}  # stale history
    if labels is None and record is None:
        raise ModelLoadError(
            f"{model_path} carries no class names, and its training record ({record_file.name}) is not beside it, "
            f"so its answers could not be named. Copy the record next to it, or train it again with this version."
        )
    return {**(record or {}), **(labels or {})}


def train_if_missing(model_path, data_dir, **settings):
    """Train a model on data_dir with `settings` (train's defaults for the rest) if there is none
    at model_path yet, so that a notebook that evaluates also runs on its own. A model already
    there is used as it is, never retrained or overwritten. Returns model_path."""
    if not Path(model_path).exists():
        from bigcats.lesson.train import train

        print(
            f"No trained model at {model_path} yet: training one now with the tutorial's settings "
            f"(notebook 04 does this step by step)."
        )
        train(data_dir, model_path, verbose=2, **settings)
    return Path(model_path)


def mirrored(images):
    """Photos flipped left to right: one photo (height, width, channels), a batch of them (NumPy,
    or the backend's tensors), or a tf.data pipeline of batches."""
    import tensorflow as tf
    from keras import ops

    if isinstance(images, tf.data.Dataset):
        return images.map(lambda batch: tf.reverse(batch, axis=[-2]))
    if isinstance(images, np.ndarray):
        return images[..., ::-1, :]
    return ops.flip(images, axis=-2)


def classify(model, images, mirror=True):
    """Class probabilities for a batch of photos (or a pipeline of batches) as the model was
    trained on them: RGB, [0, 255], its input size. mirror: average the answers for each photo
    and its mirror image. A lion is a lion both ways round (training shows every photo both
    ways), but a model's mistakes are not symmetric, so two looks make fewer of them, for twice
    the work (docs/model-selection.md#two-looks-at-prediction-time)."""
    probabilities = model.predict(images, verbose=0)
    return (probabilities + model.predict(mirrored(images), verbose=0)) / 2 if mirror else probabilities


def predict_probabilities(model, items, image_size, batch_size=32, mirror=True):
    """Class probabilities, one row per (path, label) item, through the training pipeline."""
    return classify(model, make_dataset(items, image_size, batch_size).map(lambda x, y: x), mirror)


def metrics(y_true, y_pred, class_names):
    """Accuracy, macro-averaged precision/recall/F1, per-class figures, confusion matrix
    (rows: true class, columns: predicted class)."""
    k = len(class_names)
    matrix = np.zeros((k, k), dtype=int)
    for t, p in zip(y_true, y_pred):
        matrix[t, p] += 1
    per_class = {}
    for i, name in enumerate(class_names):
        tp, predicted, actual = matrix[i, i], matrix[:, i].sum(), matrix[i, :].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {
            "precision": float(precision),
            "recall": float(recall),
            "f1": float(f1),
            "support": int(actual),
        }
    n = int(matrix.sum())
    return {
        "n": n,
        "accuracy": float(np.trace(matrix) / n) if n else 0.0,
        "precision": float(np.mean([c["precision"] for c in per_class.values()])),
        "recall": float(np.mean([c["recall"] for c in per_class.values()])),
        "f1": float(np.mean([c["f1"] for c in per_class.values()])),
        "class_names": list(class_names),
        "confusion_matrix": matrix.tolist(),
        "per_class": per_class,
    }


def evaluate(model_path, data_dir, split=None, mirror=True, splits=None):
    """Load a saved model and score it: see evaluate_model. split=None: `default_split`, whose
    reason the result carries as `split_reason`."""
    model, record = load_trained_model(model_path)
    split, why = (split, "as asked") if split else default_split(record, data_dir)
    result, items, probabilities = evaluate_model(model, record, data_dir, split, mirror, splits)
    return {**result, "split_reason": why}, items, probabilities


def default_split(record, data_dir):
    """(split, why): the test split where data_dir is the folder the model was trained on (only
    those photos were never trained on), every photo of any other folder."""
    trained_on = record.get("data_dir")
    if trained_on and Path(trained_on).resolve() == Path(data_dir).resolve():
        return "test", "the folder the model was trained on: only the photos it never saw"
    sizes = record.get("split_sizes")
    names = class_names(data_dir)
    if (
        sizes
        and names == record.get("class_names")
        and sizes == {split: count_per_class(items, names) for split, items in split_images(data_dir).items()}
    ):  # the same photos elsewhere (a copy, or a record that kept a relative path): the same split
        return "test", "the photos the model was trained on, moved: only those it never saw"
    return "all", "not the folder the model was trained on: every photo"


def _model_numbers(record, data_dir):
    """[the model's class number for each class folder of data_dir, in the folders' sorted order].
    Folders are matched to the model's classes by name, upper or lower case alike ('Tiger' is
    'tiger'), so every label means the class the model gives that number, or nothing is scored."""
    folders, known = class_names(data_dir), record["class_names"]
    if not folders:
        raise ValueError(
            f"{data_dir} has no class folders. `evaluate` scores labelled photos, one folder per "
            f"class ({Path(data_dir) / known[0]}/*.jpg, ...); to classify photos without labels, "
            f"use `python -m bigcats predict --model MODEL {data_dir}`."
        )
    number = {name.lower(): index for index, name in enumerate(known)}
    if sorted(name.lower() for name in folders) != sorted(number):
        raise ValueError(
            f"The model knows {', '.join(known)}; {data_dir} has the folders {', '.join(folders)}. "
            f"Name the folders as the model's classes, so that each label means the same to both."
        )
    return [number[name.lower()] for name in folders]


def evaluate_model(model, record, data_dir, split="test", mirror=True, splits=None):
    """Score a model on one split of data_dir ('all' for every image). Returns
    (metrics dict, items, probabilities) so callers can plot the mistakes. mirror: see `classify`.
    `splits`: data_dir's splits as `train.checked_splits` gave them, every file already read
    once; without them, the files are listed, split and checked here."""
    numbers = _model_numbers(record, data_dir)
    checked = splits is not None
    splits = splits if checked else split_images(data_dir)
    items = [i for s in splits.values() for i in s] if split == "all" else splits[split]
    items = [(path, numbers[label]) for path, label in items]
    if not items:
        raise ValueError(f"No images in the {split!r} split of {data_dir}.")
    bad = [] if checked else find_unusable([p for p, _ in items], progress=False)
    if bad:  # a bad file would stop model.predict with TensorFlow's decoder error
        raise BadImagesError(bad_images_message(bad, data_dir))
    probabilities = predict_probabilities(model, items, record["image_size"], mirror=mirror)
    y_true = np.array([label for _, label in items])
    result = metrics(y_true, probabilities.argmax(axis=1), record["class_names"])
    result["split"] = split
    return result, items, probabilities


def expand_inputs(inputs, skipped=None):
    """Files as given; folders replaced by the photos inside them (sorted). Other files in a
    folder (notes, videos) are left out and, if `skipped` is a list, added to it."""
    paths = []
    for item in map(Path, inputs):
        if not item.is_dir():
            paths.append(item)
            continue
        for path in sorted(p for p in item.rglob("*") if p.is_file() and not is_clutter(p)):
            suffix = path.suffix.lower()
            if suffix in PREDICT_EXTENSIONS or suffix in UNREADABLE_PHOTOS:
                paths.append(path)
            elif skipped is not None:
                skipped.append(path)
    return paths


def predict_files(model, record, inputs, mirror=True, batch_size=32):
    """One result per photo, in order: {file, label, probability} (and a `note` where the answer
    means little) or {file, error}. A bad file never stops the others. mirror: see `classify`;
    batch_size: photos per call to the model."""
    from tqdm.auto import tqdm

    skipped = []
    paths = expand_inputs(inputs, skipped)
    if skipped:
        print(
            f"Skipped {len(skipped)} file(s) in the folder(s) that are not photos, e.g. {skipped[0]}", file=sys.stderr
        )
    results, waiting = [], []  # waiting: (result, image) read but not yet classified
    for path in tqdm(paths, desc="Classifying", unit="photo", disable=len(paths) < 20):
        result = _read(path, record["image_size"])
        results.append(result)
        if "image" in result:
            waiting.append((result, result.pop("image")))
        if len(waiting) == batch_size:
            _answer(model, record, waiting, mirror)
    _answer(model, record, waiting, mirror)
    return results


def _read(path, image_size):
    """{file, image} ready for the model, with a `note` for a tiny photo, or {file, error}."""
    result = {"file": str(path)}
    try:
        result["image"] = load_image(path, image_size)
    except Exception as error:
        return {**result, "error": _why_unreadable(path, error)}
    size = pixel_size(path)
    if size and min(size) < TINY_SIDE:
        result["note"] = f"tiny: {size[0]}x{size[1]} pixels, too few to show a cat; the answer means little"
    return result


def _why_unreadable(path, error):
    if not path.exists():
        return "file not found"
    if path.suffix.lower() in UNREADABLE_PHOTOS:
        kind = UNREADABLE_PHOTOS[path.suffix.lower()]
        return f"{kind} photos are not read by TensorFlow's decoder: convert it to JPEG or PNG"
    message = (
        getattr(error, "message", str(error)).split("}}")[-1].strip().splitlines()[0].removesuffix("name:").strip()
    )
    # the cleaner's reasons say what the file is and what to do; it may find nothing wrong with
    # the bytes (the failure was elsewhere), and then TensorFlow's own words are all there is
    reason = check_file(path).reason if has_image_extension(path) else ""
    return f"cannot read image: {reason or message}"


def describe(result):
    """One result of `predict_files` in words: 'lion (97.2%)', with its note, or 'ERROR why'."""
    if "error" in result:
        return f"ERROR {result['error']}"
    note = f" [{result['note']}]" if "note" in result else ""
    return f"{result['label']} ({result['probability']:.1%}){note}"


def _answer(model, record, waiting, mirror):
    # many photos to a call: for one photo, most of predict's time is the call itself
    if not waiting:
        return
    for (result, _), probabilities in zip(waiting, classify(model, np.stack([image for _, image in waiting]), mirror)):
        best = int(np.argmax(probabilities))
        result.update(label=record["class_names"][best], probability=float(probabilities[best]))
    waiting.clear()
