"""The trainer's one user-facing failure, in a module of its own.

Data, methods and the loop all raise it; keeping it out of loop.py means none of them has to
import the loop (which imports them) to say what went wrong.
"""

from __future__ import annotations


class TrainingError(RuntimeError):
    """A failure with a message meant for the user (bad data, no memory, NaN loss)."""
