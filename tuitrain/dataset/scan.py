"""Finding a concept's images and reading what their headers say.

The scan never decodes pixels (a 10,000-image folder must scan in about a
second), never raises on a bad file (every one becomes a FileProblem with a
reason a user can act on), and remembers its findings in a ScanCache.
"""

from __future__ import annotations

import os
import random
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from PIL import UnidentifiedImageError, features

from tuitrain.dataset.captions import MAX_CAPTION_BYTES, caption_from_filename, decode_caption, read_prompt_file
from tuitrain.dataset.decode import (
    MAX_IMAGE_FILE_BYTES,
    SUPPORTED_FORMATS,
    ImageHeader,
    UnusableImage,
    load_rgb,
    read_header,
)
from tuitrain.dataset.fsutil import (
    FileTooLarge,
    NotRegularFile,
    human_bytes,
    not_regular_reason,
    open_regular,
    read_regular,
)
from tuitrain.dataset.paths import folder_problem, shown_path
from tuitrain.dataset.pillow_warnings import captured
from tuitrain.dataset.scancache import ScanCache
from tuitrain.dataset.spec import ConceptSpec

TRASH_DIR_NAME = ".tuitrain-trash"
MASK_SUFFIX = "-masklabel.png"

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
    | ({".avif"} if features.check("avif") else set())
)
# Images people drop into datasets that Pillow cannot read: reported, not silently ignored.
UNSUPPORTED_EXTENSIONS = (
    frozenset(
        {".avif", ".heic", ".heif", ".jxl", ".psd", ".svg", ".raw", ".cr2", ".cr3", ".nef", ".arw", ".dng", ".jp2"}
    )
    - IMAGE_EXTENSIONS
)

_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_VERIFY_DRAFT = (64, 64)

# What a file that Pillow is not asked to open holds, from its first bytes: said in the
# reason, so "not an image" on a PSD saved as .png reads as what it is.
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"8BPS", 0, "a Photoshop document (PSD)"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", 0, "a JPEG 2000 image"),
    (b"\xffO\xffQ", 0, "a JPEG 2000 codestream"),
    (b"%!PS", 0, "PostScript (EPS)"),
    (b"\xc5\xd0\xd3\xc6", 0, "PostScript (EPS)"),
    (b"%PDF", 0, "a PDF document"),
    (b"ftypheic", 4, "a HEIC image"),
    (b"ftypheix", 4, "a HEIC image"),
    (b"ftypmif1", 4, "a HEIF image"),
    *(() if "AVIF" in SUPPORTED_FORMATS else ((b"ftypavif", 4, "an AVIF image"),)),
    (b"\xff\x0a", 0, "a JPEG XL image"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", 0, "a JPEG XL image"),
    (b"qoif", 0, "a QOI image"),
    (b"DDS ", 0, "a DDS texture"),
    (b"\x00\x00\x01\x00", 0, "an icon (ICO)"),
    (b"\xd7\xcd\xc6\x9a", 0, "a Windows metafile (WMF)"),
    (b" EMF", 40, "a Windows metafile (EMF)"),
)


@dataclass(frozen=True)
class FileProblem:
    """A file the scan could not use, and why (in words meant for the user)."""

    path: Path
    reason: str


@dataclass(frozen=True)
class ImageInfo:
    """One usable image as the scan saw it; width and height are upright (EXIF applied).

    caption is the stripped caption text, or None when the image has no caption
    file (per-image) or its caption is drawn per sample (prompt-file).
    """

    path: Path
    width: int
    height: int
    format: str
    mode: str
    orientation: int = 1
    animated: bool = False
    file_size: int = 0
    mtime_ns: int = 0
    caption: str | None = None
    caption_path: Path | None = None
    notes: tuple[str, ...] = ()
    rel: str = ""  # path relative to the concept folder, '/'-separated

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)


