"""Image files of a training set: sizes from headers, truncation, and the start-up check.

Training reads an image only when one of its chips comes up, possibly hours in; a wrong size in
the annotations or a broken file would then stop the run after its last checkpoint. So
:func:`check_training_images` reads every training image's header once before training (about
0.1 ms per file: header, EXIF orientation and the last bytes; no decode) and fails with every
problem named, or, when asked, drops unreadable images. The result is cached per dataset (keyed
by the file list, sizes, mtimes and annotated sizes), so restarts of a large set skip the reads.

Truncated files: libjpeg decodes a JPEG cut short without an error (the missing part comes out
grey, with a warning that names no file). A complete JPEG has an end-of-image marker (FF D9)
after the image's scan data; :func:`jpeg_is_complete` checks that on the bytes in memory, and the
start-up check on the file's last bytes (the whole file only when they are not the marker).
"""
import hashlib
import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

__all__ = [
    "ImageSizeMismatchError",
    "TrainingImageCheck",
    "check_training_images",
    "file_is_complete",
    "image_file_size",
    "image_ref",
    "jpeg_is_complete",
]

logger = logging.getLogger(__name__)

_EXIF_ORIENTATION = 274
_JPEG_SOI = b"\xff\xd8"
_JPEG_EOI = b"\xff\xd9"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"IEND\xaeB`\x82"
# Loops over at least this many images show a progress bar (as the analysis tools).
_PROGRESS_MIN_IMAGES = 300
# Datasets of at least this many images cache their check result (smaller ones check in < 0.1 s).
CACHE_MIN_IMAGES = 1000
_CACHE_VERSION = 1


def image_ref(dataset: str, image_id, file_name: str) -> str:
    """How errors name an image: dataset, image id and file."""
    return f"dataset '{dataset}', image_id {image_id!r} ({file_name})"


def _upright_size(im: Image.Image) -> Tuple[int, int]:
    w, h = im.size
    # EXIF orientations 5-8 are stored rotated by 90 degrees (Detectron2 and OpenCV read them upright)
    return (h, w) if im.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8) else (w, h)


def image_file_size(file_name: str) -> Tuple[int, int]:
    """(width, height) of the upright image, from the file header (no decode). Raises OSError."""
    with Image.open(file_name) as im:
        return _upright_size(im)


def jpeg_is_complete(data: bytes) -> bool:
    """Whether JPEG bytes hold an end-of-image marker after the main image's first scan header.

    Segments before the scan are skipped by their lengths, so an EXIF thumbnail's own marker does
    not count; inside scan data FF D9 cannot occur (0xFF bytes are stuffed), so a file cut short
    has none. Data appended after the marker (some cameras do) is fine.
    """
    if data.endswith(_JPEG_EOI):
        return True
    pos, n = 2, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return False
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
        elif marker == 0xDA:  # start of scan: the entropy-coded data follows
            return data.find(_JPEG_EOI, pos) >= 0
        elif marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
        else:
            pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return False


def _png_is_complete(data: bytes) -> bool:
    """Whether PNG bytes reach their IEND chunk (chunks are walked by their lengths)."""
    pos, n = len(_PNG_SIGNATURE), len(data)
    while pos + 8 <= n:
        length = int.from_bytes(data[pos:pos + 4], "big")
        if data[pos + 4:pos + 8] == b"IEND":
            return True
        pos += 12 + length  # length, type, data, CRC
    return False


def file_is_complete(f, head: bytes) -> bool:
    """Whether the open binary file ``f`` (JPEG or PNG, by its first bytes ``head``) is not cut short.

    Reads the last 16 bytes; the whole file only when they do not end the format. Other formats:
    True (their decoders report truncation themselves).
    """
    if head.startswith(_JPEG_SOI):
        end, check = _JPEG_EOI, jpeg_is_complete
    elif head.startswith(_PNG_SIGNATURE):
        end, check = _PNG_IEND, _png_is_complete
    else:
        return True
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - 16))
    if f.read().rstrip(b"\x00").endswith(end):
        return True
    f.seek(0)
    return check(f.read())


