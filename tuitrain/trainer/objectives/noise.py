"""Multi-resolution (pyramid) noise: noise with low-frequency layers added, for DDPM and flow alike.

As kohya's sd-scripts draw it (pyramid_noise_like, after Wasserman's "multi-resolution noise"
note): layer i is noise drawn at 1 / r^i of the size (r uniform in [2, 4) per layer), upscaled
bilinearly and weighted discount^i, and the sum is scaled back to unit standard deviation. Every
draw, r included, comes from the loop's generator, so a resumed run draws the same noise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pyramid_noise(noise: torch.Tensor, generator: torch.Generator | None, iterations: int,
                  discount: float) -> torch.Tensor:
    """`noise` [B, C, h, w] plus `iterations` layers of coarser noise, renormalised to std 1."""
    b, c, h, w = noise.shape
    out = noise.float()
    for i in range(iterations):
        r = 2.0 + 2.0 * torch.rand((), generator=generator, device=noise.device).item()
        hn, wn = max(1, int(h / r**i)), max(1, int(w / r**i))
        layer = torch.randn((b, c, hn, wn), generator=generator, device=noise.device, dtype=torch.float32)
        out = out + F.interpolate(layer, size=(h, w), mode="bilinear") * discount**i
        if hn == 1 or wn == 1:
            break
    return (out / out.std()).to(noise.dtype)
