"""PixArt-α / Σ: T5-XXL tokens with their attention mask, a DiT with learned sigma, DDPM epsilon.

As diffusers' PixArt pipelines (Apache-2.0) condition the transformer: the T5 hidden states of the
caption padded to the flavour's length (α 120, Σ 300) with the tokenizer's attention mask, which the
transformer turns into a cross-attention bias; `added_cond_kwargs` carries the image's resolution and
aspect ratio when the transformer uses micro-conditions (PixArt-α 1024, `use_additional_conditions`),
and None otherwise (what PixArtSigmaPipeline always passes). The transformer predicts noise and
variance (8 channels, "learned sigma"); training uses the first half, the epsilon, as the pipelines
do when sampling: the variance half only serves samplers tuitrain does not train for.
"""

from __future__ import annotations

from typing import Any

import torch

from tuitrain.families import FAMILIES
from tuitrain.trainer.families.base import Conditioning, FamilyAdapter, LatentBatch, ModelParts

# LoRA targets: self- and cross-attention (attn1, attn2) of every block, as SimpleTuner and the PixArt
# LoRA scripts adapt; with lora.train_ff the blocks' MLP too.
ATTENTION = ("to_q", "to_k", "to_v", "to_out.0")
FEED_FORWARD = ("ff.net.0.proj", "ff.net.2")
T5_LENGTH = {"sigma": 300, "alpha": 120}  # the pipelines' max_sequence_length defaults
PIPELINES = {"sigma": "PixArtSigmaPipeline", "alpha": "PixArtAlphaPipeline"}


