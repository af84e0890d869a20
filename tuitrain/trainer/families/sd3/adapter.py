"""SD3 / SD3.5: two CLIP encoders (penultimate layer + pooled) and T5, as StableDiffusion3Pipeline encodes them.

The prompt embedding is both CLIP hidden states joined on the feature axis, zero-padded to T5's
width, then followed by the T5 tokens on the sequence axis; the pooled embedding is both CLIP
projections joined (diffusers' pipeline_stable_diffusion_3.encode_prompt, Apache-2.0). The
transformer takes the objective's timestep (sigma * 1000) as it is, as diffusers'
train_dreambooth_lora_sd3.py passes it; the target is the flow velocity (noise - x0), without
that script's optional preconditioning. With sd3.drop_t5 the T5 tokens are zeros, as the pipeline
makes them when text_encoder_3 is None, and the pipeline loses its T5 so samples are drawn the same way.
"""

from __future__ import annotations

from typing import Any

import torch

from tuitrain.families import FAMILIES
from tuitrain.trainer.families.base import Conditioning, FamilyAdapter, LatentBatch, ModelParts
from tuitrain.trainer.families.text_encoders import CLIP_ATTENTION_AND_MLP

# LoRA targets: the joint attention of both streams (and SD3.5 medium's extra attn2), as diffusers' script.
ATTENTION = ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out")
FEED_FORWARD = ("ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj", "ff_context.net.2")
T5_LENGTH = 256  # StableDiffusion3Pipeline's default max_sequence_length


class SD3Adapter(FamilyAdapter):
    attention_modules = ATTENTION
    feed_forward_modules = FEED_FORWARD
    conv_modules = ()
    text_encoder_modules = CLIP_ATTENTION_AND_MLP
    trainable_text_encoders = 2  # both CLIPs; T5 is never adapted

    def __init__(self, name: str) -> None:
        self.info = FAMILIES[name]
        self.flavour_name = ""
        self.drop_t5 = False
        self.t5_max_length = 0

    def configure(self, config: Any) -> None:
        """model.flavour, sd3.drop_t5 and sd3.t5_max_length from the run's config."""
        super().configure(config)
        self.flavour_name = config.model.flavour
        self.drop_t5 = config.sd3.drop_t5
        self.t5_max_length = config.sd3.t5_max_length

    def detect_flavour(self, transformer: torch.nn.Module) -> str:
        """38 blocks: 3.5 large (or turbo, the same architecture: model.flavour); with extra attention layers:
        3.5 medium; else 3 medium."""
        config = transformer.config  # type: ignore[union-attr]
        if self.flavour_name:
            return self.flavour_name
        if config.num_layers >= 38:
            return "3.5-large"
        return "3.5-medium" if getattr(config, "dual_attention_layers", ()) else "3-medium"

    def parts(self, pipeline: Any, prediction: str) -> ModelParts:
        if self.drop_t5:  # T5 leaves the pipeline (and memory): its tokens are zeros in training and sampling
            pipeline.text_encoder_3, pipeline.tokenizer_3 = None, None
        t5 = [pipeline.text_encoder_3] if pipeline.text_encoder_3 is not None else []
        t5_tokenizer = [pipeline.tokenizer_3] if t5 else []
        return ModelParts(
            pipeline=pipeline,
            denoiser=pipeline.transformer,
            vae=pipeline.vae,
            text_encoders=[pipeline.text_encoder, pipeline.text_encoder_2, *t5],
            tokenizers=[pipeline.tokenizer, pipeline.tokenizer_2, *t5_tokenizer],
            noise_scheduler=pipeline.scheduler,
            prediction_type="flow",
            flavour=self.detect_flavour(pipeline.transformer),
        )

    def t5_length(self, parts: ModelParts) -> int:
        length = self.t5_max_length or T5_LENGTH
        return min(length, parts.tokenizers[2].model_max_length) if len(parts.tokenizers) > 2 else length

    def encode_text(self, parts: ModelParts, captions: list[str], clip_skip: int = 0) -> Conditioning:
        hidden_states, pooled = [], []
        for encoder, tokenizer in zip(parts.text_encoders[:2], parts.tokenizers[:2]):
            ids = tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                            return_tensors="pt").input_ids.to(encoder.device)
            out = encoder(ids, output_hidden_states=True)
            pooled.append(out[0])
            hidden_states.append(out.hidden_states[-(max(clip_skip, 0) + 2)])
        clip = torch.cat(hidden_states, dim=-1)
        if len(parts.text_encoders) > 2:
            t5, t5_tokenizer = parts.text_encoders[2], parts.tokenizers[2]
            ids = t5_tokenizer(captions, padding="max_length", max_length=self.t5_length(parts), truncation=True,
                               return_tensors="pt").input_ids.to(t5.device)
            t5_hidden = t5(ids)[0]
        else:  # no T5 (sd3.drop_t5): zeros of the transformer's joint width, as StableDiffusion3Pipeline
            width = parts.denoiser.config.joint_attention_dim  # type: ignore[union-attr]
            t5_hidden = clip.new_zeros(len(captions), self.t5_length(parts), width)
        clip = torch.nn.functional.pad(clip, (0, t5_hidden.shape[-1] - clip.shape[-1]))
        return {"hidden": torch.cat([clip, t5_hidden.to(clip.dtype)], dim=-2), "pooled": torch.cat(pooled, dim=-1)}

    def denoiser_file_state(self, denoiser: torch.nn.Module) -> dict[str, torch.Tensor]:
        from tuitrain.trainer.families.sd3.layout import to_sai

        return to_sai({k: v.detach().to("cpu") for k, v in denoiser.state_dict().items()})

    def text_settings(self, parts: ModelParts) -> str:
        """Empty with the defaults (T5 on, 256 tokens), so text caches made before [sd3] existed stay valid."""
        words = (["t5=zeros"] if len(parts.text_encoders) < 3 else []) + [f"t5={self.t5_length(parts)}"]
        return "" if words == [f"t5={T5_LENGTH}"] else " ".join(words)

    def sample_inputs(self, parts: ModelParts, prompt: dict[str, Any]) -> dict[str, Any]:
        return {**super().sample_inputs(parts, prompt), "max_sequence_length": self.t5_length(parts)}

    def predict(self, parts: ModelParts, noisy: torch.Tensor, timesteps: torch.Tensor, batch: LatentBatch) -> torch.Tensor:
        return parts.denoiser(
            hidden_states=noisy,
            timestep=timesteps.float(),  # fp32 as diffusers' script passes it: bf16 would round t by up to 4
            encoder_hidden_states=batch.conditioning["hidden"].to(noisy.dtype),
            pooled_projections=batch.conditioning["pooled"].to(noisy.dtype),
            return_dict=False,
        )[0]

    def random_batch(self, denoiser: torch.nn.Module, batch: int, resolution: int, device: torch.device,
                     dtype: torch.dtype) -> LatentBatch:
        config = denoiser.config  # type: ignore[union-attr]
        side = resolution // 8
        conditioning = {
            "hidden": torch.randn(batch, 77 + T5_LENGTH, config.joint_attention_dim, device=device, dtype=dtype),
            "pooled": torch.randn(batch, config.pooled_projection_dim, device=device, dtype=dtype),
        }
        return LatentBatch(torch.randn(batch, config.in_channels, side, side, device=device), conditioning)


def make_adapter(family: str) -> FamilyAdapter:
    return SD3Adapter(family)
