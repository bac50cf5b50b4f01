"""The command line as scripts use it: exact forms, JSON-only stdout, exit codes, clear errors."""

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, jpeg_bytes, random_rgb


def bigcats(*args, cwd=ROOT):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"}  # let TensorFlow talk: it must go to stderr
    return subprocess.run(
        [sys.executable, "-m", "bigcats", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


def assert_no_harmless_lines(stderr):
    """The command line hides TensorFlow's harmless start-up lines, as the notebooks do."""
    from bigcats.environment.machine import has_nvidia_device
    from bigcats.environment.startup_log import why_harmless

    if not has_nvidia_device():
        shown = [line for line in stderr.splitlines() if why_harmless(line, gpu_present=False)]
        assert not shown, shown


def json_lines(stdout):
    return [json.loads(line) for line in stdout.splitlines()]


def test_doctor_json_is_one_object_with_the_promised_fields():
    done = bigcats("doctor", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # nothing else on stdout
    for key in ("python", "platform", "tensorflow", "keras", "build", "gpus", "nvidia_smi", "findings"):
        assert key in report
    assert all(set(f) == {"severity", "message", "fix"} for f in report["findings"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny model for the train/evaluate/predict tests."""
    from bigcats.lesson.synthetic import make_synthetic_dataset

    tmp = tmp_path_factory.mktemp("cli")
    data = make_synthetic_dataset(tmp / "raw", per_class=16)
    model = tmp / "models" / "cats.keras"
    done = bigcats(
        "train",
        "--data",
        data,
        "--model",
        model,
        "--epochs",
        2,
        "--image-size",
        32,
        "--batch-size",
        8,
        "--learning-rate",
        0.004,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "saved" in done.stdout
    assert_no_harmless_lines(done.stderr)
    sizes = json.loads(model.with_suffix(".history.json").read_text())["split_sizes"]
    train = sizes["train"]
    assert (
        f"photos: {sum(train.values())} trained on (lion {train['lion']}, tiger {train['tiger']}), "
        f"{sum(sizes['val'].values())} for validation" in done.stdout
    )
    return tmp, data, model


@pytest.mark.slow
def test_train_writes_model_and_history(trained):
    _, _, model = trained
    history = json.loads(model.with_suffix(".history.json").read_text())
    assert model.is_file()
    assert history["class_names"] == ["lion", "tiger"] and history["epochs_run"] == 2
    assert history["synthetic_data"] is True and len(history["history"]["loss"]) == 2
    assert history["batch_size"] == 8 and history["learning_rate"] == 0.004


@pytest.mark.slow
def test_evaluate_json(trained):
    _, data, model = trained
    done = bigcats("evaluate", "--model", model, "--data", data, "--split", "all", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    assert_no_harmless_lines(done.stderr)
    result = json.loads(done.stdout)
    assert {"n", "accuracy", "precision", "recall", "f1", "class_names", "confusion_matrix"} <= set(result)
    assert result["n"] == 32 and sum(map(sum, result["confusion_matrix"])) == 32


@pytest.mark.slow
def test_predict_json_reports_bad_files_and_answers_the_rest(trained):
    tmp, data, model = trained
    bad = tmp / "broken.jpg"
    bad.write_bytes(jpeg_bytes(random_rgb(3))[:200])
    good = sorted((data / "tiger").glob("*.jpg"))[0]
    done = bigcats("predict", "--model", model, good, bad, tmp / "missing.jpg", "--json")
    assert done.returncode == 1
    results = json_lines(done.stdout)
    assert [r["file"] for r in results] == [str(good), str(bad), str(tmp / "missing.jpg")]
    assert results[0]["label"] in ("lion", "tiger") and 0.5 <= results[0]["probability"] <= 1
    assert "cannot read image" in results[1]["error"] and results[2]["error"] == "file not found"


@pytest.mark.slow
def test_predict_a_folder_succeeds(trained):
    _, data, model = trained
    for options in ([], ["--one-look"]):
        done = bigcats("predict", "--model", model, data / "lion", "--json", *options)
        assert done.returncode == 0
        assert len(json_lines(done.stdout)) == 16


@pytest.mark.slow
def test_train_names_a_bad_file_and_points_to_clean(tmp_path):
    from bigcats.lesson.synthetic import make_synthetic_dataset

    data = make_synthetic_dataset(tmp_path / "raw", per_class=4)
    (data / "lion" / "half.jpg").write_bytes(jpeg_bytes(random_rgb(5))[:400])
    done = bigcats("train", "--data", data, "--model", tmp_path / "m.keras", "--epochs", 1, "--image-size", 32)
    assert done.returncode == 2
    assert "half.jpg" in done.stderr and "python -m bigcats clean" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "m.keras").exists()


def test_keras3_model_paths_are_explained(tmp_path):
    done = bigcats("train", "--data", tmp_path, "--model", tmp_path / "model.h5")
    assert done.returncode == 2 and "'.keras' files" in done.stderr and "model.keras" in done.stderr
    done = bigcats("predict", "--model", tmp_path / "nothing.keras", "x.jpg")
    assert done.returncode == 2 and "No model at" in done.stderr and "Traceback" not in done.stderr
    (tmp_path / "corrupt.keras").write_bytes(b"PK\x03\x04 not really a zip")
    done = bigcats("predict", "--model", tmp_path / "corrupt.keras", "x.jpg")
    assert done.returncode == 2 and "not a readable Keras model" in done.stderr


def test_clean_json_and_report(tmp_path):
    from bigcats.lesson.synthetic import make_synthetic_dataset

    data = make_synthetic_dataset(tmp_path / "raw", per_class=3)
    (data / "tiger" / "empty.jpg").write_bytes(b"")
    done = bigcats("clean", data, "--report", tmp_path / "r.json", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report == json.loads((tmp_path / "r.json").read_text())
    assert report["checked"] == 7 and report["kept"] == 6
    assert report["quarantined"][0]["moved_to"] == str(tmp_path / "quarantine" / "tiger" / "empty.jpg")
    (data / "lion" / "empty.jpg").write_bytes(b"")
    done = bigcats("clean", data)  # the plain-text summary says where the reasons are kept
    assert done.returncode == 0 and f"reasons are also in {tmp_path / 'quarantine' / 'REASONS.txt'}" in done.stdout


@pytest.mark.slow
def test_benchmark_json_on_the_cpu(tmp_path):
    from bigcats.lesson.synthetic import make_synthetic_dataset

    data = make_synthetic_dataset(tmp_path / "raw", per_class=4)
    done = bigcats(
        "benchmark",
        "--json",
        "--data",
        data,
        "--image-size",
        32,
        "--batch-size",
        4,
        "--steps",
        2,
        "--repeats",
        1,
        "--chart",
        tmp_path / "bench.png",
        "--large-photos",
        2,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    cpu = result["devices"][0]
    assert cpu["kind"] == "CPU" and cpu["images_per_second"] > 0 and cpu["warmup_seconds"] > 0
    assert result["pipeline"]["naive_images_per_second"] > 0 and result["pipeline"]["ratio"] > 0
    pipeline = result["pipeline"]
    # the new figures: each part of the input in photos/s, side by side, and which sets the pace
    assert pipeline["augmented_images_per_second"] > 0 and pipeline["per_photo_augmented_images_per_second"] > 0
    assert pipeline["augmented_ratio"] > 0 and pipeline["fit_images_per_second"] > 0
    assert pipeline["before_augmented_images_per_second"] > 0 and pipeline["augmented_ratio_to_before"] > 0
    assert pipeline["keras_layers_images_per_second"] > 0 and pipeline["augmented_ratio_to_keras_layers"] > 0
    assert (
        pipeline["first_pass"]["tfdata_images_per_second"] > 0 and pipeline["first_pass"]["cv2_images_per_second"] > 0
    )
    large = pipeline["large_jpegs"]
    assert large["images"] == 2 and large["side"] == 4000 and large["tfdata_whole_decode_images_per_second"] > 0
    assert pipeline["augmentation"] in ("pipeline", "step")
    assert "augmented photos/s" in pipeline["pace"] and "model.fit with its input" in pipeline["pace"]
    assert (tmp_path / "bench.png").stat().st_size > 1000
    if not any(d["kind"] == "GPU" for d in result["devices"]):
        assert result["gpu_speedup"] is None and "No GPU" in " ".join(result["notes"])


def test_fetch_data_synthetic_and_from_a_local_folder(tmp_path):
    done = bigcats("fetch-data", "--synthetic", "--dest", tmp_path / "data" / "synthetic", "--json")
    assert done.returncode == 0, done.stderr[-2000:]  # --dest is honoured (it used to write beside it)
    assert json.loads(done.stdout) == {"synthetic": True, "dest": str(tmp_path / "data" / "synthetic")}
    assert "SYNTHETIC" in done.stderr
    done = bigcats("fetch-data", "--source", tmp_path / "data" / "synthetic", "--dest", tmp_path / "data" / "raw")
    assert done.returncode == 0 and "200 photos added" in done.stdout
    done = bigcats("fetch-data", "--source", tmp_path / "nowhere.zip", "--dest", tmp_path / "x")
    assert done.returncode == 2 and "does not exist" in done.stderr


@pytest.mark.slow
def test_evaluate_names_a_bad_file_instead_of_crashing(trained, tmp_path):
    import shutil

    _, data, model = trained
    folder = tmp_path / "new_photos"
    shutil.copytree(data, folder)
    (folder / "tiger" / "cut.jpg").write_bytes(jpeg_bytes(random_rgb(9))[:300])
    done = bigcats("evaluate", "--model", model, "--data", folder, "--split", "all", "--json")
    assert done.returncode == 2 and done.stdout == ""
    assert "cut.jpg" in done.stderr and "python -m bigcats clean" in done.stderr and "Traceback" not in done.stderr


def test_recipe_table_shows_every_round_when_there_are_several():
    from bigcats.__main__ import _recipe_lines

    row = lambda name, times: {
        "recipe": name,
        "image_size": 144,
        "epochs_run": 30,
        "train_seconds": sorted(times)[1],
        "train_seconds_each": times,
        "test_accuracy": 0.97,
        "stress_accuracy": 0.88,
        "farther_accuracy": 0.91,
    }
    comparison = {
        "recipes": [row("original 2022 recipe", [41.0, 43.0, 44.0]), row("tutorial default", [37.0, 36.0, 37.5])],
        "time_ratio": 0.85,
        "time_ratios": [0.90, 0.84, 0.85],
        "rounds": 3,
        "stress_images": 198,
        "farther_images": 132,
    }
    text = "\n".join(_recipe_lines(comparison))
    assert "tutorial / original: 0.85" in text and "median of 3 interleaved rounds" in text
    assert "farther acc" in text and "0.880        0.910" in text and "farther away: 132" in text
    assert (
        "ratio each round: 0.90, 0.84, 0.85" in text and "tutorial default each round: 37.0 s, 36.0 s, 37.5 s" in text
    )
    single = "\n".join(_recipe_lines({**comparison, "rounds": 1}))
    assert "each round" not in single


@pytest.mark.slow
def test_evaluate_scores_every_photo_of_a_new_folder_and_only_the_test_split_of_its_own(trained, tmp_path):
    from bigcats.lesson.synthetic import make_synthetic_dataset

    _, data, model = trained
    done = bigcats("evaluate", "--model", model, "--data", data, "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    own = json.loads(done.stdout)
    assert own["split"] == "test" and f"scored the test split of {data}: {own['n']} photos" in done.stderr
    new = make_synthetic_dataset(tmp_path / "new", per_class=10)  # other photos, never trained on
    done = bigcats("evaluate", "--model", model, "--data", new, "--json")
    result = json.loads(done.stdout)
    assert result["split"] == "all" and result["n"] == 20 and "every photo" in done.stderr
    done = bigcats("evaluate", "--model", model, "--data", new, "--split", "test", "--json")
    assert json.loads(done.stdout)["split"] == "test" and "as asked" in done.stderr
