"""Stable Cascade's stage-C image encoder: EfficientNetV2-S features and a 1x1 projection to 16 channels.

diffusers has no such encoder (its Stable Cascade pipelines start from text), and torchvision, where
the original code takes the backbone from (`efficientnet_v2_s().features`), is not a dependency here,
so the network is written out from the published architecture (Tan & Le 2021, "EfficientNetV2",
table 4; torchvision's EfficientNet_V2_S layout), with the module names torchvision gives it, under
the names the original Stable Cascade code wraps it in:

    backbone.<torchvision features index>...   the 8 feature stages (stem, 6 MBConv stages, 1x1 head)
    mapper.0                                   Conv2d(1280, 16, 1, bias=False)
    mapper.1                                   BatchNorm2d(16, affine=False): latents of mean 0, std 1

so the published `effnet_encoder.safetensors` loads with a strict load_state_dict. Inputs are RGB in
[0, 1] normalised with ImageNet's mean and std; the output is 1/32 of the input's sides. Eval only:
batch norm uses its running statistics and stochastic depth (training-time only) is left out.

Würstchen v2's encoder (the `effnet_state_dict` of dome272/wuerstchen's model_v2_stage_b.pt, which its prior
was trained on) is the same network except that its last batch norm is affine (`mapper.1.weight` / `.bias`,
EffNetConfig.affine_norm): load_encoder tells the two apart by that tensor. Its prior's latents are then
scaled by (x + 1) / 42, which the Würstchen family applies, not this encoder.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import nn

# torchvision's ImageNet normalisation, which the original encoder was trained with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FILE_NAME = "effnet_encoder.safetensors"
CONFIG_NAME = "config.json"


@dataclass(frozen=True)
class Stage:
    """One stage of EfficientNetV2: `layers` blocks of one kind; only the first strides and changes width."""

    fused: bool  # FusedMBConv (one full 3x3 conv expands) or MBConv (1x1 expand, depthwise 3x3, squeeze-excite)
    expand: int
    kernel: int
    stride: int
    out_channels: int
    layers: int


# EfficientNetV2-S (the paper's table 4, torchvision's efficientnet_v2_s): stem 24 channels, head 1280.
V2_S = (
    Stage(True, 1, 3, 1, 24, 2),
    Stage(True, 4, 3, 2, 48, 4),
    Stage(True, 4, 3, 2, 64, 4),
    Stage(False, 4, 3, 2, 128, 6),
    Stage(False, 6, 3, 1, 160, 9),
    Stage(False, 6, 3, 2, 256, 15),
)


@dataclass(frozen=True)
class EffNetConfig:
    """The encoder's architecture: the published one by default; tests build narrower, shallower ones."""

    stem_channels: int = 24
    stages: tuple[Stage, ...] = V2_S
    head_channels: int = 1280
    latent_channels: int = 16
    stem_stride: int = 2
    affine_norm: bool = False  # Würstchen v2's encoder: the last batch norm has a weight and bias

    @property
    def downscale(self) -> int:
        """How many input pixels one latent covers per side (32 for the published encoder)."""
        scale = self.stem_stride
        for stage in self.stages:
            scale *= stage.stride
        return scale

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> EffNetConfig:
        data = json.loads(text)
        data["stages"] = tuple(Stage(**s) for s in data["stages"])
        return cls(**data)


def _conv_norm(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1,
               act: bool = True) -> nn.Sequential:
    """torchvision's Conv2dNormActivation: conv without bias, BatchNorm (eps 1e-3 in EfficientNet), SiLU."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(c_out, eps=1e-3)]
    if act:
        layers.append(nn.SiLU())
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    """Channel gating: global average, 1x1 down (SiLU), 1x1 up, sigmoid; torchvision's names fc1 / fc2."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.fc2(nn.functional.silu(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * torch.sigmoid(scale)


