"""Captions: reading and safely editing caption files, and the per-sample caption options.

Caption edits come from the TUI while a user curates, so a write must never
leave a half-written file and must not churn the file's newline style (which
would show up as noise in the user's own version control).
"""

from __future__ import annotations

import os
import random
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from tuitrain.dataset.fsutil import atomic_write_bytes, open_regular, read_regular

# Captions are a few hundred bytes (T5 reads 512 tokens); prompt files a few thousand lines.
# Bigger files are someone else's data (or /dev/zero): refused, not read into memory.
MAX_CAPTION_BYTES = 1 << 20
MAX_PROMPT_FILE_BYTES = 16 << 20

_BOM = b"\xef\xbb\xbf"
_LEADING_NUMBER = re.compile(r"^\d+[\s_.-]+")
_TRAILING_NUMBER = re.compile(r"(?:[\s_.-]+\d+|\s*\(\d+\))$")


def caption_path(image_path: Path, extension: str = ".txt") -> Path:
    """The caption file of an image: same folder, same stem ("a.b.png" -> "a.b.txt")."""
    image_path = Path(image_path)
    return image_path.with_name(image_path.stem + extension)


def decode_caption(data: bytes) -> str:
    """Caption bytes as text with '\\n' newlines; a UTF-8 BOM is dropped and bad bytes replaced."""
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    text = data.decode("utf-8", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_caption(image_path: Path, extension: str = ".txt") -> str | None:
    """The raw caption text (newlines as '\\n'), or None when the image has no caption file.

    A caption that is not a regular file (a FIFO, a link to a device) or is over
    MAX_CAPTION_BYTES reads as None too, without blocking: the scan's note on the image
    says why, and write_caption refuses to replace it.
    """
    try:
        data = read_regular(caption_path(image_path, extension), MAX_CAPTION_BYTES)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno is None:  # NotRegularFile, FileTooLarge
            return None
        raise
    return decode_caption(data)


def _newline_style(data: bytes) -> str:
    if b"\r\n" in data:
        return "\r\n"
    if b"\r" in data:
        return "\r"
    return "\n"


def write_caption(image_path: Path, text: str, extension: str = ".txt") -> Path:
    """Write a caption atomically (temp file + rename), as UTF-8.

    An existing file keeps its newline style (LF, CRLF or CR), its BOM, its
    trailing newline and its permissions; a new file gets LF and the image's
    permissions (without execute bits). Returns the caption file's path.
    """
    path = caption_path(image_path, extension)
    if path.is_symlink():
        path = path.resolve()  # edit the linked file, do not replace the link
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        with open_regular(path, max_bytes=MAX_CAPTION_BYTES) as handle:
            old: bytes | None = handle.read()
            mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
    except FileNotFoundError:
        old = None
        mode = stat.S_IMODE(os.stat(image_path).st_mode) & 0o666
    except OSError as error:
        if error.errno is None:  # a FIFO, a device, a huge file: say which, replace nothing
            raise OSError(f"{path.name}: {error}") from None
        raise
    newline = "\n"
    prefix = b""
    if old is not None:
        newline = _newline_style(old)
        prefix = _BOM if old.startswith(_BOM) else b""
        if old.endswith((b"\n", b"\r")) and not text.endswith("\n"):
            text += "\n"
    data = prefix + text.replace("\n", newline).encode("utf-8")
    atomic_write_bytes(path, data, mode=mode)
    return path


def caption_from_filename(image_path: Path) -> str:
    """Caption from a file name: extension and numbering stripped, '_' as spaces.

    "001_red_dress.png", "red_dress-12.png" and "red dress (2).png" all give "red dress".
    """
    stem = Path(image_path).stem
    stem = _LEADING_NUMBER.sub("", stem)
    while True:
        shorter = _TRAILING_NUMBER.sub("", stem)
        if shorter == stem:
            break
        stem = shorter
    if stem.isdigit():  # a name that is only a number says nothing
        stem = ""
    return " ".join(stem.replace("_", " ").split())


def read_prompt_file(path: Path) -> list[str]:
    """Prompts of a prompt file: one per line, blank lines ignored.

    Only a regular file of at most MAX_PROMPT_FILE_BYTES is read (OSError otherwise):
    prompt_file = "/dev/zero" must be an error, not a scan that grows forever.
    """
    text = decode_caption(read_regular(path, MAX_PROMPT_FILE_BYTES))
    return [line.strip() for line in text.split("\n") if line.strip()]


@dataclass(frozen=True)
class CaptionOptions:
    """Per-sample caption augmentation, applied by the trainer each time a sample is drawn."""

    shuffle_tags: bool = False
    keep_tags: int = 0  # leading tags that stay in place (e.g. the trigger word)
    dropout: float = 0.0  # probability of an empty caption (helps unconditional guidance)
    separator: str = ","


def shuffle_tags(caption: str, keep: int, rng: random.Random, separator: str = ",") -> str:
    """Shuffle comma-separated tags, keeping the first `keep` in place."""
    tags = [tag.strip() for tag in caption.split(separator) if tag.strip()]
    head, tail = tags[:keep], tags[keep:]
    rng.shuffle(tail)
    return f"{separator} ".join(head + tail)


def apply_caption_options(caption: str, options: CaptionOptions, rng: random.Random) -> str:
    """The caption one training sample sees: maybe dropped, maybe with shuffled tags."""
    if options.dropout > 0 and rng.random() < options.dropout:
        return ""
    if options.shuffle_tags:
        return shuffle_tags(caption, options.keep_tags, rng, options.separator)
    return caption
