"""A real terminal: `tuitrain cull DIR` in tmux, driven with send-keys, read with capture-pane.

The folder is checked on disk afterwards: culled and restored, a caption written,
nothing lost. tmux runs on a private socket with a fixed size, so the test never
touches a tmux the developer is using.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.tmux import Tmux
from tests.tui.conftest import make_dataset


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def start_cull(tmux: Tmux, folder: Path, protocol: str | None) -> None:
    """`tuitrain cull FOLDER` in a 120x40 pane (with `protocol` forced through the environment)."""
    tmux.start_tuitrain("cull", str(folder), "--resolution", "64",
                        env={"TUITRAIN_IMAGE_PROTOCOL": protocol} if protocol else None)


def test_cull_in_tmux(tmux: Tmux, tmp_path: Path) -> None:
    folder = make_dataset(tmp_path / "faery-set", fmt="JPEG")
    before = {p.name: digest(p) for p in folder.iterdir()}
    start_cull(tmux, folder, "halfcell")

    tmux.wait_for("faery-set", "1/6", "a.jpg", "a red fox")
    screen = tmux.wait_for_picture(1000)  # a.jpg is 96x64: 70x23 half-cells in a 120x40 pane
    assert max(len(line) for line in screen.splitlines()) == 120, screen  # sized to the pane
    tmux.wait_for("del Cull", "? Help")  # the footer

    tmux.keys("Right")
    tmux.wait_for("2/6", "blue sky")
    tmux.keys("DC")  # Delete: b.jpg and b.txt go to the trash
    tmux.wait_for("1 culled", "2/5")
    assert not (folder / "b.jpg").exists() and not (folder / "b.txt").exists()
    tmux.keys("u")
    tmux.wait_for("0 culled", "2/6", "blue sky")
    assert (folder / "b.jpg").exists()

    tmux.keys("End")
    tmux.wait_for("6/6", "no caption")
    tmux.keys("c")
    tmux.wait_for("Save caption")  # the editor has the keys now (its footer is up)
    tmux.keys("-l", "an owl at dusk")
    tmux.keys("C-s")
    tmux.wait_for("Saved e.txt")
    assert (folder / "e.txt").read_text() == "an owl at dusk"

    tmux.keys("Home", "b")
    tmux.wait_for("1/6", "bucket crop", "crop 16,0 - 80,64")
    tmux.keys("r")
    tmux.wait_for("Pre-flight report", "a.jpg = faery-set/d.jpg", "broken.jpg")
    tmux.keys("Escape")  # a lone Esc: wait for it to land before the next key, or the two read as Alt+key
    tmux.wait_gone("Pre-flight report")
    tmux.keys("?")
    tmux.wait_for("review.next", "review.cull")
    tmux.keys("Escape")
    tmux.wait_gone("review.cull")
    tmux.keys("q")
    tmux.wait_closed()

    after = {p.name: digest(p) for p in folder.iterdir() if p.is_file()}
    assert after == {**before, "e.txt": hashlib.sha256(b"an owl at dusk").hexdigest()}  # nothing lost
    assert not (folder / ".tuitrain-trash").exists()


def test_auto_protocol_in_tmux_still_shows_a_picture(tmux: Tmux, tmp_path: Path) -> None:
    """Without passthrough (and with textual-image 0.12 on Python 3.11), auto falls back to half-cells."""
    start_cull(tmux, make_dataset(tmp_path / "faery-set", fmt="JPEG"), None)
    tmux.wait_for("1/6", "a.jpg")
    tmux.wait_for_picture(1000)
    tmux.keys("?")
    tmux.wait_for("Image protocol: halfcell (inside tmux")


def test_cull_footer_at_80x24_in_tmux(tmux: Tmux, tmp_path: Path) -> None:
    """The smallest terminal: every footer key, ? Help on the right, and ? opens the help."""
    folder = make_dataset(tmp_path / "faery-set", fmt="JPEG")
    tmux.start_tuitrain("cull", str(folder), "--resolution", "64", size=(80, 24),
                        env={"TUITRAIN_IMAGE_PROTOCOL": "halfcell"})
    screen = tmux.wait_for("1/6", "del Cull", "z Zoom", "q Quit", "? Help")
    assert screen.splitlines()[-1].rstrip().endswith("? Help"), screen
    tmux.keys("?")
    tmux.wait_for("Bucket crop")  # the help screen lists the full descriptions
