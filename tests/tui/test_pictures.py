"""Pictures off the event loop: half-cell strips, the bucket-crop dimming, and the newest-wish loader."""

from __future__ import annotations

import threading
from pathlib import Path

from PIL import Image

from tests.tui.conftest import picture
from tuitrain.tui.review.halfcell import UPPER_HALF, halfcell_rows
from tuitrain.tui.review.loader import PreviewLoader, PreviewRequest, PreviewResult, dim_outside, scale_box


def test_halfcell_rows_paint_upper_pixel_as_foreground_and_lower_as_background() -> None:
    image = Image.new("RGB", (3, 3))
    image.putdata(
        [(255, 0, 0), (255, 0, 0), (0, 0, 255), (0, 255, 0), (0, 255, 0), (0, 0, 0), (9, 9, 9), (8, 8, 8), (7, 7, 7)]
    )
    rows = halfcell_rows(image)
    assert len(rows) == 2 and all(sum(len(segment.text) for segment in row) == 3 for row in rows)
    first = rows[0]
    assert [segment.text for segment in first] == [UPPER_HALF * 2, UPPER_HALF]  # equal cells share a segment
    assert first[0].style.color.triplet == (255, 0, 0) and first[0].style.bgcolor.triplet == (0, 255, 0)
    assert first[0].style.render("x") == "\x1b[38;2;255;0;0;48;2;0;255;0mx\x1b[0m"
    last = rows[1]  # odd height: the last row has no lower pixel, so no background
    assert [segment.style.color.triplet for segment in last] == [(9, 9, 9), (8, 8, 8), (7, 7, 7)]
    assert all(segment.style.bgcolor is None for segment in last)


def test_dim_outside_keeps_the_crop_and_darkens_the_rest() -> None:
    image = Image.new("RGB", (10, 10), (200, 100, 50))
    dimmed = dim_outside(image, (2, 0, 8, 10))
    assert dimmed.getpixel((5, 5)) == (200, 100, 50)
    assert dimmed.getpixel((0, 5)) == (60, 30, 15)
    assert image.getpixel((0, 5)) == (200, 100, 50)  # the cached original is never touched
    assert scale_box((100, 0, 500, 400), (600, 400), (60, 40)) == (10, 0, 50, 40)
    assert scale_box((100, 0, 500, 400), (600, 400), (600, 400), (150, 100)) == (-50, -100, 350, 300)


def test_loader_serves_the_newest_wish_and_prepares_neighbours(tmp_path: Path) -> None:
    paths = []
    for index in range(4):
        path = tmp_path / f"{index}.png"
        picture((64, 48), index).save(path)
        paths.append(path)
    delivered: list[PreviewResult] = []
    arrived = threading.Event()

    def deliver(result: PreviewResult) -> None:
        delivered.append(result)
        arrived.set()

    loader = PreviewLoader(deliver, render=lambda image: ("rendered", image.size))
    try:
        neighbours = (PreviewRequest(0, paths[1], (32, 32)), PreviewRequest(0, paths[2], (32, 32)))
        assert loader.want(PreviewRequest(1, paths[0], (32, 32), neighbours=neighbours)) is None
        assert arrived.wait(10)
        first = delivered[0]
        assert first.request.token == 1 and first.image is not None and first.image.size == (32, 24)
        assert first.payload == ("rendered", (32, 24))
        assert not loader.is_ready(neighbours[1])
        loader.resume()  # the screen has drawn: neighbours get prepared now
        for _ in range(1000):
            if all(loader.is_ready(n) for n in neighbours):
                break
            threading.Event().wait(0.01)
        hit = loader.want(PreviewRequest(2, paths[2], (32, 32)))
        assert hit is not None and hit.payload == ("rendered", (32, 24))  # straight back, no thread hop
        assert len(delivered) == 1  # neighbours were prepared, not delivered
        arrived.clear()
        loader.want(PreviewRequest(20, tmp_path / "missing.png", (32, 32)))
        assert arrived.wait(10)
        assert delivered[-1].image is None and delivered[-1].error
    finally:
        loader.close()
