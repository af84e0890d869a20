"""FLUX.1: CLIP-L pooled + T5 token conditioning, 2x2-packed latents with image ids, distilled guidance.

The denoiser call follows diffusers' train_dreambooth_lora_flux.py (Apache-2.0): latents are
packed into [B, h/2 * w/2, 64] tokens with (0, row, col) image ids, text ids are zeros, the
timestep is sigma (the objective hands sigma * 1000, as for SD3), and the guidance embedding
gets flux.guidance (dev/krea: the distilled guidance; schnell has no guidance embedding).
The prediction is unpacked back to [B, 16, h, w], so the objective's target and the masked
loss see latents of the usual shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tuitrain.families import FAMILIES
from tuitrain.trainer.families.base import Conditioning, FamilyAdapter, LatentBatch, ModelParts
from tuitrain.trainer.families.text_encoders import CLIP_ATTENTION_AND_MLP

# LoRA targets (module-name suffixes), after diffusers' Flux script: the joint attention of the
# double blocks (image and text streams) and the single blocks' q/k/v.
ATTENTION = ("attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0",
             "attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj", "attn.to_add_out")
# With lora.train_ff: the feed-forward of both streams and the single blocks' MLP in / out
# projections (proj_out also names the model's final projection, which the suffix rule adapts too):
# SimpleTuner's "all+ffs" set, so train_attention alone is its "all" and both are "all+ffs".
FEED_FORWARD = ("ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj", "ff_context.net.2", "proj_mlp", "proj_out")
DEFAULT_T5_LENGTH = {"schnell": 256}  # every other flavour: 512, as BFL and diffusers use


def pack(latents: torch.Tensor) -> torch.Tensor:
    """[B, C, h, w] -> [B, h/2 * w/2, C * 4] tokens, as FluxPipeline._pack_latents."""
    b, c, h, w = latents.shape
    return latents.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // 2) * (w // 2), c * 4)


def unpack(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The inverse of pack for latents of [height, width]."""
    b, _, channels = tokens.shape
    x = tokens.view(b, height // 2, width // 2, channels // 4, 2, 2).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, channels // 4, height, width)


def image_ids(height: int, width: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(0, row, col) per packed token, as FluxPipeline._prepare_latent_image_ids."""
    ids = torch.zeros(height // 2, width // 2, 3, device=device, dtype=dtype)
    ids[..., 1] = torch.arange(height // 2, device=device, dtype=dtype)[:, None]
    ids[..., 2] = torch.arange(width // 2, device=device, dtype=dtype)[None, :]
    return ids.reshape(-1, 3)


def dora_state_dict(models: dict[str, torch.nn.Module], denoiser_name: str,
                    dtype: torch.dtype) -> dict[str, torch.Tensor] | None:
    """A DoRA LoRA in diffusers' names (None for plain LoRA: export/peft_lora.py writes it): lora_A, lora_B with
    alpha / rank folded in (scale 1 in every loader; DoRA normalises W + scale * B A, the same product), and
    `<module>.lora_magnitude_vector`, the key diffusers' loader turns into peft's use_dora layers."""
    from tuitrain.trainer.methods.peft_layers import lora_layers

    layers = {(component, path): layer for component, model in models.items()
              for path, layer in lora_layers(model).items()}
    if not any(layer.magnitude is not None for layer in layers.values()):
        return None
    out: dict[str, torch.Tensor] = {}
    for (component, path), layer in layers.items():
        if component != denoiser_name:  # FluxAdapter._check_dora refuses a DoRA CLIP-L before training
            raise ValueError(f"{component}.{path}: DoRA is written for the transformer only (lora.use_dora)")
        key = f"{component}.{path}"
        out[f"{key}.lora_A.weight"] = layer.down.detach().to("cpu", dtype).contiguous()
        out[f"{key}.lora_B.weight"] = (layer.up.detach().float() * (layer.alpha / layer.rank)).to("cpu", dtype).contiguous()
        if layer.magnitude is not None:  # fp32 whatever saving.dtype: [out] per layer, and fp16 would move it by ~5e-4
            out[f"{key}.lora_magnitude_vector"] = layer.magnitude.detach().to("cpu", torch.float32).contiguous()
    return out


def joint_mask(t5_mask: torch.Tensor, image_tokens: int) -> torch.Tensor:
    """The attention mask of Flux's joint sequence (text tokens, then image tokens): [B, 1, 1, L], True where
    attention may look. Every query sees the caption's tokens and every image token, never T5's padding."""
    keep = torch.cat([t5_mask.bool(), t5_mask.new_ones(t5_mask.shape[0], image_tokens, dtype=torch.bool)], dim=1)
    return keep[:, None, None, :]


class FluxAdapter(FamilyAdapter):
    attention_modules = ATTENTION
    feed_forward_modules = FEED_FORWARD
    conv_modules = ()
    text_encoder_modules = CLIP_ATTENTION_AND_MLP
    trainable_text_encoders = 1  # the CLIP encoder; T5 is never adapted (as in diffusers' and kohya's Flux trainers)

    def __init__(self, name: str) -> None:
        self.info = FAMILIES[name]
        self.flavour_name = ""  # model.flavour; empty: detected
        self.guidance = 1.0
        self.t5_max_length = 0
        self.lora_layout = "diffusers"
        self.t5_mask = False
        self.true_cfg = 1.0
        self.part_files: tuple[Path, ...] = ()  # model.text_encoder / text_encoder_2, as the loader found them

    def configure(self, config: Any) -> None:
        """model.flavour, flux.guidance and flux.t5_max_length from the run's config."""
        super().configure(config)
        self.flavour_name = config.model.flavour
        self.guidance = config.flux.guidance
        self.t5_max_length = config.flux.t5_max_length
        self.lora_layout = config.flux.lora_layout
        self.t5_mask = config.flux.t5_attention_mask
        self.true_cfg = config.flux.true_cfg
        if config.training.method == "lora" and config.lora.type == "lora" and config.lora.use_dora:
            self._check_dora(config)

    @staticmethod
    def _check_dora(config: Any) -> None:
        """DoRA on FLUX.1 saves what diffusers applies exactly: the transformer's layers, in diffusers' names
        (FluxFiles.dora_problem, which `tuitrain check` blocks in the same words)."""
        from tuitrain.trainer.errors import TrainingError
        from tuitrain.trainer.families import family_files

        problem = family_files("flux").dora_problem(config)
        if problem:
            raise TrainingError(problem)

    def detect_flavour(self, transformer: torch.nn.Module) -> str:
        """schnell has no guidance embedding; dev and krea (the same architecture) have one. model.flavour
        chooses between those; a flavour the weights contradict is refused."""
        from tuitrain.trainer.errors import TrainingError

        guided = bool(transformer.config.guidance_embeds)  # type: ignore[union-attr]
        detected = "dev" if guided else "schnell"
        chosen = self.flavour_name or detected  # krea and kontext have dev's architecture: only the config tells
        if (chosen == "schnell") == guided:
            raise TrainingError(
                f"model.flavour: {chosen!r}, but the transformer has {'a' if guided else 'no'} guidance embedding "
                f"(a {'dev/krea' if guided else 'schnell'} model); set model.flavour = '{detected}' or leave it empty"
            )
        return chosen

    def parts(self, pipeline: Any, prediction: str) -> ModelParts:
        from tuitrain.trainer.loading.pipeline import PART_FILES

        self.part_files = tuple(getattr(pipeline, PART_FILES, ()))
        transformer = pipeline.transformer
        flavour = self.detect_flavour(transformer)
        return ModelParts(
            pipeline=pipeline,
            denoiser=transformer,
            vae=pipeline.vae,
            text_encoders=[pipeline.text_encoder, pipeline.text_encoder_2],
            tokenizers=[pipeline.tokenizer, pipeline.tokenizer_2],
            noise_scheduler=pipeline.scheduler,
            prediction_type="flow",
            flavour=flavour,
        )

    def t5_length(self, parts: ModelParts) -> int:
        length = self.t5_max_length or DEFAULT_T5_LENGTH.get(parts.flavour, 512)
        return min(length, parts.tokenizers[1].model_max_length)

    def encode_text(self, parts: ModelParts, captions: list[str], clip_skip: int = 0) -> Conditioning:
        clip, t5 = parts.text_encoders
        clip_tokenizer, t5_tokenizer = parts.tokenizers
        ids = clip_tokenizer(captions, padding="max_length", max_length=clip_tokenizer.model_max_length,
                             truncation=True, return_tensors="pt").input_ids.to(clip.device)
        pooled = clip(ids, output_hidden_states=False).pooler_output
        tokens = t5_tokenizer(captions, padding="max_length", max_length=self.t5_length(parts), truncation=True,
                              return_tensors="pt")
        hidden = t5(tokens.input_ids.to(t5.device), output_hidden_states=False)[0]
        if self.t5_mask:  # which T5 tokens are the caption's (1) and which padding (0), for predict's mask
            return {"hidden": hidden, "pooled": pooled, "t5_mask": tokens.attention_mask.to(hidden.device).float()}
        return {"hidden": hidden, "pooled": pooled}

    def predict(self, parts: ModelParts, noisy: torch.Tensor, timesteps: torch.Tensor, batch: LatentBatch) -> torch.Tensor:
        transformer = parts.denoiser
        b, _, h, w = noisy.shape
        hidden = batch.conditioning["hidden"].to(noisy.dtype)
        guidance = None
        if transformer.config.guidance_embeds:  # type: ignore[union-attr]
            guidance = torch.full((b,), self.guidance, device=noisy.device, dtype=torch.float32)
        tokens, ids = pack(noisy), image_ids(h, w, noisy.device, noisy.dtype)
        target_tokens = tokens.shape[1]
        if batch.reference is not None:
            # Kontext: the reference's tokens follow the image's on the sequence axis, told apart by the first id
            # (1); only the image's tokens are predicted (FluxKontextPipeline and diffusers' Kontext script).
            reference = batch.reference.to(noisy.dtype)
            reference_ids = image_ids(reference.shape[-2], reference.shape[-1], noisy.device, noisy.dtype)
            reference_ids[:, 0] = 1
            tokens, ids = torch.cat([tokens, pack(reference)], dim=1), torch.cat([ids, reference_ids], dim=0)
        attention = None
        if "t5_mask" in batch.conditioning:  # every image token (the reference's too) stays visible
            attention = {"attention_mask": joint_mask(batch.conditioning["t5_mask"], tokens.shape[1])}
        out = transformer(
            hidden_states=tokens,
            timestep=timesteps.float() / 1000,  # fp32: bf16 would round sigma near 1 by up to 0.4 %
            guidance=guidance,
            pooled_projections=batch.conditioning["pooled"].to(noisy.dtype),
            encoder_hidden_states=hidden,
            txt_ids=torch.zeros(hidden.shape[1], 3, device=noisy.device, dtype=noisy.dtype),
            img_ids=ids,
            joint_attention_kwargs=attention,
            return_dict=False,
        )[0]
        return unpack(out[:, :target_tokens], h, w)

    def cache_identity(self) -> str:
        """The CLIP-L / T5 files given beside the base (model.text_encoder / text_encoder_2): cached text
        embeddings are theirs."""
        said = []
        for path in self.part_files:
            stat = path.stat()
            said.append(f"+encoder:{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}")
        return "".join(said)

    def denoiser_file_state(self, denoiser: torch.nn.Module) -> dict[str, torch.Tensor]:
        from tuitrain.trainer.families.flux.layout import to_bfl

        # On the host first: to_bfl concatenates q/k/v and the single blocks' linear1 (3.6B weights), which
        # would otherwise be new allocations on the GPU in the middle of a save.
        return to_bfl({k: v.detach().to("cpu") for k, v in denoiser.state_dict().items()})

    def lora_file_tensors(self, models: dict[str, torch.nn.Module], denoiser_name: str,
                          dtype: torch.dtype) -> dict[str, torch.Tensor] | None:
        if self.lora_layout != "kohya":
            return dora_state_dict(models, denoiser_name, dtype)
        from tuitrain.trainer.families.flux.kohya_lora import flux_kohya_state_dict

        return flux_kohya_state_dict(models, denoiser_name, dtype=dtype)

    def text_settings(self, parts: ModelParts) -> str:
        return f"t5={self.t5_length(parts)}" + (" masked" if self.t5_mask else "")

    def metadata(self, config: Any) -> dict[str, str]:
        """kohya's Flux keys (flux_train_network.py): what the file was trained with."""
        o = config.objective
        shift = "auto" if o.auto_shift else ("scheduler" if o.shift is None else str(o.shift))
        return {"ss_guidance_scale": str(self.guidance), "ss_timestep_sampling": o.timestep_sampling,
                "ss_sigmoid_scale": str(o.sigmoid_scale), "ss_model_prediction_type": "raw",
                "ss_discrete_flow_shift": shift,
                "ss_t5xxl_max_token_length": str(self.t5_max_length or DEFAULT_T5_LENGTH.get(self.flavour_name, 512)),
                **({"ss_network_module": "networks.lora_flux"} if self.lora_layout == "kohya" else {})}

    def sample_pipeline(self, parts: ModelParts) -> Any:
        """Kontext samples edit their prompt's reference image through FluxKontextPipeline, built on the same
        components (nothing is copied)."""
        if parts.flavour != "kontext":
            return parts.pipeline
        from diffusers import FluxKontextPipeline

        return FluxKontextPipeline(**parts.pipeline.components)

    def sample_inputs(self, parts: ModelParts, prompt: dict[str, Any]) -> dict[str, Any]:
        """FluxPipeline's arguments: cfg is the distilled guidance (dev: 3.5 is usual); schnell ignores it;
        flux.true_cfg > 1 adds real CFG with the negative prompt."""
        inputs = {"prompt": prompt["prompt"], "num_inference_steps": prompt["steps"], "guidance_scale": prompt["cfg"],
                  "width": prompt["width"], "height": prompt["height"], "max_sequence_length": self.t5_length(parts)}
        if prompt.get("reference"):  # Kontext: the image to edit, at the sample's own size (no resizing to
            from PIL import Image  # Kontext's preferred resolutions, which would not match training's buckets)

            size = (prompt["width"], prompt["height"])  # fitted to the sample's size, as training fits pairs
            inputs["image"] = Image.open(prompt["reference"]).convert("RGB").resize(size, Image.Resampling.LANCZOS)
            inputs["_auto_resize"] = False
            inputs["max_area"] = size[0] * size[1]  # else FluxKontextPipeline rescales the output to 1024 x 1024
        if self.true_cfg > 1:  # real CFG: diffusers runs it only when a negative prompt is given, "" included
            inputs.update(true_cfg_scale=self.true_cfg, negative_prompt=prompt["negative_prompt"] or "")
        if self.t5_mask:  # the same mask as in training: FluxPipeline hands joint_attention_kwargs to the transformer
            caption = parts.tokenizers[1]([prompt["prompt"]], padding="max_length", max_length=self.t5_length(parts),
                                          truncation=True, return_tensors="pt").attention_mask
            image_tokens = (prompt["height"] // 16) * (prompt["width"] // 16) * (2 if "image" in inputs else 1)
            inputs["joint_attention_kwargs"] = {
                "attention_mask": joint_mask(caption.to(parts.denoiser.device), image_tokens)}
        return inputs

    def random_batch(self, denoiser: torch.nn.Module, batch: int, resolution: int, device: torch.device,
                     dtype: torch.dtype) -> LatentBatch:
        config = denoiser.config  # type: ignore[union-attr]
        side = resolution // 8
        conditioning = {"hidden": torch.randn(batch, 512, config.joint_attention_dim, device=device, dtype=dtype),
                        "pooled": torch.randn(batch, config.pooled_projection_dim, device=device, dtype=dtype)}
        return LatentBatch(torch.randn(batch, config.in_channels // 4, side, side, device=device), conditioning)


def make_adapter(family: str) -> FamilyAdapter:
    return FluxAdapter(family)
