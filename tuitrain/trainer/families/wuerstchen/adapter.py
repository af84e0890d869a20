"""Würstchen v2's prior: CLIP-bigG text hidden states, EfficientNet latents scaled by (x + 1) / 42.

Conditioning as diffusers' WuerstchenPriorPipeline (Apache-2.0) gives it: the last hidden state (after the final
layer norm) of CLIP-bigG (a CLIPTextModel, 77 tokens with the attention mask) as `c`, and the continuous time
t in [0, 1] as `r`. The latents are the EfficientNet's of the image scaled by (x + latent_std) / latent_mean
(42 and 1 in the published pipeline: (x + 1) / 42), the inverse of what the pipeline does to its samples
(`latents * latent_mean - latent_std`) and what the original trainer's encoder returns (dome272/Wuerstchen,
modules.py: `.add(1.).div(42.)`). diffusers' example train_text_to_image_prior.py leaves the scaling out (its
encoder returns the raw latents), which would teach the prior latents 42 times the ones it samples; this follows
the original and the pipeline. The example's plain MSE on uniform t is what the objective does (the original
trainer's p2 loss weight 1 / (1 + SNR) is not reproduced; objective.min_snr_gamma is there).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch

from tuitrain.families import FAMILIES
from tuitrain.trainer.families.base import Conditioning, FamilyAdapter, LatentBatch, ModelParts
from tuitrain.trainer.families.cascade.adapter import MissingEncoder
from tuitrain.trainer.families.cascade.companions import WUERSTCHEN, companions_to_train, find_effnet
from tuitrain.trainer.families.text_encoders import CLIP_ATTENTION_AND_MLP
from tuitrain.trainer.families.wuerstchen.compat import restore_wuerstchen_package

# As Stable Cascade's prior: every attention block's q/k/v/out (self-attention over image and text tokens
# together); with lora.train_ff the res blocks' channelwise MLP too.
ATTENTION = ("attention.to_q", "attention.to_k", "attention.to_v", "attention.to_out.0")
FEED_FORWARD = ("channelwise.0", "channelwise.4")
TEXT_TOKENS = 77
RESOLUTION_MULTIPLE = 42.67  # WuerstchenPriorPipeline's default: image side / latent side
LATENT_MEAN, LATENT_STD = 42.0, 1.0  # its defaults: samples are latents * 42 - 1
WORDS = "Würstchen v2's"

log = logging.getLogger(__name__)

restore_wuerstchen_package()  # before any Würstchen folder loads (compat.py)

NOTE = ("Würstchen samples show the prior's latents (channels 0-2 as colours), not decoded images: set "
        "wuerstchen.decoder to a Würstchen decoder (stages B and A, e.g. warp-ai/wuerstchen) to decode them")


class WuerstchenAdapter(FamilyAdapter):
    attention_modules = ATTENTION
    feed_forward_modules = FEED_FORWARD
    conv_modules = ()
    text_encoder_modules = CLIP_ATTENTION_AND_MLP
    trainable_text_encoders = 1  # the LoRA file holds `text_encoder.` keys too, which the pipeline's loader reads

    def __init__(self, name: str) -> None:
        self.info = FAMILIES[name]
        self.effnet_file: Path | None = None
        self.decoder = ""  # wuerstchen.decoder: a local folder (resolved) or a hub id; "" none

    def configure(self, config: Any) -> None:
        """The EfficientNet (wuerstchen.effnet, else beside model.base / in model.config) and the decoder; a run
        without an encoder is refused here, before anything loads, in the line `tuitrain check` gives (cascade/
        companions.py). model.quantize = 'int8' is refused by the config itself."""
        super().configure(config)
        found = companions_to_train(config, WUERSTCHEN)
        self.effnet_file, self.decoder = found.effnet, found.decoder

    def parts(self, pipeline: Any, prediction: str) -> ModelParts:
        """The encoder is the configured one, else the one saved in the pipeline's own folder (a tiny test model),
        else none (a model loaded to compute, not to train)."""
        from tuitrain.trainer.errors import TrainingError
        from tuitrain.trainer.families.cascade.effnet import EfficientNetEncoder, load_encoder

        effnet = self.effnet_file or find_effnet("", [Path(p) for p in [getattr(pipeline, "name_or_path", None)] if p])
        try:
            encoder = load_encoder(effnet, "wuerstchen.effnet", WORDS) if effnet else MissingEncoder()
        except ValueError as exc:  # not the encoder's file: one line naming it
            raise TrainingError(str(exc)) from None
        if isinstance(encoder, EfficientNetEncoder) and not encoder.config.affine_norm:
            raise TrainingError(f"wuerstchen.effnet: '{effnet}' is Stable Cascade's EfficientNet encoder (its last "
                                "batch norm has no weight); Würstchen v2's prior learned another one's latents: give "
                                "model_v2_stage_b.pt's effnet_state_dict")
        if prediction in ("", "auto"):
            prediction = "epsilon"
        config = pipeline.config
        return ModelParts(
            pipeline=pipeline,
            denoiser=pipeline.prior,
            vae=encoder,
            text_encoders=[pipeline.text_encoder],
            tokenizers=[pipeline.tokenizer],
            noise_scheduler=pipeline.scheduler,
            prediction_type=prediction,
            flavour="v2",
            extra={"resolution_multiple": float(config.get("resolution_multiple") or RESOLUTION_MULTIPLE),
                   "latent_mean": float(config.get("latent_mean") or LATENT_MEAN),
                   "latent_std": float(config.get("latent_std") if config.get("latent_std") is not None
                                       else LATENT_STD)},
        )

    def encode_text(self, parts: ModelParts, captions: list[str], clip_skip: int = 0) -> Conditioning:
        """The pipeline's last_hidden_state; clip_skip N (A1111's count) takes the N-th layer from the end
        through the final layer norm, as for SD."""
        encoder, tokenizer = parts.text_encoders[0], parts.tokenizers[0]
        tokens = tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                           return_tensors="pt")
        ids, mask = tokens.input_ids.to(encoder.device), tokens.attention_mask.to(encoder.device)
        if clip_skip <= 1:
            return {"hidden": encoder(ids, attention_mask=mask).last_hidden_state}
        hidden = encoder(ids, attention_mask=mask, output_hidden_states=True).hidden_states[-clip_skip]
        return {"hidden": getattr(encoder, "text_model", encoder).final_layer_norm(hidden)}

    def predict(self, parts: ModelParts, noisy: torch.Tensor, timesteps: torch.Tensor, batch: LatentBatch) -> torch.Tensor:
        t = timesteps.to(device=noisy.device, dtype=noisy.dtype).expand(noisy.shape[0])
        return parts.denoiser(noisy, t, batch.conditioning["hidden"].to(noisy.dtype))

    def latent_size(self, parts: ModelParts, height: int, width: int) -> tuple[int, int]:
        """The prior's latent size for an image, as the pipeline sizes its latents: ceil(side / 42.67)."""
        multiple = parts.extra.get("resolution_multiple", RESOLUTION_MULTIPLE)
        return math.ceil(height / multiple), math.ceil(width / multiple)

    def encode_images(self, parts: ModelParts, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels in [-1, 1] -> the prior's latents: the EfficientNet's at the latent size (384 px for 12, as
        Würstchen's effnet_preprocess resizes 512 px images), then (x + 1) / 42."""
        from tuitrain.trainer.errors import TrainingError
        from tuitrain.trainer.families.cascade.effnet import effnet_latents

        encoder = parts.vae
        if isinstance(encoder, MissingEncoder):
            raise TrainingError("wuerstchen.effnet: no EfficientNet encoder is loaded; set it to Würstchen v2's "
                                "encoder")
        size = self.latent_size(parts, pixels.shape[-2], pixels.shape[-1])
        latents = effnet_latents(encoder, pixels, size)  # type: ignore[arg-type]
        return (latents + parts.extra.get("latent_std", LATENT_STD)) / parts.extra.get("latent_mean", LATENT_MEAN)

    def denoiser_file_state(self, denoiser: torch.nn.Module) -> dict[str, torch.Tensor]:
        """The published prior file's layout is diffusers' own: the state dict as it is."""
        return {k: v.detach().to("cpu") for k, v in denoiser.state_dict().items()}

    def cache_identity(self) -> str:
        """The EfficientNet file the latents come from (wuerstchen.effnet may point outside the model folder)."""
        if self.effnet_file is None:
            return ""
        stat = self.effnet_file.stat()
        return f"+effnet:{self.effnet_file.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"

    def sample_pipeline(self, parts: ModelParts) -> Any:
        """The prior pipeline, with the decoder (stages B and A) after it when wuerstchen.decoder names one (loaded
        at the first sample, onto the prior's device and dtype, and kept); else the latents drawn as colours."""
        from tuitrain.trainer.families.cascade.preview import PriorPreviewPipeline

        if not self.decoder:
            if "noted" not in parts.extra:
                parts.extra["noted"] = True
                log.warning(NOTE)
            return PriorPreviewPipeline(parts.pipeline)
        if "decoder" not in parts.extra:
            parts.extra["decoder"] = self._load_decoder(parts)
        return PriorPreviewPipeline(parts.pipeline, parts.extra["decoder"])

    def _load_decoder(self, parts: ModelParts) -> Any:
        """WuerstchenDecoderPipeline from its folder or hub id (its ["wuerstchen", ...] classes resolve through
        compat.py)."""
        from diffusers import WuerstchenDecoderPipeline

        from tuitrain.trainer.errors import TrainingError
        from tuitrain.trainer.loading.compat import dtype_kwargs

        parameter = next(parts.denoiser.parameters())
        source = self.decoder
        try:
            decoder = WuerstchenDecoderPipeline.from_pretrained(source, local_files_only=Path(source).is_dir(),
                                                                **dtype_kwargs(parameter.dtype))
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TrainingError(f"wuerstchen.decoder: cannot load '{source}' as a Würstchen decoder: "
                                f"{reason}") from exc
        decoder.set_progress_bar_config(disable=True)
        return decoder.to(parameter.device)

    def sample_inputs(self, parts: ModelParts, prompt: dict[str, Any]) -> dict[str, Any]:
        return {"prompt": prompt["prompt"], "negative_prompt": prompt["negative_prompt"] or None,
                "num_inference_steps": prompt["steps"], "guidance_scale": prompt["cfg"], "width": prompt["width"],
                "height": prompt["height"]}

    def full_size_denoiser(self) -> torch.nn.Module:
        """The published prior from the shipped config (WuerstchenPrior is not in diffusers' top-level names)."""
        from diffusers.pipelines.deprecated.wuerstchen import WuerstchenPrior

        from tuitrain.trainer.families.wuerstchen.files import WUERSTCHEN

        return WuerstchenPrior.from_config(WuerstchenPrior.load_config(str(WUERSTCHEN.configs / "prior")))

    def random_batch(self, denoiser: torch.nn.Module, batch: int, resolution: int, device: torch.device,
                     dtype: torch.dtype) -> LatentBatch:
        config = denoiser.config  # type: ignore[union-attr]
        side = math.ceil(resolution / RESOLUTION_MULTIPLE)
        hidden = torch.randn(batch, TEXT_TOKENS, config.c_cond, device=device, dtype=dtype)
        return LatentBatch(torch.randn(batch, config.c_in, side, side, device=device), {"hidden": hidden})


def make_adapter(family: str) -> FamilyAdapter:
    return WuerstchenAdapter(family)
