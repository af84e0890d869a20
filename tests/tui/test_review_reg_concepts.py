"""The review screen on kohya_ss's img/ + reg/ layout: regularisation images are reviewed beside the subject's,
each named with its concept and role (issue 22)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from tests.tui.conftest import review_app, settled


async def test_review_names_a_regularisation_images_concept_and_role(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    for folder, colour in (("img/10_sks dog", (200, 40, 40)), ("reg/1_dog", (40, 40, 200))):
        (root / folder).mkdir(parents=True)
        Image.new("RGB", (64, 64), colour).save(root / folder / f"{folder[-3:].replace('/', '')}.png")
    app = review_app(root)
    async with app.run_test(size=(120, 32)) as pilot:
        screen = await settled(pilot)
        seen = {}
        for _ in range(2):
            item = screen.model.current
            assert item is not None
            seen[item.concept.display_name] = str(screen.query_one("#info-text").render())
            await pilot.press("right")
            screen = await settled(pilot)
    assert "concept dog x1 (regularisation)" in seen["dog"]
    assert "concept sks dog x10" in seen["sks dog"] and "(train)" not in seen["sks dog"]
