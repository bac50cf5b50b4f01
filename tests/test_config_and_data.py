"""Settings from the environment, folder listing, the leak-free split, synthetic fallback."""

import pytest

from bigcats.lesson import data, synthetic
from bigcats.lesson.config import env_param
from conftest import jpeg_bytes, random_rgb


def test_env_param_casts_to_the_default_type(monkeypatch):
    monkeypatch.setenv("BIGCATS_EPOCHS", "3")
    monkeypatch.setenv("BIGCATS_FLAG", "yes")
    assert env_param("BIGCATS_EPOCHS", 15) == 3
    assert env_param("BIGCATS_FLAG", False) is True
    assert env_param("BIGCATS_UNSET_THING", "../data/raw") == "../data/raw"


def test_env_param_bad_value_says_what_to_do(monkeypatch):
    monkeypatch.setenv("BIGCATS_EPOCHS", "ten")
    with pytest.raises(ValueError, match=r"BIGCATS_EPOCHS='ten' is not a valid int.*like 15"):
        env_param("BIGCATS_EPOCHS", 15)


def test_listing_skips_clutter_and_keeps_other_files_for_cleaning(tmp_path):
    (tmp_path / "lion" / "nested").mkdir(parents=True)
    (tmp_path / "tiger").mkdir()
    (tmp_path / ".hidden_class").mkdir()
    (tmp_path / "lion" / "a.jpg").write_bytes(jpeg_bytes(random_rgb(0)))
    (tmp_path / "lion" / "nested" / "b.JPG").write_bytes(jpeg_bytes(random_rgb(1)))
    (tmp_path / "lion" / ".DS_Store").write_bytes(b"\0\0")
    (tmp_path / "tiger" / "Thumbs.db").write_bytes(b"\0")
    (tmp_path / "tiger" / "notes.txt").write_text("hi")
    assert data.class_names(tmp_path) == ["lion", "tiger"]
    assert sorted(p.name for p, _ in data.list_files(tmp_path)) == ["a.jpg", "b.JPG", "notes.txt"]
    assert sorted(p.name for p, _ in data.list_images(tmp_path)) == ["a.jpg", "b.JPG"]


def test_split_is_by_content_so_copies_share_a_split_and_order_does_not_matter(tmp_path):
    for name in ("lion", "tiger"):
        (tmp_path / name).mkdir()
    for i in range(60):
        (tmp_path / ("lion", "tiger")[i % 2] / f"img{i}.jpg").write_bytes(jpeg_bytes(random_rgb(i, 16, 16)))
    (tmp_path / "lion" / "copy_of_img0.jpg").write_bytes((tmp_path / "lion" / "img0.jpg").read_bytes())
    splits = data.split_images(tmp_path)
    where = {p.name: s for s, items in splits.items() for p, _ in items}
    assert where["copy_of_img0.jpg"] == where["img0.jpg"]
    assert sum(len(v) for v in splits.values()) == 61
    assert all(splits[s] for s in data.SPLITS), "60 images fill all three splits"
    # Adding photos never moves old ones.
    (tmp_path / "tiger" / "new.jpg").write_bytes(jpeg_bytes(random_rgb(999, 16, 16)))
    again = {p.name: s for s, items in data.split_images(tmp_path).items() for p, _ in items}
    assert all(again[name] == split for name, split in where.items())


def test_split_fractions_hold_over_many_hashes():
    import hashlib

    splits = [data.split_of_digest(hashlib.sha256(str(i).encode()).hexdigest()) for i in range(20000)]
    assert abs(splits.count("train") / 20000 - 0.70) < 0.02
    assert abs(splits.count("test") / 20000 - 0.15) < 0.02


def test_empty_data_folder_falls_back_to_a_loudly_labelled_synthetic_set(tmp_path, capsys):
    (tmp_path / "raw").mkdir()
    used, synthetic = data.resolve_data_dir(tmp_path / "raw", per_class=5)
    assert synthetic and used == tmp_path / "synthetic"
    assert len(data.list_images(used)) == 10
    captured = capsys.readouterr()
    assert "SYNTHETIC DATA" in captured.err and "SYNTHETIC DATA" in captured.out
    assert data.title("Loss", synthetic).endswith("[SYNTHETIC images]")


def test_real_photos_are_used_as_they_are(tiny_data):
    (tiny_data / synthetic.SYNTHETIC_MARKER).unlink()
    assert data.resolve_data_dir(tiny_data) == (tiny_data, False)


