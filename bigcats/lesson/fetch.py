"""Lesson: getting real photos, downloaded (resumable, verified), extracted safely, copied in without overwriting.

Sources: an HTTPS URL (the default is the CC0 "10 Big Cats of the Wild" set on Kaggle), a local
archive (.zip, .tar, .tar.gz), or a local folder laid out as <class>/*. Only the lion and tiger
folders are taken. Extraction happens in a temporary folder beside the destination and files
move in only after every check passed, so an interrupted or rejected fetch leaves no half-filled
folder; a file already in the destination is never overwritten or deleted.
"""

import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from tqdm.auto import tqdm

from bigcats.lesson import config
from bigcats.lesson.data import has_image_extension, is_clutter

DEFAULT_URL = "https://www.kaggle.com/api/v1/datasets/download/gpiosenka/cats-in-the-wild-image-classification"
PHOTOS_URL_VARIABLE = "BIGCATS_PHOTOS_URL"  # another copy of the same release (a mirror, a local server)
# Upstream folder names (any case) -> our class names.
CLASS_ALIASES = {"lion": "lion", "lions": "lion", "tiger": "tiger", "tigers": "tiger"}
MAX_MEMBER_BYTES = 200 * 2**20
MAX_TOTAL_BYTES = 4 * 2**30
MAX_MEMBERS = 200_000
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
# Kaggle zips the data set on the fly, so the archive's own bytes (and hash) are not stable.
# What is pinned instead is every photo: the SHA-256 of each lion and tiger file of the release.
PINNED_MANIFEST = Path(__file__).with_name("lions_tigers.sha256")


class FetchError(RuntimeError):
    """A fetch that stopped safely; the message says what to do."""


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_url(url):
    parts = urlparse(url)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS):
        return
    raise FetchError(f"{url}: only https:// downloads are allowed (plain http only from this machine).")


def download(url, destination, progress=True, timeout=60):
    """Download to `destination`, resuming a `.part` file left by an interrupted run. `timeout`:
    seconds to wait for the server, at the start and for each read."""
    _check_url(url)
    destination = Path(destination)
    part = destination.with_name(destination.name + ".part")
    destination.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            resumed = have and response.status == 206
            total = int(response.headers.get("Content-Length", 0)) + (have if resumed else 0)
            if progress and total:
                print(f"{url}: {total / 1e6:.0f} MB to download", file=sys.stderr)
            with (
                open(part, "ab" if resumed else "wb") as out,
                tqdm(
                    total=total or None,
                    initial=have if resumed else 0,
                    unit="B",
                    unit_scale=True,
                    desc=f"Downloading {destination.name.removesuffix('.archive')}",  # the name the server gives
                    disable=not progress,
                ) as bar,
            ):
                for block in iter(lambda: response.read(2**16), b""):
                    out.write(block)
                    bar.update(len(block))
    except (urllib.error.URLError, OSError) as error:
        raise FetchError(
            f"Download of {url} failed ({error}). Run the same command again to resume; "
            "offline, use --source with a local archive or folder, or --synthetic."
        ) from None
    if total and part.stat().st_size != total:
        raise FetchError(
            f"Download of {url} stopped at {part.stat().st_size} of {total} bytes. "
            "Run the same command again to resume."
        )
    part.replace(destination)
    return destination


def _safe_name(name):
    """The member's path if it stays inside the destination, else None."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        return None
    return path


def _members(archive):
    """(open archive, [(relative path, opener)]) for its regular files, after the safety checks.
    Both readers stop at each entry's declared size, so the size limits below hold as written."""
    if zipfile.is_zipfile(archive):
        handle = zipfile.ZipFile(archive)
        infos = [
            (
                i.filename,
                i.file_size,
                i.is_dir(),
                (i.external_attr >> 16) & 0o170000 == 0o120000,
                lambda i=i: handle.open(i),
            )
            for i in handle.infolist()
        ]
    elif tarfile.is_tarfile(archive):
        handle = tarfile.open(archive)  # noqa: SIM115 -- the caller closes it after the members are read
        infos = [
            (m.name, m.size, m.isdir(), not (m.isfile() or m.isdir()), lambda m=m: handle.extractfile(m))
            for m in handle.getmembers()
        ]
    else:
        raise FetchError(
            f"{archive} is not a zip or tar archive. A download that is not one is usually a "
            "sign-in or error page: open the address in a browser, download the archive there, "
            "and pass it with --source."
        )
    try:
        return handle, _checked(archive, infos)
    except FetchError:
        handle.close()
        raise