@dataclass
class ConceptScan:
    """Everything the scan found in one concept folder.

    errors make the whole concept unusable (missing folder, missing prompt
    file); warnings are worth a look but do not stop training.
    """

    spec: ConceptSpec
    name: str
    repeats: int
    images: list[ImageInfo] = field(default_factory=list)
    problems: list[FileProblem] = field(default_factory=list)
    missing_captions: list[Path] = field(default_factory=list)
    empty_captions: list[Path] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def caption_for(self, image: ImageInfo, rng: random.Random) -> str:
        """The caption of one sample (prompt files are drawn from at random, per sample)."""
        if self.spec.caption == "prompt-file":
            return rng.choice(self.prompts) if self.prompts else ""
        return image.caption or ""


def is_mask_file(name: str, suffix: str = MASK_SUFFIX) -> bool:
    """Masks sit beside their image as <stem>-masklabel.png (or data.mask_suffix) and are not training images."""
    return name.lower().endswith(suffix.lower())


def scan_concept(spec: ConceptSpec, *, cache_dir: Path | None = None) -> ConceptScan:
    """Scan one concept folder: images with sizes and captions, and every problem found.

    cache_dir=None uses the user cache dir (see scancache.default_cache_dir).
    """
    folder = Path(spec.path)
    result = ConceptScan(spec=spec, name=spec.display_name, repeats=spec.effective_repeats)
    if result.repeats < 0:
        result.errors.append(f"repeats must be 0 or more, got {result.repeats}")
        return result
    if result.repeats == 0:
        result.warnings.append("repeats is 0: this concept is not trained")
    reason = folder_problem(folder)
    if reason and spec.class_images and not os.path.lexists(folder):  # the trainer makes it and draws them
        return result
    if reason:
        result.errors.append(f"concept folder {reason}")
        return result
    _load_captions_source(spec, result)

    files, present = _list_files(folder, spec.recursive, result.problems, spec.mask_suffix)
    cache = ScanCache.for_folder(folder, recursive=spec.recursive, cache_dir=cache_dir)
    with captured():  # the warnings hook once for the whole folder, not once per file
        _scan_files(spec, result, files, present, cache)
    cache.save(prune=True)
    return result


def _scan_files(
    spec: ConceptSpec, result: ConceptScan, files: list[tuple[os.DirEntry[str], str]], present: set[str],
    cache: ScanCache,
) -> None:
    for entry, rel in files:
        path = Path(entry.path)
        suffix = os.path.splitext(entry.name)[1].lower()
        if suffix in UNSUPPORTED_EXTENSIONS:
            result.problems.append(FileProblem(path, f"unsupported format ({suffix}): convert it to PNG or JPEG"))
            continue
        found = _scan_file(entry, path, rel, cache)
        if isinstance(found, FileProblem):
            result.problems.append(found)
            continue
        header, size, mtime_ns = found
        result.images.append(_with_caption(spec, result, path, rel, header, size, mtime_ns, present))


def _load_captions_source(spec: ConceptSpec, result: ConceptScan) -> None:
    if spec.caption == "prompt-file":
        path = spec.prompt_file_path
        try:
            result.prompts = read_prompt_file(path)
        except FileNotFoundError:
            result.errors.append(f"prompt file not found: {path}")
        except (OSError, ValueError) as error:  # ValueError: a NUL in the path
            why = getattr(error, "strerror", None) or error
            result.errors.append(f"prompt file unreadable: {shown_path(path)}: {why}")
        else:
            if not result.prompts:
                result.errors.append(f"prompt file has no prompts: {path}")
    elif spec.caption == "instance" and not spec.instance_prompt.strip():
        result.warnings.append("caption is 'instance' but instance_prompt is empty: every caption is empty")


