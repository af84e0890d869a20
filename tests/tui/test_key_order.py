"""KeyOrderApp on its own: a bare form of three fields, the smallest case of a key burst."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Input

from tests.tui.conftest import burst, wait_until
from tuitrain.tui.key_order import GIVE_UP_AFTER, KeyDispatched, KeyOrderApp


class ThreeFields(KeyOrderApp[None]):
    def compose(self) -> ComposeResult:
        for value in ("0.9", "0.99", "0.05"):
            yield Input(value, select_on_focus=False)


class TextualAlone(App[None]):
    compose = ThreeFields.compose


def values(app: App[None]) -> list[str]:
    return [field.value for field in app.query(Input)]


async def test_tab_and_a_digit_in_one_burst_go_to_the_next_field() -> None:
    app = ThreeFields()
    async with app.run_test() as pilot:
        burst(app, "tab", "1", "tab", "backspace", "2", "shift+tab", "shift+tab", "3")
        await wait_until(pilot, lambda: values(app)[0] == "0.93" and app.keys_pending == 0)
        assert values(app) == ["0.93", "0.991", "0.02"]


async def test_textual_alone_still_misroutes_a_burst() -> None:
    """Why KeyOrderApp exists: textual==8.2.8 routes the 1 before it has handled the Tab.

    If a Textual upgrade makes this fail, the upstream cause is fixed and KeyOrderApp may go.
    """
    app = TextualAlone()
    async with app.run_test() as pilot:
        burst(app, "tab", "1")
        await wait_until(pilot, lambda: app.query(Input)[1].has_focus)
        await pilot.pause(0.1)
        assert values(app) == ["0.91", "0.99", "0.05"]


class SwallowingField(Input):
    """Stops the marker that follows a key (a widget handling every message it gets could)."""

    def on_key_dispatched(self, message: KeyDispatched) -> None:
        message.stop()


class LosesAMarker(KeyOrderApp[None]):
    def compose(self) -> ComposeResult:
        yield SwallowingField("")
        yield Input("", id="next")


async def test_keys_go_on_when_a_marker_is_lost() -> None:
    app = LosesAMarker()
    async with app.run_test() as pilot:
        burst(app, "1", "tab", "2")
        await wait_until(pilot, lambda: app.query_one("#next", Input).value == "2" and app.keys_pending == 0,
                         timeout=5 * GIVE_UP_AFTER)
        assert app.query_one(SwallowingField).value == "1"
        assert app.query_one("#next", Input).value == "2"
