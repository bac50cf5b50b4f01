"""Models that carry their labels and are replaced only whole (issue: nothing lost, nothing
mislabelled): an interrupted retrain leaves the old model answering with its own names; an
existing model is replaced only when asked; a full disk leaves the old file; a model copied or
linked alone still knows its classes; a record of another model is refused."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from bigcats.lesson.saving import backup_dir, ctrl_c_waits, history_path, read_labels, save_whole
from conftest import ROOT, like_a_terminal


def bigcats(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "bigcats", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def renamed_classes(source, target, names):
    """A copy of the synthetic set with its two class folders renamed."""
    for old, new in zip(("lion", "tiger"), names, strict=True):
        shutil.copytree(source / old, target / new)
    return target


@pytest.fixture(scope="module")
def cats(tmp_path_factory):
    """A model trained on cheetah/leopard photos, and lion/tiger photos to retrain it on."""
    from bigcats.lesson.synthetic import make_synthetic_dataset

    tmp = tmp_path_factory.mktemp("saving")
    lions_tigers = make_synthetic_dataset(tmp / "lions_tigers", per_class=16)
    spotted = renamed_classes(lions_tigers, tmp / "spotted", ("cheetah", "leopard"))
    model = tmp / "models" / "cats.keras"
    done = bigcats("train", "--data", spotted, "--model", model, "--epochs", 1, "--image-size", 32, "--batch-size", 8)
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp, lions_tigers, model


def answers(model, photos):
    done = bigcats("predict", "--model", model, photos, "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    return {json.loads(line)["label"] for line in done.stdout.splitlines()}


@pytest.mark.slow
def test_ctrl_c_during_a_retrain_leaves_the_old_model_answering_with_its_own_names(cats):
    _, lions_tigers, model = cats
    before = model.read_bytes(), history_path(model).read_bytes()
    command = [sys.executable, "-m", "bigcats", "train", "--data", lions_tigers, "--model", model, "--overwrite"]
    command += ["--epochs", 200, "--image-size", 48, "--batch-size", 8]
    env = {**os.environ, "BIGCATS_CHECKPOINT_SECONDS": "0"}  # the state to resume from, after every epoch
    run = subprocess.Popen(
        list(map(str, command)),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=like_a_terminal,
    )
    deadline = time.monotonic() + 300
    saved = backup_dir(model) / "training_metadata.json"
    while not saved.exists() and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.2)
    assert saved.exists(), "training saved nothing to resume from"
    time.sleep(0.5)
    run.send_signal(signal.SIGINT)  # Ctrl-C, mid-training, with the state to resume from already saved
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 130, stderr[-2000:]
    assert "interrupted: training stopped" in stderr and "is as it was" in stderr and "Traceback" not in stderr
    assert (model.read_bytes(), history_path(model).read_bytes()) == before  # old model, old record
    assert answers(model, lions_tigers / "lion") <= {"cheetah", "leopard"}  # and its own names
    assert not list(model.parent.glob(".*partial*")), "no half-written files left"
    shutil.rmtree(backup_dir(model))  # the other tests start afresh


@pytest.mark.slow
def test_an_existing_model_is_replaced_only_with_overwrite(cats):
    tmp, lions_tigers, model = cats
    before = model.read_bytes()
    done = bigcats("train", "--data", lions_tigers, "--model", model, "--epochs", 1, "--image-size", 32)
    assert done.returncode == 2 and "already holds a model" in done.stderr and "--overwrite" in done.stderr
    assert "Epoch" not in done.stdout and model.read_bytes() == before  # refused before any training
    again = tmp / "models" / "again.keras"
    shutil.copy(model, again)
    shutil.copy(history_path(model), history_path(again))
    args = ("--data", lions_tigers, "--model", again, "--epochs", 1, "--image-size", 32, "--batch-size", 8)
    done = bigcats("train", *args, "--overwrite")
    assert done.returncode == 0, done.stderr[-2000:]
    assert read_labels(again)["class_names"] == ["lion", "tiger"]
    assert json.loads(history_path(again).read_text())["class_names"] == ["lion", "tiger"]


@pytest.mark.slow
def test_a_model_copied_or_linked_alone_still_knows_its_classes(cats, tmp_path):
    _, lions_tigers, model = cats
    alone = tmp_path / "copied" / "cats.keras"
    alone.parent.mkdir()
    shutil.copy(model, alone)  # no training record beside it
    assert answers(alone, lions_tigers / "tiger") <= {"cheetah", "leopard"}
    link = tmp_path / "current.keras"
    link.symlink_to(model)  # current.keras -> cats.keras: the record is named after the target
    assert answers(link, lions_tigers / "tiger") <= {"cheetah", "leopard"}


@pytest.mark.slow
def test_a_record_of_another_model_is_refused(cats, tmp_path):
    from bigcats.lesson.evaluate import ModelLoadError, load_trained_model
    from bigcats.lesson.model import build_cnn
    from bigcats.lesson.saving import add_labels

    _, _, model = cats
    other = tmp_path / "cats.keras"
    build_cnn(32, num_classes=2).save(other)
    add_labels(other, ["cat", "dog"], 32)
    shutil.copy(history_path(model), history_path(other))  # the cheetah/leopard record beside it
    with pytest.raises(ModelLoadError, match="belongs to another model"):
        load_trained_model(other)


@pytest.mark.slow
def test_folders_named_in_another_case_are_the_models_classes(cats, tmp_path):
    _, lions_tigers, model = cats
    shutil.copytree(lions_tigers / "lion", tmp_path / "Cheetah")  # sorts before "leopard" as 'C' < 'l'
    shutil.copytree(lions_tigers / "tiger", tmp_path / "leopard")
    done = bigcats("evaluate", "--model", model, "--data", tmp_path, "--split", "all", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["class_names"] == ["cheetah", "leopard"]


class FullDisk:
    """A model whose save writes part of the file, then finds the disk full."""

    def save(self, path):
        with open(path, "wb") as handle:
            handle.write(b"PK\x03\x04 half a model")
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_when_saving_leaves_the_old_model_and_no_partial_file(tmp_path):
    model = tmp_path / "cats.keras"
    model.write_bytes(b"the old model")
    history_path(model).write_text('{"class_names": ["lion", "tiger"]}')
    with pytest.raises(OSError, match=r"no space left on the disk\. Any model that was there is unchanged"):
        save_whole(FullDisk(), model, {"class_names": ["a", "b"], "image_size": 32})
    assert model.read_bytes() == b"the old model" and json.loads(history_path(model).read_text())["class_names"] == [
        "lion",
        "tiger",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cats.history.json", "cats.keras"]


def test_ctrl_c_waits_until_the_model_and_its_record_are_both_in_place():
    happened = []
    with pytest.raises(KeyboardInterrupt), ctrl_c_waits():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)
        happened.append("both renamed")
    assert happened == ["both renamed"]


@pytest.mark.slow
def test_an_interrupted_training_resumes_where_it_stopped_and_ends_with_every_epoch(cats, tmp_path):
    _, lions_tigers, _ = cats
    model = tmp_path / "resumed.keras"
    args = ["train", "--data", lions_tigers, "--model", model, "--epochs", 6, "--image-size", 32, "--batch-size", 8]
    env = {**os.environ, "BIGCATS_CHECKPOINT_SECONDS": "0"}
    run = subprocess.Popen(
        [sys.executable, "-m", "bigcats", *map(str, args)],
        cwd=ROOT,
        env=env,
        preexec_fn=like_a_terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    saved = backup_dir(model) / "training_metadata.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and run.poll() is None:
        if saved.exists() and json.loads(saved.read_text() or "{}").get("epoch", 0) >= 2:
            break
        time.sleep(0.1)
    run.send_signal(signal.SIGINT)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 130 and "resumes after epoch" in stderr and not model.exists(), stderr[-2000:]
    stopped_at = json.loads(saved.read_text())["epoch"]
    done = bigcats(*args, env={"BIGCATS_CHECKPOINT_SECONDS": "0"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"Resuming the interrupted training of {model} after epoch {stopped_at} of 6" in done.stdout
    record = json.loads(history_path(model).read_text())
    assert record["epochs_run"] == 6 and len(record["history"]["val_loss"]) == 6  # the same epochs in all
    assert not backup_dir(model).exists()


@pytest.mark.slow
def test_restart_starts_afresh_and_other_settings_are_not_resumed(cats, tmp_path):
    from bigcats.lesson.train import resume_point

    model = tmp_path / "m.keras"
    assert resume_point(model, {"epochs": 6}) == 0  # a new run records its settings
    (backup_dir(model) / "training_metadata.json").write_text('{"epoch": 3}')
    assert resume_point(model, {"epochs": 6}) == 3
    with pytest.raises(ValueError, match="other settings"):
        resume_point(model, {"epochs": 9})
    assert resume_point(model, {"epochs": 9}, restart=True) == 0


@pytest.mark.slow
def test_ctrl_c_after_training_before_the_model_is_saved_loses_nothing(cats, tmp_path, monkeypatch, capsys):
    """The window between the end of fit and the saved model: the finished state stays to resume from."""
    from bigcats.lesson import train as training

    _, lions_tigers, _ = cats
    model = tmp_path / "late.keras"
    settings = dict(epochs=2, image_size=32, batch_size=8, verbose=0)
    real_save = training.save_whole

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "save_whole", interrupted)
    with pytest.raises(KeyboardInterrupt):
        training.train(lions_tigers, model, **settings)
    assert not model.exists()
    assert json.loads((backup_dir(model) / "training_metadata.json").read_text())["epoch"] == 2
    monkeypatch.setattr(training, "save_whole", real_save)
    _, record = training.train(lions_tigers, model, **settings)
    assert "after epoch 2 of 2" in capsys.readouterr().out
    assert model.exists() and record["epochs_run"] == 2 and len(record["history"]["val_loss"]) == 2
    assert not backup_dir(model).exists()
