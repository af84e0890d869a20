"""Sample images during training, with the adapter active, through the family's own pipeline."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from tuitrain.trainer.loop import Position, Trainer

SAMPLERS = {
    "ddim": "DDIMScheduler",
    "euler": "EulerDiscreteScheduler",
    "euler_a": "EulerAncestralDiscreteScheduler",
    "dpmpp_2m": "DPMSolverMultistepScheduler",
    "unipc": "UniPCMultistepScheduler",
}


def sample_prompts(trainer: Trainer) -> list[dict]:
    """The configured prompts, each filled in from [sampling]; without any, the first two captions."""
    s = trainer.config.sampling
    prompts = [p.model_dump() for p in s.prompts]
    if not prompts:
        import random

        captions: dict[str, str] = {}  # caption -> its sample's reference image (editing models), else ""
        for sample in trainer.data.samples:
            caption = trainer.data.base_caption(sample, random.Random(0))
            if caption and caption not in captions:
                captions[caption] = str(sample.reference.path) if sample.reference else ""
            if len(captions) == 2:
                break
        prompts = [{"prompt": c, "reference": r} for c, r in captions.items()] or [{"prompt": ""}]
    res = trainer.config.data.resolution
    return [
        {
            "prompt": p["prompt"],
            "negative_prompt": p.get("negative_prompt") if p.get("negative_prompt") is not None else s.negative_prompt,
            "seed": p.get("seed") if p.get("seed") is not None else s.seed,
            "steps": p.get("steps") or s.steps,
            "cfg": p.get("cfg") if p.get("cfg") is not None else s.cfg,
            "width": p.get("width") or res,
            "height": p.get("height") or res,
            "reference": str(trainer.config_dir / os.path.expanduser(p["reference"])) if p.get("reference") else "",
        }
        for p in prompts
    ]


def text_to_image_inputs(width: int, height: int) -> dict[str, Any]:
    """What makes an inpainting pipeline draw from the prompt alone: everything masked, nothing kept.

    With a white mask the masked image is all zeros whatever the image is (the case
    training teaches with fully masked samples), and strength 1 starts from pure noise
    (the SDXL inpainting pipeline's default is 0.9999, which would start from the image).
    """
    from PIL import Image

    return {"image": Image.new("RGB", (width, height)), "mask_image": Image.new("L", (width, height), 255),
            "strength": 1.0}


@torch.no_grad()
def draw_samples(trainer: Trainer, pos: Position) -> Iterator[tuple[Path, str]]:
    pipe = trainer.adapter.sample_pipeline(trainer.parts)
    # The dashboard and the headless display show progress; diffusers' tqdm bars would only garble them.
    pipe.set_progress_bar_config(disable=True)
    sampler = trainer.config.sampling.sampler
    original_scheduler = pipe.scheduler
    if sampler != "default":
        import diffusers

        pipe.scheduler = getattr(diffusers, SAMPLERS[sampler]).from_config(pipe.scheduler.config)
    was_training = trainer.parts.denoiser.training
    trainer.parts.denoiser.eval()
    folder = trainer.run.samples
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for index, p in enumerate(sample_prompts(trainer)):
            generator = torch.Generator(device=trainer.device).manual_seed(p["seed"])
            with trainer.accelerator.autocast():
                image = pipe(**trainer.adapter.sample_inputs(trainer.parts, p), generator=generator).images[0]
            stem = f"step{pos.step:06d}-e{pos.shown_epoch:04d}-p{index:02d}"
            path = folder / f"{stem}.png"
            image.save(path)
            (folder / f"{stem}.json").write_text(json.dumps({**p, "step": pos.step, "epoch": pos.shown_epoch}))
            yield path, p["prompt"]
    finally:
        pipe.scheduler = original_scheduler
        trainer.parts.denoiser.train(was_training)
