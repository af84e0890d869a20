"""Tiny models and data sets for trainer tests, built once per session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
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


@torch.no_grad()
def denoising_loss(pipe: Any, family: str, data: Path, caption: str = "a red square with a blue mark",
                   rounds: int = 8) -> float:
    """Mean denoising loss of `pipe` on the images in `data` at fixed noise and timesteps (seed 123)."""
    import numpy as np

    from tuitrain.trainer.families import get_adapter
    from tuitrain.trainer.families.base import LatentBatch

    adapter = get_adapter(family)
    parts = adapter.parts(pipe, "auto")
    images = sorted(data.glob("*.png"))
    pixels = torch.stack([torch.from_numpy(np.asarray(Image.open(p).convert("RGB"), dtype=np.float32)).permute(2, 0, 1)
                          for p in images]) / 127.5 - 1
    latents = adapter.encode_images(parts, pixels)
    cond = adapter.encode_text(parts, [caption] * len(images))
    gen = torch.Generator().manual_seed(123)
    losses = []
    for _ in range(rounds):
        noisy, t, target = adapter.noise_and_target(parts, latents, gen)
        pred = adapter.predict(parts, noisy, t, LatentBatch(latents, cond))
        losses.append(torch.nn.functional.mse_loss(pred, target).item())
    return sum(losses) / len(losses)