def _list_files(
    folder: Path, recursive: bool, problems: list[FileProblem], mask_suffix: str = MASK_SUFFIX
) -> tuple[list[tuple[os.DirEntry[str], str]], set[str]]:
    """Candidate image entries (with their path relative to `folder`) and every file path seen.

    Hidden names (including the trash folder) and masks are skipped; symlinked
    folders are not followed, so a link loop cannot hang the scan.
    """
    images: list[tuple[os.DirEntry[str], str]] = []
    present: set[str] = set()
    pending: list[tuple[str, str]] = [(str(folder), "")]
    while pending:
        directory, prefix = pending.pop()
        try:
            with os.scandir(directory) as iterator:
                entries = list(iterator)
        except OSError as error:
            problems.append(FileProblem(Path(directory), f"cannot list folder: {error.strerror or error}"))
            continue
        for entry in entries:
            if entry.name.startswith("."):  # hidden files, .tuitrain-trash, editors' temp files
                continue
            if entry.is_dir(follow_symlinks=False):
                if recursive:
                    pending.append((entry.path, f"{prefix}{entry.name}/"))
                continue
            present.add(entry.path)
            suffix = os.path.splitext(entry.name)[1].lower()
            candidate = suffix in IMAGE_EXTENSIONS or suffix in UNSUPPORTED_EXTENSIONS
            if candidate and not is_mask_file(entry.name, mask_suffix):
                images.append((entry, prefix + entry.name))
    images.sort(key=lambda item: item[1])
    return images, present


def _scan_file(
    entry: os.DirEntry[str], path: Path, rel: str, cache: ScanCache
) -> tuple[ImageHeader, int, int] | FileProblem:
    """Header of one file, from the cache when size and mtime match.

    Only content-caused problems are cached; permission and link problems are
    looked at again on every scan, because fixing them does not touch mtime.
    """
    try:
        info = entry.stat()  # follows symlinks
    except FileNotFoundError:
        if entry.is_symlink():
            return FileProblem(path, f"broken symlink (points to {os.readlink(entry.path)}, which does not exist)")
        return FileProblem(path, "disappeared during the scan")
    except OSError as error:
        return FileProblem(path, f"cannot stat: {error.strerror or error}")
    if not stat.S_ISREG(info.st_mode):
        return FileProblem(path, not_regular_reason(info.st_mode))
    if info.st_size == 0:
        return FileProblem(path, "empty file (0 bytes)")
    if info.st_size > MAX_IMAGE_FILE_BYTES:
        limit = human_bytes(MAX_IMAGE_FILE_BYTES)
        return FileProblem(path, f"too large: {human_bytes(info.st_size)} (image files are read up to {limit})")

    cached = cache.lookup(rel, info.st_size, info.st_mtime_ns)
    if cached is not None:
        try:
            if "header" in cached:
                return ImageHeader.from_record(cached["header"]), info.st_size, info.st_mtime_ns
            if "problem" in cached:
                return FileProblem(path, str(cached["problem"]))
        except TypeError:
            pass  # a cache record of the wrong shape: read the file again

    try:
        with open_regular(path, max_bytes=MAX_IMAGE_FILE_BYTES) as handle:
            header = read_header(handle)
            complete = _ends_cleanly(handle, header.format, info.st_size)
    except PermissionError:
        return FileProblem(path, "permission denied")
    except (NotRegularFile, FileTooLarge) as error:  # swapped since the stat: not cached
        return FileProblem(path, str(error))
    except UnusableImage as error:
        return _cached_problem(cache, rel, info, path, str(error))
    except UnidentifiedImageError:
        return _cached_problem(cache, rel, info, path, _not_an_image_reason(path))
    except OSError as error:
        if error.errno is not None:  # an I/O error from the OS, not a Pillow parse error
            return FileProblem(path, f"cannot read: {error.strerror or error}")
        return _cached_problem(cache, rel, info, path, f"cannot read header: {error}")
    except Exception as error:  # Pillow plugins raise many types on malformed headers
        return _cached_problem(cache, rel, info, path, f"cannot read header: {type(error).__name__}: {error}")

    if not complete:
        # Header fine but the end is missing or odd (phones append data after JPEGs):
        # a small decode tells a truncated file from a merely unusual one.
        try:
            load_rgb(path, draft_size=_VERIFY_DRAFT)
        except PermissionError:
            return FileProblem(path, "permission denied")
        except Exception as error:
            return _cached_problem(cache, rel, info, path, f"truncated or corrupt: {error}")
    cache.store(rel, info.st_size, info.st_mtime_ns, header=header.to_record())
    return header, info.st_size, info.st_mtime_ns


