"""Cleaning: every kind of broken or odd file, each caught with the right reason, none lost."""

import hashlib
import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from bigcats.lesson.clean import check_file, clean_folder, dhash
from conftest import jpeg_bytes, png_bytes, random_rgb


def photo(seed, size=(96, 128)):
    """A smooth, photo-like image (random noise would make near-duplicate hashes meaningless)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return np.array(Image.fromarray(small).resize(size[::-1], Image.Resampling.BICUBIC))


@pytest.fixture
def corpus(tmp_path):
    """A data folder with one file of each kind; returns (data_dir, expected reasons)."""
    root = tmp_path / "raw"
    lion, tiger = root / "lion", root / "tiger"
    lion.mkdir(parents=True)
    tiger.mkdir()
    good = jpeg_bytes(photo(1))
    files = {
        "lion/good.jpg": good,
        "lion/good_copy.jpg": good,  # exact duplicate
        "lion/resized.jpg": jpeg_bytes(np.array(Image.fromarray(photo(1)).resize((64, 48))), quality=70),
        "lion/empty.jpg": b"",
        "lion/truncated.jpg": jpeg_bytes(photo(2))[:600],
        "lion/readme.jpg": b"This is not a picture, it is a text file.\n",
        "lion/page.jpg": b"<!DOCTYPE html><html><body>Access denied</body></html>",
        "lion/doc.jpg": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n",
        "lion/photo.webp": b"RIFF\x00\x00\x00\x00WEBPVP8 ",
        "lion/cmyk.jpg": jpeg_bytes(photo(3), mode="CMYK"),
        "lion/grey.jpg": jpeg_bytes(photo(4), mode="L"),
        "lion/LOUD.JPG": jpeg_bytes(photo(5)),
        "lion/löwe.jpg": jpeg_bytes(photo(6)),
        "lion/tiny.jpg": jpeg_bytes(photo(7, (12, 16))),
        "lion/png_named.jpg": png_bytes(photo(8)[..., ::-1]),
        "lion/.DS_Store": b"\0\0\0\1Bud1",
        "tiger/good.jpg": jpeg_bytes(photo(10)),
        "tiger/sixteen_bit.png": png_bytes((photo(11).astype(np.uint16) * 257)[..., ::-1]),
        "tiger/alpha.png": png_bytes(np.dstack([photo(12), np.full((96, 128), 128, np.uint8)])),
        "tiger/same_as_lion.jpg": jpeg_bytes(photo(20)),
        "lion/same_as_tiger.jpg": jpeg_bytes(photo(20)),  # label conflict
        "tiger/Thumbs.db": b"\0",
    }
    bomb = np.zeros((7200, 7200), dtype=np.uint8)  # 51.8 megapixels of nothing: a tiny PNG
    files["tiger/bomb.png"] = png_bytes(bomb)
    files["tiger/giant.png"] = png_header_only(20000, 15000)  # past PIL's own bomb limit too
    for name, content in files.items():
        (root / name).write_bytes(content)
    expected = {
        "lion/good_copy.jpg": "exact duplicate of lion/good.jpg",
        "lion/resized.jpg": "near-duplicate",
        "lion/empty.jpg": "empty file",
        "lion/truncated.jpg": "corrupt or truncated JPEG",
        "lion/readme.jpg": "not an image: a text file",
        "lion/page.jpg": "not an image: an HTML",
        "lion/doc.jpg": "not an image: a PDF",
        "lion/photo.webp": "extension '.webp' is not read",
        "tiger/bomb.png": "too large to decode safely: 7200x7200",
        "tiger/giant.png": "too large to decode safely: 20000x15000",
        "lion/same_as_tiger.jpg": "label conflict",
        "tiger/same_as_lion.jpg": "label conflict",
    }
    return root, expected


def png_header_only(width, height):
    """A PNG that declares its size and holds no pixels, as far as a header reader can tell."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IEND", b"")
    )


def fingerprints(*folders):
    """sha256 -> count of every file under the folders (to prove nothing is lost)."""
    found = {}
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file() and path.name != "report.json":
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                found[digest] = found.get(digest, 0) + 1
    return found


