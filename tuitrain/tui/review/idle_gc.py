"""Python's cyclic garbage collector, run when it costs the user nothing instead of mid-keypress.

A half-cell picture is some 12,000 small objects, and a few are kept ready.
Textual's strips also end in reference cycles (a strip caches its own
division), so every picture leaves cyclic garbage that only the collector
frees. With the default thresholds a full collection, which walks every live
object (60-100 ms here), starts every few pictures in the middle of whatever
happens to be running: a keypress that lands on one misses the 50 ms budget.

So while the review screen is open, automatic collection is off, and what
lived before it opened is frozen out of the collections (gc.freeze); the app
settles the garbage of a screen closed before (tui/garbage.py), so that first
collection is short, and it unfreezes when the app ends. A full
collection runs right after every few pictures have been drawn, while the user
looks at the picture (a keypress rarely comes within the collection's tens of
milliseconds), and after a quiet second, so a paused review leaves no garbage.
Textual itself pauses the collector the same way during smooth scrolling.
"""

from __future__ import annotations

import gc

from textual.timer import Timer
from textual.widget import Widget

FULL_EVERY = 8  # pictures drawn between collections (bounds the garbage: ~5,000 objects a picture)
QUIET_AFTER = 1.0  # seconds without a new picture before collecting what is left
AFTER_FRAME = 0.05  # seconds between drawing a picture and a collection forced by FULL_EVERY
YOUNG_EVERY = 10.0  # seconds between collections of the young generations (typing, scrolling a report)


class IdleCollector:
    """Owns the collector while a review screen is open (start on mount, stop on unmount)."""

    def __init__(self, owner: Widget) -> None:
        self._owner = owner
        self._was_enabled = False
        self._quiet: Timer | None = None
        self._young: Timer | None = None
        self._pictures = 0

    def start(self) -> None:
        """Collect once, then leave everything alive now out of later collections (gc.freeze). Cheap when the
        app has settled its garbage since the last screen closed (tui/garbage.py): only newer objects are walked."""
        self._was_enabled = gc.isenabled()
        gc.disable()
        gc.collect()
        gc.freeze()
        self._quiet = self._owner.set_interval(QUIET_AFTER, self.collect, pause=True)
        self._young = self._owner.set_interval(YOUNG_EVERY, lambda: gc.collect(1))

    def stop(self) -> None:
        for timer in (self._quiet, self._young):
            if timer is not None:
                timer.stop()
        if self._was_enabled:
            gc.enable()
        # The frozen objects are the app's to release: it collects them soon after this screen is taken
        # down, and unfreezes when it ends (tui/garbage.py). `tuitrain cull` ends the app with this screen.

    def poke(self) -> None:
        """A picture is about to be drawn."""
        self._pictures += 1
        if self._pictures >= FULL_EVERY:
            # Not at once: the collector holds the GIL, and Textual's writer thread
            # must get the picture out to the terminal first.
            self._owner.set_timer(AFTER_FRAME, self.collect)
        elif self._quiet is not None:
            self._quiet.reset()  # one timer, restarted: a held key creates none

    def collect(self) -> None:
        if self._quiet is not None:
            self._quiet.pause()
        if self._pictures:
            self._pictures = 0
            gc.collect()