def _checked(archive, infos):
    """The regular files' (path, opener), or FetchError at the first unsafe entry."""
    if len(infos) > MAX_MEMBERS:
        raise FetchError(f"{archive} has {len(infos)} entries (limit {MAX_MEMBERS}): refusing it.")
    members, total = [], 0
    for name, size, is_dir, is_link, opener in infos:
        safe = _safe_name(name)
        if safe is None:
            raise FetchError(
                f"{archive} contains an entry that points outside the destination ({name!r}): refusing it."
            )
        if is_link:
            raise FetchError(f"{archive} contains a link or special file ({name!r}): refusing it.")
        if is_dir:
            continue
        total += size
        if size > MAX_MEMBER_BYTES or total > MAX_TOTAL_BYTES:
            raise FetchError(f"{archive} unpacks to more than the size limit: refusing it (decompression bomb?).")
        members.append((safe, opener))
    return members


def extract_safely(archive, target):
    """Extract the regular files of a zip/tar into `target` after checking every entry."""
    handle, members = _members(archive)
    with handle:
        for path, opener in tqdm(members, desc="Extracting", unit="file"):
            out = Path(target, *path.parts)
            out.parent.mkdir(parents=True, exist_ok=True)
            try:
                with opener() as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, 2**20)
            except (zlib.error, zipfile.BadZipFile, tarfile.TarError, EOFError) as error:
                raise FetchError(
                    f"{archive} is damaged: its entry {path} cannot be unpacked ({error}). Download it again; "
                    f"nothing was added to the data folder."
                ) from None
    return target


def find_class_images(root):
    """{class: [(file, split_prefix)]} for images under folders named like a class
    (lion/LIONS/tiger/TIGER, any depth). The folder above the class (train/valid/test) becomes
    a file-name prefix so that same-named files from different splits do not collide."""
    found = {}
    for folder in sorted(p for p in Path(root).rglob("*") if p.is_dir()):
        cls = CLASS_ALIASES.get(folder.name.lower())
        if not cls:
            continue
        prefix = folder.parent.name if folder.parent != Path(root) else ""
        for f in sorted(folder.iterdir()):
            if f.is_file() and has_image_extension(f) and not is_clutter(f):
                found.setdefault(cls, []).append((f, prefix))
    return found


def copy_in(found, dest, move=False):
    """Copy (or move, for our own temporary files) into dest/<class>/; never overwrite: the same
    bytes already there are skipped, different bytes get a new name."""
    added, skipped = [], []
    for cls, files in found.items():
        (Path(dest) / cls).mkdir(parents=True, exist_ok=True)
        for src, prefix in files:
            name = f"{prefix.lower()}_{src.name}" if prefix else src.name
            target = Path(dest) / cls / name
            n = 0
            while target.exists():
                if sha256_of(target) == sha256_of(src):
                    skipped.append(str(target))
                    break
                n += 1
                target = target.with_name(f"{Path(name).stem}.{n}{Path(name).suffix}")
            else:
                (shutil.move if move else shutil.copy2)(str(src), str(target))
                added.append(str(target))
    return added, skipped


def read_manifest(path=PINNED_MANIFEST):
    """{sha256: 'class/name'} from a `sha256sum`-style file."""
    pairs = (line.split(None, 1) for line in Path(path).read_text().splitlines() if line.strip())
    return {digest: name.strip() for digest, name in pairs}


def verify_manifest(found, manifest):
    """Every photo must be one the manifest pins, and every pinned photo must be there."""
    got = {sha256_of(f): f"{cls}/{f.name}" for cls, files in found.items() for f, _ in files}
    unknown = sorted(name for digest, name in got.items() if digest not in manifest)
    missing = sorted(name for digest, name in manifest.items() if digest not in got)
    if unknown or missing:
        raise FetchError(
            f"The download does not match the pinned photo list ({len(unknown)} unknown, "
            f"{len(missing)} missing, e.g. {(unknown + missing)[:3]}). The release may have changed; "
            "nothing was added. Use --source with your own copy to skip this check."
        )


