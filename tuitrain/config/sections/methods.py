"""[lora], [embedding], [finetune]: the settings of each training method."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator, model_validator

from tuitrain.config.errors import quote
from tuitrain.config.fields import Section, option
from tuitrain.config.sections.common import a_possible_path


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
        "the NAME-diffusers folder (saving.diffusers_format; FLUX.1: from the .safetensors too, transformer "
        "only); ComfyUI, Forge, A1111 and kohya load the .safetensors with a different or no DoRA step, so it "
        "looks different there.",
    )
    train_attention: bool = option(
        True, "Adapt the denoiser's attention projections (UNet; FLUX.1: the joint attention of both streams and "
        "the single blocks' q/k/v, SimpleTuner's 'all').")
    train_ff: bool = option(
        False, "Also adapt the denoiser's feed-forward layers (FLUX.1: both streams' MLPs and the single blocks' "
        "proj_mlp / proj_out; with train_attention, SimpleTuner's 'all+ffs').")
    targets: str = option(
        "",
        "A named set of denoiser layers to adapt, instead of train_attention / train_ff. FLUX.1 has SimpleTuner's "
        "sets: all (joint attention), context (text-stream attention), context+ffs, all+ffs, all+ffs+embedder, "
        "ai-toolkit (all+ffs and the adaLN modulations), tiny and nano (one or two single-block output "
        "projections, for very small files). Empty: train_attention and train_ff decide.",
    )
    target_modules: list[str] = option(
        default_factory=list,
        help="Explicit denoiser layers to adapt, instead of train_attention / train_ff / targets: module-name "
        "suffixes, as peft matches them (e.g. ['attn.to_q', 'attn.to_v'] or "
        "['single_transformer_blocks.7.proj_out']). Empty: targets or the switches decide.",
    )
    assistant_lora: str = option(
        "",
        "A frozen LoRA file applied to the base while training and left out of samples and saves (ai-toolkit's "
        "assistant LoRA), e.g. ostris' FLUX.1-schnell training adapter: it de-distills schnell while your LoRA "
        "trains, so your LoRA keeps working on plain schnell. Any layout diffusers loads. Relative paths are "
        "relative to the config file. Empty: none. LoRA and embedding runs.",
    )
    assistant_scale: float = option(1.0, "Strength of assistant_lora while training.", gt=0.0, le=10.0)
    train_conv: bool = option(False, "Also adapt the UNet's 3x3 convolutions (LoCon).")
    conv_rank: int = option(8, "Rank of the convolution adapters (with train_conv).", ge=1, le=1024)
    conv_alpha: float = option(8.0, "Alpha of the convolution adapters (with train_conv).", gt=0.0, le=4096.0)
    train_text_encoder: bool = option(False, "Also train LoRA on the text encoder(s).")
    text_encoder_lr: float | None = option(
        None, "Learning rate of the text-encoder LoRA. Unset: training.learning_rate.", gt=0.0, le=10.0
    )

    _paths_are_possible = field_validator("assistant_lora")(a_possible_path)

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
        if self.targets and self.target_modules:
            raise ValueError(
                f"target_modules: names the layers itself; leave targets empty with it, got targets = "
                f"{quote(self.targets)}"
            )
        for name in self.target_modules:
            if not name.strip() or any(c.isspace() for c in name) or name.startswith(".") or name.endswith("."):
                raise ValueError(f"target_modules: each entry is a module name like 'attn.to_q', got {quote(name)}")
        if self.targets or self.target_modules:
            return self
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
