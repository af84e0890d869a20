"""[performance]: how the step runs fast: compilation, the attention kernel, memory layout, TF32.

None of these change what is learned beyond float rounding (a test holds a compiled run to the eager
one's losses); they trade start-up time or generality for step time.
"""

from __future__ import annotations

from typing import Literal

from tuitrain.config.fields import Section, option


class PerformanceSection(Section):
    group = "training"

    compile: Literal["off", "blocks", "full"] = option(
        "off",
        "torch.compile the denoiser: blocks (regional: each repeated transformer block once, as diffusers' "
        "compile_repeated_blocks does; compiles in about a minute and gives most of the speed), full (the whole "
        "denoiser: slower to compile, sometimes faster). Each new aspect bucket adds a compile in its first step "
        "(shapes then turn dynamic). Off: eager.",
    )
    compile_backend: Literal["inductor", "aot_eager", "cudagraphs"] = option(
        "inductor",
        "torch.compile's backend: inductor (generates kernels: the fast one), cudagraphs (replays CUDA graphs; "
        "static shapes only: one bucket), aot_eager (captures the graphs but runs them eagerly: a check that "
        "the model compiles, no speed).",
    )
    attention: Literal["auto", "math", "efficient", "flash", "cudnn"] = option(
        "auto",
        "The scaled-dot-product attention kernel PyTorch uses: auto (PyTorch picks per call), flash, efficient "
        "(memory-efficient), cudnn, math (the plain reference). flash / efficient / cudnn need a CUDA GPU "
        "(flash: fp16 / bf16 inputs); a kernel that cannot run a call stops the step with PyTorch's reason.",
    )
    channels_last: Literal["auto", "on", "off"] = option(
        "auto",
        "UNet convolutions in channels-last memory layout (faster on tensor cores). auto: on for UNet families "
        "on a CUDA GPU; transformers have no convolutions to speak of.",
    )
    tf32: bool = option(
        True,
        "Let fp32 matmuls and convolutions use TF32 on Ampere and newer GPUs (the parts kept in fp32: ~8x faster, "
        "10-bit mantissa inputs with fp32 accumulation).",
    )
