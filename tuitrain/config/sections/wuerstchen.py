"""[wuerstchen]: Würstchen v2's own settings (model.family = "wuerstchen"); other families ignore the section."""

from __future__ import annotations

from tuitrain.config.fields import Section, option


class WuerstchenSection(Section):
    """Würstchen v2's own settings (model.family = "wuerstchen"); other families ignore the section."""

    group = "model"

    effnet: str = option(
        "",
        "Würstchen v2's image encoder as a .safetensors (the EfficientNet whose latents its prior learned: the "
        "effnet_state_dict of dome272/wuerstchen's model_v2_stage_b.pt, saved as safetensors; Stable Cascade's "
        "effnet_encoder is another one). Empty: effnet/effnet_encoder.safetensors or effnet_encoder.safetensors in "
        "the model.base folder (or the model.config folder). A relative path starts at the model.base folder.",
        family="wuerstchen",
    )
    decoder: str = option(
        "",
        "Stages B and A for samples: a WuerstchenDecoderPipeline diffusers folder or hub id (e.g. warp-ai/wuerstchen, "
        "about 1.1B parameters with its CLIP-H; it stays on the training device once a sample is drawn). Samples "
        "then are images; empty: they show the prior's latents. A relative path starts at the model.base folder.",
        family="wuerstchen",
    )