class PixArtAdapter(FamilyAdapter):
    attention_modules = ATTENTION
    feed_forward_modules = FEED_FORWARD
    conv_modules = ()
    text_encoder_modules = ()
    trainable_text_encoders = 0  # T5 is never adapted

    def __init__(self, name: str) -> None:
        self.info = FAMILIES[name]
        self.flavour_name = ""
        self.t5_max_length = 0

    def configure(self, config: Any) -> None:
        """model.flavour and pixart.t5_max_length; a run that asks to train the text encoder is refused (T5 is
        PixArt's only one, and tuitrain does not adapt T5)."""
        from tuitrain.trainer.errors import TrainingError

        super().configure(config)
        self.flavour_name = config.model.flavour
        self.t5_max_length = config.pixart.t5_max_length
        method = config.training.method
        if method in ("lora", "finetune") and getattr(config, method).train_text_encoder:
            raise TrainingError(
                f"{method}.train_text_encoder: PixArt's only text encoder is T5, which tuitrain does not train; "
                "set it to false"
            )
        if method == "lora" and config.saving.diffusers_format:  # refused here, not by a crash at the first save
            raise TrainingError(
                "saving.diffusers_format: diffusers has no PixArt LoRA loader or writer (save_lora_weights); the "
                "saved .safetensors is already in its peft naming (transformer.<module>.lora_A/B): turn it off"
            )

    def parts(self, pipeline: Any, prediction: str) -> ModelParts:
        """The flavour is model.flavour, else α when the pipeline model_index.json declared is α's or the
        transformer has α's micro-condition embedders, else Σ; a pipeline of the other flavour is rebuilt from
        the same components, so sampling conditions the transformer as the flavour does. Σ's pipeline never
        passes micro-conditions, so a transformer that needs them is refused as Σ."""
        import diffusers

        from tuitrain.trainer.errors import TrainingError
        from tuitrain.trainer.objectives.ddpm import training_scheduler

        conditioned = bool(pipeline.transformer.use_additional_conditions)
        detected = "alpha" if type(pipeline).__name__ == PIPELINES["alpha"] or conditioned else "sigma"
        flavour = self.flavour_name or detected
        if flavour == "sigma" and conditioned:
            raise TrainingError(
                "model.flavour: 'sigma', but the transformer has PixArt-α's resolution / aspect-ratio embedders, "
                "which PixArtSigmaPipeline never feeds; set model.flavour = 'alpha' or leave it empty"
            )
        if type(pipeline).__name__ != PIPELINES[flavour]:
            pipeline = getattr(diffusers, PIPELINES[flavour])(**pipeline.components)
        config = dict(pipeline.scheduler.config)
        if prediction in ("", "auto"):
            prediction = config.get("prediction_type") or "epsilon"
        return ModelParts(
            pipeline=pipeline,
            denoiser=pipeline.transformer,
            vae=pipeline.vae,
            text_encoders=[pipeline.text_encoder],
            tokenizers=[pipeline.tokenizer],
            noise_scheduler=training_scheduler(config, prediction),
            prediction_type=prediction,
            flavour=flavour,
        )

    def t5_length(self, parts: ModelParts) -> int:
        return min(self.t5_max_length or T5_LENGTH[parts.flavour], parts.tokenizers[0].model_max_length)

    def encode_text(self, parts: ModelParts, captions: list[str], clip_skip: int = 0) -> Conditioning:
        t5, tokenizer = parts.text_encoders[0], parts.tokenizers[0]
        tokens = tokenizer(captions, padding="max_length", max_length=self.t5_length(parts), truncation=True,
                           add_special_tokens=True, return_tensors="pt")
        mask = tokens.attention_mask.to(t5.device)
        hidden = t5(tokens.input_ids.to(t5.device), attention_mask=mask)[0]
        return {"hidden": hidden, "mask": mask.to(hidden.dtype)}

    def predict(self, parts: ModelParts, noisy: torch.Tensor, timesteps: torch.Tensor, batch: LatentBatch) -> torch.Tensor:
        transformer = parts.denoiser
        b, channels, h, w = noisy.shape
        added: dict[str, Any] = {"resolution": None, "aspect_ratio": None}
        if transformer.use_additional_conditions:  # type: ignore[union-attr]
            # PixArtAlphaPipeline's micro-conditions: the image's pixel height and width, and height / width.
            added = {"resolution": torch.tensor([[h * 8.0, w * 8.0]], device=noisy.device, dtype=noisy.dtype).repeat(b, 1),
                     "aspect_ratio": torch.full((b, 1), h / w, device=noisy.device, dtype=noisy.dtype)}
        out = transformer(
            noisy,
            encoder_hidden_states=batch.conditioning["hidden"].to(noisy.dtype),
            encoder_attention_mask=batch.conditioning["mask"],
            timestep=timesteps,
            added_cond_kwargs=added,
            return_dict=False,
        )[0]
        return out[:, :channels] if out.shape[1] == 2 * channels else out  # learned sigma: the epsilon half

    def denoiser_file_state(self, denoiser: torch.nn.Module) -> dict[str, torch.Tensor]:
        from tuitrain.trainer.families.pixart.layout import to_original

        return to_original({k: v.detach().to("cpu") for k, v in denoiser.state_dict().items()})

    def text_settings(self, parts: ModelParts) -> str:
        return f"t5={self.t5_length(parts)}"

    def sample_inputs(self, parts: ModelParts, prompt: dict[str, Any]) -> dict[str, Any]:
        """The PixArt pipelines' arguments; no resolution binning (it would resize to the model's published
        aspect-ratio table) and no caption cleaning (it needs bs4 and ftfy)."""
        return {"prompt": prompt["prompt"], "negative_prompt": prompt["negative_prompt"] or "",
                "num_inference_steps": prompt["steps"], "guidance_scale": prompt["cfg"], "width": prompt["width"],
                "height": prompt["height"], "max_sequence_length": self.t5_length(parts),
                "use_resolution_binning": False, "clean_caption": False}

    def random_batch(self, denoiser: torch.nn.Module, batch: int, resolution: int, device: torch.device,
                     dtype: torch.dtype) -> LatentBatch:
        config = denoiser.config  # type: ignore[union-attr]
        side = resolution // 8
        length = T5_LENGTH["sigma"]
        conditioning = {"hidden": torch.randn(batch, length, config.caption_channels, device=device, dtype=dtype),
                        "mask": torch.ones(batch, length, device=device, dtype=dtype)}
        return LatentBatch(torch.randn(batch, config.in_channels, side, side, device=device), conditioning)


def make_adapter(family: str) -> FamilyAdapter:
    return PixArtAdapter(family)
