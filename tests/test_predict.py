"""Prediction never surprises: odd inputs read like training images, unsafe models refused."""

import json

import numpy as np
import pytest
from PIL import Image

from bigcats.evaluate import ModelLoadError, load_trained_model, predict_files
from conftest import jpeg_bytes, png_bytes, random_rgb


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    from bigcats.model import build_cnn

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


def test_a_model_file_with_code_in_it_is_refused(tmp_path):
    import keras

    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(ModelLoadError, match="contains Python code"):
        load_trained_model(tmp_path / "lambda.keras")


def test_a_model_without_its_history_still_loads_with_generic_names(model_file, tmp_path):
    lonely = tmp_path / "lonely.keras"
    lonely.write_bytes(model_file.read_bytes())
    _, record = load_trained_model(lonely)
    assert record["class_names"] == ["class_0", "class_1"] and record["image_size"] == 32
