"""The stress set: hard copies of held-out photos, every one a usable, upright JPEG."""

import numpy as np
from PIL import Image

from bigcats.lesson.clean import check_file
from bigcats.lesson.robustness import _farther_away, _tilt, make_stress_set
from conftest import jpeg_bytes, random_rgb


def test_tilt_leaves_no_empty_corners():
    white = Image.new("RGB", (300, 200), (255, 255, 255))
    for degrees in (-20, -3, 11, 20):
        assert np.asarray(_tilt(white, degrees)).min() == 255


def test_farther_away_keeps_the_whole_photo_smaller_on_a_blurred_surround():
    photo = Image.fromarray(random_rgb(5, 100, 200))
    out = np.asarray(_farther_away(photo, np.random.default_rng(3))).astype(int)
    assert out.shape == (100, 200, 3)
    rng = np.random.default_rng(3)  # the same draws again: where the photo went and how small
    scale = rng.uniform(0.45, 0.75)
    w, h = int(200 * scale), int(100 * scale)
    left, top = rng.integers(0, 200 - w + 1), rng.integers(0, 100 - h + 1)
    assert 0.45 <= scale <= 0.75
    np.testing.assert_array_equal(
        out[top : top + h, left : left + w], np.asarray(photo.resize((w, h), Image.Resampling.LANCZOS))
    )
    surround = np.ones((100, 200), bool)
    surround[top : top + h, left : left + w] = False
    assert out[surround].std() < 0.5 * np.asarray(photo).std()  # noise blurred away: out of focus


def test_stress_set_writes_varied_usable_copies(tmp_path):
    items = []
    for i, cls in enumerate(("lion", "tiger", "lion")):
        path = tmp_path / f"src{i}.jpg"
        path.write_bytes(jpeg_bytes(random_rgb(i, 120, 160)))
        items.append((path, ("lion", "tiger").index(cls)))
    out = make_stress_set(items, ["lion", "tiger"], tmp_path / "stress", copies=3, seed=1)
    files = sorted(out.rglob("*.jpg"))
    assert len(files) == 9 and len(list((out / "tiger").glob("*.jpg"))) == 3
    assert all(check_file(f).usable for f in files)
    sizes = {Image.open(f).size for f in files}
    assert len(sizes) > 3  # other framing and resolutions, not one fixed size


def test_a_new_stress_set_replaces_the_last_one_and_touches_nothing_else(tmp_path):
    import pytest

    items = []
    for i in range(3):
        path = tmp_path / f"src{i}.jpg"
        path.write_bytes(jpeg_bytes(random_rgb(i, 120, 160)))
        items.append((path, i % 2))
    out = tmp_path / "stress"
    make_stress_set(items, ["lion", "tiger"], out, copies=2)
    make_stress_set(items[:1], ["lion", "tiger"], out, copies=2)  # a re-run on other photos
    assert sorted(p.name for p in out.rglob("*.jpg")) == ["src0_stress0.jpg", "src0_stress1.jpg"]

    mine = out / "tiger" / "my_photo.jpg"
    mine.write_bytes(b"not ours")
    with pytest.raises(ValueError, match="not copies made here"):
        make_stress_set(items, ["lion", "tiger"], out)
    assert mine.read_bytes() == b"not ours" and (out / "lion" / "src0_stress0.jpg").exists()


def test_farther_copies_are_the_whole_photo_farther_away_and_unknown_kinds_are_refused(tmp_path):
    import pytest

    items = []
    for i in range(2):
        path = tmp_path / f"src{i}.jpg"
        path.write_bytes(jpeg_bytes(random_rgb(i, 120, 160)))
        items.append((path, i))
    out = make_stress_set(items, ["lion", "tiger"], tmp_path / "farther", copies=2, seed=4, kind="farther")
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg"))
    assert files == [
        "lion/src0_farther0.jpg",
        "lion/src0_farther1.jpg",
        "tiger/src1_farther0.jpg",
        "tiger/src1_farther1.jpg",
    ]
    assert {Image.open(out / f).size for f in files} == {(160, 120)}  # the frame stays; the photo shrinks in it
    with pytest.raises(ValueError, match="kind='closer'"):
        make_stress_set(items, ["lion", "tiger"], tmp_path / "x", kind="closer")


def test_copies_from_elsewhere_come_at_every_size_subsampling_and_colour_the_scene_unchanged(tmp_path):
    from PIL import JpegImagePlugin

    path = tmp_path / "src.jpg"
    path.write_bytes(jpeg_bytes(random_rgb(3, 120, 160)))
    out = make_stress_set([(path, 0)], ["lion", "tiger"], tmp_path / "elsewhere", copies=24, seed=2, kind="elsewhere")
    files = sorted(out.rglob("*.jpg"))
    assert len(files) == 24 and all(check_file(f).usable for f in files)
    sides = [min(Image.open(f).size) for f in files]
    assert min(sides) < 200 and max(sides) >= 2 * 144  # thumbnails, and JPEGs the decoder reads at a reduced scale
    for f in files:  # the same scene: the aspect of an 80-100% crop of each side
        width, height = Image.open(f).size
        assert 0.8 * 160 / 120 - 0.05 <= width / height <= 160 / (0.8 * 120) + 0.05
    subsampling = {JpegImagePlugin.get_sampling(Image.open(f)) for f in files}
    assert len(subsampling) >= 2  # 4:4:4, 4:2:2 and 4:2:0 all come
    means = [np.asarray(Image.open(f).convert("RGB"), "float32").mean(axis=(0, 1)) for f in files]
    red_over_blue = [m[0] / m[2] for m in means]
    assert max(red_over_blue) - min(red_over_blue) > 0.1  # other white balances
