"""Stable Cascade stage C: CLIP-G text (hidden states + pooled), a zero image embedding, EfficientNet latents.

As diffusers' StableCascadePriorPipeline (Apache-2.0) conditions the prior: the last hidden state of
CLIP-G (CLIPTextModelWithProjection, 77 tokens with the attention mask) as `clip_text`, its projected
pooled output [B, 1, 1280] as `clip_text_pooled`, and an image embedding [B, 1, 768] that is zero when
no image prompt is given (what text-to-image training feeds, as diffusers' train_text_to_image_prior.py
feeds no image either). The prior is called with the continuous time t in [0, 1] (`timestep_ratio`);
the objective (objectives/continuous.py) draws it. Images become latents through the EfficientNet
encoder (effnet.py), which the adapter loads from cascade.effnet or finds beside the model.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch

from tuitrain.families import FAMILIES
from tuitrain.trainer.families.base import Conditioning, FamilyAdapter, LatentBatch, ModelParts
from tuitrain.trainer.families.cascade.companions import CASCADE, companions_to_train, find_effnet

# LoRA targets: every attention block's q/k/v/out (self-attention over image and text tokens together);
# with lora.train_ff the res blocks' channelwise MLP too. The depthwise convolutions stay frozen.
ATTENTION = ("attention.to_q", "attention.to_k", "attention.to_v", "attention.to_out.0")
FEED_FORWARD = ("channelwise.0", "channelwise.4")
LITE_WIDTH = 1536  # stage C lite's conditioning width (the full prior's is 2048), as diffusers' detector reads it
TEXT_TOKENS = 77
RESOLUTION_MULTIPLE = 42.67  # StableCascadePriorPipeline's default: image side / latent side

log = logging.getLogger(__name__)


class MissingEncoder(torch.nn.Module):
    """Stands where the EfficientNet would be when none was found: a model loaded to compute, not to train
    (training is refused earlier, in configure). Holds one empty parameter so device and dtype read."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(0), requires_grad=False)

    @property
    def dtype(self) -> torch.dtype:
        return self.anchor.dtype


