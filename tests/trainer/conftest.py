"""Tiny models, data sets and reference runs for trainer tests, built once per session.

Helpers to make and train runs are in harness.py; the kill-and-resume check in resume.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from tuitrain.trainer.tiny import save_tiny_model

# tests/conftest.py sets OMP_NUM_THREADS=1 before torch loads; this holds even where torch came first.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One torch thread in every trainer test, again: a command run in this process (the demo, a
    foreground train) sets torch's count itself (runs/threads.limit_threads); it must not carry over."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
                   rounds: int = 8, config: Any = None) -> float:
    """Mean denoising loss of `pipe` on the images in `data` at fixed noise and timesteps (seed 123): it moves
    only when the weights do. With a run's `config`: the family's settings and the objective's options as
    the run trained with them (adapter.configure, config.objective)."""
    import numpy as np

    from tuitrain.families import FAMILIES
    from tuitrain.trainer.families import get_adapter
    from tuitrain.trainer.families.base import LatentBatch
    from tuitrain.trainer.objectives import build_objective

    adapter = get_adapter(family)
    if config is not None:
        adapter.configure(config)
    parts = adapter.parts(pipe, "auto")
    objective = build_objective(FAMILIES[family].objective, dict(parts.noise_scheduler.config),
                                config.objective if config is not None else None, parts.prediction_type)
    images = sorted(data.glob("*.png"))
    pixels = torch.stack([torch.from_numpy(np.asarray(Image.open(p).convert("RGB"), dtype=np.float32)).permute(2, 0, 1)
                          for p in images]) / 127.5 - 1
    latents = adapter.encode_images(parts, pixels)
    cond = adapter.encode_text(parts, [caption] * len(images))
    gen = torch.Generator().manual_seed(123)
    losses = []
    for _ in range(rounds):
        noised = objective.noise(latents, gen)
        pred = adapter.predict(parts, noised.noisy, noised.timesteps, LatentBatch(latents, cond))
        losses.append(torch.nn.functional.mse_loss(pred, noised.target).item())
    return sum(losses) / len(losses)


@contextlib.contextmanager
def session_env(folder: Path) -> Iterator[Path]:
    """For a session fixture: a private workspace, config and cache under `folder` while it works
    (it runs before any test's own isolated_env, so it must never see the user's folders either)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, sub in (("TUITRAIN_WORKSPACE", "runs"), ("XDG_CONFIG_HOME", "config"), ("XDG_CACHE_HOME", "cache")):
            patch.setenv(name, str(folder / sub))
        yield folder / "runs"


# What the reference run trains on top of harness.BASE: samples every epoch and a save every epoch,
# with diffusers-format copies, so that one run answers the tests that only read what a run leaves.
REFERENCE_LORA: dict[str, dict[str, Any]] = {
    "sampling": {"every_epochs": 1, "steps": 2, "sampler": "euler_a",
                 "prompts": [{"prompt": "a fox", "seed": 9, "width": 96, "height": 64}, {"prompt": "moss"}]},
    "saving": {"diffusers_format": True, "every_epochs": 1, "keep_last": 1},
}


class Reference:
    """A finished run shared by the session: read it, never write into it (harness.copy_run makes a private copy)."""

    def __init__(self, run: Any, model: Path, data: Path, sections: dict[str, dict[str, Any]]) -> None:
        self.run, self.model, self.data, self.sections = run, model, data, sections


@pytest.fixture(scope="session")
def reference_lora(tiny_model, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """The sd15 LoRA of harness.BASE + REFERENCE_LORA on 4 images (2 epochs of 2 steps), run "r", trained once."""
    from tests.trainer.harness import events, train_config

    root = tmp_path_factory.mktemp("reference-lora")
    model = tiny_model("sd15")
    with session_env(root):
        data = make_dataset(root / "data", count=4)
        run, code = train_config(root, model, data, "r", **REFERENCE_LORA)
    assert code == 0, events(run)[-1]
    return Reference(run, model, data, REFERENCE_LORA)