def fetch(
    source=DEFAULT_URL, dest=config.DATA_DIR, sha256=None, manifest=None, downloads_dir=None, progress=True, timeout=60
):
    """Bring lion and tiger photos into dest/<class>/. Returns a report dict. `sha256` pins the
    archive; `manifest` ({sha256: name}) pins the photos inside it."""
    dest = Path(dest)
    source_path = Path(source) if "://" not in str(source) else None
    if source_path and source_path.is_dir():
        inside = dest.resolve() == source_path.resolve() or source_path.resolve() in dest.resolve().parents
        if inside:
            raise FetchError(
                f"--dest {dest} is inside --source {source_path}: every run would copy its own output in again. "
                f"Give a destination outside the source folder."
            )
        found = find_class_images(source_path)
        if not found:
            raise FetchError(f"{source_path} has no lion/ or tiger/ folders.")
        added, skipped = copy_in(found, dest)
        return _report(source, dest, found, added, skipped)
    if source_path:
        if not source_path.is_file():
            raise FetchError(f"{source_path} does not exist.")
        archive = source_path
    else:
        archive = download(source, archive_path(source, downloads_dir or dest.parent / "downloads"), progress, timeout)
    if sha256:
        actual = sha256_of(archive)
        if actual != sha256.lower():
            raise FetchError(
                f"{archive}: SHA-256 {actual} does not match the expected {sha256}. The file is "
                "corrupt or not the expected release; delete it and download again."
            )
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=dest.parent) as tmp:
        extract_safely(archive, tmp)
        found = find_class_images(tmp)
        if not found:
            raise FetchError(f"{archive} has no lion/ or tiger/ folders.")
        if manifest:
            verify_manifest(found, manifest)
        added, skipped = copy_in(found, dest, move=True)
    return _report(source, dest, found, added, skipped)


def _report(source, dest, found, added, skipped):
    return {
        "source": str(source),
        "dest": str(dest),
        "added": len(added),
        "skipped_existing": len(skipped),
        "per_class": {cls: len(files) for cls, files in found.items()},
    }


def photos_url():
    """Where the development photos come from: $BIGCATS_PHOTOS_URL, else the pinned release's address."""
    return os.environ.get(PHOTOS_URL_VARIABLE, "").strip() or DEFAULT_URL


def fetch_for_tutorial(dest=config.DATA_DIR, url=None, manifest=None, timeout=15):
    """The real photos into `dest` when it has none: the pinned release (every photo's hash checked
    against `manifest`, by default the shipped one), from `url` (default `photos_url()`). Returns
    (report or None, a line saying what happened). A download that cannot start (no network, a
    refused connection) fails within `timeout` seconds; a refused, corrupt or unexpected download
    adds nothing and its archive goes, so the next run starts afresh; the caller then uses the
    synthetic set."""
    url = url or photos_url()
    downloads = Path(dest).parent / "downloads"
    try:
        report = fetch(url, dest, manifest=read_manifest() if manifest is None else manifest,
                       downloads_dir=downloads, timeout=timeout)  # fmt: skip
    except FetchError as error:
        archive_path(url, downloads).unlink(missing_ok=True)  # its .part, if any, stays: the next run resumes it
        why = str(error).split(". ")[0].rstrip(".")  # what happened; the advice after it is fetch-data's
        return None, (
            f"The real photos could not be fetched, so this run uses the synthetic set. {why}. With a copy of "
            "them: python -m bigcats fetch-data --source ARCHIVE_OR_FOLDER, then run the tutorial again."
        )
    return report, f"{report['added']} real photos fetched from {url} into {report['dest']}: {report['per_class']}"


def archive_path(url, downloads_dir):
    """Where a download from `url` is kept."""
    return Path(downloads_dir) / f"{Path(urlparse(url).path).name or 'download'}.archive"
