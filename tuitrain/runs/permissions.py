"""Owner-only run folders: a run holds the user's data paths, prompts, samples and weights.

Rented GPU boxes are often shared (several users, or containers that share a
volume), so a run folder is 0700 and the trainer writes with umask 077. Folders
made before this rule are tightened the next time tuitrain touches them. The
workspace is made 0700 only when tuitrain creates it: an existing folder the user
chose (their home, a shared /workspace volume) keeps its own mode.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import BinaryIO

from tuitrain.runs.layout import RunDir

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
OWNER_ONLY_UMASK = 0o077


def tighten(path: Path) -> None:
    """Drop group and other permissions from a file or folder of ours; silent where it cannot.

    Only what the current user owns is changed (chmod would fail otherwise), and a
    file system without Unix modes is left as it is.
    """
    with contextlib.suppress(OSError):
        st = os.stat(path)
        if st.st_mode & 0o077 and st.st_uid == os.getuid():
            os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o077)


def make_private_dir(path: Path) -> None:
    """Create `path` as 0700 (missing parents get the usual mode), or tighten it if it exists."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=PRIVATE_DIR)
    tighten(path)


def make_run_folders(run: RunDir) -> None:
    """The run folder and its sub-folders, all 0700; a workspace made on the way is 0700 too."""
    if not run.root.parent.exists():
        make_private_dir(run.root.parent)
    make_private_dir(run.root)
    for folder in (run.samples, run.checkpoints, run.output, run.cache):
        make_private_dir(folder)


def open_run_log(run: RunDir) -> BinaryIO:
    """trainer.log opened for appending, owner-only (an existing log that was 0644 is tightened).

    For the detached trainer's stdout/stderr: `open(run.log, "ab")` would follow the umask.
    """
    fd = os.open(run.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE)
    with contextlib.suppress(OSError):
        os.fchmod(fd, PRIVATE_FILE)
    return os.fdopen(fd, "ab")


def use_owner_only_umask() -> int:
    """Make every file and folder this process creates from now on owner-only; returns the old umask."""
    return os.umask(OWNER_ONLY_UMASK)
