"""A rough VRAM estimate for the form's side panel, from config values alone (no torch).

It is labelled an estimate everywhere it is shown: real use depends on the attention
kernel, the allocator, the CUDA version and the data (bucket sizes). The model, in GiB:

    frozen      = frozen parameters x bytes of the compute dtype (bf16/fp16: 2, fp32: 4);
                  the VAE is always fp32 (the trainer keeps it so: SDXL's VAE overflows in fp16)
    trained     = trained parameters x (4 fp32 master weight + 4 fp32 gradient + optimizer
                  state bytes + 2 for autocast's half-precision copy under bf16/fp16
                  + 4 for an EMA copy with ema.mode = "gpu")
    activations = ACTIVATIONS[family] x batch_size x (resolution / native)^2, x2 in fp32,
                  / 3.5 with gradient checkpointing
    total       = frozen + trained + activations + OVERHEAD_GIB

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

# (UNet, text encoders, VAE) parameters. Public model sizes, and what diffusers' models
# with the published configs count: SD 1.5 UNet 860M, CLIP ViT-L/14 text 123M, VAE 84M;
# SD 2.x UNet 865M, OpenCLIP ViT-H text (23 layers as diffusers loads it) 340M; SDXL UNet
# 2.57B, CLIP ViT-L 123M + OpenCLIP ViT-bigG text 695M.
PARAMS: dict[str, tuple[float, float, float]] = {
    "sd15": (860e6, 123e6, 84e6),
    "sd2": (865e6, 340e6, 84e6),
    "sdxl": (2567e6, 123e6 + 695e6, 84e6),
}
# Hidden size of each text encoder's token embedding (what one embedding vector holds).
EMBEDDING_DIMS: dict[str, tuple[int, ...]] = {"sd15": (768,), "sd2": (1024,), "sdxl": (768, 1280)}

# LoRA parameters per unit of rank, counted on the UNets built from the published configs
# (meta device) with the module names tuitrain targets (trainer/families/sd.py):
#   attention: to_q, to_k, to_v, to_out.0 -> sum of (in + out) features
#   ff:        ff.net.0.proj, ff.net.2, proj_in, proj_out
#   conv1x1:   1x1 convolutions of the conv targets (they take lora.rank, as kohya does)
#   conv3x3:   3x3 convolutions (in x 9 + out per unit of lora.conv_rank)
#   text:      q/k/v/out_proj, fc1, fc2 of every text encoder layer (lora.train_text_encoder)
LORA_PER_RANK: dict[str, dict[str, float]] = {
    "sd15": {"attention": 199_296, "ff": 224_640, "conv1x1": 34_560, "conv3x3": 544_000, "text": 165_888},
    "sd2": {"attention": 207_488, "ff": 224_640, "conv1x1": 34_560, "conv3x3": 544_000, "text": 423_936},
    "sdxl": {"attention": 1_451_520, "ff": 1_208_320, "conv1x1": 23_040, "conv3x3": 355_840, "text": 903_168},
}
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
MASTER_BYTES = 4  # fp32 trained weights
GRADIENT_BYTES = 4  # fp32 gradients
AUTOCAST_COPY_BYTES = 2  # autocast caches a bf16/fp16 copy of each fp32 weight during the forward
EMA_BYTES = 4  # ema.mode = "gpu": an fp32 copy of the trained weights (cpu: none in VRAM)

# GiB of activations for one image at the family's native resolution, batch 1, bf16, with
# PyTorch's SDPA attention. Read off typical training runs; good to about +-30%.
ACTIVATIONS: dict[str, float] = {"sd15": 2.6, "sd2": 4.0, "sdxl": 9.0}
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
    per = LORA_PER_RANK[family]
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
    family = family if family in PARAMS else "sd15"
    unet, text, vae = PARAMS[family]
    method = _get(data, "training", "method", "lora")
    precision = _get(data, "training", "mixed_precision", "auto")
    half = precision != "fp32"  # auto is bf16/fp16 on a GPU
    compute_bytes = 2 if half else 4

    frozen = unet + text
    if method == "finetune":
        trained = unet + (text if _get(data, "finetune", "train_text_encoder", False) else 0.0)
        frozen -= trained
    elif method == "embedding":
        trained = _number(_get(data, "embedding", "vectors", 4), 4) * sum(EMBEDDING_DIMS[family])
    else:
        trained = lora_parameters(family, data)
    weights = frozen * compute_bytes + vae * 4

    optimizer = OPTIMIZER_BYTES.get(str(_get(data, "optimizer", "name", "adamw")), 8)
    per_trained = MASTER_BYTES + GRADIENT_BYTES + optimizer + (AUTOCAST_COPY_BYTES if half else 0)
    if _get(data, "ema", "mode", "off") == "gpu":
        per_trained += EMA_BYTES
    state = trained * per_trained

    native = FAMILIES[family].default_resolution if family in FAMILIES else 512
    resolution = _number(_get(data, "data", "resolution", native), native)
    batch = _number(_get(data, "training", "batch_size", 1), 1)
    activations = ACTIVATIONS[family] * batch * (resolution / native) ** 2 * (compute_bytes / 2)
    if _get(data, "training", "gradient_checkpointing", False):
        activations /= CHECKPOINTING_SAVING
    total = weights / GIB + state / GIB + activations + OVERHEAD_GIB
    return VramEstimate(total, weights / GIB, state / GIB, activations, trained)
