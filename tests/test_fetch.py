"""fetch-data against a real HTTP server on 127.0.0.1 serving archives built here."""

import hashlib
import io
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bigcats.lesson.fetch import FetchError, fetch
from conftest import DEV_DATA, jpeg_bytes, random_rgb

LION, TIGER, CHEETAH = (jpeg_bytes(random_rgb(i)) for i in (1, 2, 3))


def zip_archive(entries):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, content in entries.items():
            z.writestr(name, content)
    return buffer.getvalue()


GOOD = zip_archive(
    {
        "train/LIONS/001.jpg": LION,
        "valid/LIONS/001.jpg": TIGER[:100] + LION,
        "train/TIGER/001.jpg": TIGER,
        "train/CHEETAH/001.jpg": CHEETAH,
        "WILDCATS.CSV": b"a,b\n",
    }
)


class Server:
    """Serves `files` by path; honours Range; `cut_next` sends half the body, then hangs up."""

    def __init__(self):
        self.files, self.cut_next, self.requests = {}, False, []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests.append(self.headers.get("Range"))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers.get("Range") else 0
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if server.cut_next:
                    server.cut_next = False
                    self.wfile.write(body[start : start + (len(body) - start) // 2])
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.httpd.shutdown()


def test_good_archive_brings_only_lions_and_tigers(server, tmp_path):
    server.files["/cats.zip"] = GOOD
    report = fetch(f"{server.url}/cats.zip", tmp_path / "raw", sha256=hashlib.sha256(GOOD).hexdigest(), progress=False)
    assert report["added"] == 3 and report["per_class"] == {"lion": 2, "tiger": 1}
    assert (tmp_path / "raw" / "lion" / "train_001.jpg").read_bytes() == LION
    assert (tmp_path / "raw" / "tiger" / "train_001.jpg").read_bytes() == TIGER
    assert not (tmp_path / "raw" / "cheetah").exists()
    assert [p.name for p in tmp_path.iterdir()] != [] and not list(tmp_path.glob(".fetch-*"))
    again = fetch(f"{server.url}/cats.zip", tmp_path / "raw", progress=False)  # re-run: nothing changes
    assert again["added"] == 0 and again["skipped_existing"] == 3


def test_wrong_checksum_changes_nothing(server, tmp_path):
    server.files["/cats.zip"] = GOOD
    with pytest.raises(FetchError, match="does not match the expected"):
        fetch(f"{server.url}/cats.zip", tmp_path / "raw", sha256="0" * 64, progress=False)
    assert not (tmp_path / "raw").exists()


def test_truncated_transfer_fails_clearly_then_resumes(server, tmp_path):
    server.files["/cats.zip"] = GOOD
    server.cut_next = True
    with pytest.raises(FetchError, match="Run the same command again to resume"):
        fetch(f"{server.url}/cats.zip", tmp_path / "raw", progress=False)
    assert not (tmp_path / "raw").exists()
    report = fetch(f"{server.url}/cats.zip", tmp_path / "raw", sha256=hashlib.sha256(GOOD).hexdigest(), progress=False)
    assert report["added"] == 3
    assert server.requests[-1] == f"bytes={len(GOOD) // 2}-"  # it asked only for the rest


@pytest.mark.parametrize("evil", ["../escape.jpg", "/etc/evil.jpg", "train/LIONS/../../../escape.jpg"])
def test_path_traversal_is_refused_before_anything_is_written(server, tmp_path, evil):
    server.files["/evil.zip"] = zip_archive({"train/LIONS/ok.jpg": LION, evil: LION})
    with pytest.raises(FetchError, match="outside the destination"):
        fetch(f"{server.url}/evil.zip", tmp_path / "d" / "raw", progress=False)
    assert not (tmp_path / "d" / "raw").exists() and not (tmp_path / "escape.jpg").exists()


def test_links_in_tar_archives_are_refused(tmp_path):
    archive = tmp_path / "links.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("train/LIONS/link.jpg")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(FetchError, match="link or special file"):
        fetch(archive, tmp_path / "raw", progress=False)


def test_local_tar_and_folder_sources_never_overwrite(tmp_path):
    archive = tmp_path / "cats.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, content in {"lion/a.jpg": LION, "tiger/b.jpg": TIGER}.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    dest = tmp_path / "raw"
    (dest / "lion").mkdir(parents=True)
    (dest / "lion" / "a.jpg").write_bytes(b"the user's own, different photo")
    report = fetch(archive, dest, progress=False)
    assert report["added"] == 2
    assert (dest / "lion" / "a.jpg").read_bytes() == b"the user's own, different photo"
    assert (dest / "lion" / "a.1.jpg").read_bytes() == LION
    folder = tmp_path / "mine"
    (folder / "Tigers").mkdir(parents=True)
    (folder / "Tigers" / "c.jpg").write_bytes(CHEETAH)
    assert fetch(folder, dest, progress=False)["added"] == 1
    assert (folder / "Tigers" / "c.jpg").exists()  # copied, not moved


def test_plain_http_to_other_hosts_is_refused(tmp_path):
    with pytest.raises(FetchError, match="only https"):
        fetch("http://example.com/cats.zip", tmp_path / "raw", progress=False)


def test_offline_says_what_to_do(tmp_path):
    with pytest.raises(FetchError, match="--synthetic"):
        fetch("http://127.0.0.1:9/nothing.zip", tmp_path / "raw", progress=False)


def test_pinned_photo_list_is_checked_before_anything_moves_in(server, tmp_path):
    server.files["/cats.zip"] = GOOD
    pinned = {
        hashlib.sha256(b).hexdigest(): n for b, n in [(LION, "lion/train_001.jpg"), (TIGER, "tiger/train_001.jpg")]
    }
    with pytest.raises(FetchError, match="1 unknown, 0 missing"):  # valid/LIONS/001.jpg is not pinned
        fetch(f"{server.url}/cats.zip", tmp_path / "raw", manifest=pinned, progress=False)
    assert not (tmp_path / "raw").exists()
    pinned[hashlib.sha256(TIGER[:100] + LION).hexdigest()] = "lion/valid_001.jpg"
    assert fetch(f"{server.url}/cats.zip", tmp_path / "raw", manifest=pinned, progress=False)["added"] == 3


def test_the_shipped_manifest_pins_the_development_photos():
    from bigcats.lesson.fetch import read_manifest

    manifest = read_manifest()
    assert len(manifest) == 485
    names = list(manifest.values())
    assert sum(n.startswith("lion/") for n in names) == 238 and sum(n.startswith("tiger/") for n in names) == 247


def test_a_sign_in_page_instead_of_an_archive_is_explained(server, tmp_path):
    server.files["/cats.zip"] = b"<!DOCTYPE html><html><body>Please sign in</body></html>"
    with pytest.raises(FetchError, match="sign-in or error page"):
        fetch(f"{server.url}/cats.zip", tmp_path / "raw", progress=False)
    assert not (tmp_path / "raw").exists()


# The tutorial's own fetch: the real photos when they can be had, the synthetic set when not


def pinned_for(archive_entries):
    return {hashlib.sha256(content).hexdigest(): name for name, content in archive_entries.items()}


def test_the_tutorial_fetches_the_pinned_photos_when_the_data_folder_is_empty(server, tmp_path, monkeypatch):
    from bigcats.lesson.fetch import fetch_for_tutorial

    server.files["/cats.zip"] = zip_archive({"train/LIONS/001.jpg": LION, "train/TIGER/001.jpg": TIGER})
    monkeypatch.setenv("BIGCATS_PHOTOS_URL", f"{server.url}/cats.zip")  # another copy of the release
    report, line = fetch_for_tutorial(tmp_path / "data" / "raw", manifest=pinned_for({"lion": LION, "tiger": TIGER}))
    assert report["added"] == 2 and "2 real photos fetched" in line
    assert sorted(p.name for p in (tmp_path / "data" / "raw").rglob("*.jpg")) == ["train_001.jpg", "train_001.jpg"]


def _nothing_left(data):
    """No photo and no half-written file in data/raw, no archive kept, no extraction folder."""
    raw, downloads = data / "raw", data / "downloads"
    assert not raw.exists() or not any(raw.rglob("*"))
    assert not any(downloads.glob("*.archive")) if downloads.exists() else True
    assert not list(data.glob(".fetch-*"))


def test_without_a_network_the_tutorial_falls_back_in_seconds(tmp_path):
    import time

    from bigcats.lesson.fetch import fetch_for_tutorial

    start = time.perf_counter()
    report, line = fetch_for_tutorial(tmp_path / "data" / "raw", url="http://127.0.0.1:9/cats.zip")  # refused
    assert report is None and "uses the synthetic set" in line and time.perf_counter() - start < 10
    _nothing_left(tmp_path / "data")


def test_a_corrupt_download_adds_nothing_and_is_not_kept(server, tmp_path):
    from bigcats.lesson.fetch import fetch_for_tutorial

    whole = zip_archive({"train/LIONS/001.jpg": LION * 20, "train/TIGER/001.jpg": TIGER * 20})
    server.files["/cats.zip"] = whole[:100] + bytes(200) + whole[300:]  # bytes damaged in transit
    report, line = fetch_for_tutorial(tmp_path / "data" / "raw", url=f"{server.url}/cats.zip")
    assert report is None and "synthetic" in line and "damaged" in line
    _nothing_left(tmp_path / "data")
    server.files["/other.zip"] = zip_archive({"train/LIONS/001.jpg": LION, "train/TIGER/001.jpg": TIGER})
    report, line = fetch_for_tutorial(tmp_path / "data" / "raw", url=f"{server.url}/other.zip")  # not the release
    assert report is None and "pinned photo list" in line
    _nothing_left(tmp_path / "data")


@pytest.mark.skipif(not DEV_DATA.is_dir(), reason="the development photos (../shared/data) are not here")
def test_the_development_photos_served_as_the_release_pass_the_shipped_manifest(server, tmp_path):
    # the release's layout: <split>/<CLASS>/<name>, which fetch names <split>_<name>
    from bigcats.lesson.fetch import fetch_for_tutorial

    entries = {}
    for photo in sorted(DEV_DATA.glob("*/*.jpg")):
        split, name = photo.name.split("_", 1)
        entries[f"{split}/{photo.parent.name.upper()}/{name}"] = photo.read_bytes()
    server.files["/release.zip"] = zip_archive(entries)
    report, _ = fetch_for_tutorial(tmp_path / "data" / "raw", url=f"{server.url}/release.zip")
    assert report["added"] == 485 and report["per_class"] == {"lion": 238, "tiger": 247}


def test_the_tutorial_command_fetches_first_unless_told_synthetic(server, tmp_path, monkeypatch, capsys):
    import bigcats.environment.tutorial
    import bigcats.lesson.fetch
    from bigcats.__main__ import main

    ran = []
    monkeypatch.setattr(bigcats.environment.tutorial, "run_all", lambda *args, **kwargs: ran.append(args) or [])
    monkeypatch.setattr(bigcats.lesson.fetch, "read_manifest", lambda: pinned_for({"lion": LION, "tiger": TIGER}))
    server.files["/cats.zip"] = zip_archive({"train/LIONS/001.jpg": LION, "train/TIGER/001.jpg": TIGER})
    monkeypatch.setenv("BIGCATS_PHOTOS_URL", f"{server.url}/cats.zip")
    monkeypatch.chdir(tmp_path)
    assert main(["tutorial", "--synthetic"]) == 0 and not (tmp_path / "data" / "raw").exists()  # no download
    assert main(["tutorial"]) == 0 and "2 real photos fetched" in capsys.readouterr().out
    assert len(list((tmp_path / "data" / "raw").rglob("*.jpg"))) == 2 and len(ran) == 2
    server.requests.clear()
    assert main(["tutorial"]) == 0 and server.requests == []  # photos there: nothing fetched again
