"""Tiny models of every family, built from configs and saved like a user's model.

The tests and `tuitrain demo` need a base model with no download: the real SD 1.x /
SD 2.x / SDXL component classes at a few hundred thousand parameters, saved as an
ordinary diffusers folder, so they load through the same code path a user's model
takes. The CLIP tokenizer is byte-level (every character a token, no merges), made
here, because the real vocabulary only comes from the hub. Each family's recipe (its
denoiser's tiny config) is its home's tiny.py: `build(family, inpainting)` and `TOKENIZERS`;
the parts they share (text encoder config, VAE, DDPM schedule) are here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

TINY_TEXT_DIM = 32
TINY_MAX_TOKENS = 77
T5_MAX_TOKENS = 512


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


def text_config(with_projection: bool = False):  # type: ignore[no-untyped-def]
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


def t5_tokenizer() -> Any:
    """A T5 (Unigram) tokenizer of single characters: the real vocabulary (spiece.model) only comes from the hub."""
    from transformers import T5TokenizerFast

    chars = [chr(c) for c in range(33, 127)]
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    vocab += [(c, -3.0) for c in chars] + [("\u2581" + c, -3.5) for c in chars]
    return T5TokenizerFast(vocab=vocab, extra_ids=0, model_max_length=T5_MAX_TOKENS)


def tiny_t5(d_model: int) -> Any:
    """A T5 encoder of the v1.1 kind (gated GELU, as T5-XXL) at `d_model` wide, for t5_tokenizer's vocabulary."""
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(
        vocab_size=len(t5_tokenizer()), d_model=d_model, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
        feed_forward_proj="gated-gelu", pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    ))


def tiny_vae(latent_channels: int = 4, **config):  # type: ignore[no-untyped-def]
    """A tiny AutoencoderKL; `config` adds the family's own settings (Flux: scaling and shift factors)."""
    from diffusers import AutoencoderKL

    # Four blocks: the same 8x downscale as the real SD VAE, so latent sizes are real.
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=8,
        sample_size=64,
        **config,
    )


def ddpm_scheduler(prediction_type: str):  # type: ignore[no-untyped-def]
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


def build_tiny_pipeline(family: str, seed: int = 0, inpainting: bool = False,  # type: ignore[no-untyped-def]
                        flavour: str = ""):
    """A tiny pipeline of the family's real classes, with random weights (the recipe is the family home's tiny.py).

    inpainting: a 9-channel UNet (noisy latents, mask, masked-image latents) in the
    family's inpainting pipeline, like the public inpainting models. flavour: the
    family's flavour to imitate ("" the default one), e.g. SD 2.x 512-base or Flux schnell.
    """
    from tuitrain.trainer.families import family_files

    recipe = _recipe(family)
    if inpainting and not any(v.name == "inpainting" for v in family_files(family).variants):
        raise ValueError(f"family {family!r} has no inpainting models")
    from tuitrain.families import FAMILIES

    torch.manual_seed(seed)
    return recipe.build(family, inpainting, FAMILIES[family].flavour(flavour).name)


def _recipe(family: str):  # type: ignore[no-untyped-def]
    import importlib

    from tuitrain.families import FAMILIES

    if family not in FAMILIES:
        raise ValueError(f"no tiny model for family {family!r}")
    return importlib.import_module(f"tuitrain.trainer.families.{FAMILIES[family].home}.tiny")


def save_tiny_model(family: str, folder: Path, seed: int = 0, inpainting: bool = False, flavour: str = "") -> Path:
    """Build a tiny model of `family` and save it as a diffusers folder at `folder`.

    inpainting: the 9-channel variant, saved with the inpainting pipeline's model_index.json.
    flavour: which of the family's flavours to imitate ("" the default one).
    """
    from tuitrain.trainer.loading.pipeline import quiet_progress_bars

    quiet_progress_bars()
    from transformers import CLIPTokenizer

    pipe = build_tiny_pipeline(family, seed, inpainting, flavour)
    pipe.save_pretrained(folder, safe_serialization=True)
    # model_index.json was written with tokenizers = null: write the files and point it at them.
    index_path = folder / "model_index.json"
    index = json.loads(index_path.read_text())
    for name, pad_token in _recipe(family).TOKENIZERS.items():
        write_byte_level_clip_tokenizer(folder / name, pad_token=pad_token)
        index[name] = ["transformers", CLIPTokenizer.__name__]
    save_extras = getattr(_recipe(family), "save_extras", None)
    if save_extras is not None:  # tokenizers of other kinds (Flux's T5)
        save_extras(folder, index)
    index_path.write_text(json.dumps(index, indent=2))
    return folder
