"""One layout when a screen's widgets change size, not two.

After a full layout Textual hands every widget its new size through `Widget._size_updated`, which
sets the widget's `virtual_size` reactive; that reactive is declared with layout=True, so every
widget whose size changed asks for another full layout of the screen at once. For a widget that
can scroll, that second pass matters: its virtual size decides its scrollbars, and a scrollbar
takes room from its children. For a widget that cannot scroll (overflow hidden both ways: every
row, label, switch and select of a form) nothing in a layout reads its virtual size, so the second
pass computed the same arrangement again. On the config editor's Training tab (45 rows, ~200
widgets) that was a second reflow of 75-95 ms in every first visit, on top of the first.

This wraps Textual's method (Textual is pinned exactly in pyproject.toml) so that such widgets take
their new virtual size without asking for a layout, as Textual itself does for widgets uncovered
by scrolling (Screen._refresh_layout with scroll=True); but only inside a container that says so
(`LAYOUT_ONCE_INSIDE`: the config editor's tab forms, whose widgets are ours and tested). Everywhere
else Textual's way stays. Applied to every widget, one run in about fifteen of a tmux test under
load never showed the "Saved" toast (the save itself was done); I did not find which widget of the
toast rack needed the second pass, so the change is kept where it is measured and tested.
Widgets that can scroll keep Textual's way everywhere.
Written here, not asked of Textual, because the method is private and the reactive is declared on
Widget itself: no subclass of ours can change it for Textual's own Switch or Select parts.
tests/config_editor/test_layout_once.py holds both halves.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from textual.geometry import Size
from textual.widget import Widget

_MARK = "_tuitrain_layout_once"


LAYOUT_ONCE_INSIDE = "LAYOUT_ONCE_INSIDE"  # class attribute of a container whose descendants take part


def cannot_scroll(widget: Widget) -> bool:
    """True for a widget whose virtual size no layout reads: it shows no scrollbars and scrolls no content."""
    styles = widget.styles
    return styles.overflow_x == "hidden" and styles.overflow_y == "hidden"


def inside_opted_container(widget: Widget) -> bool:
    """True for a descendant of a container whose class sets LAYOUT_ONCE_INSIDE."""
    node = widget._parent
    while node is not None:
        if getattr(node, LAYOUT_ONCE_INSIDE, False):
            return True
        node = node._parent
    return False


def install() -> bool:
    """Wrap Widget._size_updated once per process; False (and Textual's behaviour kept) if its signature changed."""
    original = Widget._size_updated
    if getattr(original, _MARK, False):
        return True
    if list(inspect.signature(original).parameters) != ["self", "size", "virtual_size", "container_size", "layout"]:
        return False

    @functools.wraps(original)
    def size_updated(self: Widget, size: Size, virtual_size: Size, container_size: Size, layout: bool = True) -> Any:
        if layout and cannot_scroll(self) and inside_opted_container(self):
            layout = False
        return original(self, size, virtual_size, container_size, layout=layout)

    setattr(size_updated, _MARK, True)
    Widget._size_updated = size_updated  # type: ignore[method-assign]
    return True
