"""The config schema: every option tuitrain has, in one place.

Sections are TOML tables. Each option is declared with `option(...)`, which
carries its default, help text, level (essential / advanced) and form tab.
Value-dependent rules live in validators here too, so the CLI, the form and the
trainer all reject the same configs with the same messages.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from tuitrain.config.errors import quote, show_value
from tuitrain.config.fields import Section, option, text_toml_can_hold
from tuitrain.dataset.paths import path_text_problem
from tuitrain.families import FAMILIES, FAMILY_NAMES
from tuitrain.runs.layout import output_name_problem

SCHEMA_VERSION = 1

# Built from the family registry, so a new family is one registry entry.
FamilyName = Literal[FAMILY_NAMES]  # type: ignore[valid-type]

# The flavours each family has, for model.flavour's help: "sd15: base; sd2: 768-v, 512-base; ...".
_FLAVOURS_TEXT = "; ".join(f"{name}: {', '.join(info.flavour_names)}" for name, info in FAMILIES.items())
_DDPM_FAMILIES = ", ".join(name for name, info in FAMILIES.items() if info.objective == "ddpm")

CaptionSource = Literal["per-image", "prompt-file", "filename", "instance"]

# Upper bounds of options that would otherwise be open: `check` must refuse what `train`
# cannot take (issue 14: training.seed = 10**30 passed check, then overflowed
# torch.manual_seed, which takes < 2**64). Every number option has a finite range.
MAX_SEED = 2**63 - 1  # TOML's largest integer; torch generators take up to 2**64 - 1
MAX_STEPS = 1_000_000_000  # steps (or steps between events): far past any run, and exact as floats
MAX_EPOCHS = 100_000
MAX_KEPT = 10_000  # saves or backups kept


def _a_possible_path(value: str) -> str:
    """A path value no file system call will choke on (a NUL, an unknown ~user, a 300-byte name): said here, naming
    the key, instead of as a traceback from the first stat in check, train or the TUI."""
    problem = path_text_problem(value)
    if problem:
        raise ValueError(f"{problem}, got {quote(value, 100)}")
    return value


class ModelSection(Section):
    group = "model"

    family: FamilyName = option(
        "sd15",
        "Model family of the base model: sd15 (SD 1.x), sd2 (SD 2.x), sdxl, flux (FLUX.1), sd3 (SD 3 / 3.5).",
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
    variant: str = option("", "Hub weight variant to download, e.g. fp16. Empty: the default weights.")
    config: str = option(
        "",
        "Architecture configs for a single-file base model: a diffusers-format folder (model_index.json, "
        "component configs, tokenizers). Empty: the family's public configs shipped with tuitrain, so single "
        "files load offline.",
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
    quantize: Literal["none", "int8", "nf4"] = option(
        "none",
        "Store the frozen denoiser's linear layers quantized (bitsandbytes), to train on a smaller GPU: int8 "
        "(LLM.int8, about half of bf16's memory for those weights) or nf4 (4-bit NormalFloat, about a quarter: "
        "QLoRA). The adapter trains in fp32 on top and is saved for the unquantized base. LoRA and embeddings with "
        "either; LoKr / LoHa with int8; not with training.method = 'finetune', which trains those weights.",
    )

    _paths_are_possible = field_validator("base", "vae", "config")(_a_possible_path)

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
        return self


class Concept(Section):
    """One folder of training images and how to caption them."""

    group = "data"

    path: str = option(
        ...,
        "Folder of training images. Relative paths are relative to the config file.",
        level="essential",
    )
    name: str = option("", "Display name. Empty: the folder name without a leading 'NN_' repeat count.")
    caption: CaptionSource = option(
        "per-image",
        "Where captions come from: per-image (a text file next to each image), prompt-file (one "
        "prompt per line, picked at random), filename (the file name, numbering stripped, _ as "
        "spaces), instance (instance_prompt for every image).",
    )
    caption_extension: str = option(".txt", "Extension of per-image caption files.")
    prompt_file: str = option("", "Prompt file for caption = prompt-file (relative to the concept folder).")
    instance_prompt: str = option("", "Caption for every image when caption = instance (e.g. 'photo of sks dog').")
    repeats: int | None = option(
        None,
        "How many times each image is seen per epoch. Unset: taken from a folder name like "
        "'10_faery' (kohya style), else 1.",
        ge=1,
        le=10000,
    )
    recursive: bool = option(False, "Also take images from sub-folders.")

    _paths_are_possible = field_validator("path", "prompt_file", "caption_extension")(_a_possible_path)

    @model_validator(mode="after")
    def _caption_needs(self) -> Concept:
        if self.caption == "instance" and not self.instance_prompt.strip():
            raise ValueError("instance_prompt: required when caption = 'instance'")
        if not self.caption_extension.startswith("."):
            raise ValueError(f"caption_extension: must start with '.', got {quote(self.caption_extension)}")
        return self


class DataSection(Section):
    group = "data"

    resolution: int = option(
        512,
        "Training resolution: images are bucketed to about resolution x resolution pixels.",
        level="essential",
        ge=64,
        le=4096,
    )
    concepts: list[Concept] = option(
        default_factory=list,
        help="Image folders to train on ([[data.concepts]] tables).",
        level="essential",
    )
    bucketing: bool = option(
        True, "Aspect-ratio buckets: train on each image at its own aspect ratio instead of a centre square."
    )
    bucket_step: int = option(64, "Bucket sides are multiples of this many pixels.", ge=8, le=256)
    max_aspect_ratio: float = option(2.0, "Widest (or tallest) bucket allowed, as long side / short side.", ge=1.0, le=8.0)
    flip: bool = option(False, "Random horizontal flip (do not use for asymmetric subjects or text).")
    crop_jitter: bool = option(False, "Random crop position inside the bucket instead of the centre.")
    shuffle_tags: bool = option(False, "Shuffle comma-separated tags of each caption every time it is used.")
    keep_tags: int = option(0, "With shuffle_tags: keep this many leading tags in place.", ge=0, le=100)
    caption_dropout: float = option(
        0.0, "Probability of training a sample with an empty caption.", ge=0.0, le=1.0
    )
    cache_latents: bool = option(True, "Encode images with the VAE once and cache the latents on disk.")
    cache_text_embeddings: bool = option(
        True, "Cache text encoder outputs on disk (ignored while the text encoder trains)."
    )
    workers: int = option(
        2, "Threads that prepare the next batches (image loading, VAE encoding of uncached latents) while a step "
        "trains; 0: in the step.", ge=0, le=64)
    mask_suffix: str = option(
        "-masklabel.png",
        "Mask files are named <image stem> + this suffix (OneTrainer's convention), beside their image and of its "
        "aspect ratio: white = the part to learn (masked_loss) or to repaint (inpainting models), black = the rest.",
    )
    random_mask_probability: float = option(
        0.75,
        "Inpainting models: the chance that an image without a mask file gets a random mask (boxes, blobs, "
        "strokes); else the whole image is masked, which keeps plain text-to-image working (the public "
        "inpainting models were trained so a quarter of the time).",
        ge=0.0,
        le=1.0,
    )

    @field_validator("mask_suffix")
    @classmethod
    def _mask_suffix_names_a_sibling_image(cls, value: str) -> str:
        extension = next((e for e in (".png", ".jpg", ".jpeg", ".webp") if value.lower().endswith(e)), "")
        if not extension or len(value) == len(extension) or "/" in value or "\\" in value:
            raise ValueError(
                "must be what follows an image's stem in its mask's file name, ending with an image extension "
                f"(e.g. '-masklabel.png' for img01-masklabel.png), got {quote(value)}"
            )
        return value

    @field_validator("resolution")
    @classmethod
    def _resolution_multiple_of_8(cls, value: int) -> int:
        # Checked on its own too, so the mistake shows even when the table has other errors.
        if value % 8:
            raise ValueError(f"must be a multiple of 8 (e.g. {round(value / 64) * 64}), got {value}")
        return value

    @model_validator(mode="after")
    def _resolution_fits_steps(self) -> DataSection:
        if self.resolution % self.bucket_step:
            raise ValueError(
                f"resolution: must be a multiple of data.bucket_step ({self.bucket_step}), got {self.resolution}"
            )
        return self


class TrainingSection(Section):
    group = "training"

    method: Literal["lora", "embedding", "finetune"] = option(
        "lora", "What to train: lora (an adapter), embedding (textual inversion), finetune (the model).",
        level="essential",
    )
    epochs: int = option(
        10, "Passes over the data set (ignored when max_steps is set).", level="essential", ge=1, le=MAX_EPOCHS
    )
    max_steps: int | None = option(
        None, "Stop after this many optimizer steps instead of counting epochs.", ge=1, le=MAX_STEPS
    )
    batch_size: int = option(1, "Images per step per GPU.", level="essential", ge=1, le=1024)
    gradient_accumulation: int = option(1, "Accumulate gradients over this many batches per optimizer step.", ge=1, le=1024)
    learning_rate: float = option(
        1e-4, "Learning rate of the trained weights (use 1.0 with Prodigy).", level="essential", gt=0.0, le=10.0
    )
    lr_scheduler: Literal["constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts"] = option(
        "constant", "Learning-rate schedule over the run."
    )
    lr_warmup_steps: int = option(0, "Steps of linear warm-up from 0 to the learning rate.", ge=0, le=MAX_STEPS)
    lr_cycles: int = option(1, "Restarts for cosine_with_restarts.", ge=1, le=1000)
    max_grad_norm: float = option(1.0, "Clip gradients to this norm (0: no clipping).", ge=0.0, le=1e6)
    mixed_precision: Literal["auto", "bf16", "fp16", "fp32"] = option(
        "auto", "Compute precision. auto: bf16 on GPUs that support it, fp16 on older GPUs, fp32 on CPU."
    )
    gradient_checkpointing: bool = option(False, "Recompute activations in the backward pass: less VRAM, ~20-30% slower.")
    noise_offset: float = option(0.0, "Noise offset (0.05-0.1 helps very dark and bright images; 0: off).", ge=0.0, le=1.0)
    min_snr_gamma: float = option(0.0, "Min-SNR loss weighting gamma (5 is common; 0: off).", ge=0.0, le=100.0)
    masked_loss: bool = option(
        False,
        "Weight the loss by each image's mask (<image>-masklabel.png: white = learn, black = ignore); "
        "images without a mask file weigh everywhere the same.",
    )
    unmasked_weight: float = option(
        0.1, "With masked_loss: the loss weight of areas outside the mask (0: ignore them entirely).", ge=0.0, le=1.0
    )
    seed: int = option(
        42, "Seed for noise, shuffling and augmentations: the same seed repeats the run.", ge=0, le=MAX_SEED
    )
    device: str = option("auto", "Device to train on: auto, cpu, cuda, cuda:1, ...")

    @model_validator(mode="after")
    def _device_name(self) -> TrainingSection:
        d = self.device
        ok = d in ("auto", "cpu", "cuda", "mps") or (d.startswith("cuda:") and d[5:].isdigit())
        if not ok:
            raise ValueError(f"device: must be auto, cpu, cuda, cuda:N or mps, got {quote(d)}")
        return self


class ObjectiveSection(Section):
    """How noise and timesteps are drawn and samples weighed: DDPM's and flow matching's own settings.

    training.noise_offset and training.min_snr_gamma stay in [training], where existing configs have them.
    Each option is marked with the objective that uses it; the form shows it only for those families.
    """

    group = "training"

    timestep_sampling: Literal["uniform", "logit_normal", "mode", "cosmap", "sigmoid"] = option(
        "logit_normal",
        "Flow matching: how noise levels are drawn. uniform; logit_normal (logit_mean, logit_std: SD3's choice, "
        "most draws mid-way); mode (mode_scale); cosmap; sigmoid (sigmoid(sigmoid_scale * randn), as SimpleTuner "
        "and ai-toolkit; the same as logit_normal with mean 0 and std sigmoid_scale).",
        objective="flow",
    )
    logit_mean: float = option(
        0.0,
        "Flow matching, logit_normal: mean of the normal draw before the sigmoid (0: centred on sigma 0.5; above 0: "
        "less noise, as in diffusers' scripts, where the draw picks from the scheduler's sigmas running from 1 down).",
        objective="flow", ge=-10.0, le=10.0,
    )
    logit_std: float = option(
        1.0, "Flow matching, logit_normal: spread of the normal draw before the sigmoid (larger: more extremes).",
        objective="flow", gt=0.0, le=10.0,
    )
    mode_scale: float = option(
        1.29,
        "Flow matching, mode: SD3's mode sampling scale s (diffusers' default 1.29; 0: uniform). It stays a "
        "valid distribution from -1 to 1.75.",
        objective="flow", ge=-1.0, le=1.75,
    )
    sigmoid_scale: float = option(
        1.0, "Flow matching, sigmoid: the scale of randn before the sigmoid (larger: more extremes).",
        objective="flow", gt=0.0, le=10.0,
    )
    shift: float | None = option(
        None,
        "Flow matching: static timestep shift, sigma' = shift * sigma / (1 + (shift - 1) * sigma); above 1 trains "
        "more at high noise (SD3 uses 3). Unset: the base model's scheduler config's shift, as diffusers' training "
        "scripts do (1 for models that shift by resolution, e.g. Flux).",
        objective="flow", ge=0.1, le=20.0,
    )
    auto_shift: bool = option(
        False,
        "Flow matching: shift each batch by its image size as Flux's sampler does (mu between the scheduler "
        "config's base_shift and max_shift over its image sequence lengths). Leave shift unset with it.",
        objective="flow",
    )
    loss_weighting: Literal["none", "sigma_sqrt", "cosmap"] = option(
        "none",
        "Flow matching: per-sample loss weights by noise level (diffusers' compute_loss_weighting_for_sd3): none, "
        "sigma_sqrt (1 / sigma^2), cosmap.",
        objective="flow",
    )
    zero_terminal_snr: bool = option(
        False,
        "DDPM: rescale the noise schedule so the last timestep is pure noise (Lin et al. 2023): the model learns "
        "truly dark and bright images. Needs model.prediction = v_prediction; the model must then be sampled "
        "with a zero-terminal-SNR schedule too.",
        objective="ddpm",
    )

    @model_validator(mode="after")
    def _one_kind_of_shift(self) -> ObjectiveSection:
        if self.auto_shift and self.shift is not None:
            raise ValueError(
                f"shift: leave it unset with auto_shift = true (the shift then follows each image's size), "
                f"got {self.shift:g}"
            )
        return self


class OptimizerSection(Section):
    group = "optimizer"

    name: Literal["adamw", "adamw8bit", "prodigy", "lion8bit", "adafactor"] = option(
        "adamw",
        "adamw (fused on CUDA), adamw8bit and lion8bit (bitsandbytes, GPU only), prodigy "
        "(learning-rate free: set learning_rate = 1), adafactor.",
        level="essential",
    )
    weight_decay: float = option(0.01, "Decoupled weight decay.", ge=0.0, le=10.0)
    beta1: float = option(0.9, "First-moment decay (Adam, Lion, Prodigy).", ge=0.0, lt=1.0)
    beta2: float = option(0.999, "Second-moment decay (Adam, Lion, Prodigy).", ge=0.0, lt=1.0)
    eps: float = option(1e-8, "Numerical epsilon (Adam, Prodigy).", gt=0.0, le=1.0)
    d_coef: float = option(1.0, "Prodigy: scales the estimated step size (lower it if training overshoots).", gt=0.0, le=100.0)
    use_bias_correction: bool = option(False, "Prodigy: Adam-style bias correction.")
    safeguard_warmup: bool = option(False, "Prodigy: avoid a too-large step-size estimate during warm-up.")
    decouple: bool = option(True, "Prodigy: AdamW-style decoupled weight decay.")
    relative_step: bool = option(False, "Adafactor: its own time-dependent learning rate (ignores learning_rate).")
    scale_parameter: bool = option(False, "Adafactor: scale the learning rate by the parameter's RMS.")


class LoraSection(Section):
    group = "lora"

    type: Literal["lora", "lokr", "loha"] = option(
        "lora",
        "Adapter type: lora (low-rank), lokr (LyCORIS Kronecker product), loha (LyCORIS Hadamard product). "
        "All three are saved in the LyCORIS/kohya names ComfyUI and A1111 load.",
        level="essential",
    )
    lokr_factor: int = option(
        -1, "LoKr: split each weight's dimensions by this factor (-1: as square as possible).", ge=-1, le=1024
    )
    rank: int = option(16, "LoRA rank (dim): capacity of the adapter.", level="essential", ge=1, le=1024)
    alpha: float = option(
        16.0, "LoRA alpha: the update is scaled by alpha / rank.", level="essential", gt=0.0, le=4096.0
    )
    dropout: float = option(0.0, "Dropout on the LoRA path (type = lora only).", ge=0.0, lt=1.0)
    use_dora: bool = option(
        False,
        "DoRA: weight-decomposed LoRA (slower, sometimes better). Only diffusers applies it as trained, from "
        "the NAME-diffusers folder (saving.diffusers_format); ComfyUI, Forge, A1111 and kohya load the "
        ".safetensors with a different or no DoRA step, so it looks different there.",
    )
    train_attention: bool = option(
        True, "Adapt the denoiser's attention projections (UNet; FLUX.1: the joint attention of both streams and "
        "the single blocks' q/k/v, SimpleTuner's 'all').")
    train_ff: bool = option(
        False, "Also adapt the denoiser's feed-forward layers (FLUX.1: both streams' MLPs and the single blocks' "
        "proj_mlp / proj_out; with train_attention, SimpleTuner's 'all+ffs').")
    train_conv: bool = option(False, "Also adapt the UNet's 3x3 convolutions (LoCon).")
    conv_rank: int = option(8, "Rank of the convolution adapters (with train_conv).", ge=1, le=1024)
    conv_alpha: float = option(8.0, "Alpha of the convolution adapters (with train_conv).", gt=0.0, le=4096.0)
    train_text_encoder: bool = option(False, "Also train LoRA on the text encoder(s).")
    text_encoder_lr: float | None = option(
        None, "Learning rate of the text-encoder LoRA. Unset: training.learning_rate.", gt=0.0, le=10.0
    )

    @model_validator(mode="after")
    def _dora_is_lora_only(self) -> LoraSection:
        if self.use_dora and self.type != "lora":
            raise ValueError(f"use_dora: DoRA applies to type = 'lora' only, not {self.type!r}")
        if self.dropout and self.type != "lora":
            # peft and LyCORIS have no dropout on the LoKr/LoHa path; ignoring it silently would mislead.
            raise ValueError(f"dropout: applies to type = 'lora' only, not {self.type!r} (set it to 0)")
        if self.lokr_factor == 0:
            raise ValueError("lokr_factor: must be -1 (automatic) or a positive factor, got 0")
        return self

    @model_validator(mode="after")
    def _something_trains(self) -> LoraSection:
        if not (self.train_attention or self.train_ff or self.train_conv or self.train_text_encoder):
            raise ValueError(
                "train_attention: no layer would train (train_attention, train_ff, train_conv and "
                "train_text_encoder are all false)"
            )
        return self


class EmbeddingSection(Section):
    """Textual inversion: new token embeddings, everything else frozen."""

    group = "lora"

    token: str = option(
        "<tuitrain>",
        "Placeholder token, one made-up lower-case word: write it in the captions (e.g. 'photo of <tuitrain>, "
        "smiling' in each caption file, or instance_prompt = 'photo of <tuitrain>'). At generation, A1111 and "
        "ComfyUI ('embedding:name') use the file name; diffusers takes it as load_textual_inversion(token=...).",
        level="essential",
    )
    vectors: int = option(4, "Vectors per token: more capture more detail but take more of the 75-token prompt.",
                          level="essential", ge=1, le=75)
    initial_text: str = option(
        "*", "Words whose embeddings start the new vectors (repeated or cut to the vector count); '*' is neutral."
    )
    learning_rate: float | None = option(
        5e-3, "Learning rate of the embedding vectors (unset: training.learning_rate; 1.0 with Prodigy).",
        gt=0.0, le=10.0
    )

    @model_validator(mode="after")
    def _token_is_one_word(self) -> EmbeddingSection:
        if not self.token.strip() or any(c.isspace() for c in self.token):
            raise ValueError(f"token: must be one word without spaces, got {quote(self.token)}")
        if self.token != self.token.lower():
            # CLIP tokenizers lower-case the prompt before looking for added tokens: '<MyTok>' never matches.
            raise ValueError(f"token: must be lower case (CLIP lower-cases prompts), e.g. {quote(self.token.lower())}")
        if not self.initial_text.strip():
            raise ValueError("initial_text: must not be empty (use '*' for a neutral start)")
        return self


class FinetuneSection(Section):
    """Full fine-tune: the denoiser's own weights train."""

    group = "lora"

    train_text_encoder: bool = option(False, "Also fine-tune the text encoder(s).")
    text_encoder_lr: float | None = option(
        None, "Learning rate of the text encoder(s). Unset: training.learning_rate.", gt=0.0, le=10.0
    )
    single_file: bool = option(
        True, "Save a single-file .safetensors checkpoint (A1111, ComfyUI, from_single_file)."
    )
    diffusers_folder: bool = option(
        True,
        "Also save a diffusers folder (NAME-diffusers, from_pretrained) on the final save. Intermediate "
        "saves write only the single file (the folder when single_file is off).",
    )

    @model_validator(mode="after")
    def _something_is_saved(self) -> FinetuneSection:
        if not (self.single_file or self.diffusers_folder):
            raise ValueError("single_file: nothing would be saved (single_file and diffusers_folder are both false)")
        return self


