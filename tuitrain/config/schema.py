"""The config schema: every option tuitrain has, joined into one `Config`.

Sections are TOML tables, each declared in its own module under `config/sections/` with `option(...)`, which
carries its default, help text, level (essential / advanced) and form tab. Rules that span sections live here,
so the CLI, the form and the trainer all reject the same configs with the same messages.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from tuitrain.config.errors import show_value
from tuitrain.config.fields import option, text_toml_can_hold
from tuitrain.families import FAMILIES
from tuitrain.config.sections.common import MAX_EPOCHS, MAX_KEPT, MAX_SEED, MAX_STEPS
from tuitrain.config.sections.data import CaptionSource, Concept, DataSection
from tuitrain.config.sections.distributed import DistributedSection
from tuitrain.config.sections.ema import EmaSection
from tuitrain.config.sections.evaluation import EvaluationSection
from tuitrain.config.sections.flux import FluxSection
from tuitrain.config.sections.methods import EmbeddingSection, FinetuneSection, LoraSection
from tuitrain.config.sections.model import FamilyName, ModelSection
from tuitrain.config.sections.objective import ObjectiveSection
from tuitrain.config.sections.optimizer import OptimizerSection
from tuitrain.config.sections.cascade import CascadeSection
from tuitrain.config.sections.pixart import PixArtSection
from tuitrain.config.sections.performance import PerformanceSection
from tuitrain.config.sections.sampling import SamplePrompt, SamplingSection
from tuitrain.config.sections.saving import SavingSection
from tuitrain.config.sections.sd3 import SD3Section
from tuitrain.config.sections.training import TrainingSection
from tuitrain.config.sections.wuerstchen import WuerstchenSection

__all__ = [
    "MAX_EPOCHS", "MAX_KEPT", "MAX_SEED", "MAX_STEPS", "SCHEMA_VERSION", "CaptionSource", "Concept", "Config",
    "DataSection", "DistributedSection", "EmaSection", "EmbeddingSection", "EvaluationSection", "FamilyName",
    "FinetuneSection",
    "FluxSection", "LoraSection", "ModelSection", "ObjectiveSection", "OptimizerSection", "PerformanceSection",
    "SamplePrompt",
    "SamplingSection", "SavingSection", "TrainingSection",
]

SCHEMA_VERSION = 1


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
    sd3: SD3Section = option(default_factory=SD3Section, help="SD3 / SD3.5's own settings (model.family = 'sd3').")
    pixart: PixArtSection = option(default_factory=PixArtSection,
                                   help="PixArt-α / Σ's own settings (model.family = 'pixart').")
    cascade: CascadeSection = option(default_factory=CascadeSection,
                                     help="Stable Cascade stage C's own settings (model.family = 'cascade').")
    wuerstchen: WuerstchenSection = option(default_factory=WuerstchenSection,
                                           help="Würstchen v2's own settings (model.family = 'wuerstchen').")
    ema: EmaSection = option(default_factory=EmaSection, help="EMA of the trained weights.")
    performance: PerformanceSection = option(
        default_factory=PerformanceSection, help="Step speed: compilation, attention kernel, memory layout."
    )
    distributed: DistributedSection = option(
        default_factory=DistributedSection, help="Several processes (GPUs) training one run."
    )
    sampling: SamplingSection = option(default_factory=SamplingSection, help="Sample images during training.")
    saving: SavingSection = option(default_factory=SavingSection, help="Saved weights and resumable backups.")
    evaluation: EvaluationSection = option(default_factory=EvaluationSection, help="The eval loss on held-out images.")

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
                f"lora.type = {show_value(self.lora.type)} use model.quantize = 'int8', 'fp8' or 'int4' (or "
                "lora.type = 'lora')"
            )
        text = self.model.quantize_text_encoders
        if text != "none" and self.training.method == "finetune" and self.finetune.train_text_encoder:
            raise ValueError(
                f"model.quantize_text_encoders: {show_value(text)} stores the text encoders quantized and frozen, but "
                "finetune.train_text_encoder = true trains them; set model.quantize_text_encoders = 'none'"
            )
        if text == "nf4" and self.training.method == "lora" and self.lora.train_text_encoder and self.lora.type != "lora":
            raise ValueError(
                f"model.quantize_text_encoders: \"nf4\" packs the weights LoKr and LoHa take their shapes from; with "
                f"lora.type = {show_value(self.lora.type)} and lora.train_text_encoder use 'int8', 'fp8' or 'int4'"
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
        sizes = [("data.resolution", self.data.resolution), ("data.bucket_step", self.data.bucket_step)]
        sizes += [(f"data.concepts[{i}].resolution", c.resolution) for i, c in enumerate(self.data.concepts) if c.resolution]
        for key, value in sizes:
            if value % multiple:
                raise ValueError(
                    f"{key}: {self.model.family} images must be multiples of {multiple} px (its VAE's 8x "
                    f"downscale{', then 2x2 patches' if multiple > 8 else ''}), got {value}"
                )
        chosen = FAMILIES[self.model.family].flavour(self.model.flavour) if self.model.flavour else None
        editing = chosen is not None and chosen.editing
        for i, concept in enumerate(self.data.concepts):
            if concept.references and not editing:
                raise ValueError(
                    f"data.concepts[{i}].references: reference images train editing models only (FLUX.1: "
                    f"model.flavour = 'kontext'); leave references empty"
                )
            if editing and not concept.references and concept.role != "validation" and concept.enabled:
                raise ValueError(
                    f"data.concepts[{i}].references: {chosen.title} learns edits: name the folder of "  # type: ignore[union-attr]
                    "reference images paired with this concept's images by file name"
                )
        for i, prompt in enumerate(self.sampling.prompts):
            if prompt.reference and not editing:
                raise ValueError(f"sampling.prompts[{i}].reference: only editing models (FLUX.1: model.flavour = "
                                 "'kontext') sample from a reference image; leave it empty")
            if editing and not prompt.reference:
                raise ValueError(f"sampling.prompts[{i}].reference: {chosen.title} samples edit an image: "  # type: ignore[union-attr]
                                 "name it")
        if self.model.family == "cascade" and self.model.quantize != "none":
            # Measured: diffusers' Stable Cascade prior pipeline takes its dtype from the prior's first weight, which
            # a quantized prior stores as int8, and its first sample fails ("normal_kernel_cpu" not for 'Char').
            raise ValueError(
                f"model.quantize: {show_value(self.model.quantize)}: Stable Cascade's prior pipeline cannot sample a "
                "quantized prior; set model.quantize = 'none' (the 3.6B prior is 7.2 GB in bf16)"
            )
        if self.model.family == "cascade" and self.training.method == "lora":
            if self.lora.train_text_encoder:  # its LoRA files (trainer/families/cascade/lora.py) hold the prior only
                raise ValueError("lora.train_text_encoder: Stable Cascade LoRA files hold the prior only (ComfyUI's "
                                 "lora_prior_unet_ names); set it to false")
            if self.saving.diffusers_format:
                raise ValueError("saving.diffusers_format: diffusers has no Stable Cascade LoRA loader or writer; the "
                                 "saved .safetensors is in ComfyUI's lora_prior_unet_ names: turn it off")
        if self.model.family == "wuerstchen" and self.model.quantize == "int8":
            # bitsandbytes' int8 matmul flattens 3-D inputs only; the prior's res blocks feed their channelwise MLP
            # [B, H, W, C] (measured: "size of tensor a (8) must match ... (32)" at the first sample on CPU, the path
            # a GPU takes at every step). nf4, int4 and fp8 train and sample.
            raise ValueError("model.quantize: \"int8\" cannot run Würstchen's prior (bitsandbytes' int8 layers take "
                             "no 4-D input, which its res blocks give them); use nf4, int4 or fp8")
        if self.performance.compile != "off" and self.model.quantize in ("fp8", "int4"):
            # Measured: dynamo stops at optimum-quanto's quantized weight tensors ("tensor subclass inputs");
            # the bitsandbytes int8 / nf4 layers compile, with the same losses as eager.
            raise ValueError(
                f"performance.compile: {show_value(self.performance.compile)} does not compile optimum-quanto's "
                f"{self.model.quantize} weights; set performance.compile = 'off', or model.quantize = 'int8' / 'nf4'"
            )
        d = self.distributed
        if d.gpu_ids and d.processes not in (0, len(d.gpu_ids)):
            raise ValueError(
                f"distributed.processes: {d.processes}, but distributed.gpus names {len(d.gpu_ids)} GPUs "
                f"({d.gpus}); one process per GPU: set processes = {len(d.gpu_ids)} (or 0)"
            )
        if d.processes != 1 and self.training.device.startswith("cuda:"):
            raise ValueError(
                f"training.device: {show_value(self.training.device)} picks one GPU, but distributed.processes = "
                f"{d.processes} trains on several; set training.device = 'cuda' and list them in distributed.gpus"
            )
        t = self.training
        if d.processes != 1 and (t.text_encoder_max_steps is not None or t.text_encoder_max_epochs is not None):
            # DDP expects every trained parameter to get a gradient in every step; freezing some mid-run breaks that.
            raise ValueError(
                "training.text_encoder_max_steps: stopping the text encoders mid-run is not supported with "
                f"distributed.processes = {d.processes}; remove it (or train with one process)"
            )
        if d.fsdp_problem(self):  # distributed.strategy = 'fsdp': what sharded training takes
            raise ValueError(d.fsdp_problem(self))
        if self.lora.assistant_lora and self.training.method == "finetune":
            raise ValueError(
                "lora.assistant_lora: a fine-tune trains the base weights themselves, which a frozen LoRA on top "
                "would hide from the saved model; leave it empty (or train a LoRA)"
            )
        if self.model.family == "flux" and self.flux.t5_attention_mask and self.flux.true_cfg > 1:
            # FluxPipeline hands one joint_attention_kwargs to both passes: the prompt's mask would cut the
            # negative prompt's tokens.
            raise ValueError(
                f"flux.true_cfg: {show_value(self.flux.true_cfg)} samples a negative prompt too, which "
                "flux.t5_attention_mask cannot mask in FluxPipeline; set true_cfg = 1 or t5_attention_mask = false"
            )
        sets = info.lora_target_sets
        if self.lora.targets and self.lora.targets not in sets:
            known = (f"must be one of {self.model.family}'s target sets ({', '.join(sets)}) or empty" if sets else
                     f"{self.model.family} has no named target sets (name layers with lora.target_modules)")
            raise ValueError(f"lora.targets: {known}, got {show_value(self.lora.targets)}")
        if info.objective == "flow" and self.training.min_snr_gamma:
            raise ValueError(
                f"training.min_snr_gamma: min-SNR weighting is for DDPM families; {self.model.family} trains with "
                f"flow matching (objective.loss_weighting weighs its samples), set it to 0, got "
                f"{show_value(self.training.min_snr_gamma)}"
            )
        return self

    @model_validator(mode="after")
    def _text_encoder_schedule_has_encoders(self) -> Config:
        t = self.training
        key = "text_encoder_max_steps" if t.text_encoder_max_steps is not None else "text_encoder_max_epochs"
        if getattr(t, key) is None:
            return self
        method = t.method
        trains = {"lora": self.lora.train_text_encoder, "finetune": self.finetune.train_text_encoder}.get(method)
        if not trains:
            switch = f"{method}.train_text_encoder = true" if method in ("lora", "finetune") else "a lora or finetune run"
            raise ValueError(
                f"training.{key}: stops text-encoder training, but this run trains none (needs {switch}); "
                f"remove it, got {getattr(t, key)}"
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
