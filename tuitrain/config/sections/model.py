"""[model]: the base model, its family and flavour, and how its weights are stored."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator, model_validator

from tuitrain.config.errors import quote
from tuitrain.config.fields import Section, option
from tuitrain.config.sections.common import a_possible_path
from tuitrain.families import FAMILIES, FAMILY_NAMES

# Built from the family registry, so a new family is one registry entry.
FamilyName = Literal[FAMILY_NAMES]  # type: ignore[valid-type]
# How frozen weights may be stored (trainer/quantize.py: which library stores which mode, and why).
QuantizeMode = Literal["none", "int8", "nf4", "fp8", "int4"]

# The flavours each family has, for model.flavour's help: "sd15: base; sd2: 768-v, 512-base; ...".
_FLAVOURS_TEXT = "; ".join(f"{name}: {', '.join(info.flavour_names)}" for name, info in FAMILIES.items())
_DDPM_FAMILIES = ", ".join(name for name, info in FAMILIES.items() if info.objective == "ddpm")


class ModelSection(Section):
    group = "model"

    family: FamilyName = option(
        "sd15",
        "Model family of the base model: sd15 (SD 1.x), sd2 (SD 2.x), sdxl, flux (FLUX.1), sd3 (SD 3 / 3.5), "
        "pixart (PixArt-α / Σ).",
        level="essential",
    )
    flavour: str = option(
        "",
        "Which variant of the family the base model is, where they train differently (SD 2.x: 768-v predicts v, "
        f"512-base epsilon). Empty: detected from the base model, else the family's first. With prediction = auto "
        f"the flavour's prediction type trains; an explicit prediction wins (e.g. a v-prediction SDXL model). "
        f"Flavours: {_FLAVOURS_TEXT}.",
    )
    base: str = option(
        "",
        "Base model: a hub id (e.g. stabilityai/stable-diffusion-xl-base-1.0), a local diffusers "
        "folder, or a local single-file .safetensors checkpoint. Relative paths are relative to the "
        "config file.",
        level="essential",
    )
    vae: str = option(
        "",
        "Optional separate VAE (hub id, diffusers folder or .safetensors), e.g. an fp16-safe SDXL VAE. "
        "Empty: the base model's VAE.",
    )
    text_encoder: str = option(
        "",
        "FLUX.1's CLIP-L text encoder as its own .safetensors file (ComfyUI's clip_l.safetensors: transformers' "
        "CLIPTextModel names), instead of the base model's. Empty: from model.base (a diffusers folder, or an "
        "all-in-one checkpoint's text_encoders.clip_l) or model.config's folder.",
        family="flux",
    )
    text_encoder_2: str = option(
        "",
        "FLUX.1's T5-XXL encoder as its own .safetensors file (ComfyUI's t5xxl_fp16.safetensors, "
        "t5xxl_fp8_e4m3fn.safetensors or its _scaled variant: transformers' T5EncoderModel names), instead of the "
        "base model's. Empty: from model.base (a diffusers folder, or an all-in-one checkpoint's "
        "text_encoders.t5xxl) or model.config's folder.",
        family="flux",
    )
    variant: str = option("", "Hub weight variant to download, e.g. fp16. Empty: the default weights.")
    config: str = option(
        "",
        "Architecture configs for a single-file base model: a diffusers-format folder (model_index.json, "
        "component configs, tokenizers). Empty: the family's public configs shipped with tuitrain, so single "
        "files load offline (FLUX.1: with CLIP-L, T5 and the VAE from model.text_encoder, text_encoder_2 and vae, "
        "or from an all-in-one checkpoint). A FLUX.1 transformer file also takes the parts it is not given from "
        "this folder's weights.",
    )
    prediction: Literal["auto", "epsilon", "v_prediction", "flow"] = option(
        "auto",
        "What the denoiser predicts. auto: read it from the base model's scheduler config "
        f"(SD 2.x 768 models predict v). DDPM families ({_DDPM_FAMILIES}) predict epsilon or v_prediction; "
        "flow-matching families predict flow (the velocity noise - image).",
    )
    clip_skip: int = option(
        0, "Use the output of this many layers before the last of the text encoder (0 or 1: the last).", ge=0, le=12
    )
    quantize: QuantizeMode = option(
        "none",
        "Store the frozen denoiser's linear layers quantized, to train on a smaller GPU: int8 (bitsandbytes "
        "LLM.int8, about half of bf16's memory for those weights), nf4 (bitsandbytes 4-bit NormalFloat, about a "
        "quarter: QLoRA), fp8 (optimum-quanto float8 e4m3, weight-only: any GPU, about half) or int4 "
        "(optimum-quanto, about a quarter). fp8 / int4 need the quantize extra: pip install "
        "'tuitrain[quantize]'. The adapter trains in fp32 on top and is saved for the unquantized base. LoRA and "
        "embeddings with any mode; LoKr / LoHa with int8, fp8 or int4; not with training.method = 'finetune', "
        "which trains those weights.",
    )
    quantize_text_encoders: QuantizeMode = option(
        "none",
        "Store the text encoders' linear layers quantized, as model.quantize does the denoiser's (T5-XXL: 9.5 GB "
        "in bf16, ~2.7 GB in nf4). Matters when captions are encoded during training (not cached) or the text "
        "encoders train a LoRA; not with a fine-tune that trains them.",
    )
    text_encoders_after_caching: Literal["cpu", "keep"] = option(
        "cpu",
        "Where the text encoders wait once every caption's embedding is cached (data.cache_text_embeddings, "
        "captions fixed: no shuffle_tags, caption dropout or prompt files, encoders not trained): cpu moves them "
        "off the GPU until samples are drawn (Flux's T5 frees ~9.5 GB of VRAM); keep leaves them there.",
    )
    vae_tiling: bool = option(
        False,
        "Encode (caching latents) and decode (samples) with the VAE in tiles, one image at a time (diffusers' "
        "enable_tiling / enable_slicing): less VRAM for large images, at a small cost in speed; the latent "
        "cache is keyed on it.",
    )

    _paths_are_possible = field_validator("base", "vae", "config", "text_encoder", "text_encoder_2")(a_possible_path)

    @model_validator(mode="after")
    def _flavour_and_prediction_fit_the_family(self) -> ModelSection:
        info = FAMILIES[self.family]
        if self.flavour and self.flavour not in info.flavour_names:
            raise ValueError(
                f"flavour: must be one of the {self.family} flavours ({', '.join(info.flavour_names)}) or empty "
                f"(detect), got {quote(self.flavour)}"
            )
        if info.objective == "ddpm" and self.prediction == "flow":
            raise ValueError(
                f"prediction: {self.family} trains with DDPM noise schedules: must be auto, epsilon or v_prediction, "
                f"got {quote(self.prediction)}"
            )
        if info.objective == "flow" and self.prediction in ("epsilon", "v_prediction"):
            raise ValueError(
                f"prediction: {self.family} trains with flow matching: must be auto or flow, got {quote(self.prediction)}"
            )
        for key in ("text_encoder", "text_encoder_2"):
            if getattr(self, key) and self.family != "flux":
                raise ValueError(f"{key}: only flux loads text encoders from their own files; leave it empty for "
                                 f"{self.family}, got {quote(getattr(self, key))}")
        return self
