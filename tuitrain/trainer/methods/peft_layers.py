"""peft adapters as tuitrain reads them: which layers, with what weights and scale, per model.

Export (export/kohya_lora.py, export/lycoris.py) and the LoRA method both need these;
they live apart from methods/lora.py so the exporters do not import the method that
calls them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

ADAPTER = "default"
# diffusers' component names, in the order the family lists its text encoders.
TEXT_ENCODER_NAMES: tuple[str, ...] = ("text_encoder", "text_encoder_2", "text_encoder_3")


@dataclass
class LoraLayerWeights:
    """One adapted layer in kohya terms: y += (alpha / rank) * up(down(x)), DoRA optional."""

    down: torch.Tensor  # [r, in] or [r, in, k, k]
    up: torch.Tensor  # [out, r] or [out, r, 1, 1]
    alpha: float  # scale * rank, so scale = alpha / rank holds for the file
    magnitude: torch.Tensor | None = None  # DoRA: per-output-channel magnitude, shape [out]

    @property
    def rank(self) -> int:
        return int(self.down.shape[0])


@dataclass
class LycorisLayerWeights:
    """One peft LoKr or LoHa layer: y += scale * x @ rebuild(factors)^T.

    `factors` holds peft's tensors under peft's attribute names (lokr_w1, lokr_w2_a,
    hada_w1_a, hada_t1, ...), which are also LyCORIS's key suffixes with the same
    shapes and contraction; only the scale convention differs (export/lycoris.py).
    """

    algo: str  # "lokr" | "loha"
    factors: dict[str, torch.Tensor]
    rank: int  # peft's r for this layer (the rank of every decomposed factor)
    scale: float  # what peft multiplies the rebuilt delta by: alpha / r, always


@dataclass
class LoraHandles:
    """What the trainer needs after injection: the models and their trainable groups."""

    unet: nn.Module  # the denoiser (a UNet or a transformer)
    text_encoders: list[nn.Module]
    # The denoiser's diffusers component name ("unet", "transformer"): its prefix in state dicts and
    # the `<name>_lora_layers` argument of diffusers' save_lora_weights.
    denoiser_name: str = "unet"
    unet_params: list[nn.Parameter] = field(default_factory=list)
    text_encoder_params: list[nn.Parameter] = field(default_factory=list)
    # Component names of the models that carry an adapter, in save order.
    adapted: list[str] = field(default_factory=list)

    def models(self) -> dict[str, nn.Module]:
        """Every adapted model by its diffusers component name."""
        named = {self.denoiser_name: self.unet, **dict(zip(TEXT_ENCODER_NAMES, self.text_encoders))}
        return {name: named[name] for name in self.adapted}

    def param_groups(self, unet_lr: float, text_encoder_lr: float | None = None) -> list[dict]:
        """Optimizer groups: the text encoders may train at their own rate."""
        groups = []
        if self.unet_params:
            groups.append({"params": self.unet_params, "lr": unet_lr})
        if self.text_encoder_params:
            groups.append({"params": self.text_encoder_params, "lr": text_encoder_lr or unet_lr})
        return groups

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The adapter weights in peft naming, prefixed by component ("unet.", "text_encoder.").

        The same layout diffusers' save_lora_weights writes, so resume files and the
        diffusers export share one naming.
        """
        from peft.utils import get_peft_model_state_dict

        out: dict[str, torch.Tensor] = {}
        for name, model in self.models().items():
            for key, value in get_peft_model_state_dict(model, adapter_name=ADAPTER).items():
                out[f"{name}.{key}"] = value.detach()
        return out

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [*self.unet_params, *self.text_encoder_params]


def lora_layers(model: nn.Module) -> dict[str, LoraLayerWeights]:
    """Every peft LoRA layer in `model`, by module path, with the scale it applies."""
    from peft.tuners.lora import LoraLayer

    layers: dict[str, LoraLayerWeights] = {}
    for name, module in model.named_modules():
        if not isinstance(module, LoraLayer) or ADAPTER not in module.lora_A:
            continue
        down = module.lora_A[ADAPTER].weight.detach()
        up = module.lora_B[ADAPTER].weight.detach()
        magnitude = None
        if module.use_dora.get(ADAPTER, False):
            magnitude = module.lora_magnitude_vector[ADAPTER].weight.detach().reshape(-1)
        # alpha from the applied scale, so the file reproduces it whatever peft derived it from.
        alpha = float(module.scaling[ADAPTER]) * int(down.shape[0])
        layers[name] = LoraLayerWeights(down=down, up=up, alpha=alpha, magnitude=magnitude)
    return layers


def lycoris_layers(model: nn.Module) -> dict[str, LycorisLayerWeights]:
    """Every peft LoKr/LoHa layer in `model`, by module path, with the factors and scale it applies."""
    from peft.tuners.loha import LoHaLayer
    from peft.tuners.lokr import LoKrLayer

    layers: dict[str, LycorisLayerWeights] = {}
    for name, module in model.named_modules():
        if isinstance(module, LoKrLayer):
            algo = "lokr"
        elif isinstance(module, LoHaLayer):
            algo = "loha"
        else:
            continue
        factors = {
            attr: getattr(module, attr)[ADAPTER].detach()
            for attr in module.adapter_layer_names
            if ADAPTER in getattr(module, attr)
        }
        if factors:
            layers[name] = LycorisLayerWeights(algo=algo, factors=factors, rank=int(module.r[ADAPTER]),
                                               scale=float(module.scaling[ADAPTER]))
    return layers
