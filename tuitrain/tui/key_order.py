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
key has been handled everywhere, the binding it ran included; a second lap from where the
first began runs what that binding deferred: the message it posted to the focused widget
(Enter in an Input posts Input.Submitted, and the screen that gets it may move the focus),
the focus change, a new screen's mount. Then the next key goes, to the widget focused now.
Pastes are ordered the same way.

A marker can be lost: the widget holding it is removed, or a widget stops it. Time alone cannot
tell a lost marker from a late one: behind a handler that awaits something (a mount, a worker),
on a busy machine, or while a full garbage collection of a large process holds the GIL, a
marker can take longer than any fixed wait, and keys released then go to the widget the key
before them was leaving. So when a marker is overdue, a probe follows it along the same path:
queues are first in, first out, so a probe that reaches the app before its marker proves the
marker lost, and only then do the keys behind it go on. A probe that cannot be posted (the
lap's start is gone) gives up at once; a lost probe is followed by another.
"""

from __future__ import annotations

from collections import deque
from functools import partial
from typing import Any

from textual.message_pump import MessagePump

from textual import events
from textual.app import App, ReturnType, ScreenStackError
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer

# Seconds a marker may travel before a probe is sent after it (and between probes).
GIVE_UP_AFTER = 0.5

Ordered = events.Key | events.Paste


class KeyDispatched(Message):
    """Follows a key up the DOM: when it reaches the app, the key has been handled."""

    def __init__(self, serial: int, first_lap: bool) -> None:
        super().__init__()
        self.serial = serial
        self.first_lap = first_lap


class KeyProbe(Message):
    """Follows an overdue marker along its path; reaching the app first, it proves the marker lost."""

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
        self._key_first_lap = True  # which lap the marker in flight is on
        self._key_lap_start: MessagePump | None = None  # where that lap began: a probe starts there too
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
                self._start_lap(start, first_lap=True)

    def _start_lap(self, start: MessagePump, first_lap: bool) -> None:
        self._key_first_lap, self._key_lap_start = first_lap, start
        if self._key_give_up is not None:
            self._key_give_up.stop()
        self._key_give_up = self.set_timer(GIVE_UP_AFTER, partial(self._overdue, self._key_in_flight, first_lap))

    async def on_key_dispatched(self, message: KeyDispatched) -> None:
        message.stop()
        if message.serial != self._key_in_flight:
            return  # given up on already
        if message.first_lap:
            # The second lap starts where the first did: a binding of the focused widget (Enter in an Input)
            # posts its message (Input.Submitted) to that widget, and the marker must come after it.
            for start in (self._key_lap_start, self._screen_or_none()):
                if start is not None and start.post_message(KeyDispatched(message.serial, False)):
                    self._start_lap(start, first_lap=False)
                    return
        await self._key_done()

    def _overdue(self, serial: int | None, first_lap: bool) -> None:
        """The marker has not arrived yet: send a probe after it, and look again later. Where the probe cannot
        go (the lap's start is gone), give up through the app's own queue (timers run in a task of their own,
        and keys are dispatched only from the app's message loop)."""
        if serial != self._key_in_flight or first_lap != self._key_first_lap:
            return
        start = self._key_lap_start
        if start is None or not start.post_message(KeyProbe(serial, first_lap)):
            self.post_message(KeyDispatched(serial, first_lap=False))
            return
        self._key_give_up = self.set_timer(GIVE_UP_AFTER, partial(self._overdue, serial, first_lap))

    async def on_key_probe(self, message: KeyProbe) -> None:
        message.stop()
        if message.serial == self._key_in_flight and message.first_lap == self._key_first_lap:
            await self._key_done()  # the probe overtook nobody: the marker is lost

    async def _key_done(self) -> None:
        if self._key_give_up is not None:
            self._key_give_up.stop()
            self._key_give_up = None
        self._key_in_flight = None
        self._key_lap_start = None
        await self._dispatch_backlog()
