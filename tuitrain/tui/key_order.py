"""Keys are handled one at a time, in the order they were typed, even when they arrive in a burst.

Over SSH (and with `tmux send-keys`) several keys arrive in one read. Textual 8.2.8's
App.on_event routes each key to the widget focused *at that moment* by posting it to that
widget's message queue, and returns at once: the next key of the burst is routed before the
first has been handled. A key the focused widget does not take itself (Tab, `/` or `c` on the
review screen) bubbles back up through one queue per ancestor, and only when it reaches the
app does its binding run (focus_next, open the filter, open the caption editor). By then the
keys behind it have been posted to the old focused widget: `Tab 1` types the 1 into the field
being left, `/cat` opens the filter and then the caption editor. Widget.focus() is deferred
too (App.call_later), so even a priority binding that moves the focus (alt+digit) is
overtaken by the keys that follow it.

KeyOrderApp holds the rest of a burst back while one key is in flight. After handing a key
on, it sends a marker message along the same path (the focused widget, its ancestors, the
screen, the app). Every queue is first in, first out, so when the marker reaches the app the
key has been handled everywhere, the binding it ran included; a second lap through the
screen and the app runs what that binding deferred (the focus change, a new screen's
mount). Then the next key goes, to the widget focused now. Pastes are ordered the same way.
"""

from __future__ import annotations

from collections import deque
from functools import partial
from typing import Any

from textual import events
from textual.app import App, ReturnType, ScreenStackError
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer

# A marker can be lost when the widget holding it is removed; the keys behind it then wait
# this long (seconds) and go on as Textual alone would route them.
GIVE_UP_AFTER = 1.0

Ordered = events.Key | events.Paste


class KeyDispatched(Message):
    """Follows a key up the DOM: when it reaches the app, the key has been handled."""

    def __init__(self, serial: int, first_lap: bool) -> None:
        super().__init__()
        self.serial = serial
        self.first_lap = first_lap


class KeyOrderApp(App[ReturnType]):
    """An App that handles typed keys and pastes strictly one after another (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._key_backlog: deque[Ordered] = deque()
        self._key_in_flight: int | None = None  # serial of the key whose marker is travelling
        self._key_serial = 0
        self._key_give_up: Timer | None = None

    @property
    def keys_pending(self) -> int:
        """Keys taken from the app's queue and not yet handled completely."""
        return len(self._key_backlog) + (self._key_in_flight is not None)

    def _screen_or_none(self) -> Screen[object] | None:
        """The current screen; None once the app has closed its screens (keys still queued then go)."""
        try:
            return self.screen
        except ScreenStackError:
            return None

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.Paste)) and not event.is_forwarded:
            self._key_backlog.append(event)
            await self._dispatch_backlog()
            return
        await super().on_event(event)

    async def _dispatch_backlog(self) -> None:
        while self._key_in_flight is None and self._key_backlog:
            screen = self._screen_or_none()
            if screen is None:
                self._key_backlog.clear()
                return
            event = self._key_backlog.popleft()
            target = self.focused or screen  # where App.on_event forwards a key
            await super().on_event(event)
            # A key that a priority binding took was handled here; its marker starts at the screen.
            start = target if event.is_forwarded else self._screen_or_none()
            if start is None:
                continue
            self._key_serial += 1
            if start.post_message(KeyDispatched(self._key_serial, first_lap=True)):
                self._key_in_flight = self._key_serial
                self._key_give_up = self.set_timer(GIVE_UP_AFTER, partial(self._give_up, self._key_serial))

    async def on_key_dispatched(self, message: KeyDispatched) -> None:
        message.stop()
        if message.serial != self._key_in_flight:
            return  # given up on already
        screen = self._screen_or_none()
        if message.first_lap and screen is not None and screen.post_message(KeyDispatched(message.serial, False)):
            return
        await self._key_done()

    def _give_up(self, serial: int) -> None:
        """The marker is overdue: let the app's own queue end the wait (timers run in a task of
        their own, and keys are dispatched only from the app's message loop)."""
        self.post_message(KeyDispatched(serial, first_lap=False))

    async def _key_done(self) -> None:
        if self._key_give_up is not None:
            self._key_give_up.stop()
            self._key_give_up = None
        self._key_in_flight = None
        await self._dispatch_backlog()
