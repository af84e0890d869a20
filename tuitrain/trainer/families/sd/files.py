"""SD 1.x and SD 2.x files: diffusers classes, shipped configs, single-file layout (torch-free)."""

from __future__ import annotations

from pathlib import Path

from tuitrain.trainer.families.files import INPAINT_CHANNELS, FamilyFiles, Variant

CONFIGS = Path(__file__).resolve().parent / "configs"
_COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
# Components diffusers loads from the config folder that training never needs.
SD_EXTRAS = {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}
_STABLEDIFFUSION = "https://github.com/Stability-AI/stablediffusion"

SD15 = FamilyFiles(
    family="sd15",
    pipeline_class="StableDiffusionPipeline",
    components=_COMPONENTS,
    configs=CONFIGS / "sd15",
    public_model="runwayml/stable-diffusion-v1-5",
    variants=(
        Variant("inpainting", INPAINT_CHANNELS, "StableDiffusionInpaintPipeline", "runwayml/stable-diffusion-inpainting", {
            "model_index.json": {"_class_name": "StableDiffusionInpaintPipeline"},
            "unet/config.json": {"in_channels": INPAINT_CHANNELS},
        }),
    ),
    pipeline_extras=SD_EXTRAS,
    text_encoder_prefixes=("cond_stage_model.transformer.",),
    context_dim=768,
    original_implementation=_STABLEDIFFUSION,
    embedding_keys=("emb_params",),
)

# The shipped configs are 2.1's (768 px, v-prediction). The public inpainting model was trained
# from the 512 px epsilon base, so its changes say so.
SD2 = FamilyFiles(
    family="sd2",
    pipeline_class="StableDiffusionPipeline",
    components=_COMPONENTS,
    configs=CONFIGS / "sd2",
    public_model="stabilityai/stable-diffusion-2-1",
    variants=(
        Variant("inpainting", INPAINT_CHANNELS, "StableDiffusionInpaintPipeline", "stabilityai/stable-diffusion-2-inpainting", {
            "model_index.json": {"_class_name": "StableDiffusionInpaintPipeline"},
            "unet/config.json": {"in_channels": INPAINT_CHANNELS, "sample_size": 64},
            "scheduler/scheduler_config.json": {"prediction_type": "epsilon"},
        }),
    ),
    pipeline_extras=SD_EXTRAS,
    text_encoder_prefixes=("cond_stage_model.model.",),
    context_dim=1024,
    original_implementation=_STABLEDIFFUSION,
    embedding_keys=("emb_params",),
)

FILES = {"sd15": SD15, "sd2": SD2}
