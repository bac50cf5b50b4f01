"""Lesson: checking every image before training, and moving the unusable ones aside with a reason.

Each file is fully decoded with TensorFlow's own decoder: header checks (cv2, imghdr, PIL's
verify) pass truncated JPEGs that then crash training mid-epoch. Nothing is ever deleted or
rewritten: unusable files and extra copies move to a quarantine folder, keeping their class
subfolder, and the JSON report and the quarantine folder's REASONS.txt say why.
"""

import contextlib
import errno
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from bigcats.lesson.data import (
    IMAGE_EXTENSIONS,
    QUARANTINE_MARKER,
    class_names,
    file_digest,
    has_image_extension,
    is_clutter,
    list_files,
)
from bigcats.lesson.saving import ctrl_c_waits, why_os_error

MAX_PIXELS = 50_000_000  # above this a file is a decompression bomb or a scan, not a training photo
TINY_SIDE = 32
NEAR_DUPLICATE_BITS = 3  # dHash bits that may differ for "the same photo, resized or re-encoded"
REASONS_FILE = QUARANTINE_MARKER  # in the quarantine folder: one line per moved file, appended as it moves


@dataclass
class Check:
    usable: bool
    reason: str = ""
    notes: list = field(default_factory=list)


MAGIC = {b"\xff\xd8\xff": "JPEG", b"\x89PNG": "PNG", b"GIF8": "GIF", b"BM": "BMP"}


class BadImagesError(ValueError):
    """Files that would crash training, named, with the command that moves them aside."""


def bad_images_message(bad, data_dir):
    """What to say about files that training cannot read: each named with why, and the command that moves them aside."""
    listing = "\n".join(f"  {path}: {reason}" for path, reason in bad[:20])
    more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
    return (
        f"{len(bad)} file(s) in {data_dir} cannot be read by TensorFlow (training would crash on them):\n"
        f"{listing}{more}\n"
        f"Move them aside (nothing is deleted) with:  python -m bigcats clean {data_dir}"
    )


def _magic_format(head):
    return next((fmt for magic, fmt in MAGIC.items() if head.startswith(magic)), None)


def sniff(head):
    """What a file that is not an image most likely is, from its first bytes."""
    text = head.lstrip().lower()
    if text.startswith(b"%pdf"):
        return "a PDF document"
    if text.startswith((b"<!doctype html", b"<html", b"<?xml", b"<svg")):
        return "an HTML/XML page (often a web page saved under an image name)"
    if all(32 <= b < 127 or b in b"\r\n\t" for b in head[:256]):
        return "a text file"
    return "data in no image format TensorFlow reads"


def _header(path):
    """(format, mode, width, height) from the header only, or None if PIL cannot read it."""
    from PIL import Image

    # Reading a header decodes nothing, so PIL's decompression-bomb limit is lifted for it: we
    # judge the size ourselves (MAX_PIXELS), and the refusal should name the real size.
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with Image.open(path) as image:
            return image.format, image.mode, image.width, image.height
    except Exception:
        return None
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def pixel_size(path):
    """(width, height) as the file's header says, or None if PIL cannot read it."""
    header = _header(path)
    return header and header[2:]


def _decode_error(path):
    """The error TensorFlow's decoder raises on this file during training, or ''."""
    import tensorflow as tf

    try:
        tf.io.decode_image(Path(path).read_bytes(), channels=3, expand_animations=False)
        return ""
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as error:
        return error.message.split("}}")[-1].strip().splitlines()[0]


def _png_bit_depth(path):
    """PIL reports 16-bit RGB PNGs as plain 'RGB', so read the depth from the PNG header."""
    with open(path, "rb") as f:
        head = f.read(25)
    return head[24] if head.startswith(b"\x89PNG") and len(head) == 25 else None


