"""Small file-system helpers shared by captions, the scan, the scan cache and the trash.

They exist so that every write the dataset engine makes to a user's folder is
either complete or absent after a crash, and every read is of a regular file of
bounded size: a caption linked to /dev/zero or a FIFO named x.txt must not hang
or flood a scan.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO


def fsync_dir(path: Path) -> None:
    """Make a rename or create inside `path` durable (a no-op where dirs cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):  # some file systems (and Windows) refuse fsync on a directory
            os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, *, mode: int | None = None, durable: bool = True) -> None:
    """Write `data` to `path` via a temp file in the same folder and a rename.

    Readers see the old file or the new one, never a half-written one. `mode`
    sets the permission bits (e.g. to keep those of the file being replaced).
    durable=False skips the fsyncs, for files whose loss costs only time (the
    scan cache: two fsyncs per concept were most of a cold 2,000-concept check).
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tuitrain-tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    if durable:
        fsync_dir(path.parent)


def move_no_overwrite(src: Path, dst: Path) -> None:
    """Rename `src` to `dst`, raising FileExistsError instead of replacing `dst`.

    os.rename silently replaces an existing file on POSIX, so we link then
    unlink: link fails if `dst` exists. File systems without hard links fall
    back to check-then-rename. A crash between link and unlink leaves the file
    under both names, which the trash journal's recovery understands.
    """
    try:
        os.link(src, dst, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "destination exists", str(dst)) from None
        os.rename(src, dst)
        return
    os.unlink(src)


class NotRegularFile(OSError):
    """A path that is a FIFO, a device or a socket (or a link to one): reading it could block or never end."""


class FileTooLarge(OSError):
    """A regular file bigger than what the caller reads of that kind of file."""


_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a folder"),
)


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words ("a FIFO (named pipe)")."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def not_regular_reason(mode: int) -> str:
    return f"not a regular file: it is {file_kind(mode)}"


def _nonblocking(path: str, flags: int) -> int:
    # O_NONBLOCK: opening a FIFO for reading returns at once instead of waiting for a writer.
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


def open_regular(path: Path | str, *, max_bytes: int | None = None) -> BinaryIO:
    """Open `path` for reading only if it is a regular file (symlinks followed), at most `max_bytes` long.

    The type is checked on the opened descriptor, so a file swapped for a FIFO between a
    stat and the open cannot block us. Raises NotRegularFile or FileTooLarge (both OSError,
    message without the path: callers name the file), or what open() raises.
    """
    handle = open(path, "rb", opener=_nonblocking)  # noqa: SIM115 - returned to the caller
    try:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(not_regular_reason(info.st_mode))
        if max_bytes is not None and info.st_size > max_bytes:
            raise FileTooLarge(f"too large: {human_bytes(info.st_size)} (at most {human_bytes(max_bytes)} is read)")
    except BaseException:
        handle.close()
        raise
    return handle


def read_regular(path: Path | str, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most `max_bytes` (see open_regular); one that grows past it is refused too."""
    with open_regular(path, max_bytes=max_bytes) as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise FileTooLarge(f"too large: over {human_bytes(max_bytes)} (at most {human_bytes(max_bytes)} is read)")
    return data


def human_bytes(size: int) -> str:
    """1536 -> '1.5 KiB': sizes in messages people read."""
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}".replace(".0 ", " ")
        value /= 1024
    return f"{size} bytes"
