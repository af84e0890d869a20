"""[cascade]: Stable Cascade stage C's own settings (model.family = "cascade"); other families ignore the section."""

from __future__ import annotations

from tuitrain.config.fields import Section, option


class CascadeSection(Section):
    """Stable Cascade stage C's own settings (model.family = "cascade"); other families ignore the section."""

    group = "model"

    effnet: str = option(
        "",
        "The stage-C image encoder, effnet_encoder.safetensors (Stable Cascade's EfficientNet; training encodes "
        "the images with it). Empty: effnet/effnet_encoder.safetensors or effnet_encoder.safetensors in the "
        "model.base folder (or the model.config folder). A relative path starts at the model.base folder.",
        family="cascade",
    )
    decoder: str = option(
        "",
        "Stages B and A for samples: a StableCascadeDecoderPipeline diffusers folder or hub id (e.g. "
        "stabilityai/stable-cascade, whose decoder is 1.5B parameters; it stays on the training device once a "
        "sample is drawn). Samples then are images; empty: they show the prior's latents. A relative path starts at "
        "the model.base folder.",
        family="cascade",
    )
    previewer: str = option(
        "",
        "Stable Cascade's previewer.safetensors (a 4M-parameter net the original code and ComfyUI draw quick "
        "previews with), for samples without cascade.decoder: they are then its rough images of the prior's latents "
        "instead of the latents' first channels. Empty: previewer/previewer.safetensors or previewer.safetensors in "
        "the model.base folder (or the model.config folder), if there. A relative path starts at the model.base folder.",
        family="cascade",
    )