def _notes(path, header):
    fmt, mode, width, height = header
    notes = []
    if mode == "CMYK":
        notes.append("CMYK colour (decoded to RGB; colours may shift slightly)")
    if mode in ("L", "1", "I;16", "I", "LA"):
        notes.append("greyscale (decoded to 3 identical channels)")
    if mode in ("RGBA", "LA", "PA") or (mode == "P"):
        notes.append("has transparency or a palette (alpha is dropped)")
    if mode.startswith("I;16") or mode == "I" or _png_bit_depth(path) == 16:
        notes.append("16-bit (scaled to 8 bits when decoded)")
    if min(width, height) < TINY_SIDE:
        notes.append(f"tiny: {width}x{height} pixels")
    suffix = Path(path).suffix
    if suffix != suffix.lower():
        notes.append(f"upper-case extension {suffix}")
    expected = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".gif": "GIF", ".bmp": "BMP"}.get(suffix.lower())
    if fmt and expected and fmt != expected:
        notes.append(f"{fmt} data in a {suffix} file (decoded by content, so it still works)")
    if not Path(path).name.isascii():
        notes.append("non-ASCII file name")
    return notes


def check_file(path, max_pixels=MAX_PIXELS):
    """Is this file usable for training? Unusable files get a reason that says what to do."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        return Check(False, f"a link to a file that is not there ({os.readlink(path)}); link it again or remove it")
    if not has_image_extension(path):
        return Check(
            False,
            f"extension '{path.suffix or '(none)'}' is not read by the training "
            f"loader ({' '.join(IMAGE_EXTENSIONS)}); convert it to JPEG or PNG",
        )
    if path.stat().st_size == 0:
        return Check(False, "empty file (0 bytes): the download or copy failed; fetch it again")
    header = _header(path)
    if header and header[2] * header[3] > max_pixels:
        return Check(
            False,
            f"too large to decode safely: {header[2]}x{header[3]} pixels "
            f"(limit {max_pixels // 10**6} megapixels); downscale it",
        )
    error = _decode_error(path)
    if error:
        with open(path, "rb") as f:
            head = f.read(512)
        fmt = _magic_format(head) or (header and header[0])
        if not fmt:
            return Check(False, f"not an image: {sniff(head)}")
        return Check(False, f"corrupt or truncated {fmt} data ({error}); re-download or re-export it")
    return Check(True, notes=_notes(path, header) if header else [])


def dhash(path, size=8):
    """A 64-bit perceptual hash: equal (or nearly) for the same photo resized or re-encoded."""
    from PIL import Image

    with Image.open(path) as image:
        grey = image.convert("L").resize((size + 1, size), Image.Resampling.LANCZOS)
    pixels = list(grey.getdata())
    bits = 0
    for row in range(size):
        for col in range(size):
            left, right = pixels[row * (size + 1) + col], pixels[row * (size + 1) + col + 1]
            bits = (bits << 1) | (left > right)
    return bits


def _unique_destination(target):
    """Never overwrite: lion/a.jpg -> lion/a.1.jpg, lion/a.2.jpg, ... if taken."""
    candidate, n = target, 0
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = target.with_name(f"{target.stem}.{n}{target.suffix}")
    return candidate


def _find_duplicates(usable, data_dir):
    """{path: reason} for the copies to move aside. Within a class the first file (by name)
    stays; the same photo under two classes is a label conflict and every copy moves."""
    groups = {}
    for path in usable:
        groups.setdefault(("sha", file_digest(path)), []).append(path)
    hashes = {path: dhash(path) for path in usable}
    by_first = sorted(usable)
    for i, a in enumerate(by_first):
        for b in by_first[i + 1 :]:
            if bin(hashes[a] ^ hashes[b]).count("1") <= NEAR_DUPLICATE_BITS:
                groups.setdefault(("near", a), [a]).append(b)
    moves = {}
    for (kind, _), paths in groups.items():
        paths = sorted(set(paths), key=lambda p: (p.is_symlink(), p))  # a real file stays, a link to it moves
        if len(paths) < 2:
            continue
        classes = {p.relative_to(data_dir).parts[0] for p in paths}
        what = "exact duplicate" if kind == "sha" else "near-duplicate (same photo resized or re-encoded)"
        if len(classes) > 1:
            others = ", ".join(str(p.relative_to(data_dir)) for p in paths)
            for p in paths:
                moves.setdefault(
                    p,
                    f"label conflict: the same photo is filed under several classes ({others}); "
                    "decide which class it belongs to and put one copy back",
                )
        else:
            for p in paths[1:]:
                if p not in moves and paths[0] not in moves:
                    moves[p] = f"{what} of {paths[0].relative_to(data_dir)}"
    return moves


def check_quarantine(data_dir, quarantine_dir):
    """Refuse a quarantine inside the data folder (its files would train as a class) or around it."""
    data, quarantine = Path(data_dir).resolve(), Path(quarantine_dir).resolve()
    if quarantine == data or data in quarantine.parents:
        raise ValueError(
            f"The quarantine folder {quarantine_dir} is inside the data folder {data_dir}, where its files would "
            f"be trained on as a class. Give one outside it, e.g. --quarantine {data.parent / 'quarantine'}"
        )
    if quarantine in data.parents:
        raise ValueError(
            f"The data folder {data_dir} is inside the quarantine folder {quarantine_dir}. Give a quarantine "
            f"folder beside the data, e.g. --quarantine {data.parent / 'quarantine'}"
        )


def check_report_path(report_path):
    """Refuse, before any file moves, a report path that cannot be written."""
    if report_path is None:
        return None
    report_path = Path(report_path)
    if report_path.is_dir():
        raise ValueError(f"--report {report_path} is a folder; give a file name, e.g. {report_path / 'clean.json'}")
    folder = next((p for p in report_path.parents if p.exists()), Path("."))
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise ValueError(f"--report {report_path} cannot be written under {folder}; give another path")
    return report_path


def clean_folder(data_dir, quarantine_dir=None, dry_run=False, progress=True, report_path=None):
    """Check every file under data_dir/<class>/; move the unusable ones and extra copies to
    quarantine_dir/<class>/ (default: a `quarantine` folder beside data_dir). Returns the report.

    Each move is recorded as it happens, in REASONS.txt and (if given) the JSON report at
    report_path, so an interruption or an error leaves a record that matches the files moved.
    Ctrl-C finishes the file in hand and stops; a symbolic link is moved as a link."""
    data_dir = Path(data_dir)
    if not class_names(data_dir):
        raise FileNotFoundError(f"{data_dir} has no class folders; expected {data_dir}/<class>/*.jpg")
    quarantine_dir = Path(quarantine_dir or data_dir.resolve().parent / "quarantine")
    check_quarantine(data_dir, quarantine_dir)
    report_path = check_report_path(report_path)
    files = [p for p, _ in list_files(data_dir)]
    reasons, notes = {}, []
    for path in tqdm(files, desc="Checking images", unit="file", disable=not progress):
        check = check_file(path)
        if not check.usable:
            reasons[path] = check.reason
        elif check.notes:
            notes.append({"file": str(path.relative_to(data_dir)), "notes": check.notes})
    reasons.update(_find_duplicates([p for p in files if p not in reasons], data_dir))
    report = {
        "data_dir": str(data_dir),
        "quarantine_dir": str(quarantine_dir),
        "dry_run": dry_run,
        "checked": len(files),
        "kept": len(files),
        "quarantined": [],
        "notes": notes,
    }
    try:
        for path, reason in sorted(reasons.items()):
            destination = _unique_destination(quarantine_dir / path.relative_to(data_dir))
            entry = {"file": str(path.relative_to(data_dir)), "moved_to": str(destination), "reason": reason}
            with ctrl_c_waits():  # a move and its record happen together, or not at all
                if not dry_run:
                    _move_aside(path, destination, len(report["quarantined"]), quarantine_dir)
                    _note_reason(quarantine_dir, data_dir, entry)
                report["quarantined"].append(entry)
                report["kept"] -= 1
                _write_report(report_path, report)
    except KeyboardInterrupt:
        report["interrupted"] = True
        _write_report(report_path, report)
        raise KeyboardInterrupt(
            f"clean stopped: {len(report['quarantined'])} of {len(reasons)} file(s) moved to {quarantine_dir}, "
            f"each with its reason in {REASONS_FILE} there; run it again to finish"
        ) from None
    _write_report(report_path, report)
    return report


def _move_aside(source, destination, moved_so_far, quarantine_dir):
    """Move one file into the quarantine, never leaving half of it: a rename where it can; across
    disks a copy under a temporary name, checked byte for byte, then renamed, and only then the
    original removed. A symbolic link moves as a link (to the same file), never its target."""
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            destination.symlink_to(os.path.abspath(source.parent / os.readlink(source)))
            source.unlink()
            return
        try:
            os.rename(source, destination)
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise
            _copy_checked(source, destination)
            source.unlink()
    except OSError as error:
        before = (
            f"; the {moved_so_far} moved before it are recorded in {quarantine_dir / REASONS_FILE}"
            if moved_so_far
            else ""
        )
        raise OSError(
            error.errno,
            f"Could not move {source} to {destination}: {why_os_error(error)}. It is still in place{before}.",
        ) from None
    except UnicodeEncodeError:
        raise OSError(
            errno.EILSEQ, f"Could not move {source!r}: its name cannot be written on the quarantine's disk; rename it"
        ) from None


def _copy_checked(source, destination):
    partial = destination.with_name(f".{destination.name}.partial")
    try:
        shutil.copyfile(source, partial)
        shutil.copystat(source, partial)
        if partial.stat().st_size != source.stat().st_size or file_digest(partial) != file_digest(source):
            raise OSError(errno.EIO, "the copy differs from the original")
        os.rename(partial, destination)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()


def _write_report(report_path, report):
    if report_path is None:
        return
    report_path.parent.mkdir(parents=True, exist_ok=True)
    partial = report_path.with_name(f".{report_path.name}.partial")
    partial.write_text(json.dumps(report, indent=2))
    os.replace(partial, report_path)


def _note_reason(quarantine_dir, data_dir, entry):
    # Beside the moved files, so that whoever finds them later (or in another folder, or after
    # reports/ was overwritten) learns why each one was moved and where it came from; written
    # and flushed to the disk as each file moves. backslashreplace: a name in no encoding still
    # gets its line.
    moved = Path(entry["moved_to"]).relative_to(quarantine_dir)
    line = f"{time.strftime('%Y-%m-%d %H:%M')}  {moved}  (from {data_dir / entry['file']}): {entry['reason']}\n"
    line = line.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")  # b"caf\xe9" -> "caf\\xe9"
    with open(quarantine_dir / REASONS_FILE, "a", encoding="utf-8") as reasons:
        reasons.write(line)
        reasons.flush()
        os.fsync(reasons.fileno())


def find_unusable(paths, progress=True):
    """[(path, reason)] for files that would break training; used before `fit` starts."""
    bad = []
    for path in tqdm(paths, desc="Checking images", unit="file", disable=not progress):
        check = check_file(path)
        if not check.usable:
            bad.append((Path(path), check.reason))
    return bad


def _kind(reason):
    """'corrupt or truncated JPEG data (...)' -> 'corrupt or truncated JPEG data'."""
    return reason.split(" (")[0].split(":")[0].split(" of ")[0]


def summary(report):
    """A per-class table of what was kept, moved and noted, then the reasons with counts."""
    classes = sorted(
        {e["file"].split("/")[0] for e in report["quarantined"] + report["notes"]}
        | set(class_names(report["data_dir"]))
    )
    kept = {
        c: sum(1 for _ in (Path(report["data_dir"]) / c).rglob("*") if _.is_file() and not is_clutter(_))
        for c in classes
    }
    lines = [f"{'class':<10}{'in folder':>10}{'moved':>8}{'odd, kept':>11}"]
    for c in classes:
        moved = sum(e["file"].startswith(c + "/") for e in report["quarantined"])
        noted = sum(e["file"].startswith(c + "/") for e in report["notes"])
        lines.append(f"{c:<10}{kept[c]:>10}{moved:>8}{noted:>11}")
    kinds = {}
    for e in report["quarantined"]:
        kinds[_kind(e["reason"])] = kinds.get(_kind(e["reason"]), 0) + 1
    lines += [""] + [f"{n:>4} x {kind}" for kind, n in sorted(kinds.items(), key=lambda kv: -kv[1])]
    return "\n".join(lines)