class MBConv(nn.Module):
    """An (optionally fused) inverted residual block, as `block` (an nn.Sequential) plus a residual when the
    shape is kept."""

    def __init__(self, stage: Stage, c_in: int, stride: int) -> None:
        super().__init__()
        c_out, expanded = stage.out_channels, c_in * stage.expand
        layers: list[nn.Module] = []
        if stage.fused:
            if expanded != c_in:
                layers += [_conv_norm(c_in, expanded, stage.kernel, stride), _conv_norm(expanded, c_out, 1, act=False)]
            else:
                layers.append(_conv_norm(c_in, c_out, stage.kernel, stride))
        else:
            if expanded != c_in:
                layers.append(_conv_norm(c_in, expanded, 1))
            layers += [_conv_norm(expanded, expanded, stage.kernel, stride, groups=expanded),
                       SqueezeExcitation(expanded, max(1, c_in // 4)),
                       _conv_norm(expanded, c_out, 1, act=False)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return out + x if self.residual else out


class EfficientNetEncoder(nn.Module):
    """pixels (ImageNet-normalised RGB) -> 16-channel stage-C latents, 1/32 of the sides."""

    def __init__(self, config: EffNetConfig | None = None) -> None:
        super().__init__()
        self.config = config or EffNetConfig()
        c = self.config
        features: list[nn.Module] = [_conv_norm(3, c.stem_channels, 3, c.stem_stride)]
        width = c.stem_channels
        for stage in c.stages:
            blocks = []
            for i in range(stage.layers):
                blocks.append(MBConv(stage, width, stage.stride if i == 0 else 1))
                width = stage.out_channels
            features.append(nn.Sequential(*blocks))
        features.append(_conv_norm(width, c.head_channels, 1))
        self.backbone = nn.Sequential(*features)
        self.mapper = nn.Sequential(nn.Conv2d(c.head_channels, c.latent_channels, 1, bias=False),
                                    nn.BatchNorm2d(c.latent_channels, affine=c.affine_norm))
        self.eval()

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def train(self, mode: bool = True) -> EfficientNetEncoder:
        """Always in eval mode: batch norm keeps the published running statistics (a frozen encoder)."""
        return super().train(False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.mapper(self.backbone(pixels))

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """[-1, 1] RGB -> the ImageNet normalisation the encoder expects."""
        mean = torch.tensor(IMAGENET_MEAN, device=pixels.device, dtype=pixels.dtype).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=pixels.device, dtype=pixels.dtype).view(1, 3, 1, 1)
        return ((pixels + 1) / 2 - mean) / std

    def save(self, folder: Path) -> Path:
        """The weights as `effnet_encoder.safetensors`, and the architecture beside them when it is not the
        published one."""
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        if replace(self.config, affine_norm=False) != EffNetConfig():  # the file's own tensors tell affine_norm
            (folder / CONFIG_NAME).write_text(self.config.to_json(), encoding="utf-8")
        path = folder / FILE_NAME
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(path))
        return path


def load_encoder(path: Path, field_name: str = "cascade.effnet",
                 words: str = "Stable Cascade's") -> EfficientNetEncoder:
    """The encoder from `effnet_encoder.safetensors` (the published one, or any file with its names; a
    config.json beside it describes another architecture; an affine last batch norm is Würstchen v2's).
    ValueError with one line naming the file and `words`, whose encoder it should have been."""
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except Exception as exc:  # not a safetensors file
        raise ValueError(f"{field_name}: '{path}' is not a readable .safetensors file ({exc})") from None
    state = {k[len("effnet."):] if k.startswith("effnet.") else k: v for k, v in state.items()}
    config_file = path.with_name(CONFIG_NAME)
    config = EffNetConfig.from_json(config_file.read_text(encoding="utf-8")) if config_file.is_file() \
        else EffNetConfig()
    config = replace(config, affine_norm="mapper.1.weight" in state)
    with torch.device("meta"):
        encoder = EfficientNetEncoder(config)
    expected = encoder.state_dict()
    missing = sorted(set(expected) - set(state))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or wrong:
        first = (missing or wrong)[0]
        raise ValueError(f"{field_name}: '{path}' is not {words} EfficientNet encoder: it "
                         f"{'lacks' if missing else 'has another shape for'} '{first}' ({len(missing)} missing, "
                         f"{len(wrong)} of another shape)")
    encoder.load_state_dict({k: state[k] for k in expected}, strict=True, assign=True)
    return encoder.eval()


def effnet_latents(encoder: EfficientNetEncoder, pixels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Pixels in [-1, 1] -> the encoder's latents of `size` (h, w): resized so the encoder's downscale lands on
    it (768 px for 24 latents, as ComfyUI's stage-C encode node resizes; Würstchen's effnet_preprocess takes
    384 px for its 12), ImageNet-normalised, encoded."""
    scale = encoder.config.downscale
    resized = torch.nn.functional.interpolate(pixels.float(), size=(size[0] * scale, size[1] * scale), mode="bicubic",
                                              antialias=True, align_corners=False).clamp(-1, 1)
    return encoder(encoder.normalise(resized).to(encoder.dtype))
