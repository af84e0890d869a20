"""The review screen's keys typed in a burst (as they arrive over SSH) do what they say, in order.

A key that opens an editor (`/` the filter, `c` the caption) and the text typed right after
it arrive in one read; the text must land in the editor, not run the review keys it spells.
tmux send-keys with several keys writes them at once; in Pilot, `burst` queues every key
before the first is handled (Pilot.press waits after each).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.tmux import Tmux
from tests.tui.conftest import burst, make_dataset, review_app, settled, wait_until


def captions(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.txt"))}


def start_cull(tmux: Tmux, folder: Path) -> None:
    tmux.start_tuitrain("cull", str(folder), "--resolution", "64", env={"TUITRAIN_IMAGE_PROTOCOL": "halfcell"})
    tmux.wait_for("faery-set", "1/6", "a.jpg", "a red fox")


def test_slash_and_a_query_in_one_burst_filter_in_tmux(tmux: Tmux, tmp_path: Path) -> None:
    folder = make_dataset(tmp_path / "faery-set", fmt="JPEG")
    before = captions(folder)
    start_cull(tmux, folder)

    tmux.keys("/clouds", "Enter")  # the c of clouds must not open the caption editor
    tmux.wait_for("1/1 of 6", "b.jpg", "blue sky")
    assert "Save caption" not in tmux.screen()
    tmux.keys("q")
    tmux.wait_closed()
    assert captions(folder) == before


def test_c_and_a_caption_in_one_burst_write_the_caption_in_tmux(tmux: Tmux, tmp_path: Path) -> None:
    folder = make_dataset(tmp_path / "faery-set", fmt="JPEG")
    start_cull(tmux, folder)
    tmux.keys("End")
    tmux.wait_for("6/6", "no caption")

    tmux.keys("can owl at dusk", "C-s")  # c opens the editor, the rest is the caption, ctrl+s saves
    tmux.wait_for("Saved e.txt")
    assert (folder / "e.txt").read_text() == "an owl at dusk"
    assert "6/6" in tmux.screen()  # the n and space of the text did not move on
    tmux.keys("q")
    tmux.wait_closed()


async def test_editor_keys_and_their_text_in_one_burst_with_pilot(dataset: Path) -> None:
    app = review_app(dataset)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await settled(pilot, "a.bmp")
        burst(app, "slash", *"fox", "enter", "right")
        await settled(pilot, "d.bmp")
        assert [item.name for item in screen.model.visible] == ["a.bmp", "d.bmp"]

        burst(app, "slash", "ctrl+u", *"clouds", "enter", "c", *", at noon", "ctrl+s")
        await wait_until(pilot, lambda: (dataset / "b.txt").read_text() == "blue sky, clouds, at noon\n")
        assert [item.name for item in screen.model.visible] == ["b.bmp"]
        assert not screen.query_one("#info").editing  # type: ignore[attr-defined]
        assert screen.model.query == "clouds"