class CascadeAdapter(FamilyAdapter):
    attention_modules = ATTENTION
    feed_forward_modules = FEED_FORWARD
    conv_modules = ()
    text_encoder_modules = ()
    trainable_text_encoders = 0  # LoRA files hold the prior only (lora.py)

    def __init__(self, name: str) -> None:
        self.info = FAMILIES[name]
        self.flavour_name = ""
        self.effnet_file: Path | None = None
        self.decoder = ""  # cascade.decoder: a local folder (resolved) or a hub id; "" none
        self.previewer: Any = None  # cascade.previewer (or found beside the model), read in configure

    def configure(self, config: Any) -> None:
        """model.flavour, and the EfficientNet: cascade.effnet, else beside model.base / in model.config. A run
        without one is refused here, before anything loads, in the line `tuitrain check` gives (companions.py);
        LoRA options Cascade files cannot hold are refused by the config itself."""
        from tuitrain.trainer.errors import TrainingError

        super().configure(config)
        self.flavour_name = config.model.flavour
        found = companions_to_train(config, CASCADE)
        self.effnet_file, self.decoder = found.effnet, found.decoder
        self.previewer = None
        if found.previewer is not None:  # read now: a wrong file is refused at start, not at the first sample
            from tuitrain.trainer.families.cascade.previewer import load_previewer

            try:
                self.previewer = load_previewer(found.previewer)
            except ValueError as exc:
                raise TrainingError(str(exc)) from None

    def parts(self, pipeline: Any, prediction: str) -> ModelParts:
        """The flavour is model.flavour, else lite when the prior's conditioning is 1536 wide. The encoder is the
        configured one, else the one saved in the pipeline's own folder (a tiny test model), else none."""
        from tuitrain.trainer.families.cascade.effnet import EfficientNetEncoder, load_encoder

        prior = pipeline.prior
        flavour = self.flavour_name or ("stage-c-lite" if prior.config.conditioning_dim == LITE_WIDTH else "stage-c")
        effnet = self.effnet_file or find_effnet("", [Path(p) for p in [getattr(pipeline, "name_or_path", None)] if p])
        from tuitrain.trainer.errors import TrainingError

        try:
            encoder = load_encoder(effnet) if effnet else MissingEncoder()
        except ValueError as exc:  # not the encoder's file: one line naming it
            raise TrainingError(str(exc)) from None
        if isinstance(encoder, EfficientNetEncoder) and encoder.config.affine_norm:
            raise TrainingError(f"cascade.effnet: '{effnet}' is Würstchen v2's EfficientNet encoder (its last batch "
                                "norm is affine); stage C learned another one's latents: give Stable Cascade's "
                                "effnet_encoder.safetensors")
        if prediction in ("", "auto"):
            prediction = "epsilon"
        return ModelParts(
            pipeline=pipeline,
            denoiser=prior,
            vae=encoder,
            text_encoders=[pipeline.text_encoder],
            tokenizers=[pipeline.tokenizer],
            noise_scheduler=pipeline.scheduler,
            prediction_type=prediction,
            flavour=flavour,
            extra={"resolution_multiple": float(pipeline.config.get("resolution_multiple") or RESOLUTION_MULTIPLE)},
        )

    def encode_text(self, parts: ModelParts, captions: list[str], clip_skip: int = 0) -> Conditioning:
        encoder, tokenizer = parts.text_encoders[0], parts.tokenizers[0]
        tokens = tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                           return_tensors="pt")
        out = encoder(tokens.input_ids.to(encoder.device), attention_mask=tokens.attention_mask.to(encoder.device),
                      output_hidden_states=True)
        # The pipeline's hidden_states[-1]; clip_skip N (A1111's count) takes the N-th from the end.
        hidden = out.hidden_states[-max(clip_skip, 1)]
        return {"hidden": hidden, "pooled": out.text_embeds}

    def predict(self, parts: ModelParts, noisy: torch.Tensor, timesteps: torch.Tensor, batch: LatentBatch) -> torch.Tensor:
        prior = parts.denoiser
        b = noisy.shape[0]
        pooled = batch.conditioning["pooled"].to(noisy.dtype).reshape(b, 1, -1)
        image = torch.zeros(b, 1, prior.config.clip_image_in_channels, device=noisy.device,  # type: ignore[union-attr]
                            dtype=noisy.dtype)
        t = timesteps.to(device=noisy.device, dtype=noisy.dtype).expand(b)
        return prior(sample=noisy, timestep_ratio=t, clip_text_pooled=pooled,
                     clip_text=batch.conditioning["hidden"].to(noisy.dtype), clip_img=image, return_dict=False)[0]

    def latent_size(self, parts: ModelParts, height: int, width: int) -> tuple[int, int]:
        """The prior's latent size for an image, as the pipeline sizes its latents: ceil(side / 42.67)."""
        multiple = parts.extra.get("resolution_multiple", RESOLUTION_MULTIPLE)
        return math.ceil(height / multiple), math.ceil(width / multiple)

    def encode_images(self, parts: ModelParts, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels in [-1, 1] -> stage-C latents: resized so the encoder's 1/32 lands on the latent size (768 px
        for 1024, as ComfyUI's stage-C encode node resizes), ImageNet-normalised, encoded."""
        from tuitrain.trainer.errors import TrainingError
        from tuitrain.trainer.families.cascade.effnet import effnet_latents

        encoder = parts.vae
        if isinstance(encoder, MissingEncoder):
            raise TrainingError("cascade.effnet: no EfficientNet encoder is loaded; set it to effnet_encoder.safetensors")
        return effnet_latents(encoder, pixels, self.latent_size(parts, pixels.shape[-2], pixels.shape[-1]))  # type: ignore[arg-type]

    def denoiser_file_state(self, denoiser: torch.nn.Module) -> dict[str, torch.Tensor]:
        from tuitrain.trainer.families.cascade.layout import to_original

        return to_original({k: v.detach().to("cpu") for k, v in denoiser.state_dict().items()})

    def cache_identity(self) -> str:
        """The EfficientNet file the latents come from (cascade.effnet may point outside the model folder)."""
        if self.effnet_file is None:
            return ""
        stat = self.effnet_file.stat()
        return f"+effnet:{self.effnet_file.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"

    def lycoris_module_path(self, path: str) -> str:
        """LoKr / LoHa names: ComfyUI's module paths (attention as attention.attn.to_q / out_proj), as the LoRA's."""
        from tuitrain.trainer.families.cascade.layout import comfy_module

        return comfy_module(path)

    def lora_file_tensors(self, models: dict[str, torch.nn.Module], denoiser_name: str,
                          dtype: torch.dtype) -> dict[str, torch.Tensor] | None:
        from tuitrain.trainer.families.cascade.lora import cascade_lora_state_dict

        return cascade_lora_state_dict(models, denoiser_name, dtype=dtype)

    def sample_pipeline(self, parts: ModelParts) -> Any:
        """The prior pipeline, with stages B and A after it when cascade.decoder names them (loaded at the first
        sample, onto the prior's device and dtype, and kept)."""
        from tuitrain.trainer.families.cascade.preview import NOTE, PREVIEWER_NOTE, PriorPreviewPipeline

        if not self.decoder:
            if "previewer" not in parts.extra:
                parts.extra["previewer"] = self._load_previewer(parts) if self.previewer is not None else None
                log.warning(PREVIEWER_NOTE if self.previewer is not None else NOTE)
            return PriorPreviewPipeline(parts.pipeline, previewer=parts.extra["previewer"])
        if "decoder" not in parts.extra:
            parts.extra["decoder"] = self._load_decoder(parts)
        return PriorPreviewPipeline(parts.pipeline, parts.extra["decoder"])

    def _load_previewer(self, parts: ModelParts) -> Any:
        return self.previewer.to(next(parts.denoiser.parameters()).device)

    def _load_decoder(self, parts: ModelParts) -> Any:
        """StableCascadeDecoderPipeline built from its folder's components one by one: diffusers 0.42 moved
        PaellaVQModel (stage A) to its deprecated pipelines, where the class a decoder's model_index.json names
        for it no longer resolves, so the pipeline's own from_pretrained cannot load any decoder folder."""
        import json

        from diffusers import DDPMWuerstchenScheduler, StableCascadeDecoderPipeline, StableCascadeUNet
        from diffusers.pipelines.deprecated.wuerstchen.modeling_paella_vq_model import PaellaVQModel
        from transformers import CLIPTextModelWithProjection, CLIPTokenizer

        from tuitrain.trainer.errors import TrainingError
        from tuitrain.trainer.loading.compat import dtype_kwargs

        parameter = next(parts.denoiser.parameters())
        source = self.decoder
        local = {"local_files_only": Path(source).is_dir()}
        dtype = dtype_kwargs(parameter.dtype)
        try:
            if Path(source).is_dir():
                index = json.loads((Path(source) / "model_index.json").read_text(encoding="utf-8"))
            else:
                index = dict(StableCascadeDecoderPipeline.load_config(source))
            decoder = StableCascadeDecoderPipeline(
                decoder=StableCascadeUNet.from_pretrained(source, subfolder="decoder", **local, **dtype),
                tokenizer=CLIPTokenizer.from_pretrained(source, subfolder="tokenizer", **local),
                text_encoder=CLIPTextModelWithProjection.from_pretrained(source, subfolder="text_encoder", **local,
                                                                         **dtype),
                scheduler=DDPMWuerstchenScheduler.from_pretrained(source, subfolder="scheduler", **local),
                vqgan=PaellaVQModel.from_pretrained(source, subfolder="vqgan", **local, **dtype),
                latent_dim_scale=float(index.get("latent_dim_scale") or 10.67),
            )
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TrainingError(f"cascade.decoder: cannot load '{source}' as a Stable Cascade decoder: "
                                f"{reason}") from exc
        decoder.to(parameter.device)
        return decoder

    def sample_inputs(self, parts: ModelParts, prompt: dict[str, Any]) -> dict[str, Any]:
        return {"prompt": prompt["prompt"], "negative_prompt": prompt["negative_prompt"] or None,
                "num_inference_steps": prompt["steps"], "guidance_scale": prompt["cfg"], "width": prompt["width"],
                "height": prompt["height"]}

    def random_batch(self, denoiser: torch.nn.Module, batch: int, resolution: int, device: torch.device,
                     dtype: torch.dtype) -> LatentBatch:
        config = denoiser.config  # type: ignore[union-attr]
        side = math.ceil(resolution / RESOLUTION_MULTIPLE)
        conditioning = {
            "hidden": torch.randn(batch, TEXT_TOKENS, config.clip_text_in_channels, device=device, dtype=dtype),
            "pooled": torch.randn(batch, config.clip_text_pooled_in_channels, device=device, dtype=dtype),
        }
        return LatentBatch(torch.randn(batch, config.in_channels, side, side, device=device), conditioning)


def make_adapter(family: str) -> FamilyAdapter:
    return CascadeAdapter(family)
