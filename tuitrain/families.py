"""The registry of model families: the facts the TUI side and `tuitrain check` need, without torch.

Everything torch-side a family owns (loading, text encoding, denoiser inputs, LoRA
targets, export key names, the tiny test model) lives in its home under
tuitrain/trainer/families/<home>/, found by `FamilyInfo.home`. Adding a family is one
entry here plus one home there (docs/adding-a-family.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Prediction = Literal["epsilon", "v_prediction", "flow"]
# The training objective: DDPM noise schedules (epsilon / v targets) or flow matching (rectified flow).
ObjectiveKind = Literal["ddpm", "flow"]


@dataclass(frozen=True)
class Flavour:
    """A published variant of a family's architecture that trains differently (SD 2.x 768-v vs 512 base).

    Chosen by model.flavour, or detected from the loaded model (trainer side: the family
    home's `detect_flavour`) when model.flavour is empty.
    """

    name: str
    title: str
    prediction: Prediction
    default_resolution: int
    # modelspec.architecture prefix written into saved files (A1111 / ComfyUI / Civitai read it).
    modelspec_architecture: str
    # The VRAM estimate's numbers where this flavour's architecture differs in size (SD3.5 medium); None: the family's.
    memory: MemoryFacts | None = None
    # An editing model (FLUX.1 Kontext): it learns from pairs, each training image with the reference image it is
    # made from (data.concepts[].references), and samples edit sampling.prompts[].reference.
    editing: bool = False


@dataclass(frozen=True)
class MemoryFacts:
    """Numbers for the config editor's VRAM estimate (tui/config_editor/estimate.py says how they combine)."""

    # (denoiser, all text encoders, VAE) parameters of the public model.
    params: tuple[float, float, float]
    # Hidden size of each text encoder's token embedding (what one embedding vector holds).
    embedding_dims: tuple[int, ...]
    # LoRA parameters per unit of rank by target group: attention, ff, conv1x1, conv3x3, text.
    lora_per_rank: dict[str, float]
    # GiB of activations for one image at the native resolution, batch 1, bf16, SDPA attention.
    activations_gib: float


@dataclass(frozen=True)
class FamilyInfo:
    name: str
    title: str
    words: str  # the short name used in messages ("SD 1.x")
    home: str  # the trainer-side package: tuitrain.trainer.families.<home>
    objective: ObjectiveKind
    flavours: tuple[Flavour, ...]
    # Values written into LoRA metadata, read by A1111 / ComfyUI / Civitai.
    ss_base_model_version: str
    memory: MemoryFacts
    ss_v2: bool = False  # kohya's flag for the SD 2.x text encoder (OpenCLIP-H) in LoRA metadata
    text_encoder_names: tuple[str, ...] = ("clip_l",)  # the names embedding files use (A1111 / ComfyUI)
    latent_channels: int = 4
    pixel_multiple: int = 8  # image sides must be multiples of this (the VAE's downscale x any patching)
    notes: tuple[str, ...] = field(default=())
    # Named denoiser LoRA target sets (lora.targets): module-name suffixes, peft's matching rule.
    lora_target_sets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def text_encoders(self) -> int:
        return len(self.text_encoder_names)

    @property
    def default_flavour(self) -> Flavour:
        return self.flavours[0]

    @property
    def default_resolution(self) -> int:
        return self.default_flavour.default_resolution

    @property
    def prediction(self) -> Prediction:
        return self.default_flavour.prediction

    @property
    def modelspec_architecture(self) -> str:
        return self.default_flavour.modelspec_architecture

    def flavour_for_prediction(self, prediction: str) -> Flavour:
        """The flavour that trains with `prediction` (the default when none or several do)."""
        found = [f for f in self.flavours if f.prediction == prediction]
        return found[0] if len(found) == 1 else self.default_flavour

    def memory_for(self, flavour: str) -> MemoryFacts:
        """The VRAM estimate's numbers for model.flavour = `flavour` ("" or unknown: the default flavour's)."""
        return self.flavour(flavour).memory or self.memory

    def flavour(self, name: str) -> Flavour:
        """The flavour called `name` ("" or unknown: the default one)."""
        return next((f for f in self.flavours if f.name == name), self.default_flavour)

    @property
    def flavour_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.flavours)


