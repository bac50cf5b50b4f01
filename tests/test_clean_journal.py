"""The cleaner keeps a true record, whatever happens (issue: nothing lost, nothing mislabelled):
a quarantine never becomes a class, links move as links, every move is recorded as it happens,
an interruption or a full disk leaves no half-copied file and a record that matches the moves."""

import errno
import json
import os
import shutil
import subprocess
import sys

import pytest

from bigcats.lesson import clean
from bigcats.lesson.clean import REASONS_FILE, clean_folder
from bigcats.lesson.data import class_names, list_images
from conftest import ROOT, jpeg_bytes, like_a_terminal, random_rgb


def photos(root, per_class=3, bad_per_class=0):
    for number, name in enumerate(("lion", "tiger")):
        (root / name).mkdir(parents=True)
        for k in range(per_class):
            (root / name / f"{name}{k}.jpg").write_bytes(jpeg_bytes(random_rgb(10 * number + k)))
        for k in range(bad_per_class):
            (root / name / f"broken{k}.jpg").write_bytes(jpeg_bytes(random_rgb(100 + 10 * number + k))[:300])
    return root


def bigcats(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "bigcats", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def recorded(quarantine):
    lines = (quarantine / REASONS_FILE).read_text(encoding="utf-8").splitlines()
    return sorted(line.split("  ")[1] for line in lines)


def in_quarantine(quarantine):
    return sorted(
        str(p.relative_to(quarantine))
        for p in quarantine.rglob("*")
        if (p.is_file() or p.is_symlink()) and p.name != REASONS_FILE
    )


def test_clean_run_inside_the_data_folder_puts_the_quarantine_beside_it(tmp_path):
    data = photos(tmp_path / "data", bad_per_class=1)
    done = bigcats("clean", ".", cwd=data)
    assert done.returncode == 0, done.stderr
    assert not (data / "quarantine").exists() and (tmp_path / "quarantine" / "lion" / "broken0.jpg").exists()
    assert class_names(data) == ["lion", "tiger"]
    done = bigcats("clean", "..", cwd=data / "lion")  # from inside a class folder
    assert done.returncode == 0 and not (data / "lion" / "quarantine").exists()


@pytest.mark.parametrize("inside", ["", "quarantine", "lion/quarantine"])
def test_a_quarantine_inside_the_data_folder_is_refused(tmp_path, inside):
    data = photos(tmp_path / "data", bad_per_class=1)
    done = bigcats("clean", data, "--quarantine", data / inside)
    assert done.returncode == 2 and "inside the data folder" in done.stderr and "Traceback" not in done.stderr
    assert len(list_images(data)) == 8  # nothing moved


def test_an_old_quarantine_inside_the_data_folder_is_never_a_class(tmp_path):
    data = photos(tmp_path / "data")
    (data / "quarantine" / "tiger").mkdir(parents=True)
    (data / "quarantine" / "tiger" / "x.jpg").write_bytes(jpeg_bytes(random_rgb(99)))
    (data / "quarantine" / REASONS_FILE).write_text("2026-11-30  tiger/x.jpg  (from ...): duplicate\n")
    assert class_names(data) == ["lion", "tiger"]


def test_a_link_is_moved_as_a_link_and_its_target_stays(tmp_path):
    data = photos(tmp_path / "data")
    (data / "lion" / "0alias.jpg").symlink_to("lion1.jpg")  # sorts before its target
    (data / "tiger" / "gone.jpg").symlink_to("/nonexistent/photo.jpg")
    report = clean_folder(data, tmp_path / "q", progress=False)
    moved = {entry["file"]: entry["reason"] for entry in report["quarantined"]}
    assert set(moved) == {"lion/0alias.jpg", "tiger/gone.jpg"} and "not there" in moved["tiger/gone.jpg"]
    assert (data / "lion" / "lion1.jpg").is_file() and not (data / "lion" / "lion1.jpg").is_symlink()
    alias = tmp_path / "q" / "lion" / "0alias.jpg"
    assert alias.is_symlink() and alias.resolve() == (data / "lion" / "lion1.jpg").resolve()
    assert clean_folder(data, tmp_path / "q", progress=False)["quarantined"] == []  # the next run is clean


def test_ctrl_c_mid_clean_leaves_a_record_that_matches_the_moves(tmp_path):
    """A real SIGINT arrives in the middle of the third move (a rename across disks)."""
    data = photos(tmp_path / "data", bad_per_class=4)
    quarantine, report = tmp_path / "q", tmp_path / "report.json"
    script = tmp_path / "interrupt.py"
    script.write_text(
        "import os, signal, sys\n"
        "from bigcats.lesson import clean\n"
        "calls = []\n"
        "copy = clean._copy_checked\n"
        "def slow_copy(source, destination):\n"
        "    calls.append(source)\n"
        "    if len(calls) == 3:\n"
        "        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the copy is under way\n"
        "    copy(source, destination)\n"
        "def other_disk(source, destination, _rename=os.rename):\n"
        "    if 'data' in str(source) and '/q/' in str(destination):\n"
        "        raise OSError(18, 'Invalid cross-device link')\n"
        "    _rename(source, destination)\n"
        "clean._copy_checked = slow_copy\n"
        "os.rename = other_disk\n"
        "from bigcats.__main__ import main\n"
        f"sys.exit(main(['clean', {str(data)!r}, '--quarantine', {str(quarantine)!r}, '--report', {str(report)!r}]))\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=ROOT, preexec_fn=like_a_terminal
    )
    assert done.returncode == 130, done.stderr
    assert "clean stopped: 3 of 8 file(s) moved" in done.stderr and "Traceback" not in done.stderr
    moved = in_quarantine(quarantine)
    assert len(moved) == 3 and recorded(quarantine) == moved  # the file in hand was finished, and recorded
    entries = json.loads(report.read_text())
    assert entries["interrupted"] and sorted(e["file"] for e in entries["quarantined"]) == moved
    assert len(list(data.rglob("broken*.jpg"))) == 5 and not list(quarantine.rglob(".*partial"))


def test_a_full_disk_across_filesystems_leaves_no_partial_copy_and_says_so(tmp_path, monkeypatch):
    data = photos(tmp_path / "data", bad_per_class=1)
    real_rename = os.rename

    def other_disk(source, destination):
        if "data" in str(source) and "/q/" in str(destination):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_rename(source, destination)

    def copy_half(source, destination):
        with open(destination, "wb") as handle:
            handle.write(source.read_bytes()[:100])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(clean.os, "rename", other_disk)
    monkeypatch.setattr(clean.shutil, "copyfile", copy_half)
    with pytest.raises(OSError, match=r"no space left on the disk\. It is still in place"):
        clean_folder(data, tmp_path / "q", progress=False)
    assert (data / "lion" / "broken0.jpg").exists() and in_quarantine(tmp_path / "q") == []
    assert not [p for p in (tmp_path / "q").rglob("*") if p.is_file()]  # no partial copy, no record of a move


@pytest.mark.parametrize("code, words", [(errno.EACCES, "permission denied"), (errno.EPERM, "immutable")])
def test_a_failed_move_names_its_real_cause(tmp_path, monkeypatch, code, words):
    data = photos(tmp_path / "data", bad_per_class=1)

    def refuse(source, destination):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(clean.os, "rename", refuse)
    with pytest.raises(OSError, match=words):
        clean_folder(data, tmp_path / "q", progress=False)


def test_a_name_in_no_encoding_is_moved_and_recorded(tmp_path):
    data = photos(tmp_path / "data")
    odd = os.fsdecode(b"caf\xe9-broken.jpg")  # Latin-1 bytes, not UTF-8
    (data / "lion" / odd).write_bytes(jpeg_bytes(random_rgb(7))[:300])
    done = bigcats("clean", data, "--quarantine", tmp_path / "q", "--report", tmp_path / "r.json")
    assert done.returncode == 0, done.stderr
    assert "caf\\xe9-broken.jpg" in (tmp_path / "q" / REASONS_FILE).read_text(encoding="utf-8")
    assert json.loads((tmp_path / "r.json").read_text())["quarantined"][0]["file"].startswith("lion/caf")


def test_a_report_path_that_is_a_folder_is_refused_before_anything_moves(tmp_path):
    data = photos(tmp_path / "data", bad_per_class=1)
    done = bigcats("clean", data, "--report", tmp_path)
    assert done.returncode == 2 and "is a folder" in done.stderr and "Traceback" not in done.stderr
    assert (data / "lion" / "broken0.jpg").exists()
    shutil.rmtree(data)
