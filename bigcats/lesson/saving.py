"""Lesson: saving a trained model so that it is never lost and never mislabelled.

- The class names and the input size travel *inside* the `.keras` file (it is a zip archive; an
  extra entry, which Keras' loader passes over), so a model copied or linked alone still answers
  with the right names. The training record beside it keeps the history and names the model it
  belongs to by its SHA-256, so a record left over from another model is noticed.
- A model is replaced only whole: written under a temporary name beside the old one, labelled,
  then renamed into place with its record while Ctrl-C waits, so an interruption at any moment
  leaves either the old model and record or the new ones.
- The state kept during training, to resume an interrupted run, goes to a side folder
  (`x.backup/`), never over the model.
- The file loads on any Keras backend: the optimiser is recorded by its public name.
"""

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import signal
import threading
import zipfile
from pathlib import Path

LABELS_ENTRY = "bigcats.json"
# Keras records a compiled model's optimiser by its backend's own class (on torch,
# keras.src.backend.torch.optimizers.torch_adam), so loading that file needs that backend: without
# torch it fails, and on TensorFlow with PyTorch's Linux build it crashes Python (tensorflow#124205).
# By its public name (keras.optimizers.Adam) it loads as each backend's own.
BACKEND_OPTIMIZER = re.compile(r'"module": "keras\.src\.backend\.\w+\.optimizers\.\w+"')


def history_path(model_path):
    """models/x.keras -> models/x.history.json: the training record travels with the model."""
    return Path(model_path).with_suffix(".history.json")


def backup_dir(model_path):
    """models/x.keras -> models/x.backup/: where training keeps its latest state (weights,
    optimiser, epoch, curves) so that an interrupted run resumes; never the model itself."""
    model_path = Path(model_path)
    return model_path.with_name(f"{model_path.stem}.backup")


def _partial(path):
    path = Path(path)
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def file_sha256(path):
    """The SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_labels(model_path):
    """{class_names, image_size} stored inside a `.keras` file, or None for a model saved without."""
    try:
        with zipfile.ZipFile(model_path) as archive:
            return json.loads(archive.read(LABELS_ENTRY))
    except (KeyError, zipfile.BadZipFile, OSError, ValueError):
        return None


def make_backend_neutral(model_path):
    """Record the optimiser of a saved `.keras` file by its public name (`BACKEND_OPTIMIZER`)."""
    with zipfile.ZipFile(model_path) as archive:
        config = archive.read("config.json").decode()
        neutral = BACKEND_OPTIMIZER.sub('"module": "keras.optimizers"', config)
        if neutral == config:
            return
        entries = [(info, archive.read(info.filename)) for info in archive.infolist()]
    rewritten = Path(model_path).with_name(Path(model_path).name + ".neutral")
    with zipfile.ZipFile(rewritten, "w") as archive:
        for info, content in entries:
            archive.writestr(info, neutral.encode() if info.filename == "config.json" else content)
    os.replace(rewritten, model_path)


def add_labels(model_path, class_names, image_size):
    """Store the class names and input size inside a saved `.keras` file."""
    with zipfile.ZipFile(model_path, "a") as archive:
        archive.writestr(LABELS_ENTRY, json.dumps({"class_names": list(class_names), "image_size": int(image_size)}))


@contextlib.contextmanager
def ctrl_c_waits():
    """Ctrl-C (SIGINT) and SIGTERM wait until the block is done, then take effect. (Python runs
    signal handlers in the main thread whichever thread the signal reached, so holding them there
    is enough; elsewhere, as in a worker thread, the block runs as it is.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.signal(number, lambda number, frame: received.append(number)) for number in held}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for number in dict.fromkeys(received):
            signal.raise_signal(number)  # now, with the handler it would have met


def why_os_error(error):
    """An OSError's real cause, in words a user can act on."""
    causes = {
        errno.ENOSPC: "no space left on the disk",
        errno.EDQUOT: "the disk quota is used up",
        errno.EROFS: "the disk is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "not permitted (the file may be immutable: see `lsattr`, or owned by another user)",
        errno.ENAMETOOLONG: "the file name is too long",
        errno.EISDIR: "a folder is in the way",
        errno.ENOTDIR: "a file is in the way where a folder should be",
        errno.ENOENT: "no such file or folder",
    }
    return causes.get(error.errno, error.strerror or str(error))


def label_and_record(model_path, record):
    """For a model just saved at model_path: put its class names and input size inside the file,
    and write its training record beside it, naming the model by its SHA-256; the file made to
    load on any backend (`make_backend_neutral`). Returns the record."""
    make_backend_neutral(model_path)
    add_labels(model_path, record["class_names"], record["image_size"])
    record = {**record, "model_sha256": file_sha256(model_path)}
    history_path(model_path).write_text(json.dumps(record, indent=2))
    return record


def save_whole(model, model_path, record):
    """Save `model` and its `record` at model_path, replacing what is there only whole: written
    under temporary names first, then both renamed into place while Ctrl-C waits. A failure
    (a full disk, say) leaves the old model untouched and no partial file. Returns the record."""
    model_path = Path(model_path)
    temporary_model, temporary_record = _partial(model_path), _partial(history_path(model_path))
    try:
        model.save(temporary_model)
        record = label_and_record(temporary_model, record)
        history_path(temporary_model).rename(temporary_record)
        with ctrl_c_waits():
            os.replace(temporary_record, history_path(model_path))
            os.replace(temporary_model, model_path)
    except OSError as error:
        raise OSError(
            error.errno,
            f"Could not save the model to {model_path}: {why_os_error(error)}. Any model that was there is unchanged.",
        ) from None
    finally:
        for leftover in (temporary_model, temporary_record, history_path(temporary_model)):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    shutil.rmtree(backup_dir(model_path), ignore_errors=True)  # ours, and the model is now whole
    return record