# FLUX.1's named LoRA target sets, by the names SimpleTuner's flux_lora_target gives them (its users
# bring these names; the module lists are the facts of diffusers' FluxTransformer2DModel it targets).
_FLUX_ATTENTION = ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out")
_FLUX_CONTEXT = ("add_q_proj", "add_k_proj", "add_v_proj", "to_add_out")
_FLUX_FF = ("ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj", "ff_context.net.2", "proj_mlp", "proj_out")
FLUX_LORA_TARGETS: dict[str, tuple[str, ...]] = {
    "all": _FLUX_ATTENTION,  # both streams' joint attention and the single blocks' q/k/v
    "context": _FLUX_CONTEXT,  # the text stream's attention only
    "context+ffs": _FLUX_CONTEXT + ("ff_context.net.0.proj", "ff_context.net.2"),
    "all+ffs": _FLUX_ATTENTION + _FLUX_FF,
    "all+ffs+embedder": ("x_embedder",) + _FLUX_ATTENTION + _FLUX_FF,
    # ostris' ai-toolkit's set: all+ffs and the adaLN modulation of every block (to continue one of its LoRAs)
    "ai-toolkit": _FLUX_ATTENTION + _FLUX_FF + ("norm.linear", "norm1.linear", "norm1_context.linear"),
    # TheLastBen's small LoRAs: the output projection of single blocks 7 and 20 (nano: 7 only)
    "tiny": ("single_transformer_blocks.7.proj_out", "single_transformer_blocks.20.proj_out"),
    "nano": ("single_transformer_blocks.7.proj_out",),
}

# LoRA parameters per unit of rank, counted on the UNets built from the published configs
# (meta device) with the module names tuitrain targets (trainer/families/sd/targets.py):
#   attention: to_q, to_k, to_v, to_out.0 -> sum of (in + out) features
#   ff:        ff.net.0.proj, ff.net.2, proj_in, proj_out
#   conv1x1:   1x1 convolutions of the conv targets (they take lora.rank, as kohya does)
#   conv3x3:   3x3 convolutions (in x 9 + out per unit of lora.conv_rank)
#   text:      q/k/v/out_proj, fc1, fc2 of every text encoder layer (lora.train_text_encoder)
# Parameters: public model sizes, and what diffusers' models with the published configs count:
# SD 1.5 UNet 860M, CLIP ViT-L/14 text 123M, VAE 84M; SD 2.x UNet 865M, OpenCLIP ViT-H text
# (23 layers as diffusers loads it) 340M; SDXL UNet 2.57B, CLIP ViT-L 123M + OpenCLIP ViT-bigG 695M.
# Activations: read off typical training runs; good to about +-30%.
# SD 3.5 medium (24 blocks 1536 wide, the first 13 with a second attention, qk RMS norm) and SD 3 medium (24 blocks,
# no second attention): 2.24B / 2.03B transformer parameters and their LoRA per rank, counted as for 3.5 large
# below on SD3Transformer2DModel built from those configs (meta device); the activations scaled from large's
# 7.0 GiB by blocks x width. Text encoders and VAE as the family's.
_SD3_TEXT, _SD3_TEXT_LORA = 123e6 + 695e6 + 4.76e9, 165_888 + 903_168
_SD35_MEDIUM = MemoryFacts((2.24e9, _SD3_TEXT, 84e6), (768, 1280),
                           {"attention": 746_496, "ff": 721_920, "conv1x1": 0, "conv3x3": 0, "text": _SD3_TEXT_LORA}, 3.0)
_SD3_MEDIUM = MemoryFacts((2.03e9, _SD3_TEXT, 84e6), (768, 1280),
                          {"attention": 586_752, "ff": 721_920, "conv1x1": 0, "conv3x3": 0, "text": _SD3_TEXT_LORA}, 2.7)