def test_load_image_gives_rgb_in_0_255(tmp_path):
    import numpy as np

    red = np.zeros((20, 30, 3), dtype=np.uint8)
    red[..., 0] = 250
    path = tmp_path / "red.png"
    from PIL import Image

    Image.fromarray(red).save(path)
    image = data.load_image(path, 16).numpy()
    assert image.shape == (16, 16, 3)
    assert image[..., 0].mean() > 240 and image[..., 2].mean() < 10


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_rotated_photos_are_read_upright_like_pil_does(tmp_path, orientation):
    import numpy as np
    from PIL import Image, ImageOps

    pixels = np.zeros((30, 50, 3), dtype=np.uint8)
    pixels[:10, :20] = (255, 0, 0)  # a red block in one corner makes every turn distinguishable
    pixels[20:, 40:] = (0, 0, 255)
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = orientation
    path = tmp_path / "turned.jpg"
    image.save(path, quality=95, exif=exif)
    with Image.open(path) as reopened:
        expected = np.asarray(ImageOps.exif_transpose(reopened).convert("RGB")).astype(float)
    assert data.exif_orientation(path) == orientation
    got = data.load_image(path, 40).numpy()
    upright = np.asarray(Image.fromarray(expected.astype("uint8")).resize((40, 40), Image.Resampling.BILINEAR), float)
    assert np.abs(got - upright).mean() < 12, orientation


def test_shrinking_a_big_photo_averages_instead_of_sampling_scattered_pixels(tmp_path):
    import numpy as np
    from PIL import Image

    # 1-pixel black and white stripes: an average is mid-grey; sampling every n-th pixel is not
    stripes = np.zeros((448, 448, 3), dtype=np.uint8)
    stripes[:, ::2] = 255
    path = tmp_path / "stripes.png"
    Image.fromarray(stripes).save(path)
    image = data.load_image(path, 112 - 5).numpy()
    assert abs(image.mean() - 127.5) < 10 and image.std() < 20


def _framed_batches(items, image_size, seed):
    ds = data.make_dataset(items, image_size, batch_size=8, training=True, seed=seed)
    return [x.numpy() for x, _ in ds]


def test_training_reframes_photos_reproducibly_and_evaluation_does_not(tiny_data):
    import numpy as np

    items = data.split_images(tiny_data)["train"]
    first, again, other = (_framed_batches(items, 32, seed) for seed in (3, 3, 4))
    assert all(b.shape[1:] == (32, 32, 3) and b.dtype == np.float32 for b in first)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))
    plain = [x.numpy() for x, _ in data.make_dataset(items, 32, batch_size=8)]
    plain_again = [x.numpy() for x, _ in data.make_dataset(items, 32, batch_size=8)]
    assert all(np.array_equal(a, b) for a, b in zip(plain, plain_again))
    np.testing.assert_array_equal(plain[0][0], data.load_image(items[0][0], 32).numpy())  # the photo as it is
    larger = data.load_for_augmenting(items[0][0], 32).numpy()  # what training crops from
    assert larger.shape == (48, 48, 3) and larger.dtype == np.uint8


def test_a_class_folder_with_nothing_to_train_on_is_refused_before_training(tiny_data):
    from bigcats.lesson.train import checked_splits

    for photo in (tiny_data / "tiger").iterdir():
        photo.rename(tiny_data / photo.name)  # out of the class folder, kept
    with pytest.raises(ValueError, match="No training photos for class tiger") as refused:
        checked_splits(tiny_data)
    assert str(tiny_data / "tiger") in str(refused.value)


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_and_reads_as_decoded_whole(tmp_path):
    import io

    import numpy as np
    import tensorflow as tf
    from PIL import Image

    rows, columns = np.mgrid[0:1800, 0:2400]
    pixels = np.stack([columns * 255 // 2399, rows * 255 // 1799, np.zeros_like(rows)], axis=-1).astype(np.uint8)
    pixels[:, ::2, 2] = 255  # 1-pixel stripes in blue: shrunk, they must average, not alias
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=95)
    encoded = tf.constant(buffer.getvalue())
    assert tuple(data.decode_photo(encoded, 144).shape) == (225, 300, 3)  # 1/8: the shorter side still >= 144
    assert tuple(data.decode_photo(encoded, 400).shape) == (450, 600, 3)  # 1/4
    assert tuple(data.decode_photo(encoded).shape) == (1800, 2400, 3)  # whole when no size is asked
    reduced = data.decode_and_resize(encoded, 144).numpy()
    whole = tf.image.resize(tf.io.decode_jpeg(encoded), (144, 144), antialias=True).numpy()
    assert np.abs(reduced - whole).mean() < 3 and abs(reduced[..., 2].mean() - 127.5) < 10
    png = io.BytesIO()
    Image.fromarray(pixels[:400, :400]).save(png, "PNG")
    assert tuple(data.decode_photo(tf.constant(png.getvalue()), 144).shape) == (400, 400, 3)  # not a JPEG: whole


def test_training_photos_are_decoded_once_and_come_in_a_new_order_every_epoch(tiny_data):
    import numpy as np

    items = data.split_images(tiny_data)["train"]
    ds = data.make_dataset(items, 32, batch_size=4, training=True, seed=1, augment_in="step")
    first, second = ([b.numpy() for b, _ in ds] for _ in range(2))
    assert sum(len(b) for b in first) == len(items) and first[0].dtype == np.uint8
    as_set = lambda batches: sorted(image.tobytes() for b in batches for image in b)
    assert as_set(first) == as_set(second)  # every photo once an epoch, as decoded
    assert not all(np.array_equal(a, b) for a, b in zip(first, second))  # in another order
    again = [b.numpy() for b, _ in data.make_dataset(items, 32, batch_size=4, training=True, seed=1, augment_in="step")]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))  # the same seed, the same orders
