"""A rough VRAM estimate for the form's side panel, from config values alone (no torch).

It is labelled an estimate everywhere it is shown: real use depends on the attention
kernel, the allocator, the CUDA version and the data (bucket sizes). The model, in GiB:

    frozen      = frozen parameters x bytes of the compute dtype (bf16/fp16: 2, fp32: 4);
                  the VAE is always fp32 (the trainer keeps it so: SDXL's VAE overflows in fp16);
                  model.quantize stores the denoiser in int8 / fp8 (1 byte) or nf4 / int4 (~0.53-0.56
                  bytes), model.quantize_text_encoders the text encoders likewise; the text encoders
                  leave the GPU once every caption is cached (model.text_encoders_after_caching = cpu)
    trained     = trained parameters x (4 fp32 master weight + 4 fp32 gradient + optimizer
                  state bytes + 2 for autocast's half-precision copy under bf16/fp16
                  + 4 for an EMA copy with ema.mode = "gpu")
    activations = MemoryFacts.activations_gib x batch_size x (resolution / native)^2, x2 in fp32,
                  / 3.5 with gradient checkpointing
    total       = frozen + trained + activations + OVERHEAD_GIB, or, when the text encoders leave
                  the GPU after caching, the larger of that without them and every frozen weight
                  + OVERHEAD_GIB (the captions are encoded with everything on the GPU, before step 1)

What trains, per training.method (matching tuitrain/trainer/methods/):
    lora       adapters on the modules the family adapter targets (lora.rank, conv_rank,
               lora.type); the whole model stays frozen in the compute dtype
    embedding  embedding.vectors rows per text encoder; the whole model stays frozen
    finetune   the UNet (and with finetune.train_text_encoder the text encoders), held in
               fp32 by the method (methods/finetune.py) instead of the compute dtype
All three back-propagate through the UNet, so activations do not depend on the method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tuitrain.families import FAMILIES

GIB = 1024**3

# Per-family numbers (parameters of denoiser / text encoders / VAE, embedding widths, LoRA
# parameters per unit of rank by target group, activations at the native resolution) are the
# family registry's MemoryFacts (tuitrain/families.py), which says where each comes from.
# Parameters of an adapter type relative to LoRA at the same rank. LoHa holds two low-rank
# pairs (peft's hada_w1_a/b, w2_a/b): 2x. LoKr (peft, lokr_factor -1) is a Kronecker product of
# two near-square factors; counted with peft's factorization it is about LoRA at rank 1 for
# ranks >= 8 whatever the rank (rank only decomposes the second factor when it is small).
LOHA_FACTOR = 2.0

# Optimizer state bytes per trained parameter (fp32 states unless 8-bit):
#   adamw 2 moments x 4; adamw8bit 2 moments x 1 (bitsandbytes blockwise 8-bit);
#   prodigy exp_avg, exp_avg_sq, s and p0 x 4; lion8bit one 8-bit momentum;
#   adafactor: factored second moments (rows + cols per matrix, ~0) but convolutions and
#   vectors keep full ones; 2 is an allowance for those.
OPTIMIZER_BYTES: dict[str, float] = {"adamw": 8, "adamw8bit": 2, "prodigy": 16, "lion8bit": 1, "adafactor": 2}
# Bytes per weight of model.quantize's modes, quantization constants included (trainer/quantize.py):
# int8 / fp8 one byte (+ a scale per row), nf4 half a byte + an fp32 absmax per 64 weights, int4 half a
# byte + a bf16 scale and shift per 128 weights (optimum-quanto's groups).
QUANTIZED_BYTES: dict[str, float] = {"int8": 1.0, "nf4": 0.5 + 4 / 64, "fp8": 1.0, "int4": 0.5 + 4 / 128}
# The share of each denoiser's weights model.quantize stores quantized: nn.Linear layers of >= 4096 weights
# (trainer/quantize.py; convolutions stay), counted on the public architectures (meta device, diffusers 0.42).
# UNets keep their convolutions: SD 1.5's are two thirds of it. Families not listed: 1.0 (transformers).
QUANTIZED_SHARE: dict[str, float] = {"sd15": 0.314, "sd2": 0.348, "sdxl": 0.870}
MASTER_BYTES = 4  # fp32 trained weights
GRADIENT_BYTES = 4  # fp32 gradients
AUTOCAST_COPY_BYTES = 2  # autocast caches a bf16/fp16 copy of each fp32 weight during the forward
EMA_BYTES = 4  # ema.mode = "gpu": an fp32 copy of the trained weights (cpu: none in VRAM)

CHECKPOINTING_SAVING = 3.5  # gradient checkpointing keeps roughly this fraction less
OVERHEAD_GIB = 0.8  # CUDA context, cuBLAS workspace and allocator slack


@dataclass(frozen=True)
class VramEstimate:
    total_gib: float
    weights_gib: float  # frozen weights
    trained_gib: float  # trained weights + gradients + optimizer state (+ EMA)
    activations_gib: float
    trained_params: float

    def describe(self) -> str:
        """Lines for a narrow side panel: the total first, then its parts in GiB."""
        return (
            f"≈ {self.total_gib:.1f} GiB (an estimate)\n"
            f"  frozen weights  {self.weights_gib:5.1f}\n"
            f"  training state  {self.trained_gib:5.1f}\n"
            f"  activations     {self.activations_gib:5.1f}\n"
            f"  trained params  {_count(self.trained_params)}"
        )


def _count(params: float) -> str:
    if params >= 1e9:
        return f"{params / 1e9:.2f}B"
    if params >= 1e6:
        return f"{params / 1e6:.1f}M"
    return f"{params / 1e3:.0f}K" if params >= 1e3 else f"{params:.0f}"


def _get(data: dict[str, Any], section: str, key: str, default: Any) -> Any:
    table = data.get(section)
    value = table.get(key, default) if isinstance(table, dict) else default
    return default if value is None else value


def _number(value: Any, default: float) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def lora_parameters(family: str, data: dict[str, Any]) -> float:
    """Trained parameters of the adapter the [lora] table describes."""
    per = FAMILIES[family].memory_for(str(_get(data, "model", "flavour", ""))).lora_per_rank
    rank = _number(_get(data, "lora", "rank", 16), 16)
    conv_rank = _number(_get(data, "lora", "conv_rank", 8), 8)
    kind = _get(data, "lora", "type", "lora")
    if kind == "lokr":
        factor = _number(_get(data, "lora", "lokr_factor", -1), -1)
        # -1: near-square factors, about rank 1 worth; an explicit factor f leaves out/f x in/f
        # blocks whose low-rank split costs about rank / f of LoRA's.
        rank = conv_rank = 1.0 if factor <= 0 else max(1.0, rank / factor)
    units = 0.0
    if _get(data, "lora", "train_attention", True):
        units += per["attention"] * rank
    if _get(data, "lora", "train_ff", False):
        units += per["ff"] * rank
    if _get(data, "lora", "train_conv", False):
        units += per["conv1x1"] * rank + per["conv3x3"] * conv_rank
    if _get(data, "lora", "train_text_encoder", False):
        units += per["text"] * rank
    return units * (LOHA_FACTOR if kind == "loha" else 1.0)


def estimate_vram(data: dict[str, Any]) -> VramEstimate:
    """The estimate for config data (as the form holds it); unknown families count as sd15."""
    family = str(_get(data, "model", "family", "sd15"))
    family = family if family in FAMILIES else "sd15"
    memory = FAMILIES[family].memory_for(str(_get(data, "model", "flavour", "")))  # SD3.5 medium: its own size
    unet, text, vae = memory.params
    method = _get(data, "training", "method", "lora")
    precision = _get(data, "training", "mixed_precision", "auto")
    half = precision != "fp32"  # auto is bf16/fp16 on a GPU
    compute_bytes = 2 if half else 4

    frozen = unet + text
    if method == "finetune":
        trained = unet + (text if _get(data, "finetune", "train_text_encoder", False) else 0.0)
        frozen -= trained
    elif method == "embedding":
        trained = _number(_get(data, "embedding", "vectors", 4), 4) * sum(memory.embedding_dims)
    else:
        trained = lora_parameters(family, data)
    weights = frozen * compute_bytes + vae * 4
    quantize = _get(data, "model", "quantize", "none")
    if quantize in QUANTIZED_BYTES and method != "finetune":
        # The denoiser's linear layers (nearly all of its weights) quantized instead of in the compute dtype.
        weights -= unet * QUANTIZED_SHARE.get(family, 1.0) * (compute_bytes - QUANTIZED_BYTES[quantize])
    trains_text = (method == "finetune" and _get(data, "finetune", "train_text_encoder", False)) or (
        method == "lora" and _get(data, "lora", "train_text_encoder", False))
    text_quantize = _get(data, "model", "quantize_text_encoders", "none")
    text_bytes = float(compute_bytes)
    if text_quantize in QUANTIZED_BYTES and not (method == "finetune" and trains_text):
        text_bytes = QUANTIZED_BYTES[text_quantize]
        weights -= text * (compute_bytes - text_bytes)
    # The trainer's Trainer.park_text_encoders: off the GPU once every caption's embedding is cached.
    parked = text * text_bytes if _text_encoders_leave(data, method, trains_text) else 0.0

    optimizer = OPTIMIZER_BYTES.get(str(_get(data, "optimizer", "name", "adamw")), 8)
    per_trained = MASTER_BYTES + GRADIENT_BYTES + optimizer + (AUTOCAST_COPY_BYTES if half else 0)
    if _get(data, "ema", "mode", "off") == "gpu":
        per_trained += EMA_BYTES
    state = trained * per_trained

    native = FAMILIES[family].default_resolution
    resolution = _number(_get(data, "data", "resolution", native), native)
    batch = _number(_get(data, "training", "batch_size", 1), 1)
    activations = memory.activations_gib * batch * (resolution / native) ** 2 * (compute_bytes / 2)
    if _get(data, "training", "gradient_checkpointing", False):
        activations /= CHECKPOINTING_SAVING
    total = (weights - parked) / GIB + state / GIB + activations + OVERHEAD_GIB
    total = max(total, weights / GIB + OVERHEAD_GIB)  # while the captions are encoded
    return VramEstimate(total, (weights - parked) / GIB, state / GIB, activations, trained)


def _text_encoders_leave(data: dict[str, Any], method: str, trains_text: bool) -> bool:
    """Whether the run caches every caption's embedding, so the text encoders wait off the GPU (the trainer's
    loop._text_cacheable and model.text_encoders_after_caching; an embedding trains through them)."""
    if method == "embedding" or trains_text or _get(data, "model", "text_encoders_after_caching", "cpu") != "cpu":
        return False
    if not _get(data, "data", "cache_text_embeddings", True) or _get(data, "data", "shuffle_tags", False):
        return False
    if _number(_get(data, "data", "caption_dropout", 0.0), 0.0) > 0:
        return False
    concepts = _get(data, "data", "concepts", [])
    concepts = concepts if isinstance(concepts, list) else []
    return not any(isinstance(c, dict) and (c.get("caption") == "prompt-file" or _number(c.get("caption_dropout"), 0) > 0)
                   for c in concepts)
