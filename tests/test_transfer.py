"""Transfer learning from a local weights file (made here), and a clear skip offline."""

import numpy as np
import pytest

from bigcats.lesson import transfer


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    import keras

    net = keras.applications.MobileNetV2(input_shape=(64, 64, 3), include_top=False, weights=None)
    path = tmp_path_factory.mktemp("w") / "mobilenet_v2_no_top.weights.h5"
    net.save_weights(path)
    return path, net.get_layer("Conv1").get_weights()[0]


def test_local_weights_file_is_loaded(weights_file):
    path, kernel = weights_file
    net = transfer.backbone(96, weights=path)
    np.testing.assert_array_equal(net.get_layer("Conv1").get_weights()[0], kernel)


def test_transfer_model_trains_only_its_head(weights_file):
    model = transfer.build_transfer_model(64, num_classes=2, weights=weights_file[0])
    assert model.get_layer("mobilenetv2_1.00_64").trainable is False
    assert 0 < sum(w.numpy().size for w in model.trainable_weights) < 5000  # 1280*2 + 2


def test_missing_or_wrong_weights_file(tmp_path):
    with pytest.raises(transfer.WeightsUnavailable, match="No weights file"):
        transfer.backbone(96, weights=tmp_path / "nope.h5")
    (tmp_path / "junk.weights.h5").write_bytes(b"junk")
    with pytest.raises(transfer.WeightsUnavailable, match="does not hold MobileNetV2"):
        transfer.backbone(96, weights=tmp_path / "junk.weights.h5")


def test_offline_without_cache_says_what_to_do(monkeypatch):
    monkeypatch.setattr(transfer, "_online", lambda timeout=5: False)
    monkeypatch.setattr(transfer, "_cached", lambda size: False)
    with pytest.raises(transfer.WeightsUnavailable, match=r"(?s)Offline.*1.0_160_no_top.h5"):
        transfer.backbone(150)