def _cached_problem(cache: ScanCache, rel: str, info: os.stat_result, path: Path, reason: str) -> FileProblem:
    cache.store(rel, info.st_size, info.st_mtime_ns, problem=reason)
    return FileProblem(path, reason)


def _ends_cleanly(handle: BinaryIO, image_format: str, size: int) -> bool:
    """Cheap truncation check from the file's last bytes, for the formats that have an end marker."""
    if image_format in ("JPEG", "MPO"):
        handle.seek(max(0, size - 2))
        return handle.read(2) == b"\xff\xd9"
    if image_format == "PNG":
        handle.seek(max(0, size - len(_PNG_END)))
        return handle.read(len(_PNG_END)) == _PNG_END
    if image_format == "GIF":
        handle.seek(max(0, size - 1))
        return handle.read(1) == b";"
    if image_format == "WEBP":
        handle.seek(4)
        riff_size = int.from_bytes(handle.read(4), "little")
        return riff_size + 8 <= size
    return True


def _not_an_image_reason(path: Path) -> str:
    """Why Pillow (asked for the supported formats only) found no image: what the file holds, when we can tell."""
    try:
        with open_regular(path) as handle:
            start = handle.read(512)
    except OSError:
        start = b""
    for signature, offset, what in _SIGNATURES:
        if start[offset : offset + len(signature)] == signature:
            return f"unsupported format: the file holds {what}; convert it to PNG or JPEG"
    try:
        text = start.decode("utf-8")
    except UnicodeDecodeError:
        return "not an image (unknown, unsupported or damaged format)"
    if text.lstrip().startswith(("<svg", "<?xml")) and "<svg" in text:
        return "unsupported format: the file holds an SVG drawing; convert it to PNG or JPEG"
    if all(char.isprintable() or char.isspace() for char in text):
        return "not an image: the file holds text"
    return "not an image (unknown, unsupported or damaged format)"


def _with_caption(
    spec: ConceptSpec,
    result: ConceptScan,
    path: Path,
    rel: str,
    header: ImageHeader,
    size: int,
    mtime_ns: int,
    present: set[str],
) -> ImageInfo:
    caption: str | None = None
    caption_file: Path | None = None
    notes = header.notes()
    if spec.caption == "per-image":
        # Plain strings here: building Paths costs more than reading a caption (10,000 of them add up).
        candidate = os.path.splitext(os.fspath(path))[0] + spec.caption_extension
        if candidate in present:
            try:
                caption = decode_caption(read_regular(candidate, MAX_CAPTION_BYTES)).strip()
                caption_file = path.with_name(os.path.basename(candidate))
            except OSError as error:  # not a regular file (a FIFO, /dev/zero), too large, unreadable
                notes += (f"caption {os.path.basename(candidate)} not read: {error.strerror or error}",)
        if caption is None:
            result.missing_captions.append(path)
        elif not caption:
            result.empty_captions.append(path)
    elif spec.caption == "filename":
        caption = caption_from_filename(path)
        if not caption:
            result.empty_captions.append(path)
    elif spec.caption == "instance":
        caption = spec.instance_prompt.strip()
    return ImageInfo(
        path=path,
        width=header.width,
        height=header.height,
        format=header.format,
        mode=header.mode,
        orientation=header.orientation,
        animated=header.animated,
        file_size=size,
        mtime_ns=mtime_ns,
        caption=caption,
        caption_path=caption_file,
        notes=notes,
        rel=rel,
    )