class FluxSection(Section):
    """FLUX.1's own settings (model.family = "flux"); other families ignore the section."""

    group = "model"

    guidance: float = option(
        1.0,
        "The value fed to the guidance embedding while training (dev / krea, which are guidance-distilled; "
        "schnell has none). 1.0 keeps the distillation, as BFL-trained LoRAs expect; sampling uses "
        "sampling.cfg (3.5 is usual for dev).",
        family="flux", ge=0.0, le=30.0,
    )
    t5_max_length: int = option(
        0,
        "T5 tokens per caption. 0: the flavour's (dev/krea 512, schnell 256); fewer is faster for short captions.",
        family="flux", ge=0, le=512,
    )


class EmaSection(Section):
    """An exponential moving average of the trained weights."""

    group = "training"

    mode: Literal["off", "gpu", "cpu"] = option(
        "off", "Keep an EMA of the trained weights: off, gpu (fast, uses VRAM) or cpu (saves VRAM, slower)."
    )
    decay: float = option(0.999, "EMA decay per update (closer to 1: a longer memory).", ge=0.0, lt=1.0)
    update_every: int = option(1, "Update the EMA every N optimizer steps.", ge=1, le=10000)
    sample_with_ema: bool = option(True, "Draw samples with the EMA weights (they are also what gets saved).")


