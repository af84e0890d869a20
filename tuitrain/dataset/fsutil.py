"""Small file-system helpers shared by captions, the scan cache and the trash.

They exist so that every write the dataset engine makes to a user's folder is
either complete or absent after a crash.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path


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


def atomic_write_bytes(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write `data` to `path` via a temp file in the same folder and a rename.

    Readers see the old file or the new one, never a half-written one. `mode`
    sets the permission bits (e.g. to keep those of the file being replaced).
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tuitrain-tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
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
