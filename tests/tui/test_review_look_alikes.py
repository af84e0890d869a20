"""The review says how alike a near duplicate is, and groups look-alikes around one representative
instead of in chains (issue 23: six clearly different demo shapes were one "look alike" group)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from tests.tui.conftest import full_report, picture, review_app, settled
from tuitrain.dataset.hashing import HASH_BITS
from tuitrain.demo.dataset import make_demo_dataset


def _info(screen: object) -> str:
    return " ".join(str(screen.query_one("#info-text").render()).split())  # type: ignore[attr-defined]


async def test_a_near_duplicate_shows_its_distance(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    picture((96, 96), 1).save(folder / "a.png")
    picture((96, 96), 1).resize((90, 90), Image.Resampling.BICUBIC).save(folder / "a-smaller.jpg", quality=85)
    picture((96, 96), 7).save(folder / "b.png")
    app = review_app(folder)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await settled(pilot, "a-smaller.jpg")
        await full_report(pilot, screen)
        bits = screen.model.report.near_distance[folder / "a.png"]  # type: ignore[union-attr]
        assert screen.model.report.near_duplicates == [[folder / "a-smaller.jpg", folder / "a.png"]]  # type: ignore[union-attr]
        assert f"near-duplicate of a.png ({bits}/{HASH_BITS} bits differ)" in _info(screen)
        await pilot.press("n")
        await settled(pilot, "a.png")
        assert f"near-duplicate of a-smaller.jpg ({bits}/{HASH_BITS} bits differ)" in _info(screen)
        await pilot.press("n")
        await settled(pilot, "b.png")
        assert "near-duplicate" not in _info(screen)


async def test_the_demo_shapes_are_not_flagged_as_look_alikes(tmp_path: Path) -> None:
    planted = make_demo_dataset(tmp_path / "data")
    app = review_app(tmp_path / "data")
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await settled(pilot)
        await full_report(pilot, screen)
        assert screen.model.report.near_duplicates == []  # type: ignore[union-attr]  # the copy is an exact one
        flagged = [item.name for item in screen.model.visible
                   if any("near-duplicate" in flag.text for flag in screen.model.flags(item))]
        assert flagged == []
        assert planted.duplicate[1].name in [item.name for item in screen.model.visible]