class SamplePrompt(Section):
    """One sample image drawn during training; unset values come from [sampling]."""

    group = "sampling"

    prompt: str = option(..., "What to draw.", level="essential")
    negative_prompt: str | None = option(None, "Negative prompt. Unset: sampling.negative_prompt.")
    seed: int | None = option(None, "Seed. Unset: sampling.seed.", ge=0, le=MAX_SEED)
    steps: int | None = option(None, "Denoising steps. Unset: sampling.steps.", ge=1, le=1000)
    cfg: float | None = option(None, "Classifier-free guidance scale. Unset: sampling.cfg.", ge=0.0, le=100.0)
    width: int | None = option(None, "Width in pixels. Unset: data.resolution.", ge=64, le=8192)
    height: int | None = option(None, "Height in pixels. Unset: data.resolution.", ge=64, le=8192)

    @model_validator(mode="after")
    def _size_multiple_of_8(self) -> SamplePrompt:
        for key in ("width", "height"):
            value = getattr(self, key)
            if value is not None and value % 8:
                raise ValueError(f"{key}: must be a multiple of 8, got {value}")
        return self


class SamplingSection(Section):
    group = "sampling"

    every_epochs: int = option(1, "Draw samples every N epochs (0: never by epoch).", ge=0, le=MAX_EPOCHS)
    every_steps: int = option(0, "Draw samples every N steps (0: never by step).", ge=0, le=MAX_STEPS)
    before_training: bool = option(False, "Draw one round of samples before the first step, as a baseline.")
    prompts: list[SamplePrompt] = option(
        default_factory=list, help="Sample prompts ([[sampling.prompts]] tables).", level="essential"
    )
    negative_prompt: str = option("", "Default negative prompt.")
    seed: int = option(42, "Default seed: the same seed every time makes epochs comparable.", ge=0, le=MAX_SEED)
    steps: int = option(25, "Default denoising steps.", ge=1, le=1000)
    cfg: float = option(7.0, "Default classifier-free guidance scale.", ge=0.0, le=100.0)
    sampler: Literal["default", "ddim", "euler", "euler_a", "dpmpp_2m", "unipc"] = option(
        "default", "Sampler (diffusers scheduler). default: the base model's own."
    )


