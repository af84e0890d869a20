"""Library warnings go to trainer.log, tagged, and nowhere else.

diffusers, transformers, huggingface_hub, bitsandbytes, kernels, torch and the rest speak through
Python's `logging` and `warnings`: "requires torchvision (not installed)", "should be kept in
float32", "self.tokenizer=None ... cannot be saved", the hub's "Retrying in 1s". None of it is
something a user can act on during a run; what they can act on, the trainer says as events
(warning, error), which the dashboard and the headless display show. So the trainer's process
sends both channels to trainer.log, every line starting with LIBRARY_TAG, and the dashboard
leaves tagged lines out of its log panel (they stay in the file for whoever debugs).

Set up by the launcher side: runs/trainer_process.py for a detached trainer, cli/foreground.py
for `train` and `demo --headless` in the foreground.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import TextIO

LIBRARY_TAG = "[library] "

# Libraries that give their root logger a handler of their own on stderr when first imported (and stop
# propagation): imported here first, so their handlers exist to be taken over. The trainer imports them anyway.
_SELF_CONFIGURING = ("diffusers.utils.logging", "transformers.utils.logging", "huggingface_hub.utils.logging")


def is_library_line(line: str) -> bool:
    """Whether a trainer.log line is library output (see the module docstring)."""
    return line.startswith(LIBRARY_TAG)


class _Tagged(logging.Formatter):
    """Every line of a record starts with the tag, a multi-line warning's source line included."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return "\n".join(LIBRARY_TAG + line for line in text.splitlines() or [""])


@contextlib.contextmanager
def library_output_to(stream: TextIO, *, preload: bool = True) -> Iterator[None]:
    """Within the block, warnings and every library's log records go to `stream` only, tagged.

    `preload`: import the libraries that install their own stderr handler, so they are taken over too.
    """
    if preload:
        import importlib

        for module in _SELF_CONFIGURING:
            with contextlib.suppress(Exception):  # not installed, or broken: nothing of theirs to route
                importlib.import_module(module)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_Tagged("%(name)s: %(levelname)s: %(message)s"))
    taken: list[tuple[logging.Logger, logging.Handler]] = []
    propagation: list[tuple[logging.Logger, bool]] = []
    for logger in _all_loggers():
        for own in list(logger.handlers):
            if _writes_to_the_terminal(own):
                logger.removeHandler(own)
                taken.append((logger, own))
                if logger is not logging.root:
                    propagation.append((logger, logger.propagate))
                    logger.propagate = True  # on to the root logger, where our handler is
    root = logging.getLogger()
    root.addHandler(handler)
    logging.captureWarnings(True)  # warnings.warn -> the "py.warnings" logger -> root
    try:
        yield
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        for logger, own in taken:
            logger.addHandler(own)
        for logger, propagate in propagation:
            logger.propagate = propagate
        with contextlib.suppress(Exception):
            handler.flush()


def _all_loggers() -> list[logging.Logger]:
    loggers = [logging.root]
    loggers += [item for item in logging.root.manager.loggerDict.values() if isinstance(item, logging.Logger)]
    return loggers


def _writes_to_the_terminal(handler: logging.Handler) -> bool:
    """A plain StreamHandler on stdout/stderr (a FileHandler, or one a test installed, is left alone)."""
    if type(handler) is not logging.StreamHandler:
        return False
    stream = getattr(handler, "stream", None)
    return stream is not None and stream in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)
