"""Limits and value checks shared by the config sections."""

from __future__ import annotations

from tuitrain.config.errors import quote
from tuitrain.dataset.paths import path_text_problem

# Upper bounds of options that would otherwise be open: `check` must refuse what `train`
# cannot take (issue 14: training.seed = 10**30 passed check, then overflowed
# torch.manual_seed, which takes < 2**64). Every number option has a finite range.
MAX_SEED = 2**63 - 1  # TOML's largest integer; torch generators take up to 2**64 - 1
MAX_STEPS = 1_000_000_000  # steps (or steps between events): far past any run, and exact as floats
MAX_EPOCHS = 100_000
MAX_KEPT = 10_000  # saves or backups kept


def a_possible_path(value: str) -> str:
    """A path value no file system call will choke on (a NUL, an unknown ~user, a 300-byte name): said here, naming
    the key, instead of as a traceback from the first stat in check, train or the TUI."""
    problem = path_text_problem(value)
    if problem:
        raise ValueError(f"{problem}, got {quote(value, 100)}")
    return value