def test_every_bad_file_is_moved_with_its_reason_and_nothing_is_lost(corpus, tmp_path):
    root, expected = corpus
    before = fingerprints(root)
    report = clean_folder(root, tmp_path / "quarantine", progress=False)
    moved = {q["file"]: q for q in report["quarantined"]}
    assert set(moved) == set(expected), set(moved) ^ set(expected)
    for name, reason in expected.items():
        assert reason in moved[name]["reason"], (name, moved[name]["reason"])
        assert (tmp_path / "quarantine" / name).is_file()
        assert not (root / name).exists()
    reasons = (tmp_path / "quarantine" / "REASONS.txt").read_text(encoding="utf-8")
    for name, reason in expected.items():  # each reason also beside the moved files
        assert f"{name}  (from {root / name}): " in reasons and reason in reasons
    (tmp_path / "quarantine" / "REASONS.txt").unlink()  # ours, not the user's: left out of the count
    assert fingerprints(root, tmp_path / "quarantine") == before  # every byte still somewhere
    assert (root / "lion" / ".DS_Store").exists() and (root / "tiger" / "Thumbs.db").exists()
    assert report["checked"] == report["kept"] + len(expected)
    json.dumps(report)


def test_odd_but_usable_files_stay_in_place_with_notes(corpus, tmp_path):
    root, _ = corpus
    report = clean_folder(root, tmp_path / "q", progress=False)
    notes = {n["file"]: " ".join(n["notes"]) for n in report["notes"]}
    assert "CMYK" in notes["lion/cmyk.jpg"]
    assert "greyscale" in notes["lion/grey.jpg"]
    assert "upper-case extension .JPG" in notes["lion/LOUD.JPG"]
    assert "non-ASCII" in notes["lion/löwe.jpg"]
    assert "tiny: 16x12" in notes["lion/tiny.jpg"]
    assert "PNG data in a .jpg file" in notes["lion/png_named.jpg"]
    assert "16-bit" in notes["tiger/sixteen_bit.png"]
    assert "transparency" in notes["tiger/alpha.png"]
    for name in notes:
        assert (root / name).exists()


def test_second_run_changes_nothing_and_dry_run_moves_nothing(corpus, tmp_path):
    root, expected = corpus
    dry = clean_folder(root, tmp_path / "q", dry_run=True, progress=False)
    assert len(dry["quarantined"]) == len(expected) and not (tmp_path / "q").exists()
    clean_folder(root, tmp_path / "q", progress=False)
    after_first, reasons = fingerprints(root), (tmp_path / "q" / "REASONS.txt").read_text(encoding="utf-8")
    second = clean_folder(root, tmp_path / "q", progress=False)
    assert second["quarantined"] == [] and fingerprints(root) == after_first
    assert (tmp_path / "q" / "REASONS.txt").read_text(encoding="utf-8") == reasons  # nothing new to say


def test_quarantine_never_overwrites(tmp_path):
    root = tmp_path / "raw"
    for cls in ("lion", "tiger"):
        (root / cls).mkdir(parents=True)
    (root / "lion" / "bad.jpg").write_bytes(b"")
    (tmp_path / "q" / "lion").mkdir(parents=True)
    (tmp_path / "q" / "lion" / "bad.jpg").write_bytes(b"an earlier one")
    report = clean_folder(root, tmp_path / "q", progress=False)
    assert report["quarantined"][0]["moved_to"].endswith("bad.1.jpg")
    assert (tmp_path / "q" / "lion" / "bad.jpg").read_bytes() == b"an earlier one"


def test_every_check_passes_a_good_photo(tmp_path):
    path = tmp_path / "ok.jpg"
    path.write_bytes(jpeg_bytes(random_rgb(0, 64, 64)))
    check = check_file(path)
    assert check.usable and check.notes == []


def test_near_duplicate_hash_ignores_size_and_quality_not_content():
    import io

    def hashed(array, **kw):
        buffer = io.BytesIO(jpeg_bytes(array, **kw))
        return dhash(buffer)

    a = hashed(photo(1))
    assert bin(a ^ hashed(np.array(Image.fromarray(photo(1)).resize((40, 30))), quality=50)).count("1") <= 3
    assert bin(a ^ hashed(photo(2))).count("1") > 10


def test_missing_class_folders_are_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no class folders"):
        clean_folder(tmp_path, progress=False)


@pytest.mark.slow
def test_training_runs_on_the_cleaned_corpus(corpus, tmp_path):
    """The odd-but-usable files (CMYK, 16-bit, alpha, greyscale, PNG named .jpg, non-ASCII
    names...) really do go through TensorFlow's training pipeline once the bad ones are out."""
    from bigcats.lesson.train import train

    root, _ = corpus
    report = clean_folder(root, tmp_path / "q", progress=False)
    _, record = train(root, tmp_path / "m.keras", epochs=1, image_size=32, batch_size=4, verbose=0)
    assert record["epochs_run"] == 1 and (tmp_path / "m.keras").is_file()
    assert sum(sum(c.values()) for c in record["split_sizes"].values()) == report["kept"] == 10