FAMILIES: dict[str, FamilyInfo] = {
    info.name: info
    for info in (
        FamilyInfo(
            "sd15", "Stable Diffusion 1.x", "SD 1.x", home="sd", objective="ddpm",
            flavours=(Flavour("base", "SD 1.x", "epsilon", 512, "stable-diffusion-v1"),),
            ss_base_model_version="sd_v1",
            memory=MemoryFacts(
                (860e6, 123e6, 84e6), (768,),
                {"attention": 199_296, "ff": 224_640, "conv1x1": 34_560, "conv3x3": 544_000, "text": 165_888}, 2.6,
            ),
        ),
        # SD 2.x: the 768 model predicts v, the 512 "base" predicts epsilon; with model.flavour
        # empty the trainer reads it from the base model's scheduler config.
        FamilyInfo(
            "sd2", "Stable Diffusion 2.x", "SD 2.x", home="sd", objective="ddpm",
            flavours=(
                Flavour("768-v", "SD 2.x 768 (v-prediction)", "v_prediction", 768, "stable-diffusion-v2-768-v"),
                Flavour("512-base", "SD 2.x 512 base (epsilon)", "epsilon", 512, "stable-diffusion-v2-512"),
            ),
            ss_base_model_version="sd_v2", ss_v2=True,
            memory=MemoryFacts(
                (865e6, 340e6, 84e6), (1024,),
                {"attention": 207_488, "ff": 224_640, "conv1x1": 34_560, "conv3x3": 544_000, "text": 423_936}, 4.0,
            ),
        ),
        FamilyInfo(
            "sdxl", "Stable Diffusion XL", "SDXL", home="sdxl", objective="ddpm",
            flavours=(Flavour("base", "SDXL base", "epsilon", 1024, "stable-diffusion-xl-v1-base"),),
            ss_base_model_version="sdxl_base_v1-0",
            memory=MemoryFacts(
                (2567e6, 123e6 + 695e6, 84e6), (768, 1280),
                {"attention": 1_451_520, "ff": 1_208_320, "conv1x1": 23_040, "conv3x3": 355_840, "text": 903_168}, 9.0,
            ),
            text_encoder_names=("clip_l", "clip_g"),
        ),
        # FLUX.1: 11.90B transformer parameters (counted on the shipped config, meta device), CLIP-L 123M +
        # T5-XXL encoder 4.76B, VAE 84M. LoRA per rank counted the same way on trainer/families/flux
        # targets; the activations figure is a first guess until bench/train_gpu.py --families flux
        # measures it (published anchor: a rank-16 LoRA with a bf16 base trains in just over 30 GB).
        FamilyInfo(
            "flux", "FLUX.1", "Flux.1", home="flux", objective="flow",
            flavours=(
                Flavour("dev", "FLUX.1 dev (guidance-distilled)", "flow", 1024, "flux-1-dev"),
                Flavour("schnell", "FLUX.1 schnell (timestep-distilled)", "flow", 1024, "flux-1-schnell"),
                Flavour("krea", "FLUX.1 Krea dev (dev architecture)", "flow", 1024, "flux-1-dev"),
                # Image editing: reference-image tokens join the sequence (data.concepts[].references).
                Flavour("kontext", "FLUX.1 Kontext dev (image editing)", "flow", 1024, "flux-1-kontext-dev",
                        editing=True),
            ),
            ss_base_model_version="flux1",
            memory=MemoryFacts(
                (11.90e9, 123e6 + 4.76e9, 84e6), (768,),
                {"attention": 1_634_304, "ff": 2_454_592, "conv1x1": 0, "conv3x3": 0, "text": 165_888}, 8.0,
            ),
            text_encoder_names=("clip_l", "t5xxl"),
            latent_channels=16,
            pixel_multiple=16,  # 8x VAE, then 2x2 packing
            lora_target_sets=FLUX_LORA_TARGETS,
        ),
        # SD3 / 3.5: the 3.5 large transformer has 8.06B parameters (counted on the shipped config), CLIP-L
        # 123M + CLIP-G 695M + T5-XXL encoder 4.76B, VAE 84M; LoRA per rank counted on the trainer/families/sd3
        # targets; activations a first guess until bench/train_gpu.py measures them. modelspec names are kohya's.
        FamilyInfo(
            "sd3", "Stable Diffusion 3 / 3.5", "SD3", home="sd3", objective="flow",
            flavours=(
                Flavour("3.5-large", "SD 3.5 large", "flow", 1024, "stable-diffusion-v3-5-large"),
                Flavour("3.5-large-turbo", "SD 3.5 large turbo", "flow", 1024, "stable-diffusion-v3-5-large-turbo"),
                Flavour("3.5-medium", "SD 3.5 medium", "flow", 1024, "stable-diffusion-v3-5-medium", _SD35_MEDIUM),
                Flavour("3-medium", "SD 3 medium", "flow", 1024, "stable-diffusion-v3-medium", _SD3_MEDIUM),
            ),
            ss_base_model_version="sd3",
            memory=MemoryFacts(
                (8.06e9, 123e6 + 695e6 + 4.76e9, 84e6), (768, 1280),
                {"attention": 1_473_792, "ff": 1_824_000, "conv1x1": 0, "conv3x3": 0, "text": 165_888 + 903_168}, 7.0,
            ),
            text_encoder_names=("clip_l", "clip_g", "t5xxl"),
            latent_channels=16,
            pixel_multiple=16,  # 8x VAE, then 2x2 patches
        ),
        # PixArt-α / Σ: one architecture (PixArt-XL/2), the flavours differ in T5 length (α 120, Σ 300), VAE (α: SD's,
        # Σ: SDXL's; the same 84M architecture) and α 1024's resolution / aspect-ratio conditioning. Transformer
        # 610.9M parameters counted on the shipped Σ config (meta device; α's micro-conditions add 0.5M), T5-XXL
        # encoder 4.76B, VAE 84M; LoRA per rank counted on trainer/families/pixart targets (attn1 + attn2 q/k/v/out;
        # ff: the MLP). Activations a first guess, scaled from Flux's by blocks x width x tokens (28 x 1152 x 4096
        # vs 57 x 3072 x 4608), until bench/train_gpu.py --families pixart measures them. No kohya base-model
        # name exists for PixArt; modelspec names follow the model ids.
        FamilyInfo(
            "pixart", "PixArt-α / PixArt-Σ", "PixArt", home="pixart", objective="ddpm",
            flavours=(
                Flavour("sigma", "PixArt-Σ (T5 300 tokens, SDXL VAE)", "epsilon", 1024, "pixart-sigma"),
                Flavour("alpha", "PixArt-α (T5 120 tokens, SD VAE)", "epsilon", 1024, "pixart-alpha"),
            ),
            ss_base_model_version="pixart",
            memory=MemoryFacts(
                (610.9e6, 4.76e9, 84e6), (4096,),
                {"attention": 516_096, "ff": 322_560, "conv1x1": 0, "conv3x3": 0, "text": 0}, 1.5,
            ),
            text_encoder_names=("t5xxl",),
            pixel_multiple=16,  # 8x VAE, then 2x2 patches
        ),
        # Stable Cascade stage C: the prior (StableCascadeUNet) on EfficientNet latents, 16 channels at 1/42.67 of the
        # image (24x24 at 1024). 3.59B / 1.03B prior parameters (full / lite) counted on the shipped configs (meta
        # device); CLIP-G with projection 695M; "VAE": the EfficientNetV2-S encoder, 20.2M (trainer/families/cascade/
        # effnet.py, the published effnet_encoder's count). LoRA per rank counted on the cascade targets (attention
        # q/k/v/out of every attention block; ff: the res blocks' channelwise MLP). Activations a first guess,
        # scaled from Flux's by blocks x width x tokens, until bench/train_gpu.py --families cascade measures them.
        # No kohya base-model name exists for Stable Cascade; modelspec names follow the model ids.
        FamilyInfo(
            "cascade", "Stable Cascade (stage C)", "Stable Cascade", home="cascade", objective="ddpm",
            flavours=(
                Flavour("stage-c", "Stable Cascade stage C (3.6B)", "epsilon", 1024, "stable-cascade-v1-prior"),
                Flavour("stage-c-lite", "Stable Cascade stage C lite (1B)", "epsilon", 1024,
                        "stable-cascade-v1-prior-lite",
                        MemoryFacts((1.031e9, 695e6, 20.2e6), (1280,),
                                    {"attention": 393_216, "ff": 493_056, "conv1x1": 0, "conv3x3": 0, "text": 0}, 0.4)),
            ),
            ss_base_model_version="stable_cascade",
            memory=MemoryFacts(
                (3.589e9, 695e6, 20.2e6), (1280,),
                {"attention": 1_048_576, "ff": 1_312_768, "conv1x1": 0, "conv3x3": 0, "text": 0}, 1.0,
            ),
            text_encoder_names=("clip_g",),
            latent_channels=16,
            pixel_multiple=32,  # the EfficientNet's downscale; latents are ceil(side / 42.67)
        ),
        # Würstchen v2's prior (stage C): WuerstchenPrior on EfficientNet latents, 16 channels at 1/42.67 of the image
        # (24x24 at 1024), conditioned on CLIP-bigG's hidden states alone. 993.6M prior parameters counted on the
        # shipped config (meta device); CLIP-bigG without projection 693.0M; "VAE": the EfficientNetV2-S encoder,
        # 20.2M. LoRA per rank counted on the wuerstchen targets (attention q/k/v/out of the 32 blocks; ff: their
        # channelwise MLP). Activations a first guess, between Cascade lite's and the full prior's (32 blocks of
        # 1536 at 24x24 with 77 text tokens), until bench/train_gpu.py --families wuerstchen measures them. No
        # kohya base-model name exists; the modelspec name is OneTrainer's.
        FamilyInfo(
            "wuerstchen", "Würstchen v2 (prior)", "Würstchen v2", home="wuerstchen", objective="ddpm",
            flavours=(Flavour("v2", "Würstchen v2 prior (1B)", "epsilon", 1024, "wuerstchen-v2-prior"),),
            ss_base_model_version="wuerstchen_v2",
            memory=MemoryFacts(
                (993.6e6, 693.0e6, 20.2e6), (1280,),
                {"attention": 393_216, "ff": 491_520, "conv1x1": 0, "conv3x3": 0, "text": 737_280}, 0.6,
            ),
            text_encoder_names=("clip_g",),
            latent_channels=16,
            pixel_multiple=32,  # the EfficientNet's downscale; latents are ceil(side / 42.67)
        ),
    )
}

FAMILY_NAMES: tuple[str, ...] = tuple(FAMILIES)


def with_article(words: str) -> str:
    """ "an SD 1.x", "an SDXL", "a Flux.1": an acronym read letter by letter takes the article of its first
    letter's name, a word that of its first sound."""
    acronym = len(words) > 1 and (words[1].isupper() or words[1].isdigit())
    vowel_sound = words[:1] in ("AEFHILMNORSX" if acronym else "AEIOUaeiou")
    return f"{'an' if vowel_sound else 'a'} {words}"
