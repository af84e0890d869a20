"""Tiny SD-architecture models, built from configs and saved like a user's model.

The tests and `tuitrain demo` need a base model with no download: the real SD 1.x /
SD 2.x / SDXL component classes at a few hundred thousand parameters, saved as an
ordinary diffusers folder, so they load through the same code path a user's model
takes. The CLIP tokenizer is byte-level (every character a token, no merges), made
here, because the real vocabulary only comes from the hub.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

TINY_TEXT_DIM = 32
TINY_MAX_TOKENS = 77
INPAINT_CHANNELS = 9  # noisy latents (4) + mask (1) + masked-image latents (4)


def write_byte_level_clip_tokenizer(folder: Path, pad_token: str = "<|endoftext|>") -> None:
    """A CLIPTokenizer with no merges: 512 character tokens plus the two specials."""
    folder.mkdir(parents=True, exist_ok=True)
    from tuitrain.trainer.loading.config_folders import bytes_to_unicode

    chars = bytes_to_unicode()
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    if pad_token not in vocab:
        raise ValueError(f"pad token {pad_token!r} must be in the vocabulary")
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    (folder / "special_tokens_map.json").write_text(json.dumps({
        "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
        "pad_token": pad_token,
    }))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": TINY_MAX_TOKENS,
        "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
        "pad_token": pad_token,
        "do_lower_case": True,
    }))


def _text_config(with_projection: bool = False):  # type: ignore[no-untyped-def]
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=514,
        hidden_size=TINY_TEXT_DIM,
        intermediate_size=64,
        num_attention_heads=4,
        num_hidden_layers=2,
        max_position_embeddings=TINY_MAX_TOKENS,
        projection_dim=TINY_TEXT_DIM,
        bos_token_id=512,
        eos_token_id=513,
        pad_token_id=513,
        hidden_act="quick_gelu",
    )


def tiny_vae():  # type: ignore[no-untyped-def]
    from diffusers import AutoencoderKL

    # Four blocks: the same 8x downscale as the real SD VAE, so latent sizes are real.
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
    )


def _scheduler(prediction_type: str):  # type: ignore[no-untyped-def]
    from diffusers import DDPMScheduler

    # The real SD noise schedule: only the networks are tiny.
    return DDPMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type=prediction_type,
        clip_sample=False,
        steps_offset=1,
    )


def build_tiny_pipeline(family: str, seed: int = 0, inpainting: bool = False):  # type: ignore[no-untyped-def]
    """A tiny pipeline of the family's real classes, with random weights.

    inpainting: a 9-channel UNet (noisy latents, mask, masked-image latents) in the
    family's inpainting pipeline, like the public inpainting models.
    """
    import diffusers
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    in_channels = INPAINT_CHANNELS if inpainting else 4
    if family in ("sd15", "sd2"):
        cls = diffusers.StableDiffusionInpaintPipeline if inpainting else diffusers.StableDiffusionPipeline
        unet = UNet2DConditionModel(
            sample_size=8,
            in_channels=in_channels,
            out_channels=4,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            block_out_channels=(32, 64),
            layers_per_block=1,
            cross_attention_dim=TINY_TEXT_DIM,
            attention_head_dim=8 if family == "sd15" else (2, 4),
            use_linear_projection=family == "sd2",
            norm_num_groups=8,
        )
        return cls(
            vae=tiny_vae(),
            text_encoder=CLIPTextModel(_text_config()),
            tokenizer=None,  # written as files in save_tiny_model
            unet=unet,
            scheduler=_scheduler("v_prediction" if family == "sd2" else "epsilon"),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    if family == "sdxl":
        time_dim = 8
        xl_cls = diffusers.StableDiffusionXLInpaintPipeline if inpainting else diffusers.StableDiffusionXLPipeline
        unet = UNet2DConditionModel(
            sample_size=8,
            in_channels=in_channels,
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            block_out_channels=(32, 64),
            layers_per_block=1,
            attention_head_dim=(2, 4),
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=time_dim,
            transformer_layers_per_block=(1, 2),
            projection_class_embeddings_input_dim=6 * time_dim + TINY_TEXT_DIM,
            cross_attention_dim=2 * TINY_TEXT_DIM,
            norm_num_groups=8,
        )
        return xl_cls(
            vae=tiny_vae(),
            text_encoder=CLIPTextModel(_text_config()),
            text_encoder_2=CLIPTextModelWithProjection(_text_config(with_projection=True)),
            tokenizer=None,
            tokenizer_2=None,
            unet=unet,
            scheduler=_scheduler("epsilon"),
            force_zeros_for_empty_prompt=True,
        )
    raise ValueError(f"no tiny model for family {family!r}")


def save_tiny_model(family: str, folder: Path, seed: int = 0, inpainting: bool = False) -> Path:
    """Build a tiny model of `family` and save it as a diffusers folder at `folder`.

    inpainting: the 9-channel variant, saved with the inpainting pipeline's model_index.json.
    """
    from tuitrain.trainer.loading.pipeline import quiet_progress_bars

    quiet_progress_bars()
    from transformers import CLIPTokenizer

    pipe = build_tiny_pipeline(family, seed, inpainting)
    pipe.save_pretrained(folder, safe_serialization=True)
    write_byte_level_clip_tokenizer(folder / "tokenizer")
    if family == "sdxl":
        # SDXL's second tokenizer pads with "!" like OpenCLIP; keep that quirk.
        write_byte_level_clip_tokenizer(folder / "tokenizer_2", pad_token="!")
    # model_index.json was written with tokenizer = null: point it at the files.
    index_path = folder / "model_index.json"
    index = json.loads(index_path.read_text())
    index["tokenizer"] = ["transformers", CLIPTokenizer.__name__]
    if family == "sdxl":
        index["tokenizer_2"] = ["transformers", CLIPTokenizer.__name__]
    index_path.write_text(json.dumps(index, indent=2))
    return folder
