"""The layout of one run directory. Every path a run has is named here, once.

    <workspace>/<run>/     owner-only (0700), like everything the trainer writes in it
      config.toml      the config this run trains with (a snapshot)
      events.jsonl     append-only event log (tuitrain.runs.events)
      trainer.log      the trainer's stdout/stderr, and its libraries' warnings tagged (runs/library_output.py)
      trainer.pid      which process is the live trainer (tuitrain.runs.pidfile)
      control.sock     the live trainer's command socket (owner-only)
      samples/         sample images and their prompts
      checkpoints/     resumable backups
      output/          the usable .safetensors files
      cache/           cached latents and text embeddings
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def valid_run_name(name: str) -> bool:
    """Run names become folder names: letters, digits, '.', '_', '-'; no leading dot."""
    return bool(_NAME.match(name))


# ':*?"<>|' are legal on Linux, but the files are copied to Windows machines running ComfyUI/A1111.
_NOT_IN_FILE_NAMES = '/\\:*?"<>|'
OUTPUT_NAME_MAX_BYTES = 150  # leaves room for "-step0001234.safetensors" and a hidden temp name in 255


def output_name_problem(name: str) -> str:
    """Why `name` cannot be the stem of files in output/ ('' when it can, and for '': the run's name).

    It must stay a plain file name inside the run: no path, no hidden file, nothing a
    file system (or a Windows machine the file is copied to) refuses.
    """
    if not name:
        return ""
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "must be a plain file name, without control characters (NUL, newline, tab)"
    if "/" in name or "\\" in name or name in (".", ".."):
        return "must be a plain file name like 'fae-v2', not a path (no '/' or '\\', not '.' or '..')"
    if name.startswith("."):
        return "must not start with '.' (that makes hidden files that loaders do not list)"
    bad = sorted({c for c in name if c in _NOT_IN_FILE_NAMES})
    if bad:
        return f"must not contain {' '.join(bad)} (Windows cannot name a file with them)"
    if name != name.strip():
        return "must not start or end with a space"
    size = len(name.encode("utf-8", errors="surrogatepass"))
    if size > OUTPUT_NAME_MAX_BYTES:
        return f"is too long: {size} bytes (UTF-8), at most {OUTPUT_NAME_MAX_BYTES}"
    return ""


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def events(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def log(self) -> Path:
        return self.root / "trainer.log"

    @property
    def pidfile(self) -> Path:
        return self.root / "trainer.pid"

    @property
    def socket(self) -> Path:
        # AF_UNIX paths are limited to ~107 bytes: connect with a path relative to
        # the run directory when the absolute one is longer.
        return self.root / "control.sock"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def output(self) -> Path:
        return self.root / "output"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    def is_run(self) -> bool:
        return self.config.is_file()

    def create_folders(self) -> None:
        """The run folder and its sub-folders, owner-only (0700): see tuitrain.runs.permissions."""
        from tuitrain.runs.permissions import make_run_folders

        make_run_folders(self)
