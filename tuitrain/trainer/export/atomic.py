"""Writes that never leave a half-written file where a user (or ComfyUI) looks.

The file is written to a temporary name in the same folder (so the final rename
stays on one filesystem), fsynced, renamed over the target with os.replace, and the
folder is fsynced so the rename itself survives a power cut. On any failure the
temporary file is removed and the target is left exactly as it was.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

TEMP_SUFFIX = ".tmp"


def _temp_name(path: Path) -> Path:
    # Hidden and clearly temporary, so a crash leftover is never mistaken for a LoRA.
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def fsync_path(path: Path) -> None:
    """Flush a written file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: Path) -> None:
    """Flush a folder entry (a rename) to disk; not possible on Windows, where it is skipped."""
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write; on clean exit it becomes `path`, on error it vanishes."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_name(target)
    # Created here with the umask's usual permissions (mkstemp would make it 0600).
    os.close(os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    mode = os.stat(temp).st_mode & 0o777
    try:
        yield temp
        os.chmod(temp, mode)  # a writer that recreates the file (safetensors' save_file does) leaves it 0600
        fsync_path(temp)
        os.replace(temp, target)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    fsync_dir(target.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes | Callable[[BinaryIO], None]) -> Path:
    """Write `data` (bytes, or a function writing to a binary file) to `path` atomically."""
    with atomic_path(path) as temp:
        with open(temp, "wb") as handle:
            if callable(data):
                data(handle)
            else:
                handle.write(data)
    return Path(path)


def atomic_save_safetensors(
    tensors: Mapping[str, object], path: str | os.PathLike[str], metadata: Mapping[str, str] | None = None
) -> Path:
    """safetensors.torch.save_file, atomically. Metadata values must be strings (the format's rule)."""
    from safetensors.torch import save_file

    meta = dict(metadata or {})
    bad = [key for key, value in meta.items() if not isinstance(value, str)]
    if bad:
        raise TypeError(f"safetensors metadata values must be strings; not for {bad}")
    with atomic_path(path) as temp:
        save_file(dict(tensors), str(temp), metadata=meta)  # type: ignore[arg-type]
    return Path(path)