class SavingSection(Section):
    group = "saving"

    every_epochs: int = option(
        1, "Save the trained weights every N epochs (0: never by epoch).", ge=0, le=MAX_EPOCHS
    )
    every_steps: int = option(0, "Save every N steps (0: never by step).", ge=0, le=MAX_STEPS)
    keep_last: int = option(0, "Keep only the newest N intermediate saves (0: keep all); older ones are deleted for good, "
        "to save disk. The final save is always kept.", ge=0, le=MAX_KEPT)
    name: str = option(
        "",
        "Output file name stem: output/NAME-step000100.safetensors. Empty: the run's name. A plain file "
        "name: no path, no leading '.', none of / \\ : * ? \" < > |, at most 150 bytes.",
    )
    dtype: Literal["fp16", "bf16", "fp32"] = option("fp16", "Precision of saved weights.")
    diffusers_format: bool = option(False, "Also save in diffusers/peft format (a folder) beside the .safetensors.")
    backup_every_steps: int = option(0, "Resumable backup every N steps (0: off).", ge=0, le=MAX_STEPS)
    backup_every_minutes: float = option(
        30.0, "Resumable backup every N minutes (0: off).", ge=0.0, le=7 * 24 * 60.0
    )
    backup_keep_last: int = option(2, "Keep the newest N backups.", ge=1, le=MAX_KEPT)
    backup_on_stop: bool = option(True, "Back up when the run is stopped, so it can resume where it stopped.")
    backup_at_end: bool = option(
        True, "Back up the final state when the run completes, so it can be continued for more epochs "
        "(tuitrain train RUN --more-epochs N) without training any step twice.",
    )

    @field_validator("name")
    @classmethod
    def _name_is_a_plain_file_name(cls, value: str) -> str:
        # Checked here, not at the final save after hours of training: '../x' or an absolute path
        # would write outside the run's output/ folder, a NUL fails only when the file is opened.
        problem = output_name_problem(value)
        if problem:
            raise ValueError(f"{problem}, got {quote(value)}")
        return value


