"""Prediction never surprises: odd inputs read like training images, unsafe models refused."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bigcats.lesson.evaluate import ModelLoadError, classify, load_trained_model, predict_files, predict_probabilities
from conftest import jpeg_bytes, png_bytes, random_rgb


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    from bigcats.lesson.model import build_cnn

    path = tmp_path_factory.mktemp("m") / "tiny.keras"
    build_cnn(32).save(path)
    path.with_suffix(".history.json").write_text(json.dumps({"class_names": ["lion", "tiger"], "image_size": 32}))
    return path


def test_every_kind_of_photo_gets_an_answer(model_file, tmp_path):
    pixels = random_rgb(7, 300, 120)
    files = {
        "huge.jpg": jpeg_bytes(random_rgb(1, 2000, 3000)),
        "tiny.jpg": jpeg_bytes(random_rgb(2, 8, 8)),
        "grey.jpg": jpeg_bytes(pixels, mode="L"),
        "cmyk.jpg": jpeg_bytes(pixels, mode="CMYK"),
        "alpha.png": png_bytes(np.dstack([pixels, np.full(pixels.shape[:2], 90, np.uint8)])),
        "LOUD.JPEG": jpeg_bytes(pixels),
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    turned = Image.fromarray(pixels)
    exif = turned.getexif()
    exif[0x0112] = 6
    turned.save(tmp_path / "portrait.jpg", exif=exif)
    model, record = load_trained_model(model_file)
    results = predict_files(model, record, [tmp_path])  # a folder as argument
    assert len(results) == 7
    for r in results:
        assert r["label"] in ("lion", "tiger") and 0.5 <= r["probability"] <= 1.0, r


def test_answers_come_back_in_order_whatever_the_batches(model_file, tmp_path):
    names = ["a.jpg", "broken.jpg", "b.jpg", "c.jpg", "missing.jpg", "d.jpg"]
    for i, name in enumerate(names):
        if name != "missing.jpg":
            (tmp_path / name).write_bytes(jpeg_bytes(random_rgb(i)))
    (tmp_path / "broken.jpg").write_bytes(jpeg_bytes(random_rgb(9))[:150])
    model, record = load_trained_model(model_file)
    one_by_one = predict_files(model, record, [tmp_path / n for n in names], batch_size=1)
    in_pairs = predict_files(model, record, [tmp_path / n for n in names], batch_size=2)
    assert [r["file"] for r in in_pairs] == [str(tmp_path / n) for n in names]
    assert ["error" in r for r in in_pairs] == [False, True, False, False, True, False]
    for alone, paired in zip(one_by_one, in_pairs):
        assert alone.keys() == paired.keys() and alone.get("label") == paired.get("label")
        assert alone.get("probability", 0) == pytest.approx(paired.get("probability", 0), abs=1e-5)


def test_a_model_file_with_code_in_it_is_refused(tmp_path):
    import keras

    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(ModelLoadError, match="contains Python code"):
        load_trained_model(tmp_path / "lambda.keras")


def test_a_model_that_carries_no_names_and_has_no_record_is_refused(model_file, tmp_path):
    # it used to answer "class_1 (59.6%)"; models saved now carry their names inside (test_saving.py)
    lonely = tmp_path / "lonely.keras"
    lonely.write_bytes(model_file.read_bytes())
    with pytest.raises(ModelLoadError, match="carries no class names"):
        load_trained_model(lonely)


@pytest.fixture(scope="module")
def lopsided_model():
    """A model that sees only the left half of a photo, so its mirror image gets another answer."""
    import keras

    inputs = keras.Input((8, 8, 3))
    left = keras.layers.Cropping2D(((0, 0), (0, 4)))(inputs)
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(left))
    return keras.Model(inputs, outputs)


def bright_on_the_left():
    photos = np.zeros((1, 8, 8, 3), "float32")
    photos[:, :, :4] = 255
    return photos


def test_two_looks_average_the_photo_and_its_mirror_image(lopsided_model):
    photos = bright_on_the_left()
    one_look = classify(lopsided_model, photos, mirror=False)
    mirror_only = lopsided_model.predict(photos[:, :, ::-1], verbose=0)
    assert not np.allclose(one_look, mirror_only)  # else the average could not be told apart
    assert np.allclose(classify(lopsided_model, photos), (one_look + mirror_only) / 2)


def test_files_folders_and_pipelines_get_the_same_two_looks(lopsided_model, tmp_path):
    photo = tmp_path / "left.png"
    photo.write_bytes(png_bytes(bright_on_the_left()[0].astype(np.uint8)))
    expected = classify(lopsided_model, bright_on_the_left())[0]
    from_pipeline = predict_probabilities(lopsided_model, [(photo, 0)], 8)[0]
    [answer] = predict_files(lopsided_model, {"image_size": 8, "class_names": ["lion", "tiger"]}, [tmp_path])
    assert np.allclose(from_pipeline, expected, atol=1e-5)
    assert answer["probability"] == pytest.approx(expected.max(), abs=1e-5)


def test_a_folder_from_anywhere_gets_answers_errors_and_notes(model_file, tmp_path, capsys):
    from PIL import Image

    pixels = random_rgb(3, 120, 90)
    Image.fromarray(pixels).save(tmp_path / "saved_from_the_web.webp")
    Image.fromarray(pixels).save(tmp_path / "scan.tif")
    (tmp_path / "thumbnail.jpg").write_bytes(jpeg_bytes(random_rgb(4, 8, 12)))
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("where I took them")
    model, record = load_trained_model(model_file)
    results = {Path(r["file"]).name: r for r in predict_files(model, record, [tmp_path])}
    assert sorted(results) == ["empty.jpg", "saved_from_the_web.webp", "scan.tif", "thumbnail.jpg"]
    assert results["saved_from_the_web.webp"]["label"] in ("lion", "tiger")
    assert "note" not in results["saved_from_the_web.webp"]
    assert results["thumbnail.jpg"]["label"] in ("lion", "tiger") and "tiny: 12x8" in results["thumbnail.jpg"]["note"]
    assert "TIFF" in results["scan.tif"]["error"] and "convert it to JPEG or PNG" in results["scan.tif"]["error"]
    assert "empty file (0 bytes)" in results["empty.jpg"]["error"]
    assert "Skipped 1 file" in capsys.readouterr().err


def test_evaluate_refuses_folders_whose_labels_would_mean_other_classes(model_file, tmp_path):
    import shutil

    from bigcats.lesson.evaluate import evaluate_model

    model, record = load_trained_model(model_file)
    (tmp_path / "photo.jpg").write_bytes(jpeg_bytes(random_rgb(1)))
    with pytest.raises(ValueError, match=r"no class folders.*bigcats predict"):
        evaluate_model(model, record, tmp_path, split="all")
    for i, name in enumerate(("leopard", "lion", "tiger")):
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name}.jpg").write_bytes(jpeg_bytes(random_rgb(i)))
    with pytest.raises(ValueError, match=r"The model knows lion, tiger; .* the folders leopard, lion, tiger"):
        evaluate_model(model, record, tmp_path, split="all")
    shutil.rmtree(tmp_path / "leopard")
    result, _, _ = evaluate_model(model, record, tmp_path, split="all")
    assert result["n"] == 2 and result["class_names"] == ["lion", "tiger"]