class ImageSizeMismatchError(ValueError):
    """The image file's size differs from the one in the annotations."""


@dataclass(frozen=True)
class _Problem:
    kind: str  # "missing", "unreadable" (not an image, or truncated), "size" (header vs annotation)
    index: int  # position in the dataset's list of dicts
    message: str


def _check_file(record: dict, index: int, ref: str) -> Optional[_Problem]:
    file_name = record["file_name"]
    try:
        with open(file_name, "rb") as f:
            head = f.read(8)
            f.seek(0)
            try:
                with Image.open(f) as im:
                    header_wh = _upright_size(im)
            except UnidentifiedImageError:
                return _Problem("unreadable", index, f"{ref}: not an image (no format recognised in its header)")
            except (OSError, ValueError) as e:  # PIL: broken header fields
                return _Problem("unreadable", index, f"{ref}: not a readable image ({e})")
            if not file_is_complete(f, head):
                return _Problem("unreadable", index, f"{ref}: the file is truncated (cut short; it would decode "
                                                     "partly grey)")
    except FileNotFoundError:
        return _Problem("missing", index, f"{ref}: the file does not exist")
    except OSError as e:
        return _Problem("unreadable", index, f"{ref}: cannot read the file ({e})")
    if "width" in record and "height" in record:
        annotated = (int(record["width"]), int(record["height"]))
        if header_wh != annotated:
            return _Problem("size", index, f"{ref}: the file header says {header_wh[0]}x{header_wh[1]} px but the "
                                           f"annotation says {annotated[0]}x{annotated[1]}")
    return None


def _cache_key(dataset: str, dicts: List[dict]) -> str:
    """Digest of the file list, file sizes, mtimes and annotated sizes (one stat per file)."""
    digest = hashlib.sha1(f"{_CACHE_VERSION}\0{dataset}\0{len(dicts)}".encode())
    for record in dicts:
        try:
            st = os.stat(record["file_name"])
            stamp = f"{st.st_size}\0{st.st_mtime_ns}"
        except OSError:
            stamp = "-"
        digest.update(f"\0{record['file_name']}\0{stamp}\0{record.get('width')}\0{record.get('height')}".encode())
    return digest.hexdigest()