class Config(BaseModel):
    """A whole training config. Missing keys take their defaults."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)

    version: int = option(SCHEMA_VERSION, "Config format version (tuitrain migrates older files).", ge=1)
    description: str = option("", "One line saying what this config (or preset) is for.", group="model")
    preset: str = option(
        "", "The preset this config started from (its values are the baseline the form compares with).",
        group="model",
    )
    model: ModelSection = option(default_factory=ModelSection, help="The base model.")
    data: DataSection = option(default_factory=DataSection, help="Training images and how they are read.")
    training: TrainingSection = option(default_factory=TrainingSection, help="The training run.")
    objective: ObjectiveSection = option(
        default_factory=ObjectiveSection, help="The training objective's settings (DDPM or flow matching)."
    )
    optimizer: OptimizerSection = option(default_factory=OptimizerSection, help="The optimizer.")
    lora: LoraSection = option(default_factory=LoraSection, help="The LoRA adapter (training.method = 'lora').")
    embedding: EmbeddingSection = option(
        default_factory=EmbeddingSection, help="Textual inversion (training.method = 'embedding')."
    )
    finetune: FinetuneSection = option(
        default_factory=FinetuneSection, help="Full fine-tune (training.method = 'finetune')."
    )
    flux: FluxSection = option(default_factory=FluxSection, help="FLUX.1's own settings (model.family = 'flux').")
    ema: EmaSection = option(default_factory=EmaSection, help="EMA of the trained weights.")
    sampling: SamplingSection = option(default_factory=SamplingSection, help="Sample images during training.")
    saving: SavingSection = option(default_factory=SavingSection, help="Saved weights and resumable backups.")

    _text = field_validator("description", "preset")(text_toml_can_hold)

    @model_validator(mode="after")
    def _quantized_weights_stay_frozen(self) -> Config:
        if self.model.quantize != "none" and self.training.method == "finetune":
            raise ValueError(
                f"model.quantize: {show_value(self.model.quantize)} stores the denoiser's weights quantized and "
                "frozen, but training.method = 'finetune' trains them; set model.quantize = 'none' (or train a LoRA)"
            )
        if self.model.quantize == "nf4" and self.training.method == "lora" and self.lora.type != "lora":
            # peft's LoKr / LoHa size their factors from the base weight's shape, which nf4 stores packed.
            raise ValueError(
                f"model.quantize: \"nf4\" packs the weights LoKr and LoHa take their shapes from; with "
                f"lora.type = {show_value(self.lora.type)} use model.quantize = 'int8' (or lora.type = 'lora')"
            )
        return self

    @model_validator(mode="after")
    def _objective_fits_the_family(self) -> Config:
        """Settings of one objective that contradict the model (others' options are ignored, as [lora] is
        by an embedding run)."""
        info = FAMILIES[self.model.family]
        if info.objective == "ddpm" and self.objective.zero_terminal_snr and self.model.prediction == "epsilon":
            raise ValueError(
                "objective.zero_terminal_snr: needs model.prediction = v_prediction; with epsilon the last timestep "
                "is pure noise and teaches the model nothing"
            )
        if info.objective == "flow" and self.sampling.sampler != "default":
            raise ValueError(
                f"sampling.sampler: {self.model.family} samples with its own flow-matching scheduler; the "
                f"DDPM samplers do not apply, set it to 'default', got {show_value(self.sampling.sampler)}"
            )
        multiple = info.pixel_multiple
        for key, value in (("data.resolution", self.data.resolution), ("data.bucket_step", self.data.bucket_step)):
            if value % multiple:
                raise ValueError(
                    f"{key}: {self.model.family} images must be multiples of {multiple} px (its VAE's 8x "
                    f"downscale{', then 2x2 patches' if multiple > 8 else ''}), got {value}"
                )
        if info.objective == "flow" and self.training.min_snr_gamma:
            raise ValueError(
                f"training.min_snr_gamma: min-SNR weighting is for DDPM families; {self.model.family} trains with "
                f"flow matching (objective.loss_weighting weighs its samples), set it to 0, got "
                f"{show_value(self.training.min_snr_gamma)}"
            )
        return self

    @model_validator(mode="after")
    def _version_supported(self) -> Config:
        if self.version > SCHEMA_VERSION:
            raise ValueError(
                f"version: this file is format {show_value(self.version)}, newer than this tuitrain supports "
                f"({SCHEMA_VERSION}); upgrade tuitrain"
            )
        if (self.training.method == "embedding" and self.optimizer.name == "prodigy"
                and self.embedding.learning_rate not in (None, 1.0)):
            raise ValueError(
                f"embedding.learning_rate: Prodigy finds the step size itself and needs 1.0, got "
                f"{self.embedding.learning_rate:g} (which would scale its steps down by that factor)"
            )
        if self.training.method == "lora" and self.lora.type != "lora" and self.saving.diffusers_format:
            raise ValueError(
                f"saving.diffusers_format: diffusers' SD/SDXL loaders read plain LoRA only, not lora.type = "
                f"{self.lora.type!r}; turn it off"
            )
        return self
