"""Remembering what we learnt about each file, so rescanning an unchanged folder is near-instant.

Entries are keyed on the file's path (relative to the concept folder), size and
mtime: any change to either makes the entry stale. The cache lives in the
user's cache dir, not the dataset, so read-only or shared datasets work and
the dataset folder stays exactly as the user left it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from tuitrain.dataset.fsutil import atomic_write_bytes

# Bump when the meaning of a cached record changes; old caches are then ignored.
CACHE_VERSION = 3  # 2: headers of unsupported formats and 0x0 sizes are no longer records; decode warnings
# 3: dhash is 128 bits (rows and columns)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tuitrain" / "scan"


class ScanCache:
    """Per-folder cache of scan (and hash) records; a missing or corrupt file is just empty."""

    def __init__(self, file: Path, folder: Path) -> None:
        self.file = file
        self.folder = str(folder)
        self._entries: dict[str, dict[str, Any]] = {}
        self._seen: set[str] = set()
        self._dirty = False
        self._load()

    @classmethod
    def for_folder(cls, folder: Path, *, recursive: bool, cache_dir: Path | None) -> ScanCache:
        folder = Path(os.path.abspath(folder))
        key = hashlib.sha256(f"{folder}\0{recursive}".encode("utf-8", "surrogateescape")).hexdigest()[:32]
        return cls((cache_dir or default_cache_dir()) / f"{key}.json", folder)

    def _load(self) -> None:
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(data, dict) and data.get("version") == CACHE_VERSION and data.get("folder") == self.folder:
            entries = data.get("entries")
            if isinstance(entries, dict):
                self._entries = entries

    def lookup(self, rel: str, size: int, mtime_ns: int) -> dict[str, Any] | None:
        """The cached record of a file, or None if there is none or the file changed since."""
        self._seen.add(rel)
        entry = self._entries.get(rel)
        if entry is None or entry.get("size") != size or entry.get("mtime_ns") != mtime_ns:
            return None
        return entry

    def store(self, rel: str, size: int, mtime_ns: int, **record: Any) -> None:
        """Add fields to a file's record (a changed file starts a fresh record)."""
        self._seen.add(rel)
        entry = self._entries.get(rel)
        if entry is None or entry.get("size") != size or entry.get("mtime_ns") != mtime_ns:
            entry = {"size": size, "mtime_ns": mtime_ns}
            self._entries[rel] = entry
            self._dirty = True
        for key, value in record.items():
            if entry.get(key) != value:
                entry[key] = value
                self._dirty = True

    def save(self, *, prune: bool) -> None:
        """Write the cache if it changed; prune=True forgets files not seen since loading.

        Failing to write (read-only home, full disk) only costs speed next time.
        """
        if prune:
            gone = [rel for rel in self._entries if rel not in self._seen]
            for rel in gone:
                del self._entries[rel]
            self._dirty = self._dirty or bool(gone)
        if not self._dirty:
            return
        payload = {"version": CACHE_VERSION, "folder": self.folder, "entries": self._entries}
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            # Not fsynced: a cache lost to a crash is rebuilt (_load skips a damaged file).
            atomic_write_bytes(self.file, json.dumps(payload, separators=(",", ":")).encode("utf-8"), durable=False)
        except OSError:
            return
        self._dirty = False
