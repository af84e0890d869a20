"""Stable Cascade's previewer: a small conv net that turns stage-C latents into a rough RGB image, 8x the sides.

Released with the model (previewer.safetensors) for the original code's and ComfyUI's live previews, it is the
cheap way to look at what the prior makes without stages B and A. Written here from the published
architecture (Stability-AI/StableCascade modules/previewer.py): 1x1 conv to c_hidden, then three rounds of
(3x3 conv, 2x transposed conv) halving the width twice, each conv followed by GELU and batch norm, and a 1x1
conv to RGB in [0, 1]; the module indices are the original nn.Sequential's, so the file loads strictly.
c_hidden (512 in the release) is read from the file, so narrower test models load the same way.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

FILE_NAME = "previewer.safetensors"


def _stage(layers: list[nn.Module], module: nn.Module, channels: int) -> None:
    layers += [module, nn.GELU(), nn.BatchNorm2d(channels)]


class Previewer(nn.Module):
    """[B, 16, h, w] stage-C latents -> [B, 3, 8h, 8w] RGB in about [0, 1]."""

    def __init__(self, c_in: int = 16, c_hidden: int = 512, c_out: int = 3) -> None:
        super().__init__()
        half, quarter = c_hidden // 2, c_hidden // 4
        layers: list[nn.Module] = []
        _stage(layers, nn.Conv2d(c_in, c_hidden, 1), c_hidden)
        _stage(layers, nn.Conv2d(c_hidden, c_hidden, 3, padding=1), c_hidden)
        _stage(layers, nn.ConvTranspose2d(c_hidden, half, 2, stride=2), half)
        _stage(layers, nn.Conv2d(half, half, 3, padding=1), half)
        _stage(layers, nn.ConvTranspose2d(half, quarter, 2, stride=2), quarter)
        _stage(layers, nn.Conv2d(quarter, quarter, 3, padding=1), quarter)
        _stage(layers, nn.ConvTranspose2d(quarter, quarter, 2, stride=2), quarter)
        _stage(layers, nn.Conv2d(quarter, quarter, 3, padding=1), quarter)
        layers.append(nn.Conv2d(quarter, c_out, 1))
        self.blocks = nn.Sequential(*layers)
        self.eval()

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.blocks(latents)


def load_previewer(path: Path, field_name: str = "cascade.previewer") -> Previewer:
    """The previewer from its .safetensors; ValueError with one line naming the file when it is not one."""
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except Exception as exc:
        raise ValueError(f"{field_name}: '{path}' is not a readable .safetensors file ({exc})") from None
    first = state.get("blocks.0.weight")
    if first is None or first.dim() != 4:
        raise ValueError(f"{field_name}: '{path}' is not Stable Cascade's previewer (no blocks.0.weight)")
    previewer = Previewer(c_in=first.shape[1], c_hidden=first.shape[0])
    try:
        previewer.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[0]
        raise ValueError(f"{field_name}: '{path}' does not fit Stable Cascade's previewer: {reason}") from None
    return previewer.eval()