def _cache_path(cache_dir: str, dataset: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", dataset)
    return os.path.join(cache_dir, f"{safe}.json")


def _read_cache(path: str, key: str) -> Optional[List[_Problem]]:
    try:
        with open(path) as f:
            cached = json.load(f)
    except (OSError, ValueError):
        return None
    if cached.get("key") != key:
        return None
    return [_Problem(kind, int(i), m) for i, kind, m in cached.get("problems", [])]


def _write_cache(path: str, key: str, dataset: str, count: int, problems: List[_Problem]) -> None:
    """Atomically (temporary file + rename), so that concurrent readers see all of it or nothing."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump({"key": key, "dataset": dataset, "images": count,
                       "problems": [[p.index, p.kind, p.message] for p in problems]}, f)
        os.replace(tmp, path)
    except OSError as e:  # a read-only output directory only costs the next start-up the reads
        logger.warning(f"Cannot write the image check cache {path}: {e}")


@dataclass
class TrainingImageCheck:
    """Outcome of :func:`check_training_images`."""

    datasets: List[Tuple[str, List[dict]]]  # the input, without skipped images
    skipped: List[str]  # one line per skipped image: what is wrong with which image
    cached: List[str]  # names of the datasets whose result came from the cache


def check_training_images(
    datasets: Sequence[Tuple[str, List[dict]]],
    skip_unreadable: bool = False,
    cache_dir: Optional[str] = None,
    main_process: bool = True,
    cache_min_images: int = CACHE_MIN_IMAGES,
) -> TrainingImageCheck:
    """Read the header of every image once: the file exists, is an image, is not cut short, and
    its (upright) size is the annotated one.

    Args:
        datasets: ``[(dataset_name, list_of_dataset_dicts), ...]``.
        skip_unreadable: drop missing, unreadable and truncated images (and log them) instead of
            failing (``SNIPER.TRAIN.SKIP_UNREADABLE_IMAGES``). Size mismatches always fail.
        cache_dir: where to keep one result file per dataset (datasets of at least
            ``cache_min_images`` images); None: no cache.
        main_process: False on all but one process of a distributed run: those only read the
            cache, and show no progress bar.

    Raises:
        FileNotFoundError (some file missing), OSError (unreadable or truncated) or
        :class:`ImageSizeMismatchError`, listing every problem found.
    """
    kept, skipped, cached, problems = [], [], [], []
    for dataset, dicts in datasets:
        key = path = found = None
        if cache_dir is not None and len(dicts) >= cache_min_images:
            key = _cache_key(dataset, dicts)
            path = _cache_path(cache_dir, dataset)
            found = _read_cache(path, key)
        if found is not None:
            cached.append(dataset)
        else:
            found = []
            for i, record in enumerate(tqdm(
                dicts, desc=f"checking the images of {dataset}", unit="image",
                disable=len(dicts) < _PROGRESS_MIN_IMAGES or not main_process, leave=False,
            )):
                problem = _check_file(record, i, image_ref(dataset, record.get("image_id"), record["file_name"]))
                if problem is not None:
                    found.append(problem)
            if key is not None and main_process and all(p.kind != "size" for p in found):
                _write_cache(path, key, dataset, len(dicts), found)
        fatal = [p for p in found if p.kind == "size" or not skip_unreadable]
        if fatal:
            problems.append((dataset, fatal))
            continue
        drop = {p.index for p in found}
        skipped += [p.message for p in found]
        kept.append((dataset, [r for i, r in enumerate(dicts) if i not in drop] if drop else dicts))
    if problems:
        kinds = {p.kind for _, found in problems for p in found}
        error = ImageSizeMismatchError
        if kinds & {"missing", "unreadable"}:
            error = FileNotFoundError if "missing" in kinds else OSError
        raise error(_problems_message(problems))
    if skipped:
        shown = "\n  ".join(skipped[:10])
        logger.warning(
            f"SNIPER.TRAIN.SKIP_UNREADABLE_IMAGES: {len(skipped)} training image(s) skipped (missing, unreadable or "
            f"truncated), e.g.:\n  {shown}"
        )
    return TrainingImageCheck(kept, skipped, cached)


def _problems_message(problems) -> str:
    lines, kinds = [], set()
    for dataset, found in problems:
        for kind in ("missing", "unreadable", "size"):
            of_kind = [p for p in found if p.kind == kind]
            kinds.update(p.kind for p in of_kind)
            lines += [f"  {p.message}" for p in of_kind[:10]]
            if len(of_kind) > 10:
                lines.append(f"  ... and {len(of_kind) - 10} more {kind} in dataset '{dataset}'")
    what = []
    if kinds & {"missing", "unreadable"}:
        what.append(
            "Missing, unreadable or truncated files: fix the image root or file names, re-create the files, or "
            "remove those images from the dataset; SNIPER.TRAIN.SKIP_UNREADABLE_IMAGES True trains without them."
        )
    if "size" in kinds:
        what.append(
            "Size mismatches: fix width/height (and the boxes, if they were drawn on an image of the other size) in "
            "the annotations, or the files; sniper_d2.data.register_coco_with_sizes takes missing sizes from the files."
        )
    count = sum(len(found) for _, found in problems)
    return (
        f"{count} training image(s) would fail when their chips are read (checked before training):\n"
        + "\n".join(lines + what)
    )
