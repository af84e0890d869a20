"""Tiny models and data sets for trainer tests, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tuitrain.trainer.tiny import save_tiny_model


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory):
    made: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in made:
            made[family] = save_tiny_model(family, tmp_path_factory.mktemp(f"tiny-{family}") / "model")
        return made[family]

    return get


def make_dataset(folder: Path, count: int = 8, colour: tuple[int, int, int] = (210, 40, 30), size=(64, 64)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image = Image.new("RGB", size, colour)
        image.paste((colour[0] // 2, colour[1], 200), (8 * (i % 4), 8, 8 * (i % 4) + 16, 40))
        image.save(folder / f"img{i}.png")
        (folder / f"img{i}.txt").write_text("a red square with a blue mark")
    return folder
