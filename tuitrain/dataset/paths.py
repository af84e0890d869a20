"""Paths from configs and command lines, checked before the file system sees them.

A NUL in a path makes Python raise ValueError, `~nosuchuser/x` makes expanduser raise
RuntimeError, and a name over 255 bytes makes every stat raise "File name too long":
tracebacks, where the user needs one line naming the key and what is wrong. The config
schema asks `path_text_problem` about every path it holds; code that stats paths asks
`folder_problem`, which never raises.
"""

from __future__ import annotations

import os
from pathlib import Path

NAME_MAX = 255  # bytes in one path component (Linux, macOS, Windows' NTFS in UTF-16 units)
PATH_MAX = 4095  # bytes in a whole path (Linux's PATH_MAX less the NUL)


def shown_path(path: Path | str) -> str:
    """A path for a one-line message: control characters escaped, very long ones shortened in the middle."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in os.fspath(path))
    return text if len(text) <= 200 else f"{text[:120]}...{text[-60:]} ({len(text)} characters)"


def _encoded(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def path_text_problem(text: str) -> str | None:
    """Why `text` cannot name a file on this machine (None when it can; '' is not judged here).

    Checked: control characters (a NUL cannot be in a path; a newline almost surely is a
    mistake), `~user` of a user this machine does not have, a component over NAME_MAX
    bytes and a path over PATH_MAX bytes.
    """
    if not text:
        return None
    if "\x00" in text:
        return "must not contain a NUL character"
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        return "must not contain control characters (newline, tab, ...)"
    if text.startswith("~"):
        head = text.split("/", 1)[0].split(os.sep, 1)[0]
        if os.path.expanduser(head) == head:  # os.path leaves an unknown ~user as it is
            user = head[1:]
            if user:
                return f"{head} is the home folder of user {user!r}, who does not exist on this machine"
            return "~ is the home folder, which this machine does not define (no HOME)"
    longest = max((_encoded(part) for part in text.replace(os.sep, "/").split("/")), key=len)
    if len(longest) > NAME_MAX:
        return f"has a name of {len(longest)} bytes, over the {NAME_MAX} a file system allows"
    if len(_encoded(text)) > PATH_MAX:
        return f"is {len(_encoded(text))} bytes long, over the {PATH_MAX} a path may have"
    return None


def folder_problem(folder: Path) -> str | None:
    """Why `folder` cannot be scanned ('not found: PATH', ...), or None when it is a folder; never raises."""
    try:
        if folder.is_dir():
            return None
        return f"is not a folder: {shown_path(folder)}" if folder.exists() else f"not found: {shown_path(folder)}"
    except (OSError, ValueError) as error:  # a name too long for the file system, a NUL
        return f"cannot be read: {shown_path(folder)}: {getattr(error, 'strerror', None) or error}"
