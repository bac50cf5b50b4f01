"""Every argument checked before any work, each refusal a plain sentence with what to give instead,
and no traceback: the command line's half of 'nothing lost, nothing mislabelled'."""

import io
import json
import zipfile

import pytest

from bigcats import __main__ as cli
from conftest import jpeg_bytes, random_rgb


def run(capsys, *args):
    code = cli.main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


@pytest.mark.parametrize(
    "option, value, words",
    [
        ("--batch-size", 0, "batch size 0: give 1 to"),
        ("--batch-size", -1, "batch size -1"),
        ("--image-size", 0, "image size 0: give 32 to 1024"),
        ("--image-size", -5, "image size -5"),
        ("--image-size", 5000, "MB for its first layer"),
        ("--epochs", -1, "epochs -1: give 1 or more"),
        ("--epochs", 0, "epochs 0: give 1 or more"),
        ("--learning-rate", "nan", "learning rate nan: give a positive number"),
        ("--learning-rate", 0, "learning rate 0.0"),
        ("--learning-rate", "inf", "learning rate inf"),
    ],
)
def test_training_settings_are_refused_before_any_work(capsys, tmp_path, option, value, words):
    code, _, err = run(capsys, "train", "--data", tmp_path / "none", "--model", tmp_path / "m.keras", option, value)
    assert code == 2 and words in err
    assert not (tmp_path / "m.keras").exists()


def test_a_model_path_that_is_a_folder_or_under_a_file_is_refused(capsys, tmp_path):
    (tmp_path / "folder.keras").mkdir()
    code, _, err = run(capsys, "train", "--model", tmp_path / "folder.keras")
    assert code == 2 and "is a folder" in err
    (tmp_path / "afile").write_text("x")
    code, _, err = run(capsys, "train", "--model", tmp_path / "afile" / "m.keras")
    assert code == 2 and "is a file" in err


def test_keras_on_a_backend_bigcats_does_not_run_on_or_one_not_installed_is_explained(capsys, monkeypatch, tmp_path):
    import importlib.util

    from bigcats.environment.doctor import diagnose, gather_facts

    gather_facts(smoke_test=False)  # Keras imported here first, on TensorFlow: it picks its backend once, at import
    monkeypatch.setenv("KERAS_BACKEND", "numpy")
    code, _, err = run(capsys, "predict", "--model", tmp_path / "m.keras", tmp_path)
    assert code == 2 and "KERAS_BACKEND=numpy" in err and "tensorflow, torch, jax" in err
    facts = gather_facts(smoke_test=False)
    assert facts["keras_backend"] == "numpy"
    assert any("KERAS_BACKEND=numpy" in f["message"] and f["severity"] == "error" for f in diagnose(facts))
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "jax" else real_find_spec(name, *a)
    )
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    code, _, err = run(capsys, "predict", "--model", tmp_path / "m.keras", tmp_path)
    assert code == 2 and "jax is not installed" in err and "--backend jax" in err
    facts = {**gather_facts(smoke_test=False), "jax": None}
    assert any("jax is not installed" in f["message"] and f["severity"] == "error" for f in diagnose(facts))


def test_a_damaged_zip_member_is_a_clear_error(capsys, tmp_path):
    archive = tmp_path / "photos.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as handle:
        handle.writestr("lion/a.jpg", jpeg_bytes(random_rgb(1)) * 4)
    data = bytearray(buffer.getvalue())
    start = 30 + len("lion/a.jpg")  # the member's compressed bytes follow its local header
    data[start + 20 : start + 60] = bytes(40)
    archive.write_bytes(bytes(data))
    code, _, err = run(capsys, "fetch-data", "--source", archive, "--dest", tmp_path / "raw")
    assert code == 2 and "is damaged" in err and "Download it again" in err
    assert not (tmp_path / "raw").exists()


def test_a_destination_inside_the_source_is_refused(capsys, tmp_path):
    (tmp_path / "photos" / "lion").mkdir(parents=True)
    (tmp_path / "photos" / "lion" / "a.jpg").write_bytes(jpeg_bytes(random_rgb(1)))
    code, _, err = run(capsys, "fetch-data", "--source", tmp_path / "photos", "--dest", tmp_path / "photos" / "raw")
    assert code == 2 and "inside --source" in err
    assert not (tmp_path / "photos" / "raw").exists()


def test_synthetic_photos_go_where_dest_says(capsys, tmp_path):
    code, out, _ = run(capsys, "fetch-data", "--synthetic", "--dest", tmp_path / "mine", "--json")
    assert code == 0 and json.loads(out)["dest"] == str(tmp_path / "mine")
    assert (tmp_path / "mine" / "lion").is_dir()


@pytest.mark.slow
def test_predict_on_a_folder_with_no_photos_says_so(capsys, tmp_path):
    from bigcats.lesson.model import build_cnn
    from bigcats.lesson.saving import add_labels

    build_cnn(32).save(tmp_path / "m.keras")
    add_labels(tmp_path / "m.keras", ["lion", "tiger"], 32)
    (tmp_path / "empty").mkdir()
    code, out, err = run(capsys, "predict", "--model", tmp_path / "m.keras", tmp_path / "empty")
    assert code == 1 and out == "" and "No photos found in" in err


def test_a_mistyped_benchmark_folder_is_refused_not_replaced_by_synthetic_photos(capsys, tmp_path):
    code, _, err = run(capsys, "benchmark", "--data", tmp_path / "typo")
    assert code == 2 and "no such folder" in err


def test_the_chart_path_printed_is_the_one_written(tmp_path):
    assert cli.chart_path(tmp_path) == tmp_path / "benchmark.png"
    assert cli.chart_path(tmp_path / "speed") == tmp_path / "speed.png"
    assert cli.chart_path(tmp_path / "speed.svg") == tmp_path / "speed.svg"


def test_ctrl_c_in_any_command_is_one_line_and_status_130(capsys, monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_doctor", interrupted)
    code, _, err = run(capsys, "doctor")
    assert code == 130 and err.strip() == "interrupted: stopped by Ctrl-C"
