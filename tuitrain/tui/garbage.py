"""When Python's cyclic garbage collector does its big work in the TUI: while the user looks, not mid-keypress.

A closed screen leaves its widgets behind as cyclic garbage (Textual's nodes refer to each other):
closing the config editor left some 120,000 objects, and the full collection that freed them fell
inside the next screen's opening (85 ms of the review's 116 ms in a pty). Every full collection
also walks every live object, most of them modules and Textual's classes that live as long as
the app. So the app settles its garbage when nothing is asked of it, once its first frame is
out and shortly after a screen closes: it collects everything, then freezes what is left
(gc.freeze), so the collections that run later by themselves walk only newer objects.
The review screen goes further while it is open (review/idle_gc.py).
"""

from __future__ import annotations

import gc

SETTLE_AFTER_START = 0.5  # seconds after the app's first frame
SETTLE_AFTER_CLOSE = 0.25  # seconds after a screen has been taken down (the screen under it is drawn by then)


def settle_garbage() -> None:
    """Collect everything, the frozen objects included, and freeze what is still alive."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def release_garbage_collector() -> None:
    """Leave the collector as the process had it (the app has ended)."""
    gc.unfreeze()
