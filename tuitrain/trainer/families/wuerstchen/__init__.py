"""Würstchen v2's prior (stage C, 1B): a WuerstchenPrior denoising 16-channel EfficientNet latents (24x24 at
1024 px) on CLIP-bigG text hidden states, trained DDPM-epsilon in continuous time.

Torch-free here; adapter.py is the trainer side. A family of its own, not a flavour of cascade/: the prior is
another class (diffusers' WuerstchenPrior, in its deprecated pipelines, not StableCascadeUNet), conditioned on
the text's last hidden state alone (no pooled text, no image embedding), on latents of another EfficientNet
checkpoint (an affine last batch norm) scaled by (x + 1) / 42, sampled by its own pipelines, and loaded by no
tool under ComfyUI's `lora_prior_unet_` names (ComfyUI has no Würstchen v2 model). What is shared is reused:
cascade/effnet.py (the same EfficientNetV2-S encoder), cascade/preview.py (samples as latents, or through a
decoder), cascade/companions.py (finding the encoder and decoder, and the lines refusing a run without them),
the continuous-time objective (objectives/continuous.py) and loading/denoiser_file.py.

compat.py makes diffusers 0.42's own Würstchen folders loadable again, loading.py reads a prior file,
tiny.py builds the test model. Shipped: the public prior's config (configs/wuerstchen2/prior/config.json).
"""
