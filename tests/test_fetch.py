"""fetch-data against a real HTTP server on 127.0.0.1 serving archives built here."""

import hashlib
import io
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bigcats.fetch import FetchError, fetch
from conftest import jpeg_bytes, random_rgb

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
    from bigcats.fetch import read_manifest

    manifest = read_manifest()
    assert len(manifest) == 485
    names = list(manifest.values())
    assert sum(n.startswith("lion/") for n in names) == 238 and sum(n.startswith("tiger/") for n in names) == 247


def test_a_sign_in_page_instead_of_an_archive_is_explained(server, tmp_path):
    server.files["/cats.zip"] = b"<!DOCTYPE html><html><body>Please sign in</body></html>"
    with pytest.raises(FetchError, match="sign-in or error page"):
        fetch(f"{server.url}/cats.zip", tmp_path / "raw", progress=False)
    assert not (tmp_path / "raw").exists()
