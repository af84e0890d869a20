"""Draw a regularisation concept's missing class images with the base model, before anything trains.

DreamBooth's prior preservation (diffusers' train_dreambooth_lora does the same with its
pipeline): the base model's own pictures of the class, from the class prompt, train beside
the subject so the class keeps its look. They are drawn through the family's sampling
pipeline (sampling settings: steps, cfg, sampler as configured; negative prompt), seeded
per image from training.seed, at the concept's resolution, and written atomically into the
concept's folder (dataset.class_images names them), where they stay as the cache: a run
finds the ones drawn before and draws only what is missing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from tuitrain.dataset import scan_concept
from tuitrain.dataset.class_images import missing_names
from tuitrain.dataset.usable import judge
from tuitrain.dataspec import bucket_spec, concept_specs

if TYPE_CHECKING:
    from tuitrain.trainer.loop import Trainer


@torch.no_grad()
def draw_class_images(trainer: Trainer) -> int:
    """Fill every regularisation concept with class_images up to its count; returns how many were drawn.
    The main process draws, the others wait for it (they then read the same folder)."""
    cfg = trainer.config
    drawn = 0
    if trainer.is_main:
        buckets = bucket_spec(cfg)
        for spec in concept_specs(cfg, trainer.config_dir):
            if not spec.class_images or spec.role != "regularisation":
                continue
            present = judge([scan_concept(spec)], buckets.for_concept(spec), cache_dir=None).scans[0].images
            names = missing_names(Path(spec.path), len(present), spec.class_images)
            if not names:
                continue
            trainer.log(f"drawing {len(names)} class images for concept '{spec.display_name}' with the base model "
                        f"(\"{spec.instance_prompt}\"), kept in {spec.path}")
            Path(spec.path).mkdir(parents=True, exist_ok=True)
            size = buckets.for_concept(spec).resolution
            for path in names:
                _draw(trainer, spec.instance_prompt, size, path)
                drawn += 1
    trainer.accelerator.wait_for_everyone()
    if trainer.world > 1:  # every process re-reads the folders when the main one drew into them
        from tuitrain.trainer.distributed import broadcast

        drawn = broadcast(drawn)
    return drawn


def _draw(trainer: Trainer, prompt: str, size: int, path: Path) -> None:
    s = trainer.config.sampling
    pipe = trainer.adapter.sample_pipeline(trainer.parts)
    pipe.set_progress_bar_config(disable=True)
    original = pipe.scheduler
    if s.sampler != "default":
        import diffusers

        from tuitrain.trainer.sampling import SAMPLERS

        pipe.scheduler = getattr(diffusers, SAMPLERS[s.sampler]).from_config(pipe.scheduler.config)
    number = int(path.stem.rpartition("-")[2])  # class-00007 -> 7: the image's seed does not depend on the others
    inputs = {"prompt": prompt, "negative_prompt": s.negative_prompt, "seed": trainer.config.training.seed + number,
              "steps": s.steps, "cfg": s.cfg, "width": size, "height": size, "reference": ""}
    try:
        generator = torch.Generator(device=trainer.device).manual_seed(inputs["seed"])
        with trainer.accelerator.autocast():
            image = pipe(**trainer.adapter.sample_inputs(trainer.parts, inputs), generator=generator).images[0]
    finally:
        pipe.scheduler = original
    partial = path.with_name(f".{path.name}.partial")  # an interrupted draw leaves no half image behind
    image.save(partial, format="PNG")
    os.replace(partial, path)
